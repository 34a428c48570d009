/* attention_x86.h — AVX2+FMA register tiles for the two products of blocked attention, used by
 * attention.c on CPUs with AVX2 and FMA but without AVX-512 (where oneDNN's sgemm runs them).
 *
 * Why hand-written: a CLIP attention item is two small products per head (577×577×64 and
 * 577×64×577). Called through a GEMM library one thread at a time they ran at about 63 GFLOP/s
 * per thread on an AVX2 EPYC (Zen 3), against about 100 for the FMA peak: the library packs
 * both operands on every call and its blocking is made for large shapes. Here keys are packed
 * (and values) are packed once per work item and the score rows of one 6-row tile stay in L1
 * between the two products,
 * so the exponentials and the second product read them from there (hired-bench-kernels
 * attention prints the rate beside the sgemm rate).
 *
 * Both products sum in a fixed order that does not depend on which tile or work item a row
 * falls in (over head_dim in order for a score, over keys in order for an output), so a query
 * row's output has the same bits whatever block or chunk it is computed in.
 * Internal to kernels/cpu. */
#ifndef HIRED_K_CPU_ATTENTION_X86_H
#define HIRED_K_CPU_ATTENTION_X86_H

#include <stdbool.h>
#include <stddef.h>

#include "attention.h"

/* Rows per tile and keys per packed panel. */
#define K_ATT_TILE_ROWS 6
#define K_ATT_PANEL 16

/* True when attention runs the tiles below: the CPU has AVX2 and FMA and no AVX-512F (whose
 * CPUs keep the measured oneDNN path), and k_cpu_att_tiles_enable has not turned them off.
 * CPUID is asked once per process. */
bool k_cpu_att_tiles_usable(void);
/* Tests and benchmarks: run the tiles where the CPU can (on) or the GEMM path always (off).
 * False when on is asked of a CPU without them. Not to be called while a kernel runs. */
bool k_cpu_att_tiles_enable(bool on);

/* True when a decode step's attention (one query row) reads the cache where it lies through
 * k_cpu_att_decode_scores and _values below: the CPU has AVX2, FMA and F16C (with or without
 * AVX-512), and k_cpu_att_tiles_enable has not turned the tiles off. */
bool k_cpu_att_decode_usable(void);

/* Floats of a packed key block for n keys of head_dim d. */
static inline size_t k_cpu_att_packed_floats(int n, int d) {
    return (size_t)((n + K_ATT_PANEL - 1) / K_ATT_PANEL) * K_ATT_PANEL * (size_t)d;
}
/* Where one head's keys or values lie: row j at k_attention_row(a, j, ld) + col of base (float32,
 * or F16 when half), or with a == NULL at j·ld + col (dense float32 rows). */
typedef struct {
    const k_attention_args *a;
    const void *base;
    size_t ld, col;
    bool half;
} k_att_src;

/* kt[(p·d + e)·16 + c] = key_{16p + c}[e] for keys 16p + c < n, zero past n: the first n keys of
 * one head (from src, widened to float32 exactly), transposed into panels of 16 keys. */
void k_cpu_att_pack_keys(float *kt, const k_att_src *src, int n, int d);
/* s[r·lds + j] = scale · Σ_e q[r·ldq + e] · key_j[e] for r < mr ≤ 6 and j < 16·n_panels, from
 * packed keys kt; lds ≥ 16·n_panels. */
void k_cpu_att_scores(float *s, size_t lds, const float *q, size_t ldq, int mr, const float *kt, int n_panels, int d,
                      float scale);
/* x[j] = e^(x[j] − max) for j < n, zero for n ≤ j < n_zero; returns Σ x[j] (n ≥ 1). The
 * exponential is kmath.h's k_expf (the same reduction and polynomial), with the steps that
 * only arguments above 0 need left out, since none is. */
float k_cpu_att_exp_row(float *x, int n, int n_zero);
/* vp = the first n value rows (from src, widened to float32 exactly) of one head in column
 * chunks of 16 (the last one 8 wide when d is 8 past a multiple of 16), each chunk's rows one
 * after another: chunk c starts at 16c·n and row j of it at 16c·n + j·width. d a multiple of 8;
 * n·d floats. Reading the rows where they lie would walk one cache line per key at the
 * projection's row stride, which at 4 KiB strides maps every key to the same L1 set. */
void k_cpu_att_pack_values(float *vp, const k_att_src *src, int n, int d);
/* o[r·ldo + e] = inv[r] · Σ_{j < m} s[r·lds + j] · value_j[e] for r < mr ≤ 6 and e < d, from
 * the n values (m ≤ n) packed by k_cpu_att_pack_values with the same n and d. */
void k_cpu_att_values(float *o, size_t ldo, const float *s, size_t lds, int mr, const float *vp, int n, int m, int d,
                      const float *inv);

/* One decode step's attention read from the cache as it lies (a->k, a->v: float32 or F16, dense
 * or paged, rows found by k_attention_row with strides ldk, ldv; kv head hk's columns hk·d ..):
 * no widened copy of the cache. In two calls, each cache row read in long stretches: a head at
 * a time over all keys would touch a new page per key (rows are n_head_kv·d apart) and ran at
 * half the memory's rate on a Zen 3.
 *
 * Scores, for keys [j0, j1) (threads take ranges of keys; each row is read whole):
 *   s[r·n + j] = scale · q_r · key_j, for every q head r (q: the step's query row, head r at
 *   r·d; its kv head r / (n_head / n_head_kv)),
 * 8-lane partial sums over d in order, then a fixed horizontal sum (eight heads' at once, the
 * same additions in the same order).
 * Values, for keys [j0, j1): a block of K_DECODE_KB keys (the last one shorter); threads take
 * blocks, and a block runs in groups of 8 keys whose rows stay in L2 while every head takes its
 * slice, its partial sums in registers. With p the score rows after k_cpu_att_exp_row (row r at
 * r·n):
 *   part[r·d + e] = Σ_{j0 ≤ j < j1} p_rj · value_j[e] for every q head r,
 * each element one FMA chain over the block's keys in order. The caller adds the blocks' parts
 * in block order and scales by 1/Σ (attention.c). The blocks are fixed, not the threads' shares,
 * so a row's bits depend only on its own query and cache, never on other rows or the thread
 * count; with at most K_DECODE_KB keys they are one chain over all keys. d a multiple of 8. */
#define K_DECODE_KB 64
void k_cpu_att_decode_scores(const k_attention_args *a, int j0, int j1, int n, size_t ldk, const float *q, float *s);
void k_cpu_att_decode_values(const k_attention_args *a, int j0, int j1, int n, size_t ldv, const float *p,
                             float *part);

#endif
