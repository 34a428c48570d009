/* tokenizer_impl.h — private to tokenizer.c and tokenizer_load.c: the layout of a loaded tok_t and
 * the few helpers both files use. Not installed, not included by anything else.
 *
 * Tables: every string lives NUL-terminated in one arena and is named by a span (offset, length),
 * so the arena may grow while loading. piece[id] is the string of each id (added content for added
 * ids, vocab piece otherwise; the two agree where both exist, which tok_load checks). The model
 * vocab is dense (ids 0..n_vocab-1) and indexed by an open-addressing hash table (FNV-1a, linear
 * probing, at most half full); merges are sorted by the (left id, right id) pair for bsearch.
 * Invariant: tokenizer_load.c is the only writer; once tok_load returns, the struct is read-only.
 * Not here: any parsing (tokenizer_load.c), the encoder and decoder (tokenizer.c). */
#ifndef HIRED_TOKENIZER_IMPL_H
#define HIRED_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

// ---- growable buffers (tokenizer.c) -------------------------------------------------------------

typedef struct {
    char *p;
    size_t n, cap; /* p[n] is always '\0' once anything was put */
} buf_t;

/* Appends n bytes (and keeps a NUL after them). false when out of memory; b is then unchanged. */
bool tok_buf_put(buf_t *b, const void *s, size_t n);

typedef struct {
    int32_t *p;
    size_t n, cap;
} ivec_t;

/* Appends one id. false when out of memory; v is then unchanged. */
bool tok_ivec_push(ivec_t *v, int32_t x);

/* Length of the well-formed UTF-8 sequence at s (n bytes available), 0 if ill-formed. Strict like
 * Rust's str::from_utf8: no overlongs, no surrogates, nothing above U+10FFFF. */
size_t tok_utf8_len(const unsigned char *s, size_t n, uint32_t *cp);

// ---- the tokenizer ----------------------------------------------------------------------------

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
    /* byte-level (GPT-2 / Llama-3) tokenizers */
    int split;          /* TOK_SPLIT_*: the Split pre-tokenizer's regex */
    bool bytelevel;     /* ByteLevel pre-tokenizer: bytes -> characters before BPE */
    bool bl_prefix;     /* its add_prefix_space */
    int bl_regex;       /* its use_regex: TOK_SPLIT_GPT2, else TOK_SPLIT_NONE */
    bool dec_bytelevel; /* ByteLevel decoder: characters -> bytes, then lossy UTF-8 */
    uint32_t byte_cp[256];  /* byte -> character */
    int16_t cp_byte[324];   /* character (< 324) -> byte, or -1 */
};

/* The NUL-terminated string span s names in t->arena. */
static inline const char *tok_str(const tok_t *t, span_t s) { return t->arena.p + s.off; }

// ---- byte level (tokenizer_bytelevel.c) ----------------------------------------------------------

enum { TOK_SPLIT_NONE = 0, TOK_SPLIT_LLAMA3, TOK_SPLIT_GPT2 };

/* GPT-2's bytes_to_unicode table. */
void tok_bytelevel_table(uint32_t byte_to_cp[256]);
/* Splits valid UTF-8 s[0..n) with regex `kind` (TOK_SPLIT_LLAMA3 / GPT2): writes the end offset
 * of every piece to cuts (in order; the last is n). Returns the count, or -1 when more than
 * max_cuts pieces. */
int tok_bytelevel_split(int kind, const char *s, size_t n, size_t *cuts, size_t max_cuts);
/* Rust's from_utf8_lossy, one step at s (n > 0 bytes): *valid and the length of a valid
 * character, or !*valid and the length of the maximal invalid prefix (one U+FFFD); 0 when the
 * bytes are a valid but incomplete prefix (more input could complete it). */
size_t tok_utf8_lossy_step(const unsigned char *s, size_t n, bool *valid);

// ---- vocab lookup and normaliser (tokenizer.c) ---------------------------------------------------

/* The hash slot holding the n bytes at s, or the empty slot where they would go. */
uint32_t *tok_vocab_slot(const tok_t *t, const char *s, size_t n);

/* Model-vocab id of the n bytes at s, or -1. */
int32_t tok_vocab_find(const tok_t *t, const char *s, size_t n);

/* Runs the normaliser steps on s[0..n) into *out (replacing its content); tmp is scratch. */
bool tok_normalize(const tok_t *t, const char *s, size_t n, buf_t *out, buf_t *tmp);

#endif
