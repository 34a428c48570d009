/* jinja_impl.h — private to jinja_parse.c and jinja_eval.c: the arena, the value layout and the
 * syntax tree. Not included by anything else.
 *
 * Invariants: every node and value lives in an arena (a list of blocks freed at once); strings
 * are (pointer, length) pairs into arena memory, NUL-terminated there; the tree is written by
 * jinja_parse only and read-only afterwards. */
#ifndef HIRED_JINJA_IMPL_H
#define HIRED_JINJA_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jinja.h"

#define JJ_MAX_DEPTH 64

// ---- arena --------------------------------------------------------------------------------------

typedef struct jblock {
    struct jblock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} jblock_t;

struct jarena {
    jblock_t *head;
    size_t total, limit; /* bytes handed out; limit 0 = none */
};

/* n zeroed bytes, 16-aligned; NULL when out of memory or over the limit. */
void *jj_alloc(jarena_t *a, size_t n);
/* A NUL-terminated copy of s[0..n). */
char *jj_strdup(jarena_t *a, const char *s, size_t n);

// ---- values -------------------------------------------------------------------------------------

typedef enum { JV_UNDEF = 0, JV_NONE, JV_BOOL, JV_INT, JV_STR, JV_LIST, JV_DICT } jv_kind_t;

struct jv {
    jv_kind_t k;
    bool ns; /* a namespace(): attributes may be assigned */
    bool b;
    int64_t i;
    const char *s; /* JV_STR: bytes (UTF-8), NUL-terminated */
    size_t n;      /* JV_STR: length in bytes; JV_LIST/JV_DICT: count */
    size_t cap;
    jv_t **items;      /* JV_LIST items, JV_DICT values */
    const char **keys; /* JV_DICT keys (NUL-terminated) */
    size_t *klen;
};

// ---- syntax tree --------------------------------------------------------------------------------

typedef enum {
    /* statements */
    JN_BODY,     /* kids: statements in order */
    JN_TEXT,     /* s */
    JN_PRINT,    /* a: expression */
    JN_IF,       /* kids: cond0, body0, cond1, body1, ..., [else body] (odd count: else) */
    JN_FOR,      /* s: target, s2: second target (or NULL); a: iterable; b: body; c: else body */
    JN_SET,      /* s: name, s2: attribute (ns.attr) or NULL; a: value */
    JN_BREAK,
    JN_CONTINUE,
    /* expressions */
    JN_LIT,     /* v */
    JN_NAME,    /* s */
    JN_ATTR,    /* a.s */
    JN_ITEM,    /* a[b] */
    JN_SLICE,   /* a[kids[0]:kids[1]:kids[2]] (NULL = omitted) */
    JN_CALL,    /* a(kids...), keyword args are JN_KWARG kids */
    JN_FILTER,  /* a | s(kids...) */
    JN_TEST,    /* a is [not] s(kids...); op = 1 when negated */
    JN_UNARY,   /* op a */
    JN_BINARY,  /* a op b */
    JN_COND,    /* b if a else c */
    JN_LISTLIT, /* [kids] or (kids) */
    JN_DICTLIT, /* {kids[0]: kids[1], ...} */
    JN_KWARG,   /* s = a */
} jn_kind_t;

enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_CONCAT, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT,
       OP_GE, OP_IN, OP_NOTIN, OP_AND, OP_OR, OP_NOT, OP_NEG, OP_POS };

typedef struct jnode jnode_t;
struct jnode {
    jn_kind_t k;
    int op, line;
    const char *s, *s2;
    size_t sn, s2n;
    jv_t *v;
    jnode_t *a, *b, *c;
    jnode_t **kids;
    int n_kids;
};

// ---- value helpers (jinja_value.c) ----------------------------------------------------------------

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} jj_sb_t; /* growable text (mem.h); oom set once an append failed */

/* A zeroed value of kind k. */
jv_t *jj_mk(jarena_t *a, jv_kind_t k);
void jj_sb_put(jj_sb_t *b, const char *s, size_t n);
void jj_sb_cstr(jj_sb_t *b, const char *s);
int jj_dict_set_n(jarena_t *a, jv_t *d, const char *key, size_t kn, jv_t *v);
jv_t *jj_dict_get(const jv_t *d, const char *key, size_t kn);
bool jj_truthy(const jv_t *v);
/* str(v) (repr for items inside lists/dicts, or for v itself when repr) into b. */
void jj_to_text(jj_sb_t *b, const jv_t *v, bool repr, int depth);
/* json.dumps(v, ensure_ascii=False) with the default separators. */
void jj_to_json(jj_sb_t *b, const jv_t *v, int depth);
/* Python == (1 == True; lists and dicts element-wise). */
bool jj_equal(const jv_t *a, const jv_t *b, int depth);
/* Byte offsets of the code points of s (count in *n_cp; offsets[n_cp] = n). Caller frees (mem). */
size_t *jj_cp_offsets(const char *s, size_t n, size_t *n_cp);
bool jj_is_ascii_space(unsigned char c);
/* Python str.strip/lstrip/rstrip (whitespace, or the code points of chars). */
jv_t *jj_str_strip(jarena_t *a, const jv_t *v, const jv_t *chars, bool left, bool right);
/* 'u' upper, 'l' lower, 'c' capitalize, 't' title: ASCII letters only. */
jv_t *jj_str_case(jarena_t *a, const jv_t *v, char mode);
/* Python str.replace(a, b). */
jv_t *jj_str_replace(jarena_t *a, const jv_t *s, const jv_t *x, const jv_t *y);

struct jinja {
    jarena_t arena;
    jnode_t *root;
    char *name;
};

#endif
