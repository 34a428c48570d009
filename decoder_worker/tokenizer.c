/* tokenizer.c — see tokenizer.h. Owns: reading tokenizer.json into flat tables, the encoder
 * (added-token split, normaliser, Metaspace pre-tokeniser, BPE), the decoder state machine.
 *
 * Tables: every string lives NUL-terminated in one arena and is named by a span (offset, length),
 * so the arena may grow while loading. piece[id] is the string of each id (added content for added
 * ids, vocab piece otherwise; the two agree where both exist, which tok_load checks). The model
 * vocab is dense (ids 0..n_vocab-1) and indexed by an open-addressing hash table (FNV-1a, linear
 * probing, at most half full); merges are sorted by the (left id, right id) pair for bsearch. A 32k
 * vocab with 60k merges loads in about 50 ms, most of it the JSON parse.
 * The BPE loop is the `tokenizers` one: a min-heap of (rank, position) entries, stale entries
 * recognised by the id their pair would produce. Every allocation goes through mem.h.
 * Not here: chat templates, the <image> position (template.c). */
#include "tokenizer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "log.h"
#include "mem.h"

#define TOK_MAX_JSON_BYTES ((size_t)256 << 20) /* a 256k-piece vocab is ~20 MB of JSON */
#define TOK_MAX_IDS (1 << 24)
#define TOK_MAX_TEXT (INT_MAX / 8)

static const char k_fffd[] = "\xEF\xBF\xBD"; /* U+FFFD, what HF emits per byte of a bad run */

// ---- growable buffers ---------------------------------------------------------------------------

typedef struct {
    char *p;
    size_t n, cap; /* p[n] is always '\0' once anything was put */
} buf_t;

/* Appends n bytes (and keeps a NUL after them). false when out of memory; b is then unchanged. */
static bool buf_put(buf_t *b, const void *s, size_t n) {
    if (n > SIZE_MAX / 2 - b->n) return false;
    size_t need = b->n + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) cap *= 2;
        char *p = mem_realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

typedef struct {
    int32_t *p;
    size_t n, cap;
} ivec_t;

/* Appends one id. false when out of memory; v is then unchanged. */
static bool ivec_push(ivec_t *v, int32_t x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = mem_realloc(v->p, cap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return true;
}

/* Makes room for n more elements of size sz in *p (capacity *cap, in elements). */
static bool grow(void **p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    if (c > SIZE_MAX / sz) return false;
    void *q = mem_realloc(*p, c * sz);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

// ---- UTF-8 --------------------------------------------------------------------------------------

/* Length of the well-formed UTF-8 sequence at s (n bytes available), 0 if ill-formed. Strict like
 * Rust's str::from_utf8: no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Offset of the first ill-formed byte of s, or n when all of it is valid UTF-8. */
static size_t utf8_check(const char *s, size_t n) {
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        size_t l = utf8_len((const unsigned char *)s + i, n - i, &cp);
        if (!l) return i;
        i += l;
    }
    return n;
}

/* Byte length of the (valid) character starting with lead byte c. */
static size_t utf8_lead_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

/* Unicode White_Space (Rust's char::is_whitespace, regex \s). */
static bool is_ws_cp(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ---- the tokenizer --------------------------------------------------------------------------------

typedef struct {
    uint32_t off, len; /* a string in tok->arena (NUL-terminated there) */
} span_t;

enum { NORM_PREPEND, NORM_REPLACE };
enum { DEC_REPLACE, DEC_STRIP, DEC_METASPACE };
enum { META_ALWAYS, META_FIRST, META_NEVER };
enum { ID_VALID = 1, ID_SPECIAL = 2 };

typedef struct {
    int kind;
    span_t a, b; /* PREPEND: a; REPLACE: a -> b */
} norm_step_t;

typedef struct {
    int kind;
    span_t a, b; /* REPLACE a -> b; STRIP char a, up to n leading; METASPACE replacement a */
    int n;       /* STRIP: count; METASPACE: 1 when the first token loses its replacement chars */
} dec_step_t;

typedef struct {
    int32_t id;
    span_t content; /* as written in tokenizer.json */
    span_t pattern; /* what is matched: content, normalised when `normalized` */
    bool special, lstrip, rstrip, normalized;
} added_t;

typedef struct {
    uint64_t key; /* left id << 32 | right id */
    uint32_t rank;
    int32_t id; /* id of the merged piece */
} merge_t;

/* Added tokens of one matching stage (raw text or normalised text), bucketed by first byte. */
typedef struct {
    int *idx; /* [n] indices into tok->added, sorted by first pattern byte */
    int n;
    int first[257]; /* idx[first[b] .. first[b+1]) start with byte b */
} added_set_t;

struct tok {
    buf_t arena;
    int n_ids;            /* ids are 0..n_ids-1 */
    span_t *piece;        /* [n_ids] */
    uint8_t *flags;       /* [n_ids] ID_VALID | ID_SPECIAL */
    int n_vocab;          /* model vocab: ids 0..n_vocab-1 */
    uint32_t *vocab_hash; /* [hash_mask + 1] slots: model id + 1, 0 = empty */
    uint32_t hash_mask;
    merge_t *merges;
    int n_merges;
    int32_t unk_id; /* -1: no unk token */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_id[256]; /* id of "<0xNN>" or -1 */
    added_t *added;
    int n_added;
    added_set_t set[2]; /* [0] normalized=false (raw text), [1] normalized=true */
    norm_step_t *norm;
    int n_norm;
    bool meta; /* Metaspace pre-tokenizer present */
    span_t meta_repl;
    int meta_scheme;
    bool meta_split;
    int32_t *pp_ids; /* post-processor ids: [0, pp_before) before the text, the rest after */
    int n_pp, pp_before;
    dec_step_t *dec; /* per-token decoder steps */
    int n_dec;
    bool dec_bytes, dec_fuse;
    span_t strip_char; /* post-Fuse Strip, when strip_n > 0 */
    int strip_n;
    int32_t bos, eos;
};

static const char *S(const tok_t *t, span_t s) { return t->arena.p + s.off; }

/* 32-bit FNV-1a: enough spread for vocab pieces, no seed needed (the vocab is not attacker-chosen
 * per request; a hostile tokenizer.json can only slow its own load). */
static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The hash slot holding the n bytes at s, or the empty slot where they would go. */
static uint32_t *vocab_slot(const tok_t *t, const char *s, size_t n) {
    for (uint32_t h = hash_bytes(s, n) & t->hash_mask;; h = (h + 1) & t->hash_mask) {
        uint32_t v = t->vocab_hash[h];
        if (!v) return &t->vocab_hash[h];
        span_t p = t->piece[v - 1];
        if (p.len == n && !memcmp(S(t, p), s, n)) return &t->vocab_hash[h];
    }
}

/* Model-vocab id of the n bytes at s, or -1. */
static int32_t vocab_find(const tok_t *t, const char *s, size_t n) { return (int32_t)*vocab_slot(t, s, n) - 1; }

/* The merge of the pair (a, b), or NULL when the pair never merges. */
static const merge_t *merge_find(const tok_t *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    int lo = 0, hi = t->n_merges - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        uint64_t k = t->merges[mid].key;
        if (k == key) return &t->merges[mid];
        if (k > key)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

void tok_destroy(tok_t **p) {
    if (!p || !*p) return;
    tok_t *t = *p;
    mem_free(t->arena.p);
    mem_free(t->piece);
    mem_free(t->flags);
    mem_free(t->vocab_hash);
    mem_free(t->merges);
    mem_free(t->added);
    for (int i = 0; i < 2; i++) mem_free(t->set[i].idx);
    mem_free(t->norm);
    mem_free(t->pp_ids);
    mem_free(t->dec);
    mem_free(t);
    *p = NULL;
}

int32_t tok_id(const tok_t *t, const char *piece) {
    size_t n = strlen(piece);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].content.len == n && !memcmp(S(t, t->added[i].content), piece, n)) return t->added[i].id;
    return vocab_find(t, piece, n);
}

const char *tok_piece(const tok_t *t, int32_t id) {
    if (id < 0 || id >= t->n_ids || !(t->flags[id] & ID_VALID)) return NULL;
    return S(t, t->piece[id]);
}

bool tok_is_special(const tok_t *t, int32_t id) { return id >= 0 && id < t->n_ids && (t->flags[id] & ID_SPECIAL); }

int32_t tok_bos(const tok_t *t) { return t->bos; }
int32_t tok_eos(const tok_t *t) { return t->eos; }
int tok_vocab_size(const tok_t *t) { return t->n_ids; }

// ---- normaliser -----------------------------------------------------------------------------------

/* Appends s[0..n) to out with every occurrence of pat replaced by rep (left to right, no overlap). */
static bool replace_into(buf_t *out, const char *s, size_t n, const char *pat, size_t np, const char *rep, size_t nr) {
    size_t i = 0, run = 0;
    while (i < n) {
        if (n - i >= np && !memcmp(s + i, pat, np)) {
            if (!buf_put(out, s + run, i - run) || !buf_put(out, rep, nr)) return false;
            i += np;
            run = i;
        } else {
            i++;
        }
    }
    return buf_put(out, s + run, n - run);
}

/* Runs the normaliser steps on s[0..n) into *out (replacing its content); tmp is scratch. */
static bool normalize(const tok_t *t, const char *s, size_t n, buf_t *out, buf_t *tmp) {
    out->n = 0;
    if (!buf_put(out, s, n)) return false;
    for (int k = 0; k < t->n_norm; k++) {
        const norm_step_t *st = &t->norm[k];
        tmp->n = 0;
        if (st->kind == NORM_PREPEND) {
            if (out->n == 0) continue; /* Prepend leaves an empty string alone */
            if (!buf_put(tmp, S(t, st->a), st->a.len) || !buf_put(tmp, out->p, out->n)) return false;
        } else if (!replace_into(tmp, out->p, out->n, S(t, st->a), st->a.len, S(t, st->b), st->b.len)) {
            return false;
        }
        buf_t sw = *out;
        *out = *tmp;
        *tmp = sw;
    }
    return true;
}

// ---- encoding -------------------------------------------------------------------------------------
/* The pipeline, as tokenizers' TokenizerImpl::encode runs it for one sequence:
 *   1. split the raw text on the added tokens with normalized=false (find_matches, set[0]);
 *   2. normalise each remaining piece on its own (so text after "<image>" gets its own "▁");
 *   3. split the normalised pieces on the added tokens with normalized=true (set[1]);
 *   4. pre-tokenise (Metaspace: spaces -> "▁", maybe prepend "▁", maybe split into words);
 *   5. BPE each word; 6. wrap in the post-processor ids.
 * Empty pieces are dropped at every stage, as PreTokenizedString::split drops them. */

typedef struct {
    int32_t id; /* -1: text */
    size_t start, stop;
} match_t;

typedef struct {
    match_t *p;
    size_t n, cap;
} mvec_t;

typedef struct {
    int32_t id, prev, next;
    uint32_t len; /* bytes covered; 0 once merged into its left neighbour */
} sym_t;

typedef struct {
    uint32_t rank, pos;
    int32_t id;
} hent_t;

/* Per-call scratch of tok_encode (tok_t itself stays read-only). */
typedef struct {
    buf_t norm, tmp, pre;
    mvec_t m1, m2;
    sym_t *sym;
    size_t sym_cap;
    hent_t *heap;
    size_t heap_n, heap_cap;
    ivec_t out;
} enc_t;

static bool mvec_push(mvec_t *v, int32_t id, size_t start, size_t stop) {
    if (!grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) return false;
    v->p[v->n++] = (match_t){id, start, stop};
    return true;
}

/* Splits s[0..n) on the added tokens of `set` as HF AddedVocabulary::find_matches does:
 * leftmost-longest matches, scanning on from each match's end; lstrip/rstrip widen a match over
 * adjacent whitespace. Pieces are (id, range); text pieces have id -1 and are never empty. */
static bool find_matches(const tok_t *t, const added_set_t *set, const char *s, size_t n, mvec_t *out) {
    out->n = 0;
    size_t start_offset = 0, i = 0;
    while (set->n && i < n) {
        unsigned char b = (unsigned char)s[i];
        int best = -1;
        size_t best_len = 0;
        for (int k = set->first[b]; k < set->first[b + 1]; k++) {
            const added_t *a = &t->added[set->idx[k]];
            if (a->pattern.len > best_len && a->pattern.len <= n - i &&
                !memcmp(s + i, S(t, a->pattern), a->pattern.len)) {
                best = set->idx[k];
                best_len = a->pattern.len;
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        const added_t *a = &t->added[best];
        size_t start = i, stop = i + best_len;
        i = stop;
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) { /* step back over whole whitespace characters */
                size_t k = ns - 1;
                while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
                uint32_t cp;
                if (!utf8_len((const unsigned char *)s + k, ns - k, &cp) || !is_ws_cp(cp)) break;
                ns = k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            uint32_t cp;
            size_t l;
            while (stop < n && (l = utf8_len((const unsigned char *)s + stop, n - stop, &cp)) && is_ws_cp(cp))
                stop += l;
        }
        if (start_offset < start && !mvec_push(out, -1, start_offset, start)) return false;
        if (!mvec_push(out, a->id, start, stop)) return false;
        start_offset = stop;
    }
    if (start_offset < n && !mvec_push(out, -1, start_offset, n)) return false;
    return true;
}

/* Heap order of tokenizers' Merge: lower rank first, then the leftmost position. */
static bool heap_less(const hent_t *a, const hent_t *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static bool heap_push(enc_t *e, hent_t h) {
    if (!grow((void **)&e->heap, &e->heap_cap, e->heap_n + 1, sizeof *e->heap)) return false;
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&h, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = h;
    return true;
}

/* Removes and returns the smallest entry; the heap must not be empty. */
static hent_t heap_pop(enc_t *e) {
    hent_t top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!heap_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

/* Queues the merge of symbol pos with its right neighbour, if the pair has a merge. */
static bool queue_pair(const tok_t *t, enc_t *e, int32_t pos) {
    int32_t next = e->sym[pos].next;
    if (next < 0) return true;
    const merge_t *m = merge_find(t, e->sym[pos].id, e->sym[next].id);
    return !m || heap_push(e, (hent_t){m->rank, (uint32_t)pos, m->id});
}

/* Appends a symbol to the word being built (capacity reserved by the caller: one per byte). */
static void sym_add(enc_t *e, size_t *ns, int32_t id, uint32_t len) {
    size_t i = (*ns)++;
    e->sym[i] = (sym_t){id, (int32_t)i - 1, -1, len};
    if (i) e->sym[i - 1].next = (int32_t)i;
}

/* BPE of one pre-token w[0..n) (valid UTF-8), ids appended to e->out: HF BPE::merge_word +
 * Word::merge_all, including their unk handling (a pending unk is flushed only by the next
 * in-vocab character, so it lands after any byte-fallback bytes in between). */
static bool bpe(const tok_t *t, enc_t *e, const char *w, size_t n) {
    if (!n) return true;
    if (t->ignore_merges) {
        int32_t id = vocab_find(t, w, n);
        if (id >= 0) return ivec_push(&e->out, id);
    }
    if (!grow((void **)&e->sym, &e->sym_cap, n, sizeof *e->sym)) return false;
    size_t ns = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = utf8_lead_len((unsigned char)w[i]);
        int32_t id = vocab_find(t, w + i, cl);
        if (id >= 0) {
            if (unk >= 0) sym_add(e, &ns, unk, unk_len), unk = -1;
            sym_add(e, &ns, id, (uint32_t)cl);
        } else {
            bool bytes = t->byte_fallback;
            for (size_t k = 0; bytes && k < cl; k++) bytes = t->byte_id[(unsigned char)w[i + k]] >= 0;
            if (bytes) {
                for (size_t k = 0; k < cl; k++) sym_add(e, &ns, t->byte_id[(unsigned char)w[i + k]], 1);
            } else if (t->unk_id >= 0) {
                if (unk >= 0 && t->fuse_unk) {
                    unk_len += (uint32_t)cl;
                } else {
                    if (unk >= 0) sym_add(e, &ns, unk, unk_len);
                    unk = t->unk_id;
                    unk_len = (uint32_t)cl;
                }
            }
        }
        i += cl;
    }
    if (unk >= 0) sym_add(e, &ns, unk, unk_len);

    e->heap_n = 0;
    for (size_t i = 0; i + 1 < ns; i++)
        if (!queue_pair(t, e, (int32_t)i)) return false;
    while (e->heap_n) {
        hent_t top = heap_pop(e);
        sym_t *l = &e->sym[top.pos];
        if (l->len == 0 || l->next < 0) continue;
        sym_t *r = &e->sym[l->next];
        const merge_t *m = merge_find(t, l->id, r->id);
        if (!m || m->id != top.id) continue; /* stale entry */
        l->id = top.id;
        l->len += r->len;
        l->next = r->next;
        r->len = 0;
        if (l->next >= 0) e->sym[l->next].prev = (int32_t)top.pos;
        if (l->prev >= 0 && !queue_pair(t, e, l->prev)) return false;
        if (!queue_pair(t, e, (int32_t)top.pos)) return false;
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = e->sym[i].next)
        if (!ivec_push(&e->out, e->sym[i].id)) return false;
    return true;
}

/* Pre-tokenises one normalised piece and BPEs the words. `first`: the piece starts the input
 * (Metaspace prepend_scheme "first"). */
static bool pretokenize(const tok_t *t, enc_t *e, const char *s, size_t n, bool first) {
    if (!t->meta) return bpe(t, e, s, n);
    const char *rep = S(t, t->meta_repl);
    size_t nr = t->meta_repl.len;
    e->pre.n = 0;
    if (!replace_into(&e->pre, s, n, " ", 1, rep, nr)) return false;
    bool starts = e->pre.n >= nr && !memcmp(e->pre.p, rep, nr);
    if (!starts && (t->meta_scheme == META_ALWAYS || (t->meta_scheme == META_FIRST && first))) {
        e->tmp.n = 0;
        if (!buf_put(&e->tmp, rep, nr) || !buf_put(&e->tmp, e->pre.p, e->pre.n)) return false;
        buf_t sw = e->pre;
        e->pre = e->tmp;
        e->tmp = sw;
    }
    if (!t->meta_split) return bpe(t, e, e->pre.p, e->pre.n);
    /* split before every replacement character (MergedWithNext) */
    size_t w = 0;
    for (size_t i = 1; i + nr <= e->pre.n; i++) {
        if (!memcmp(e->pre.p + i, rep, nr)) {
            if (!bpe(t, e, e->pre.p + w, i - w)) return false;
            w = i;
        }
    }
    return bpe(t, e, e->pre.p + w, e->pre.n - w);
}

/* One text segment between raw-matched added tokens: normalise, split on normalised added
 * tokens, pre-tokenise, BPE. */
static bool encode_segment(const tok_t *t, enc_t *e, const char *s, size_t n, bool first) {
    if (!normalize(t, s, n, &e->norm, &e->tmp)) return false;
    if (!find_matches(t, &t->set[1], e->norm.p, e->norm.n, &e->m2)) return false;
    for (size_t k = 0; k < e->m2.n; k++) {
        match_t m = e->m2.p[k];
        if (m.id >= 0) {
            if (!ivec_push(&e->out, m.id)) return false;
        } else if (!pretokenize(t, e, e->norm.p + m.start, m.stop - m.start, first && m.start == 0)) {
            return false;
        }
    }
    return true;
}

int tok_encode_n(const tok_t *t, const char *text, size_t len, bool add_bos, int32_t **ids, int *n, char *err) {
    *ids = NULL;
    *n = 0;
    if (len > TOK_MAX_TEXT) return hired_errf(err, HIRED_ERANGE, "text of %zu bytes is too long to tokenize", len);
    size_t bad = utf8_check(text, len);
    if (bad < len) return hired_errf(err, HIRED_EINVAL, "text is not valid UTF-8 (byte %zu)", bad);

    enc_t e = {0};
    bool ok = true;
    for (int i = 0; ok && add_bos && i < t->pp_before; i++) ok = ivec_push(&e.out, t->pp_ids[i]);
    ok = ok && find_matches(t, &t->set[0], text, len, &e.m1);
    for (size_t k = 0; ok && k < e.m1.n; k++) {
        match_t m = e.m1.p[k];
        ok =
            m.id >= 0 ? ivec_push(&e.out, m.id) : encode_segment(t, &e, text + m.start, m.stop - m.start, m.start == 0);
    }
    for (int i = t->pp_before; ok && add_bos && i < t->n_pp; i++) ok = ivec_push(&e.out, t->pp_ids[i]);
    if (ok && !e.out.p) ok = grow((void **)&e.out.p, &e.out.cap, 1, sizeof *e.out.p);
    if (ok && e.out.n > INT_MAX) ok = false;
    mem_free(e.norm.p);
    mem_free(e.tmp.p);
    mem_free(e.pre.p);
    mem_free(e.m1.p);
    mem_free(e.m2.p);
    mem_free(e.sym);
    mem_free(e.heap);
    if (!ok) {
        mem_free(e.out.p);
        return hired_errf(err, HIRED_ENOMEM, "out of memory tokenizing %zu bytes", len);
    }
    *ids = e.out.p;
    *n = (int)e.out.n;
    return HIRED_OK;
}

int tok_encode(const tok_t *t, const char *text, bool add_bos, int32_t **ids, int *n, char *err) {
    return tok_encode_n(t, text, strlen(text), add_bos, ids, n, err);
}

// ---- decoding -------------------------------------------------------------------------------------
/* tokenizers' decode: ids -> token strings (added content first, unknown ids skipped, special
 * strings skipped when asked), then each decoder step over the whole list. The steps tok_load
 * accepts can all run one token at a time: per-token steps (Replace, Strip, Metaspace) rewrite
 * the token; ByteFallback collects "<0xNN>" tokens and decides at the end of the run (valid UTF-8
 * -> the text, else one U+FFFD per byte); Fuse concatenates; the final Strip removes leading
 * characters of the concatenation. tok_decode is this state machine fed all ids, then flushed. */

struct tok_stream {
    const tok_t *tok;
    bool skip_special;
    long index;     /* tokens that reached the decoder (Metaspace decoder: index 0 is special) */
    buf_t pend;     /* bytes of the current byte-fallback run */
    int strip_left; /* post-Fuse Strip: leading chars still to remove */
    buf_t out;      /* text produced by the current call */
    buf_t t1, t2;   /* scratch for per-token steps */
};

/* Back to the start of a sequence (nothing pending, the leading Strip armed again). */
static void stream_reset(tok_stream_t *st) {
    st->index = 0;
    st->pend.n = 0;
    st->strip_left = st->tok->strip_n;
}

/* Appends decoded text, removing the leading Strip characters of the whole output. */
static bool emit(tok_stream_t *st, const char *s, size_t n) {
    const tok_t *t = st->tok;
    while (st->strip_left > 0 && n >= t->strip_char.len && !memcmp(s, S(t, t->strip_char), t->strip_char.len)) {
        s += t->strip_char.len;
        n -= t->strip_char.len;
        st->strip_left--;
    }
    if (n) st->strip_left = 0;
    return buf_put(&st->out, s, n);
}

/* Ends a byte-fallback run: the bytes if they are valid UTF-8, else U+FFFD per byte (HF). */
static bool flush_bytes(tok_stream_t *st) {
    bool ok = true;
    if (utf8_check(st->pend.p, st->pend.n) == st->pend.n) {
        ok = emit(st, st->pend.p, st->pend.n);
    } else {
        for (size_t i = 0; ok && i < st->pend.n; i++) ok = emit(st, k_fffd, 3);
    }
    st->pend.n = 0;
    return ok;
}

/* HF ByteFallback's test: 6 bytes "<0x" XX ">" with XX parsed by u8::from_str_radix(_, 16). */
static bool byte_token(const char *s, size_t n, unsigned char *out) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return false;
    int v = 0;
    for (int i = s[3] == '+' ? 4 : 3; i < 5; i++) { /* from_str_radix accepts a leading '+' */
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return false;
        v = v * 16 + d;
    }
    *out = (unsigned char)v;
    return true;
}

/* Runs one id through the decoder, appending completed text to st->out. */
static bool stream_push(tok_stream_t *st, int32_t id) {
    const tok_t *t = st->tok;
    if (id < 0 || id >= t->n_ids || !(t->flags[id] & ID_VALID)) return true;
    if (st->skip_special && (t->flags[id] & ID_SPECIAL)) return true;
    const char *s = S(t, t->piece[id]);
    size_t n = t->piece[id].len;
    for (int k = 0; k < t->n_dec; k++) {
        const dec_step_t *d = &t->dec[k];
        buf_t *o = s == st->t1.p ? &st->t2 : &st->t1;
        o->n = 0;
        if (d->kind == DEC_REPLACE) {
            if (!replace_into(o, s, n, S(t, d->a), d->a.len, S(t, d->b), d->b.len)) return false;
        } else if (d->kind == DEC_STRIP) {
            for (int c = 0; c < d->n && n >= d->a.len && !memcmp(s, S(t, d->a), d->a.len); c++)
                s += d->a.len, n -= d->a.len;
            if (!buf_put(o, s, n)) return false;
        } else { /* METASPACE: replacement -> ' ', or dropped in the first token */
            bool drop = st->index == 0 && d->n;
            if (!replace_into(o, s, n, S(t, d->a), d->a.len, " ", drop ? 0 : 1)) return false;
        }
        if (!o->p && !buf_put(o, "", 0)) return false;
        s = o->p;
        n = o->n;
    }
    st->index++;
    unsigned char b;
    if (t->dec_bytes && byte_token(s, n, &b)) return buf_put(&st->pend, &b, 1);
    if (st->pend.n && !flush_bytes(st)) return false;
    return emit(st, s, n);
}

/* A stream needs no allocation until it produces text; tok_decode keeps one on its stack. */
static void stream_init(tok_stream_t *st, const tok_t *t, bool skip_special) {
    memset(st, 0, sizeof *st);
    st->tok = t;
    st->skip_special = skip_special;
    stream_reset(st);
}

static void stream_free(tok_stream_t *st) {
    mem_free(st->pend.p);
    mem_free(st->out.p);
    mem_free(st->t1.p);
    mem_free(st->t2.p);
}

tok_stream_t *tok_stream_new(const tok_t *t, bool skip_special) {
    tok_stream_t *st = mem_alloc(sizeof *st);
    if (st) stream_init(st, t, skip_special);
    return st;
}

void tok_stream_destroy(tok_stream_t **p) {
    if (!p || !*p) return;
    stream_free(*p);
    mem_free(*p);
    *p = NULL;
}

/* Empties st->out (keeping it a valid "" string) before a call produces text. */
static bool out_clear(tok_stream_t *st) {
    st->out.n = 0;
    if (st->out.p) st->out.p[0] = '\0';
    return st->out.p || buf_put(&st->out, "", 0);
}

const char *tok_stream_feed(tok_stream_t *st, int32_t id, size_t *len) {
    if (!out_clear(st) || !stream_push(st, id)) return NULL;
    if (len) *len = st->out.n;
    return st->out.p;
}

const char *tok_stream_finish(tok_stream_t *st, size_t *len) {
    bool ok = out_clear(st) && (!st->pend.n || flush_bytes(st));
    stream_reset(st);
    if (!ok) return NULL;
    if (len) *len = st->out.n;
    return st->out.p;
}

char *tok_decode_n(const tok_t *t, const int32_t *ids, int n, bool skip_special, size_t *len) {
    tok_stream_t st;
    stream_init(&st, t, skip_special);
    bool ok = true;
    for (int i = 0; ok && i < n; i++) ok = stream_push(&st, ids[i]);
    ok = ok && (!st.pend.n || flush_bytes(&st)) && (st.out.p || out_clear(&st));
    char *res = ok ? st.out.p : NULL;
    if (ok) {
        if (len) *len = st.out.n;
        st.out.p = NULL;
    }
    stream_free(&st);
    return res;
}

char *tok_decode(const tok_t *t, const int32_t *ids, int n, bool skip_special) {
    return tok_decode_n(t, ids, n, skip_special, NULL);
}

// ---- loading ----------------------------------------------------------------------------------------
/* Order matters: the vocab first (everything else looks pieces up), then merges and the model
 * options, the normaliser (added tokens with normalized=true are matched in normalised form), the
 * added tokens, and the rest. Each parser fills err naming the file and the field; anything
 * tokenizers would do that is not implemented here is refused (HIRED_EUNSUPPORTED), never
 * approximated. */

/* Loader context: `path` names the file in messages. */
typedef struct {
    tok_t *t;
    const char *path;
    char *err;
    buf_t tmp, tmp2;
} load_t;

static int oom(load_t *L) {
    return hired_errf(L->err, HIRED_ENOMEM, "%s: out of memory loading the tokenizer", L->path);
}

/* Copies n bytes of s into the arena (NUL-terminated there). */
static bool arena_add(tok_t *t, const char *s, size_t n, span_t *out) {
    if (t->arena.n > UINT32_MAX - n - 1 || n > UINT32_MAX) return false;
    out->off = (uint32_t)t->arena.n;
    out->len = (uint32_t)n;
    return buf_put(&t->arena, s, n) && buf_put(&t->arena, "", 1);
}

/* A string member (required); *out borrowed from the JSON. */
static int get_str(load_t *L, const cJSON *obj, const char *key, const char *where, const char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(it) || !it->valuestring)
        return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.%s must be a string", L->path, where, key);
    *out = it->valuestring;
    return HIRED_OK;
}

/* A member holding exactly one character (Strip content, Metaspace replacement). */
static int get_char(load_t *L, const cJSON *obj, const char *key, const char *where, span_t *out) {
    const char *s;
    int rc = get_str(L, obj, key, where, &s);
    if (rc) return rc;
    uint32_t cp;
    size_t n = strlen(s);
    if (!n || utf8_len((const unsigned char *)s, n, &cp) != n)
        return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.%s must be a single character", L->path, where, key);
    return arena_add(L->t, s, n, out) ? HIRED_OK : oom(L);
}

static int get_bool(load_t *L, const cJSON *obj, const char *key, const char *where, bool def, bool *out) {
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s.", where);
    json_where_t w = {L->path, prefix, L->err};
    return json_opt_bool(&w, obj, key, def, out);
}

/* Replace's {"String": s} pattern (Regex patterns are refused). */
static int get_pattern(load_t *L, const cJSON *obj, const char *where, span_t *out) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "String");
    if (cJSON_GetObjectItemCaseSensitive(p, "Regex"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: %s: Replace with a Regex pattern is not supported", L->path,
                          where);
    if (!cJSON_IsString(s) || !s->valuestring || !s->valuestring[0])
        return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.pattern must be {\"String\": non-empty string}", L->path,
                          where);
    return arena_add(L->t, s->valuestring, strlen(s->valuestring), out) ? HIRED_OK : oom(L);
}

/* obj["type"] as a string, "" when absent or not a string (messages then show an empty type). */
static const char *type_of(const cJSON *obj) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(ty) && ty->valuestring ? ty->valuestring : "";
}

/* Metaspace fields shared by the pre-tokenizer and the decoder, with tokenizers' defaults and its
 * legacy form: prepend_scheme defaults to "always", add_prefix_space=false means "never" (and
 * contradicts any other explicit scheme), split defaults to true. */
static int parse_metaspace(load_t *L, const cJSON *obj, const char *where, span_t *repl, int *scheme, bool *split) {
    int rc = get_char(L, obj, "replacement", where, repl);
    if (rc) return rc;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(obj, "prepend_scheme");
    *scheme = META_ALWAYS;
    if (ps) {
        const char *v = cJSON_IsString(ps) ? ps->valuestring : NULL;
        if (v && !strcmp(v, "always"))
            *scheme = META_ALWAYS;
        else if (v && !strcmp(v, "first"))
            *scheme = META_FIRST;
        else if (v && !strcmp(v, "never"))
            *scheme = META_NEVER;
        else
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.prepend_scheme must be always, first or never", L->path,
                              where);
    }
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(obj, "add_prefix_space");
    if (cJSON_IsFalse(aps)) {
        if (*scheme != META_NEVER && ps)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s: add_prefix_space false contradicts prepend_scheme",
                              L->path, where);
        *scheme = META_NEVER;
    }
    return get_bool(L, obj, "split", where, true, split);
}

// The normalizer: null, Prepend, Replace, or a (nested) Sequence of them.
static int parse_normalizer(load_t *L, const cJSON *n, int depth) {
    tok_t *t = L->t;
    if (!n || cJSON_IsNull(n)) return HIRED_OK;
    const char *ty = type_of(n);
    if (!strcmp(ty, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
        if (!cJSON_IsArray(list))
            return hired_errf(L->err, HIRED_EFORMAT, "%s: normalizer.normalizers must be an array", L->path);
        cJSON_ArrayForEach(it, list) {
            int rc = parse_normalizer(L, it, depth + 1);
            if (rc) return rc;
        }
        return HIRED_OK;
    }
    norm_step_t st = {0};
    int rc;
    if (!strcmp(ty, "Prepend")) {
        const char *s;
        st.kind = NORM_PREPEND;
        if ((rc = get_str(L, n, "prepend", "normalizer", &s))) return rc;
        if (!arena_add(t, s, strlen(s), &st.a)) return oom(L);
    } else if (!strcmp(ty, "Replace")) {
        const char *s;
        st.kind = NORM_REPLACE;
        if ((rc = get_pattern(L, n, "normalizer", &st.a)) || (rc = get_str(L, n, "content", "normalizer", &s)))
            return rc;
        if (!arena_add(t, s, strlen(s), &st.b)) return oom(L);
    } else {
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: normalizer type \"%s\" is not supported (only Prepend, Replace, Sequence)", L->path, ty);
    }
    norm_step_t *p = mem_realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *p);
    if (!p) return oom(L);
    t->norm = p;
    t->norm[t->n_norm++] = st;
    return HIRED_OK;
}

static int parse_pre_tokenizer(load_t *L, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return HIRED_OK;
    const char *ty = type_of(p);
    if (!strcmp(ty, "Sequence")) { /* accepted when it wraps a single Metaspace */
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (cJSON_GetArraySize(list) == 1) return parse_pre_tokenizer(L, cJSON_GetArrayItem(list, 0));
    }
    if (strcmp(ty, "Metaspace"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported (only Metaspace)",
                          L->path, ty);
    L->t->meta = true;
    return parse_metaspace(L, p, "pre_tokenizer", &L->t->meta_repl, &L->t->meta_scheme, &L->t->meta_split);
}

/* TemplateProcessing's "single": special tokens around exactly one $A. */
static int parse_post_processor(load_t *L, const cJSON *p) {
    tok_t *t = L->t;
    if (!p || cJSON_IsNull(p)) return HIRED_OK;
    if (strcmp(type_of(p), "TemplateProcessing"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: post_processor type \"%s\" is not supported (only TemplateProcessing)", L->path,
                          type_of(p));
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens"), *it;
    if (!cJSON_IsArray(single))
        return hired_errf(L->err, HIRED_EFORMAT, "%s: post_processor.single must be an array", L->path);
    int seen_a = 0;
    ivec_t ids = {0};
    int rc = HIRED_OK;
    cJSON_ArrayForEach(it, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(seq ? seq : sp, "id");
        if (!cJSON_IsString(sid) || !sid->valuestring) {
            rc = hired_errf(L->err, HIRED_EFORMAT,
                            "%s: post_processor.single items must be Sequence or SpecialToken with an id", L->path);
            break;
        }
        if (seq) {
            if (strcmp(sid->valuestring, "A") || seen_a++) {
                rc = hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: post_processor.single must hold $A exactly once",
                                L->path);
                break;
            }
            t->pp_before = (int)ids.n;
            continue;
        }
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(specials, sid->valuestring), "ids"),
                    *x;
        if (!cJSON_IsArray(list)) {
            rc = hired_errf(L->err, HIRED_EFORMAT, "%s: post_processor.special_tokens has no ids for \"%s\"", L->path,
                            sid->valuestring);
            break;
        }
        cJSON_ArrayForEach(x, list) {
            if (!json_is_int_in(x, 0, t->n_ids - 1)) {
                rc = hired_errf(L->err, HIRED_ERANGE, "%s: post_processor: id of \"%s\" is not a token id", L->path,
                                sid->valuestring);
                break;
            }
            if (!ivec_push(&ids, (int32_t)x->valuedouble)) {
                rc = oom(L);
                break;
            }
        }
        if (rc) break;
    }
    if (!rc && !seen_a) rc = hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: post_processor.single has no $A", L->path);
    t->pp_ids = ids.p;
    t->n_pp = (int)ids.n;
    return rc;
}

/* Appends a per-token decoder step. false when out of memory. */
static bool add_dec(tok_t *t, dec_step_t d) {
    dec_step_t *p = mem_realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *p);
    if (!p) return false;
    t->dec = p;
    t->dec[t->n_dec++] = d;
    return true;
}

/* Decoder: per-token steps, then ByteFallback, then Fuse and one Strip (see tokenizer.h). */
static int parse_decoder(load_t *L, const cJSON *d) {
    tok_t *t = L->t;
    if (!d || cJSON_IsNull(d))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: a tokenizer without a decoder is not supported", L->path);
    const cJSON *list = d, *it;
    bool seq = !strcmp(type_of(d), "Sequence");
    if (seq) list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
    if (seq && !cJSON_IsArray(list))
        return hired_errf(L->err, HIRED_EFORMAT, "%s: decoder.decoders must be an array", L->path);
    int phase = 0; /* 0 per-token, 1 after ByteFallback, 2 after Fuse, 3 after the final Strip */
    for (it = seq ? list->child : d; it; it = seq ? it->next : NULL) {
        const char *ty = type_of(it);
        dec_step_t st = {0};
        int rc = HIRED_OK;
        if (!strcmp(ty, "ByteFallback") && phase == 0) {
            t->dec_bytes = true;
            phase = 1;
        } else if (!strcmp(ty, "Fuse") && phase <= 1) {
            t->dec_fuse = true;
            phase = 2;
        } else if (!strcmp(ty, "Strip") && phase != 1 && phase != 3) {
            int64_t start, stop;
            json_where_t w = {L->path, "decoder.Strip.", L->err};
            if ((rc = get_char(L, it, "content", "decoder.Strip", &st.a)) ||
                (rc = json_opt_int(&w, it, "start", 0, 1 << 20, 0, &start)) ||
                (rc = json_opt_int(&w, it, "stop", 0, 1 << 20, 0, &stop)))
                return rc;
            if (stop)
                return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: decoder Strip with stop > 0 is not supported",
                                  L->path);
            if (phase == 2) {
                t->strip_char = st.a;
                t->strip_n = (int)start;
                phase = 3;
            } else {
                st.kind = DEC_STRIP;
                st.n = (int)start;
                if (!add_dec(t, st)) return oom(L);
            }
        } else if (!strcmp(ty, "Replace") && phase == 0) {
            const char *s;
            st.kind = DEC_REPLACE;
            if ((rc = get_pattern(L, it, "decoder.Replace", &st.a)) ||
                (rc = get_str(L, it, "content", "decoder.Replace", &s)))
                return rc;
            if (!arena_add(t, s, strlen(s), &st.b) || !add_dec(t, st)) return oom(L);
        } else if (!strcmp(ty, "Metaspace") && phase == 0) {
            int scheme;
            bool split;
            st.kind = DEC_METASPACE;
            if ((rc = parse_metaspace(L, it, "decoder.Metaspace", &st.a, &scheme, &split))) return rc;
            st.n = scheme != META_NEVER;
            if (!add_dec(t, st)) return oom(L);
        } else {
            return hired_errf(
                L->err, HIRED_EUNSUPPORTED,
                "%s: decoder step \"%s\" is not supported here (supported: Replace/Strip/Metaspace per token, "
                "then ByteFallback, then Fuse and one Strip)",
                L->path, ty);
        }
    }
    return HIRED_OK;
}

static int cmp_merge(const void *a, const void *b) {
    const merge_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* model.vocab {piece: id}: ids must cover 0..n-1 exactly once and pieces must be distinct (cJSON
 * keeps duplicate keys, so both are checked). Fills piece[], flags[] and the hash table. */
static int parse_vocab(load_t *L, const cJSON *vocab) {
    tok_t *t = L->t;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!json_is_int_in(it, 0, t->n_vocab - 1))
            return hired_errf(L->err, HIRED_EFORMAT,
                              "%s: model.vocab[\"%s\"] must be an id in [0, %d] (vocab ids must be dense)", L->path,
                              it->string, t->n_vocab - 1);
        int id = (int)it->valuedouble;
        if (t->flags[id] & ID_VALID)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.vocab: id %d is used twice", L->path, id);
        if (!arena_add(t, it->string, strlen(it->string), &t->piece[id])) return oom(L);
        t->flags[id] = ID_VALID;
    }
    uint32_t cap = 64;
    while (cap < 2u * (uint32_t)t->n_vocab) cap *= 2;
    t->vocab_hash = mem_calloc(cap, sizeof *t->vocab_hash);
    if (!t->vocab_hash) return oom(L);
    t->hash_mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        uint32_t *slot = vocab_slot(t, S(t, t->piece[id]), t->piece[id].len);
        if (*slot)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.vocab: piece \"%s\" appears twice", L->path,
                              S(t, t->piece[id]));
        *slot = (uint32_t)id + 1;
    }
    return HIRED_OK;
}

/* model.merges in priority order: "a b" (split on its only space, as tokenizers does) or [a, b].
 * a, b and a+b must all be vocab pieces (tokenizers' MergeTokenOutOfVocabulary). */
static int parse_merges(load_t *L, const cJSON *merges) {
    tok_t *t = L->t;
    int n = cJSON_GetArraySize(merges), i = 0;
    t->merges = mem_alloc((size_t)(n ? n : 1) * sizeof *t->merges);
    if (!t->merges) return oom(L);
    const cJSON *it;
    cJSON_ArrayForEach(it, merges) {
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (cJSON_IsString(it) && it->valuestring) { /* "a b": exactly one space */
            const char *sp = strchr(it->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ')) a = it->valuestring, na = (size_t)(sp - a), b = sp + 1, nb = strlen(b);
        } else if (cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
            a = it->child->valuestring, b = it->child->next->valuestring, na = strlen(a), nb = strlen(b);
        }
        if (!a || !b)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.merges[%d] must be \"a b\" or [a, b]", L->path, i);
        int32_t ia = vocab_find(t, a, na), ib = vocab_find(t, b, nb);
        L->tmp.n = 0;
        if (!buf_put(&L->tmp, a, na) || !buf_put(&L->tmp, b, nb)) return oom(L);
        int32_t im = vocab_find(t, L->tmp.p, L->tmp.n);
        if (ia < 0 || ib < 0 || im < 0) {
            const char *bad = ia < 0 ? a : ib < 0 ? b : L->tmp.p;
            int nbad = (int)(ia < 0 ? na : ib < 0 ? nb : L->tmp.n);
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.merges[%d]: \"%.*s\" is not in the vocab", L->path, i,
                              nbad, bad);
        }
        t->merges[i] = (merge_t){(uint64_t)(uint32_t)ia << 32 | (uint32_t)ib, (uint32_t)i, im};
        i++;
    }
    /* a pair listed twice keeps its last rank, as the HashMap `tokenizers` builds does */
    qsort(t->merges, (size_t)n, sizeof *t->merges, cmp_merge);
    int m = 0;
    for (int k = 0; k < n; k++) {
        if (m && t->merges[m - 1].key == t->merges[k].key) m--;
        t->merges[m++] = t->merges[k];
    }
    t->n_merges = m;
    return HIRED_OK;
}

/* The BPE model and its options. unk_token must name a vocab piece (tokenizers would only fail when
 * the first unknown character is met). */
static int parse_model(load_t *L, const cJSON *model) {
    tok_t *t = L->t;
    int rc;
    if (!cJSON_IsObject(model)) return hired_errf(L->err, HIRED_EFORMAT, "%s: no \"model\" object", L->path);
    if (strcmp(type_of(model), "BPE"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: model.type \"%s\" is not supported (only BPE)", L->path,
                          type_of(model));
    if ((rc = parse_vocab(L, cJSON_GetObjectItemCaseSensitive(model, "vocab")))) return rc;
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges)) return hired_errf(L->err, HIRED_EFORMAT, "%s: model.merges must be an array", L->path);
    if ((rc = parse_merges(L, merges))) return rc;

    if ((rc = get_bool(L, model, "byte_fallback", "model", false, &t->byte_fallback)) ||
        (rc = get_bool(L, model, "fuse_unk", "model", false, &t->fuse_unk)) ||
        (rc = get_bool(L, model, "ignore_merges", "model", false, &t->ignore_merges)))
        return rc;
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0.0))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: model.dropout is not supported", L->path);
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t k = 0; k < ARRAY_LEN(affix); k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(model, affix[k]);
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && a->valuestring && !a->valuestring[0]))
            return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: model.%s is not supported", L->path, affix[k]);
    }
    t->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk) && unk->valuestring) {
        t->unk_id = vocab_find(t, unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.unk_token \"%s\" is not in the vocab", L->path,
                              unk->valuestring);
    } else if (unk && !cJSON_IsNull(unk)) {
        return hired_errf(L->err, HIRED_EFORMAT, "%s: model.unk_token must be a string or null", L->path);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = vocab_find(t, name, 6);
    }
    return HIRED_OK;
}

static int cmp_first_byte(const void *a, const void *b, void *ctx) {
    const tok_t *t = ctx;
    unsigned char x = (unsigned char)S(t, t->added[*(const int *)a].pattern)[0];
    unsigned char y = (unsigned char)S(t, t->added[*(const int *)b].pattern)[0];
    return (x > y) - (x < y);
}

/* added_tokens: flags, match patterns, the two first-byte-bucketed matching sets. tokenizers
 * re-derives the ids (a content already in the vocab keeps its vocab id; new contents get the next
 * id past the vocab, in file order) and only warns when the file disagrees; we refuse instead, so
 * the ids the model was trained with are never silently changed. */
static int parse_added(load_t *L, const cJSON *list) {
    tok_t *t = L->t;
    int n = cJSON_GetArraySize(list), i = 0;
    const cJSON *it;
    t->added = mem_calloc((size_t)(n ? n : 1), sizeof *t->added);
    if (!t->added) return oom(L);
    int32_t next_id = t->n_vocab;
    cJSON_ArrayForEach(it, list) {
        added_t *a = &t->added[i];
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%d]", i);
        const char *content;
        bool single_word;
        int rc;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!json_is_int_in(id, 0, t->n_ids - 1))
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.id must be a token id", L->path, where);
        if ((rc = get_str(L, it, "content", where, &content)) ||
            (rc = get_bool(L, it, "special", where, false, &a->special)) ||
            (rc = get_bool(L, it, "lstrip", where, false, &a->lstrip)) ||
            (rc = get_bool(L, it, "rstrip", where, false, &a->rstrip)) ||
            (rc = get_bool(L, it, "normalized", where, !a->special, &a->normalized)) ||
            (rc = get_bool(L, it, "single_word", where, false, &single_word)))
            return rc;
        size_t len = strlen(content);
        if (!len) return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.content is empty", L->path, where);
        if (single_word)
            return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: %s (\"%s\"): single_word is not supported", L->path,
                              where, content);
        for (int k = 0; k < i; k++)
            if (t->added[k].content.len == len && !memcmp(S(t, t->added[k].content), content, len))
                return hired_errf(L->err, HIRED_EFORMAT, "%s: added token \"%s\" is listed twice", L->path, content);
        /* the id `tokenizers` assigns: the vocab id, else the next free id past the vocab */
        int32_t expect = vocab_find(t, content, len);
        if (expect < 0) expect = next_id++;
        a->id = (int32_t)id->valuedouble;
        if (a->id != expect)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s \"%s\" has id %d but tokenizers would give it id %d",
                              L->path, where, content, a->id, expect);
        if (!arena_add(t, content, len, &a->content)) return oom(L);
        a->pattern = a->content;
        if (a->normalized && t->n_norm) {
            if (!normalize(t, content, len, &L->tmp, &L->tmp2) || !arena_add(t, L->tmp.p, L->tmp.n, &a->pattern))
                return oom(L);
        }
        t->piece[a->id] = a->content;
        t->flags[a->id] = (uint8_t)(ID_VALID | (a->special ? ID_SPECIAL : 0));
        i++;
    }
    t->n_added = n;
    for (int s = 0; s < 2; s++) { /* bucket each matching stage by first byte */
        added_set_t *set = &t->set[s];
        set->idx = mem_alloc((size_t)(n ? n : 1) * sizeof *set->idx);
        if (!set->idx) return oom(L);
        for (int k = 0; k < n; k++)
            if (t->added[k].normalized == (s == 1) && t->added[k].pattern.len) set->idx[set->n++] = k;
        qsort_r(set->idx, (size_t)set->n, sizeof *set->idx, cmp_first_byte, t);
        for (int b = 0, k = 0; b <= 256; b++) {
            while (k < set->n && (unsigned char)S(t, t->added[set->idx[k]].pattern)[0] < b) k++;
            set->first[b] = k;
        }
    }
    return HIRED_OK;
}

/* Sizes the id space (vocab plus added ids), then runs the parsers in dependency order. */
static int load(load_t *L, const cJSON *root) {
    tok_t *t = L->t;
    int rc;
    if (!cJSON_IsObject(root)) return hired_errf(L->err, HIRED_EFORMAT, "%s: the top level must be an object", L->path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), *it;
    if (!cJSON_IsArray(added)) added = NULL;
    if (!cJSON_IsObject(vocab) || !vocab->child)
        return hired_errf(L->err, HIRED_EFORMAT, "%s: model.vocab must be a non-empty object", L->path);
    if (!added && json_has(root, "added_tokens") && !json_is_null(root, "added_tokens"))
        return hired_errf(L->err, HIRED_EFORMAT, "%s: added_tokens must be an array", L->path);
    int nv = cJSON_GetArraySize(vocab);
    if (nv > TOK_MAX_IDS)
        return hired_errf(L->err, HIRED_ERANGE, "%s: %d vocab entries, more than %d", L->path, nv, TOK_MAX_IDS);
    t->n_vocab = t->n_ids = nv;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (json_is_int_in(id, 0, TOK_MAX_IDS - 1) && (int)id->valuedouble >= t->n_ids)
            t->n_ids = (int)id->valuedouble + 1;
    }
    t->piece = mem_calloc((size_t)t->n_ids, sizeof *t->piece);
    t->flags = mem_calloc((size_t)t->n_ids, sizeof *t->flags);
    if (!t->piece || !t->flags) return oom(L);
    if ((rc = parse_model(L, model)) ||
        (rc = parse_normalizer(L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), 0)) ||
        (rc = parse_added(L, added)) ||
        (rc = parse_pre_tokenizer(L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"))) ||
        (rc = parse_post_processor(L, cJSON_GetObjectItemCaseSensitive(root, "post_processor"))) ||
        (rc = parse_decoder(L, cJSON_GetObjectItemCaseSensitive(root, "decoder"))))
        return rc;
    t->bos = t->pp_before > 0 ? t->pp_ids[0] : tok_id(t, "<s>");
    t->eos = tok_id(t, "</s>");
    return HIRED_OK;
}

tok_t *tok_load_file(const char *path, char *err) {
    cJSON *root = NULL;
    if (json_read_file(path, TOK_MAX_JSON_BYTES, &root, err)) return NULL;
    load_t L = {mem_calloc(1, sizeof(tok_t)), path, err, {0}, {0}};
    int rc = L.t ? load(&L, root) : oom(&L);
    cJSON_Delete(root);
    mem_free(L.tmp.p);
    mem_free(L.tmp2.p);
    if (rc) {
        tok_destroy(&L.t);
        return NULL;
    }
    log_debug("%s: %d ids (%d vocab, %d merges, %d added), byte_fallback %d", path, L.t->n_ids, L.t->n_vocab,
              L.t->n_merges, L.t->n_added, L.t->byte_fallback);
    return L.t;
}

tok_t *tok_load(const char *model_dir, char *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", model_dir) >= sizeof path) {
        hired_errf(err, HIRED_ERANGE, "model directory path too long: %s", model_dir);
        return NULL;
    }
    return tok_load_file(path, err);
}
