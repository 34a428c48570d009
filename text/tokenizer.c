/* tokenizer.c — see tokenizer.h. Owns: the encoder (added-token split, normaliser, Metaspace
 * pre-tokeniser, BPE), the decoder state machine and streaming decode, lookups on a loaded tok_t
 * (tok_id, tok_piece, ...), and the buffer/UTF-8 helpers tokenizer_load.c shares (tokenizer_impl.h).
 *
 * Invariant: tok_t is only read here, so one tokenizer serves any number of threads; all per-call
 * state lives in enc_t (encoding) or tok_stream_t (decoding).
 * The BPE loop is the `tokenizers` one: a min-heap of (rank, position) entries, stale entries
 * recognised by the id their pair would produce. Every allocation goes through mem.h.
 * Not here: reading and validating tokenizer.json, tok_destroy (tokenizer_load.c); the table layout
 * (tokenizer_impl.h); chat templates, the <image> position (template.c). */
#include <limits.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "tokenizer_impl.h"

#define TOK_MAX_TEXT (INT_MAX / 8)

static const char k_fffd[] = "\xEF\xBF\xBD"; /* U+FFFD, what HF emits per byte of a bad run */

// ---- growable buffers ---------------------------------------------------------------------------

bool tok_buf_put(buf_t *b, const void *s, size_t n) {
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

bool tok_ivec_push(ivec_t *v, int32_t x) {
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

size_t tok_utf8_len(const unsigned char *s, size_t n, uint32_t *cp) {
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
        size_t l = tok_utf8_len((const unsigned char *)s + i, n - i, &cp);
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

// ---- lookups ------------------------------------------------------------------------------------

/* 32-bit FNV-1a: enough spread for vocab pieces, no seed needed (the vocab is not attacker-chosen
 * per request; a hostile tokenizer.json can only slow its own load). */
static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The hash slot holding the n bytes at s, or the empty slot where they would go. */
uint32_t *tok_vocab_slot(const tok_t *t, const char *s, size_t n) {
    for (uint32_t h = hash_bytes(s, n) & t->hash_mask;; h = (h + 1) & t->hash_mask) {
        uint32_t v = t->vocab_hash[h];
        if (!v) return &t->vocab_hash[h];
        span_t p = t->piece[v - 1];
        if (p.len == n && !memcmp(tok_str(t, p), s, n)) return &t->vocab_hash[h];
    }
}

/* Model-vocab id of the n bytes at s, or -1. */
int32_t tok_vocab_find(const tok_t *t, const char *s, size_t n) { return (int32_t)*tok_vocab_slot(t, s, n) - 1; }

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

int32_t tok_id(const tok_t *t, const char *piece) {
    size_t n = strlen(piece);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].content.len == n && !memcmp(tok_str(t, t->added[i].content), piece, n)) return t->added[i].id;
    return tok_vocab_find(t, piece, n);
}

const char *tok_piece(const tok_t *t, int32_t id) {
    if (id < 0 || id >= t->n_ids || !(t->flags[id] & ID_VALID)) return NULL;
    return tok_str(t, t->piece[id]);
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
            if (!tok_buf_put(out, s + run, i - run) || !tok_buf_put(out, rep, nr)) return false;
            i += np;
            run = i;
        } else {
            i++;
        }
    }
    return tok_buf_put(out, s + run, n - run);
}

/* Runs the normaliser steps on s[0..n) into *out (replacing its content); tmp is scratch. */
bool tok_normalize(const tok_t *t, const char *s, size_t n, buf_t *out, buf_t *tmp) {
    out->n = 0;
    if (!tok_buf_put(out, s, n)) return false;
    for (int k = 0; k < t->n_norm; k++) {
        const norm_step_t *st = &t->norm[k];
        tmp->n = 0;
        if (st->kind == NORM_PREPEND) {
            if (out->n == 0) continue; /* Prepend leaves an empty string alone */
            if (!tok_buf_put(tmp, tok_str(t, st->a), st->a.len) || !tok_buf_put(tmp, out->p, out->n)) return false;
        } else if (!replace_into(tmp, out->p, out->n, tok_str(t, st->a), st->a.len, tok_str(t, st->b), st->b.len)) {
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
    buf_t norm, tmp, pre, bl;
    size_t *cuts, *cuts2; /* byte-level split offsets */
    size_t cuts_cap, cuts2_cap;
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
                !memcmp(s + i, tok_str(t, a->pattern), a->pattern.len)) {
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
                if (!tok_utf8_len((const unsigned char *)s + k, ns - k, &cp) || !is_ws_cp(cp)) break;
                ns = k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            uint32_t cp;
            size_t l;
            while (stop < n && (l = tok_utf8_len((const unsigned char *)s + stop, n - stop, &cp)) && is_ws_cp(cp))
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
        int32_t id = tok_vocab_find(t, w, n);
        if (id >= 0) return tok_ivec_push(&e->out, id);
    }
    if (!grow((void **)&e->sym, &e->sym_cap, n, sizeof *e->sym)) return false;
    size_t ns = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = utf8_lead_len((unsigned char)w[i]);
        int32_t id = tok_vocab_find(t, w + i, cl);
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
        if (!tok_ivec_push(&e->out, e->sym[i].id)) return false;
    return true;
}

/* ByteLevel on one piece: optional prefix space, optional GPT-2 split, bytes -> characters, BPE. */
static bool bytelevel_piece(const tok_t *t, enc_t *e, const char *s, size_t n) {
    if (!t->bytelevel) return bpe(t, e, s, n);
    e->tmp.n = 0;
    if (t->bl_prefix && (n == 0 || s[0] != ' ') && !tok_buf_put(&e->tmp, " ", 1)) return false;
    if (!tok_buf_put(&e->tmp, s, n)) return false;
    const char *p = e->tmp.p;
    size_t pn = e->tmp.n, nc = 1;
    if (t->bl_regex) {
        if (!grow((void **)&e->cuts2, &e->cuts2_cap, pn + 1, sizeof *e->cuts2)) return false;
        int k = tok_bytelevel_split(t->bl_regex, p, pn, e->cuts2, pn + 1);
        if (k < 0) return false;
        nc = (size_t)k;
    } else {
        if (!grow((void **)&e->cuts2, &e->cuts2_cap, 1, sizeof *e->cuts2)) return false;
        e->cuts2[0] = pn;
    }
    for (size_t c = 0, a = 0; c < nc; a = e->cuts2[c++]) {
        e->bl.n = 0;
        for (size_t i = a; i < e->cuts2[c]; i++) {
            uint32_t cp = t->byte_cp[(unsigned char)p[i]];
            char u[2] = {(char)cp, 0};
            size_t ul = 1;
            if (cp >= 0x80) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), ul = 2;
            if (!tok_buf_put(&e->bl, u, ul)) return false;
        }
        if (!bpe(t, e, e->bl.p, e->bl.n)) return false;
    }
    return true;
}

/* Pre-tokenises one normalised piece and BPEs the words. `first`: the piece starts the input
 * (Metaspace prepend_scheme "first"). */
static bool pretokenize(const tok_t *t, enc_t *e, const char *s, size_t n, bool first) {
    if (t->split) {
        if (!grow((void **)&e->cuts, &e->cuts_cap, n + 1, sizeof *e->cuts)) return false;
        int k = tok_bytelevel_split(t->split, s, n, e->cuts, n + 1);
        if (k < 0) return false;
        for (size_t c = 0, a = 0; c < (size_t)k; a = e->cuts[c++])
            if (!bytelevel_piece(t, e, s + a, e->cuts[c] - a)) return false;
        return true;
    }
    if (t->bytelevel) return n ? bytelevel_piece(t, e, s, n) : true;
    if (!t->meta) return bpe(t, e, s, n);
    const char *rep = tok_str(t, t->meta_repl);
    size_t nr = t->meta_repl.len;
    e->pre.n = 0;
    if (!replace_into(&e->pre, s, n, " ", 1, rep, nr)) return false;
    bool starts = e->pre.n >= nr && !memcmp(e->pre.p, rep, nr);
    if (!starts && (t->meta_scheme == META_ALWAYS || (t->meta_scheme == META_FIRST && first))) {
        e->tmp.n = 0;
        if (!tok_buf_put(&e->tmp, rep, nr) || !tok_buf_put(&e->tmp, e->pre.p, e->pre.n)) return false;
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
    if (!tok_normalize(t, s, n, &e->norm, &e->tmp)) return false;
    if (!find_matches(t, &t->set[1], e->norm.p, e->norm.n, &e->m2)) return false;
    for (size_t k = 0; k < e->m2.n; k++) {
        match_t m = e->m2.p[k];
        if (m.id >= 0) {
            if (!tok_ivec_push(&e->out, m.id)) return false;
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
    for (int i = 0; ok && add_bos && i < t->pp_before; i++) ok = tok_ivec_push(&e.out, t->pp_ids[i]);
    ok = ok && find_matches(t, &t->set[0], text, len, &e.m1);
    for (size_t k = 0; ok && k < e.m1.n; k++) {
        match_t m = e.m1.p[k];
        ok = m.id >= 0 ? tok_ivec_push(&e.out, m.id)
                       : encode_segment(t, &e, text + m.start, m.stop - m.start, m.start == 0);
    }
    for (int i = t->pp_before; ok && add_bos && i < t->n_pp; i++) ok = tok_ivec_push(&e.out, t->pp_ids[i]);
    if (ok && !e.out.p) ok = grow((void **)&e.out.p, &e.out.cap, 1, sizeof *e.out.p);
    if (ok && e.out.n > INT_MAX) ok = false;
    mem_free(e.norm.p);
    mem_free(e.tmp.p);
    mem_free(e.pre.p);
    mem_free(e.bl.p);
    mem_free(e.cuts);
    mem_free(e.cuts2);
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
    while (st->strip_left > 0 && n >= t->strip_char.len && !memcmp(s, tok_str(t, t->strip_char), t->strip_char.len)) {
        s += t->strip_char.len;
        n -= t->strip_char.len;
        st->strip_left--;
    }
    if (n) st->strip_left = 0;
    return tok_buf_put(&st->out, s, n);
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

/* ByteLevel decoding of the held bytes: valid characters as they are, each maximal invalid
 * sequence as one U+FFFD (Rust's from_utf8_lossy); an incomplete tail is kept unless final. */
static bool flush_lossy(tok_stream_t *st, bool final) {
    const unsigned char *p = (const unsigned char *)st->pend.p;
    size_t n = st->pend.n, i = 0;
    bool ok = true;
    while (ok && i < n) {
        bool valid;
        size_t k = tok_utf8_lossy_step(p + i, n - i, &valid);
        if (k == 0) {
            if (!final) break;
            ok = emit(st, k_fffd, 3);
            i = n;
            break;
        }
        ok = valid ? emit(st, (const char *)p + i, k) : emit(st, k_fffd, 3);
        i += k;
    }
    if (i && i < n) memmove(st->pend.p, st->pend.p + i, n - i);
    st->pend.n = n - i;
    return ok;
}

/* ByteLevel: a token's characters mapped back to bytes, or its UTF-8 as is when one of its
 * characters is not in the byte table (added tokens such as "<|eot_id|>" map either way). */
static bool bytelevel_push(tok_stream_t *st, const char *s, size_t n) {
    const tok_t *t = st->tok;
    size_t start = st->pend.n;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tok_utf8_len((const unsigned char *)s + i, n - i, &cp);
        if (!l || cp >= ARRAY_LEN(t->cp_byte) || t->cp_byte[cp] < 0) {
            st->pend.n = start;
            if (!tok_buf_put(&st->pend, s, n)) return false;
            return flush_lossy(st, false);
        }
        unsigned char b = (unsigned char)t->cp_byte[cp];
        if (!tok_buf_put(&st->pend, &b, 1)) return false;
        i += l;
    }
    return flush_lossy(st, false);
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
    const char *s = tok_str(t, t->piece[id]);
    size_t n = t->piece[id].len;
    if (t->dec_bytelevel) return bytelevel_push(st, s, n);
    for (int k = 0; k < t->n_dec; k++) {
        const dec_step_t *d = &t->dec[k];
        buf_t *o = s == st->t1.p ? &st->t2 : &st->t1;
        o->n = 0;
        if (d->kind == DEC_REPLACE) {
            if (!replace_into(o, s, n, tok_str(t, d->a), d->a.len, tok_str(t, d->b), d->b.len)) return false;
        } else if (d->kind == DEC_STRIP) {
            for (int c = 0; c < d->n && n >= d->a.len && !memcmp(s, tok_str(t, d->a), d->a.len); c++)
                s += d->a.len, n -= d->a.len;
            if (!tok_buf_put(o, s, n)) return false;
        } else { /* METASPACE: replacement -> ' ', or dropped in the first token */
            bool drop = st->index == 0 && d->n;
            if (!replace_into(o, s, n, tok_str(t, d->a), d->a.len, " ", drop ? 0 : 1)) return false;
        }
        if (!o->p && !tok_buf_put(o, "", 0)) return false;
        s = o->p;
        n = o->n;
    }
    st->index++;
    unsigned char b;
    if (t->dec_bytes && byte_token(s, n, &b)) return tok_buf_put(&st->pend, &b, 1);
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
    return st->out.p || tok_buf_put(&st->out, "", 0);
}

const char *tok_stream_feed(tok_stream_t *st, int32_t id, size_t *len) {
    if (!out_clear(st) || !stream_push(st, id)) return NULL;
    if (len) *len = st->out.n;
    return st->out.p;
}

const char *tok_stream_finish(tok_stream_t *st, size_t *len) {
    bool ok = out_clear(st) && (!st->pend.n || (st->tok->dec_bytelevel ? flush_lossy(st, true) : flush_bytes(st)));
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
    ok = ok && (!st.pend.n || (t->dec_bytelevel ? flush_lossy(&st, true) : flush_bytes(&st))) &&
         (st.out.p || out_clear(&st));
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
