/* select.h — visual token selection at the encoder: which of the n·576 patch features of one
 * image survive, before anything is shipped (docs/selection.md; docs/architecture.md §6).
 *
 * Strategies:
 *   none       every token (the budget is ignored).
 *   hired      HiRED. LLaVA-NeXT (n > 1): total N = int(n·576·r), base share
 *              B_full = min(int(N·α), 576), sub-image share B_sub = min(N − B_full, (n−1)·576);
 *              the base keeps its top-B_full tokens by selection-layer CLS attention; B_sub is
 *              split over sub-images by the base image's allocation-layer attention (split
 *              variant below); each sub-image keeps its top-b_i by its own selection-layer CLS
 *              attention. LLaVA-1.5 (n == 1): top-min(576, int(576·r)) by selection-layer attention.
 *              r >= 1 keeps every token (the authors' code skips selection there; by the formulas
 *              the reference split would keep fewer).
 *   spatial    uniform raster stride (docs/selection.md §1.7): k_s = int(576·s), gap = 576 / k_s,
 *              indices 0, gap, 2·gap, … < 575 in every partition. Alone (s = r), or added to
 *              hired with opts.spatial = s > 0.
 *   prumerge, prumerge+   PruMerge (docs/selection.md §3), per partition: IQR outliers of the
 *              single-head full-width CLS attention at the last layer, each kept token merged
 *              with its 32 most key-similar others (attention-weighted sum), one extra summary
 *              token; `+` adds the strided spatial supplement. Adaptive: the budget is ignored.
 *
 * HiRED budget split variants:
 *   reference  exactly the authors' code (docs/selection.md §1.6): indicator of the top-int(576·(1−α))
 *              base tokens by allocation-layer attention, counted over n consecutive raster
 *              chunks of the base grid; b_i = min(576, int(float32(count_i/Σcount)·B_sub));
 *              remainders dropped (Σ b_i ≤ B_sub).
 *   paper      the paper's intent: s_i = the base image's allocation-layer attention mass over
 *              the region of the base grid that shows what sub-image i shows (each base patch
 *              counted by the fraction of its area inside that region); b_i apportioned from
 *              B_sub by largest remainder (ties: lower index), capped at 576 with the excess
 *              moved to sub-images with room, so Σ b_i = B_sub exactly.
 *
 * Defined behaviour where the authors' code fails (docs/selection.md §1.6, §3):
 *   reference split with Σcount = 0 (α = 1): B_sub split evenly, int(B_sub / (n−1)) each;
 *   PruMerge with no outlier: the single most-attended token is kept (ratio = 1/576);
 *   (PruMerge+'s stride int(int(1/ratio)/3) is >= 1 whenever there is an outlier: at most a
 *   quarter of the values can lie above Q3 + 1.5·IQR, so the authors' ratio > 1/3 crash cannot
 *   happen; for 1/6 < ratio <= 1/4 the stride is 1 and nearly every token is kept.)
 * Ties in every top-k: higher value first, then lower index.
 *
 * Runs on the host: its inputs are host copies of the vision tower's outputs (the encode pipeline
 * downloads them), and its top-k goes through a host context (k_ctx_host). The kept tokens of
 * none/hired/spatial are not copied here: sel_out_t.src names their rows in the feature map,
 * which the pipeline gathers on the device; PruMerge computes new vectors and returns them.
 * Output order (what the decoder packs): none/hired/spatial — the base partition's tokens in
 * raster order, then the sub-images' tokens in raster order of the stitched (rows·24)×(cols·24)
 * mosaic (row by row across sub-image boundaries); unpadding is left to the decoder. PruMerge —
 * per partition (base first): kept tokens by descending score, the supplement ascending, then
 * the summary token (row = col = −1).
 * Not here: the attention itself (vision.h), packing and newlines (decoder_worker). */
#ifndef HIRED_SELECT_H
#define HIRED_SELECT_H

#include <stdint.h>

#include "backend.h"
#include "visual.h"

#define SEL_MAX_PARTS VISUAL_MAX_PARTS

typedef enum { SEL_NONE = 0, SEL_HIRED, SEL_SPATIAL, SEL_PRUMERGE, SEL_PRUMERGE_PLUS } sel_strategy_t;
typedef enum { SEL_SPLIT_REFERENCE = 0, SEL_SPLIT_PAPER } sel_split_t;

typedef struct {
    sel_strategy_t strategy;
    double budget;     /* r, in (0, 1] */
    double alpha;      /* α in [0, 1]: the base image's share of the total (hired) */
    sel_split_t split; /* hired sub-image budget split */
    double spatial;    /* s in [0, 1]: strided tokens added to hired (0 = off) */
} sel_opts_t;

typedef struct {
    int n;                   /* partitions: 1 (LLaVA-1.5) or 1 + rows·cols (NeXT, base first) */
    int rows, cols;          /* NeXT grid (ignored when n == 1) */
    int orig_h, orig_w;      /* original image size (paper split geometry) */
    int image_size;          /* partition side in pixels, 336 */
    int grid;                /* patches per side, 24 */
    int d;                   /* feature width */
    const float *features;   /* [n, grid², d] feature-layer outputs (prumerge; others ignore it) */
    const float *alloc_attn; /* [n, grid²] head-summed CLS attention at the allocation layer (hired) */
    const float *select_attn;/* [n, grid²] head-summed CLS attention at the selection layer (hired) */
    const float *pm_attn;    /* [n, grid²] single-head full-width CLS attention, last layer (prumerge) */
    const float *pm_keys;    /* [n, grid², d] keys of that layer, CLS row dropped (prumerge) */
} sel_input_t;

typedef visual_pos_t sel_pos_t; /* partition (0 = base) and patch position; row = col = -1: summary token */

typedef struct {
    int k, d;
    sel_pos_t *pos;              /* [k]; owned (sel_out_free) */
    int32_t *src;                /* [k]: the token's row in the [n·grid², d] feature map, or -1 for a
                                  * vector the strategy computed (PruMerge); owned */
    float *features;             /* [k, d] host (PruMerge: merged and summary vectors), or NULL
                                  * when every token is a row of the feature map (src); owned */
    int n;                       /* partitions */
    int per_part[SEL_MAX_PARTS]; /* tokens kept in each partition */
    int budget_total;            /* hired: N; others: what was asked for or kept */
    int budget_base, budget_sub; /* hired: B_full and B_sub */
} sel_out_t;

/* Parses "none", "hired", "spatial", "prumerge", "prumerge+". 0 or HIRED_EINVAL. */
int sel_strategy_parse(const char *s, sel_strategy_t *out);
const char *sel_strategy_name(sel_strategy_t s);
/* Parses "reference" / "paper". */
int sel_split_parse(const char *s, sel_split_t *out);

/* Checks opts and in for the strategy (ranges, required inputs present). 0 or HIRED_EINVAL
 * with err naming the offending value. */
int sel_check(const sel_opts_t *opts, const sel_input_t *in, char *err);

/* Runs the strategy; host is a context for host memory (k_ctx_host). Fills out (caller owns
 * it: sel_out_free). 0 or HIRED_E* with err. */
int sel_run(k_ctx_t *host, const sel_opts_t *opts, const sel_input_t *in, sel_out_t *out, char *err);
void sel_out_free(sel_out_t *out);

// ---- the arithmetic, exposed for tests ---------------------------------------------------------

/* HiRED budgets for n partitions of P tokens (docs/selection.md §1.4): N, B_full, B_sub. */
void sel_hired_budgets(int n, int P, double r, double alpha, int *total, int *base, int *sub);
/* Reference split (docs/selection.md §1.6): b[0..n_sub-1] from the base's allocation-layer
 * attention (host memory; top-k through the host context). 0, or HIRED_ENOMEM with k_ctx_err. */
int sel_split_reference(k_ctx_t *host, const float *base_alloc_attn, int P, int n_sub, double alpha, int b_sub, int *b);
/* Paper split: b[0..rows·cols-1] by attention mass over the matching base-grid regions. */
void sel_split_paper(const float *base_alloc_attn, int grid, int rows, int cols, int orig_h, int orig_w,
                     int image_size, int b_sub, int *b);
/* PruMerge's IQR outlier ratio: #{a_j > Q3 + 1.5·IQR} / n, percentiles by linear interpolation. */
double sel_iqr_outlier_ratio(const float *a, int n);
/* Spatial indices (docs/selection.md §1.7) for budget s over P tokens into idx; returns the count. */
int sel_spatial_indices(int P, double s, int32_t *idx);

#endif
