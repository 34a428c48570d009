/* jinja_eval.c — see jinja.h. Owns: rendering (statements, expressions, Python-like operators),
 * and the filters, tests, methods and globals listed in jinja.h.
 *
 * Semantics follow jinja2 as transformers configures it: for-loops open a scope (a `set`
 * inside a loop body does not leak out, which is why templates use namespace()); `a.b` on a
 * dict reads key b; missing keys and names are Undefined, which prints as "" and is false,
 * while arithmetic or iteration on it is an error; str() of values is Python's (True, None,
 * ['a', 1]); strings index and slice by code point.
 * Every value made while rendering lives in a per-render arena freed at the end.
 * Not here: lexing and parsing (jinja_parse.c), values and their conversions (jinja_value.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jinja_impl.h"
#include "mem.h"

#define JJ_MAX_OUTPUT ((size_t)16 << 20)
#define JJ_MAX_VALUES ((size_t)256 << 20)
#define JJ_MAX_ITERS 1000000L

enum { RC_BREAK = 1, RC_CONTINUE = 2 };

// ---- render state -----------------------------------------------------------------------------

typedef struct {
    const char *name;
    size_t n;
    jv_t *v;
} var_t;

typedef struct frame {
    var_t *v;
    size_t n, cap;
    struct frame *up;
} frame_t;

typedef struct {
    const jinja_t *J;
    jarena_t ar;
    char *out;
    size_t len, cap;
    frame_t *top;
    const jv_t *vars;
    char *err;
    long iters;
    int depth;
    jv_t undef, none, t, f;
} rs_t;

static int rfail(rs_t *R, const jnode_t *n, int code, const char *fmt, const char *a, size_t an) {
    char msg[320];
    snprintf(msg, sizeof msg, fmt, (int)(an > 200 ? 200 : an), a ? a : "");
    return hired_errf(R->err, code, "%s: line %d: %s", R->J->name, n ? n->line : 0, msg);
}
#define FAIL(R, n, msg) rfail(R, n, HIRED_EINVAL, "%.*s", (msg), strlen(msg))
#define FAILS(R, n, fmt, s, sn) rfail(R, n, HIRED_EINVAL, fmt, s, sn)
static int room(rs_t *R) { return hired_errf(R->err, HIRED_ENOMEM, "%s: out of memory rendering", R->J->name); }

static int emit(rs_t *R, const char *s, size_t n) {
    if (R->len + n > JJ_MAX_OUTPUT)
        return hired_errf(R->err, HIRED_ERANGE, "%s: output over the %zu-byte limit", R->J->name, JJ_MAX_OUTPUT);
    if (R->len + n + 1 > R->cap) {
        size_t cap = R->cap ? R->cap : 1024;
        while (cap < R->len + n + 1) cap *= 2;
        char *p = mem_realloc(R->out, cap);
        if (!p) return room(R);
        R->out = p, R->cap = cap;
    }
    memcpy(R->out + R->len, s, n);
    R->len += n;
    R->out[R->len] = '\0';
    return HIRED_OK;
}

static jv_t *lookup(rs_t *R, const char *name, size_t n) {
    for (frame_t *f = R->top; f; f = f->up)
        for (size_t i = f->n; i-- > 0;)
            if (f->v[i].n == n && !memcmp(f->v[i].name, name, n)) return f->v[i].v;
    jv_t *v = jj_dict_get(R->vars, name, n);
    return v ? v : &R->undef;
}

static int assign(rs_t *R, const char *name, size_t n, jv_t *v) {
    frame_t *f = R->top;
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].n == n && !memcmp(f->v[i].name, name, n)) {
            f->v[i].v = v;
            return HIRED_OK;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        var_t *p = jj_alloc(&R->ar, cap * sizeof *p);
        if (!p) return room(R);
        if (f->n) memcpy(p, f->v, f->n * sizeof *p);
        f->v = p, f->cap = cap;
    }
    f->v[f->n++] = (var_t){name, n, v};
    return HIRED_OK;
}

/* str(v) as a new arena string value. */
static jv_t *stringify(rs_t *R, const jv_t *v) {
    if (v->k == JV_STR) return (jv_t *)v;
    jj_sb_t b = {0};
    jj_to_text(&b, v, false, 0);
    jv_t *s = b.oom ? NULL : jv_str(&R->ar, b.p ? b.p : "", b.n);
    mem_free(b.p);
    return s;
}

/* Iteration view: lists as they are, dicts as their keys, strings as one-character strings. */
static int as_list(rs_t *R, const jnode_t *at, const jv_t *v, jv_t **out) {
    if (v->k == JV_LIST) {
        *out = (jv_t *)v;
        return HIRED_OK;
    }
    jv_t *l = jv_list(&R->ar);
    if (!l) return room(R);
    if (v->k == JV_DICT) {
        for (size_t i = 0; i < v->n; i++)
            if (jv_list_push(&R->ar, l, jv_str(&R->ar, v->keys[i], v->klen[i]))) return room(R);
    } else if (v->k == JV_STR) {
        size_t nc, *o = jj_cp_offsets(v->s, v->n, &nc);
        if (!o) return room(R);
        for (size_t i = 0; i < nc; i++)
            if (jv_list_push(&R->ar, l, jv_str(&R->ar, v->s + o[i], o[i + 1] - o[i]))) {
                mem_free(o);
                return room(R);
            }
        mem_free(o);
    } else {
        return FAIL(R, at, v->k == JV_UNDEF ? "an undefined value is not iterable" : "value is not iterable");
    }
    *out = l;
    return HIRED_OK;
}

// ---- expressions ------------------------------------------------------------------------------

static int eval(rs_t *R, const jnode_t *n, jv_t **out);

/* Evaluates positional and keyword arguments of a call/filter/test node. */
typedef struct {
    jv_t *pos[8];
    int n_pos;
    const char *kw_name[8];
    size_t kw_len[8];
    jv_t *kw[8];
    int n_kw;
} args_t;

static int eval_args(rs_t *R, const jnode_t *n, args_t *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < n->n_kids; i++) {
        const jnode_t *k = n->kids[i];
        int rc;
        if (k->k == JN_KWARG) {
            if (a->n_kw == 8) return FAIL(R, n, "too many keyword arguments");
            a->kw_name[a->n_kw] = k->s, a->kw_len[a->n_kw] = k->sn;
            if ((rc = eval(R, k->a, &a->kw[a->n_kw]))) return rc;
            a->n_kw++;
        } else {
            if (a->n_pos == 8) return FAIL(R, n, "too many arguments");
            if ((rc = eval(R, k, &a->pos[a->n_pos]))) return rc;
            a->n_pos++;
        }
    }
    return HIRED_OK;
}

/* Argument i, or keyword `name`, or NULL. */
static jv_t *arg(const args_t *a, int i, const char *name) {
    if (i >= 0 && i < a->n_pos) return a->pos[i];
    for (int k = 0; name && k < a->n_kw; k++)
        if (a->kw_len[k] == strlen(name) && !memcmp(a->kw_name[k], name, a->kw_len[k])) return a->kw[k];
    return NULL;
}

static bool name_is(const char *s, size_t n, const char *lit) { return n == strlen(lit) && !memcmp(s, lit, n); }

/* Test `name` applied to v with optional argument x. *res receives the outcome. */
static int apply_test(rs_t *R, const jnode_t *at, const char *name, size_t nn, const jv_t *v, const jv_t *x, bool *res) {
    if (name_is(name, nn, "defined")) *res = v->k != JV_UNDEF;
    else if (name_is(name, nn, "undefined")) *res = v->k == JV_UNDEF;
    else if (name_is(name, nn, "none")) *res = v->k == JV_NONE;
    else if (name_is(name, nn, "string")) *res = v->k == JV_STR;
    else if (name_is(name, nn, "number")) *res = v->k == JV_INT || v->k == JV_BOOL;
    else if (name_is(name, nn, "integer")) *res = v->k == JV_INT;
    else if (name_is(name, nn, "boolean")) *res = v->k == JV_BOOL;
    else if (name_is(name, nn, "true")) *res = v->k == JV_BOOL && v->b;
    else if (name_is(name, nn, "false")) *res = v->k == JV_BOOL && !v->b;
    else if (name_is(name, nn, "mapping")) *res = v->k == JV_DICT;
    else if (name_is(name, nn, "iterable")) *res = v->k == JV_LIST || v->k == JV_DICT || v->k == JV_STR;
    else if (name_is(name, nn, "sequence")) *res = v->k == JV_LIST || v->k == JV_DICT || v->k == JV_STR;
    else if (name_is(name, nn, "odd") || name_is(name, nn, "even")) {
        if (v->k != JV_INT) return FAIL(R, at, "odd/even test on a non-integer");
        *res = (v->i % 2 != 0) == (nn == 3);
    } else if (name_is(name, nn, "equalto") || name_is(name, nn, "eq") || name_is(name, nn, "==") ||
               name_is(name, nn, "sameas")) {
        if (!x) return FAIL(R, at, "test needs an argument");
        *res = jj_equal(v, x, 0);
    } else if (name_is(name, nn, "ne") || name_is(name, nn, "!=")) {
        if (!x) return FAIL(R, at, "test needs an argument");
        *res = !jj_equal(v, x, 0);
    } else if (name_is(name, nn, "in")) {
        if (!x) return FAIL(R, at, "test needs an argument");
        jv_t *l;
        if (x->k == JV_STR && v->k == JV_STR) {
            *res = v->n == 0 || (x->n >= v->n && memmem(x->s, x->n, v->s, v->n));
            return HIRED_OK;
        }
        int rc = as_list(R, at, x, &l);
        if (rc) return rc;
        *res = false;
        for (size_t i = 0; i < l->n && !*res; i++) *res = jj_equal(v, l->items[i], 0);
    } else {
        return FAILS(R, at, "unsupported test '%.*s'", name, nn);
    }
    return HIRED_OK;
}

static int get_attr(rs_t *R, const jv_t *obj, const char *name, size_t n, jv_t **out) {
    (void)R;
    jv_t *v = obj->k == JV_DICT ? jj_dict_get(obj, name, n) : NULL;
    *out = v ? v : &R->undef;
    return HIRED_OK;
}

/* The item at index idx (negative from the end) of a list or string, Undefined when outside. */
static int get_index(rs_t *R, const jv_t *obj, int64_t idx, jv_t **out) {
    *out = &R->undef;
    if (obj->k == JV_LIST) {
        if (idx < 0) idx += (int64_t)obj->n;
        if (idx >= 0 && (size_t)idx < obj->n) *out = obj->items[idx];
    } else if (obj->k == JV_STR) {
        size_t nc, *o = jj_cp_offsets(obj->s, obj->n, &nc);
        if (!o) return room(R);
        if (idx < 0) idx += (int64_t)nc;
        if (idx >= 0 && (size_t)idx < nc && !(*out = jv_str(&R->ar, obj->s + o[idx], o[idx + 1] - o[idx]))) {
            mem_free(o);
            return room(R);
        }
        mem_free(o);
    }
    return HIRED_OK;
}

/* Python slice bounds for a sequence of len items. */
static void slice_bounds(int64_t len, const jv_t *a, const jv_t *b, int64_t step, int64_t *start, int64_t *stop) {
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? len : len - 1;
    if (!a || a->k == JV_NONE) *start = step > 0 ? lo : hi;
    else {
        *start = a->i < 0 ? a->i + len : a->i;
        if (*start < lo) *start = lo;
        if (*start > hi) *start = hi;
    }
    if (!b || b->k == JV_NONE) *stop = step > 0 ? hi : lo;
    else {
        *stop = b->i < 0 ? b->i + len : b->i;
        if (*stop < lo) *stop = lo;
        if (*stop > hi) *stop = hi;
    }
}

static int eval_slice(rs_t *R, const jnode_t *n, jv_t **out) {
    jv_t *obj, *p[3] = {NULL, NULL, NULL};
    int rc = eval(R, n->a, &obj);
    for (int i = 0; !rc && i < 3; i++)
        if (n->kids[i]) {
            rc = eval(R, n->kids[i], &p[i]);
            if (!rc && p[i]->k != JV_INT && p[i]->k != JV_NONE) rc = FAIL(R, n, "slice bounds must be integers");
        }
    if (rc) return rc;
    int64_t step = p[2] && p[2]->k == JV_INT ? p[2]->i : 1;
    if (step == 0) return FAIL(R, n, "slice step cannot be zero");
    if (obj->k != JV_LIST && obj->k != JV_STR) return FAIL(R, n, "only lists and strings can be sliced");
    size_t nc = obj->n, *o = NULL;
    if (obj->k == JV_STR && !(o = jj_cp_offsets(obj->s, obj->n, &nc))) return room(R);
    int64_t start, stop;
    slice_bounds((int64_t)nc, p[0], p[1], step, &start, &stop);
    jv_t *res = obj->k == JV_LIST ? jv_list(&R->ar) : NULL;
    jj_sb_t sb = {0};
    rc = obj->k == JV_LIST && !res ? room(R) : HIRED_OK;
    for (int64_t i = start; !rc && (step > 0 ? i < stop : i > stop); i += step) {
        if (obj->k == JV_LIST) rc = jv_list_push(&R->ar, res, obj->items[i]) ? room(R) : HIRED_OK;
        else jj_sb_put(&sb, obj->s + o[i], o[i + 1] - o[i]);
    }
    if (!rc && obj->k == JV_STR) {
        res = sb.oom ? NULL : jv_str(&R->ar, sb.p ? sb.p : "", sb.n);
        if (!res) rc = room(R);
    }
    mem_free(sb.p);
    mem_free(o);
    *out = res;
    return rc;
}

static int binop(rs_t *R, const jnode_t *n, jv_t **out) {
    jv_t *a, *b;
    int rc = eval(R, n->a, &a);
    if (rc) return rc;
    if (n->op == OP_AND || n->op == OP_OR) { /* short circuit, Python returns the deciding value */
        if (jj_truthy(a) == (n->op == OP_OR)) {
            *out = a;
            return HIRED_OK;
        }
        return eval(R, n->b, out);
    }
    if ((rc = eval(R, n->b, &b))) return rc;
    bool ia = a->k == JV_INT || a->k == JV_BOOL, ib = b->k == JV_INT || b->k == JV_BOOL;
    int64_t x = a->k == JV_BOOL ? a->b : a->i, y = b->k == JV_BOOL ? b->b : b->i;
    switch (n->op) {
    case OP_CONCAT: {
        jv_t *sa = stringify(R, a), *sbv = sa ? stringify(R, b) : NULL;
        if (!sbv) return room(R);
        char *s = jj_alloc(&R->ar, sa->n + sbv->n + 1);
        if (!s) return room(R);
        memcpy(s, sa->s, sa->n);
        memcpy(s + sa->n, sbv->s, sbv->n);
        jv_t *r = jj_mk(&R->ar, JV_STR);
        if (!r) return room(R);
        r->s = s, r->n = sa->n + sbv->n;
        *out = r;
        return HIRED_OK;
    }
    case OP_ADD:
        if (a->k == JV_STR && b->k == JV_STR) {
            jv_t *r = jj_mk(&R->ar, JV_STR);
            char *s = r ? jj_alloc(&R->ar, a->n + b->n + 1) : NULL;
            if (!s) return room(R);
            memcpy(s, a->s, a->n);
            memcpy(s + a->n, b->s, b->n);
            r->s = s, r->n = a->n + b->n;
            *out = r;
            return HIRED_OK;
        }
        if (a->k == JV_LIST && b->k == JV_LIST) {
            jv_t *r = jv_list(&R->ar);
            if (!r) return room(R);
            for (size_t i = 0; i < a->n + b->n; i++)
                if (jv_list_push(&R->ar, r, i < a->n ? a->items[i] : b->items[i - a->n])) return room(R);
            *out = r;
            return HIRED_OK;
        }
        if (!ia || !ib) break;
        if ((y > 0 && x > INT64_MAX - y) || (y < 0 && x < INT64_MIN - y)) return FAIL(R, n, "integer overflow");
        *out = jv_int(&R->ar, x + y);
        return *out ? HIRED_OK : room(R);
    case OP_SUB:
    case OP_MUL:
    case OP_FLOORDIV:
    case OP_MOD:
        if (n->op == OP_MUL && ((a->k == JV_STR && ib) || (ia && b->k == JV_STR))) { /* "=" * 3 */
            const jv_t *s = a->k == JV_STR ? a : b;
            int64_t k = a->k == JV_STR ? y : x;
            if (k > 0 && (uint64_t)k * s->n > JJ_MAX_OUTPUT) return FAIL(R, n, "string repetition too large");
            jj_sb_t o = {0};
            for (int64_t i = 0; i < k; i++) jj_sb_put(&o, s->s, s->n);
            *out = o.oom ? NULL : jv_str(&R->ar, o.p ? o.p : "", o.n);
            mem_free(o.p);
            return *out ? HIRED_OK : room(R);
        }
        if (!ia || !ib) break;
        if (n->op == OP_SUB) {
            if ((y < 0 && x > INT64_MAX + y) || (y > 0 && x < INT64_MIN + y)) return FAIL(R, n, "integer overflow");
            *out = jv_int(&R->ar, x - y);
        } else if (n->op == OP_MUL) {
            if (x && (y > INT32_MAX || y < -INT32_MAX || x > INT32_MAX || x < -INT32_MAX))
                return FAIL(R, n, "integer overflow");
            *out = jv_int(&R->ar, x * y);
        } else {
            if (y == 0) return FAIL(R, n, "integer division or modulo by zero");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) q--, m += y; /* Python floors */
            *out = jv_int(&R->ar, n->op == OP_MOD ? m : q);
        }
        return *out ? HIRED_OK : room(R);
    case OP_DIV: return FAIL(R, n, "true division '/' gives a float; floats are not supported");
    case OP_EQ:
    case OP_NE:
        *out = jj_equal(a, b, 0) == (n->op == OP_EQ) ? &R->t : &R->f;
        return HIRED_OK;
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int c;
        if (ia && ib) c = x < y ? -1 : x > y;
        else if (a->k == JV_STR && b->k == JV_STR) {
            c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
            if (!c) c = a->n < b->n ? -1 : a->n > b->n;
        } else {
            break;
        }
        bool r = n->op == OP_LT ? c < 0 : n->op == OP_LE ? c <= 0 : n->op == OP_GT ? c > 0 : c >= 0;
        *out = r ? &R->t : &R->f;
        return HIRED_OK;
    }
    case OP_IN:
    case OP_NOTIN: {
        bool r;
        if (b->k == JV_DICT) r = a->k == JV_STR && jj_dict_get(b, a->s, a->n);
        else if ((rc = apply_test(R, n, "in", 2, a, b, &r))) return rc;
        *out = r == (n->op == OP_IN) ? &R->t : &R->f;
        return HIRED_OK;
    }
    default: break;
    }
    if (a->k == JV_UNDEF || b->k == JV_UNDEF) return FAIL(R, n, "operation on an undefined value");
    return FAIL(R, n, "unsupported operand types");
}

/* Filters; v is the filtered value. */
static int apply_filter(rs_t *R, const jnode_t *n, jv_t *v, jv_t **out) {
    args_t a;
    int rc = eval_args(R, n, &a);
    if (rc) return rc;
    const char *f = n->s;
    size_t fn = n->sn;
    jv_t *x = arg(&a, 0, NULL);
    if (name_is(f, fn, "safe") || name_is(f, fn, "e") || name_is(f, fn, "escape")) {
        if (!name_is(f, fn, "safe")) return FAIL(R, n, "the escape filter is not supported");
        *out = v;
        return HIRED_OK;
    }
    if (name_is(f, fn, "default") || name_is(f, fn, "d")) {
        jv_t *bo = arg(&a, 1, "boolean");
        bool use = v->k == JV_UNDEF || (bo && jj_truthy(bo) && !jj_truthy(v));
        *out = use ? (x ? x : arg(&a, -1, "default_value") ? arg(&a, -1, "default_value") : jv_str(&R->ar, "", 0)) : v;
        return *out ? HIRED_OK : room(R);
    }
    if (name_is(f, fn, "string")) {
        *out = stringify(R, v);
        return *out ? HIRED_OK : room(R);
    }
    if (name_is(f, fn, "tojson")) {
        if (arg(&a, 0, "indent") && arg(&a, 0, "indent")->k != JV_NONE) return FAIL(R, n, "tojson(indent=...) is not supported");
        jj_sb_t b = {0};
        jj_to_json(&b, v, 0);
        *out = b.oom ? NULL : jv_str(&R->ar, b.p ? b.p : "", b.n);
        mem_free(b.p);
        return *out ? HIRED_OK : room(R);
    }
    if (name_is(f, fn, "length") || name_is(f, fn, "count")) {
        size_t len = v->n;
        if (v->k == JV_STR) {
            len = 0;
            for (size_t i = 0; i < v->n; i++) len += ((unsigned char)v->s[i] & 0xC0) != 0x80;
        } else if (v->k != JV_LIST && v->k != JV_DICT) {
            if (v->k != JV_UNDEF) return FAIL(R, n, "length of a value that has none");
            len = 0;
        }
        *out = jv_int(&R->ar, (int64_t)len);
        return *out ? HIRED_OK : room(R);
    }
    if (name_is(f, fn, "int")) {
        if (v->k == JV_INT || v->k == JV_BOOL) *out = jv_int(&R->ar, v->k == JV_BOOL ? v->b : v->i);
        else if (v->k == JV_STR) {
            char buf[32];
            size_t k = v->n < 31 ? v->n : 31;
            memcpy(buf, v->s, k);
            buf[k] = 0;
            char *end;
            long long r = strtoll(buf, &end, 10);
            *out = jv_int(&R->ar, *end || end == buf ? (x && x->k == JV_INT ? x->i : 0) : r);
        } else *out = jv_int(&R->ar, x && x->k == JV_INT ? x->i : 0);
        return *out ? HIRED_OK : room(R);
    }
    if (v->k == JV_STR || v->k == JV_UNDEF) {
        jv_t empty = {.k = JV_STR, .s = "", .n = 0};
        const jv_t *s = v->k == JV_STR ? v : &empty;
        if (name_is(f, fn, "trim")) *out = jj_str_strip(&R->ar, s, x && x->k == JV_STR ? x : NULL, true, true);
        else if (name_is(f, fn, "upper")) *out = jj_str_case(&R->ar, s, 'u');
        else if (name_is(f, fn, "lower")) *out = jj_str_case(&R->ar, s, 'l');
        else if (name_is(f, fn, "capitalize")) {
            jv_t *l = jj_str_case(&R->ar, s, 'l');
            *out = l ? jj_str_case(&R->ar, l, 'c') : NULL;
        } else if (name_is(f, fn, "title")) *out = jj_str_case(&R->ar, s, 't');
        else if (name_is(f, fn, "replace")) {
            jv_t *y = arg(&a, 1, NULL);
            if (!x || !y || x->k != JV_STR || y->k != JV_STR) return FAIL(R, n, "replace needs two strings");
            *out = jj_str_replace(&R->ar, s, x, y);
        } else goto sequences;
        return *out ? HIRED_OK : room(R);
    }
sequences:;
    jv_t *l;
    if (name_is(f, fn, "first") || name_is(f, fn, "last")) {
        if ((rc = as_list(R, n, v, &l))) return rc;
        *out = l->n ? l->items[name_is(f, fn, "first") ? 0 : l->n - 1] : &R->undef;
        return HIRED_OK;
    }
    if (name_is(f, fn, "list")) return as_list(R, n, v, out);
    if (name_is(f, fn, "items")) {
        if (v->k != JV_DICT) return FAIL(R, n, "items of a non-mapping");
        jv_t *r = jv_list(&R->ar);
        for (size_t i = 0; r && i < v->n; i++) {
            jv_t *pair = jv_list(&R->ar);
            if (jv_list_push(&R->ar, pair, jv_str(&R->ar, v->keys[i], v->klen[i])) ||
                jv_list_push(&R->ar, pair, v->items[i]) || jv_list_push(&R->ar, r, pair))
                return room(R);
        }
        *out = r;
        return r ? HIRED_OK : room(R);
    }
    if (name_is(f, fn, "join")) {
        if ((rc = as_list(R, n, v, &l))) return rc;
        jv_t *sep = x ? x : arg(&a, 0, "d");
        jj_sb_t b = {0};
        for (size_t i = 0; i < l->n; i++) {
            if (i && sep) jj_to_text(&b, sep, false, 0);
            jj_to_text(&b, l->items[i], false, 0);
        }
        *out = b.oom ? NULL : jv_str(&R->ar, b.p ? b.p : "", b.n);
        mem_free(b.p);
        return *out ? HIRED_OK : room(R);
    }
    if (name_is(f, fn, "selectattr") || name_is(f, fn, "rejectattr") || name_is(f, fn, "map")) {
        bool map = name_is(f, fn, "map"), reject = name_is(f, fn, "rejectattr");
        jv_t *attr = map ? arg(&a, -1, "attribute") : x;
        if (!attr || attr->k != JV_STR)
            return FAIL(R, n, map ? "map supports only attribute=NAME" : "selectattr/rejectattr need an attribute name");
        if ((rc = as_list(R, n, v, &l))) return rc;
        jv_t *test = map ? NULL : arg(&a, 1, NULL), *targ = map ? NULL : arg(&a, 2, NULL);
        if (test && test->k != JV_STR) return FAIL(R, n, "the test name must be a string");
        jv_t *r = jv_list(&R->ar);
        if (!r) return room(R);
        for (size_t i = 0; i < l->n; i++) {
            jv_t *item = l->items[i], *val;
            get_attr(R, item, attr->s, attr->n, &val);
            if (map) {
                if (val->k == JV_UNDEF && arg(&a, -1, "default")) val = arg(&a, -1, "default");
                if (jv_list_push(&R->ar, r, val)) return room(R);
                continue;
            }
            bool keep = jj_truthy(val);
            if (test && (rc = apply_test(R, n, test->s, test->n, val, targ, &keep))) return rc;
            if (keep != reject && jv_list_push(&R->ar, r, item)) return room(R);
        }
        *out = r;
        return HIRED_OK;
    }
    return FAILS(R, n, "unsupported filter '%.*s'", f, fn);
}

/* obj.name(args) for the supported methods of strings and dicts. */
static int call_method(rs_t *R, const jnode_t *n, jv_t *obj, const char *m, size_t mn, jv_t **out) {
    args_t a;
    int rc = eval_args(R, n, &a);
    if (rc) return rc;
    jv_t *x = arg(&a, 0, NULL), *y = arg(&a, 1, NULL);
    if (obj->k == JV_STR) {
        if (name_is(m, mn, "strip") || name_is(m, mn, "lstrip") || name_is(m, mn, "rstrip")) {
            const jv_t *chars = x && x->k == JV_STR ? x : NULL;
            *out = jj_str_strip(&R->ar, obj, chars, m[0] != 'r', m[0] != 'l');
        } else if (name_is(m, mn, "upper")) *out = jj_str_case(&R->ar, obj, 'u');
        else if (name_is(m, mn, "lower")) *out = jj_str_case(&R->ar, obj, 'l');
        else if (name_is(m, mn, "title")) *out = jj_str_case(&R->ar, obj, 't');
        else if (name_is(m, mn, "capitalize")) {
            jv_t *l = jj_str_case(&R->ar, obj, 'l');
            *out = l ? jj_str_case(&R->ar, l, 'c') : NULL;
        } else if (name_is(m, mn, "startswith") || name_is(m, mn, "endswith")) {
            if (!x || x->k != JV_STR) return FAIL(R, n, "startswith/endswith need a string");
            bool r = x->n <= obj->n &&
                     !memcmp(m[0] == 's' ? obj->s : obj->s + obj->n - x->n, x->s, x->n);
            *out = r ? &R->t : &R->f;
        } else if (name_is(m, mn, "replace")) {
            if (!x || !y || x->k != JV_STR || y->k != JV_STR) return FAIL(R, n, "replace needs two strings");
            *out = jj_str_replace(&R->ar, obj, x, y);
        } else if (name_is(m, mn, "split")) {
            jv_t *r = jv_list(&R->ar);
            if (!r) return room(R);
            if (x && x->k == JV_STR && x->n) {
                size_t i = 0, run = 0;
                while (i + x->n <= obj->n) {
                    if (!memcmp(obj->s + i, x->s, x->n)) {
                        if (jv_list_push(&R->ar, r, jv_str(&R->ar, obj->s + run, i - run))) return room(R);
                        i += x->n, run = i;
                    } else i++;
                }
                if (jv_list_push(&R->ar, r, jv_str(&R->ar, obj->s + run, obj->n - run))) return room(R);
            } else { /* whitespace runs */
                size_t i = 0;
                while (i < obj->n) {
                    while (i < obj->n && jj_is_ascii_space((unsigned char)obj->s[i])) i++;
                    size_t s0 = i;
                    while (i < obj->n && !jj_is_ascii_space((unsigned char)obj->s[i])) i++;
                    if (i > s0 && jv_list_push(&R->ar, r, jv_str(&R->ar, obj->s + s0, i - s0))) return room(R);
                }
            }
            *out = r;
        } else {
            return FAILS(R, n, "unsupported string method '%.*s'", m, mn);
        }
        return *out ? HIRED_OK : room(R);
    }
    if (obj->k == JV_DICT) {
        if (name_is(m, mn, "get")) {
            if (!x || x->k != JV_STR) return FAIL(R, n, "get needs a string key");
            jv_t *v = jj_dict_get(obj, x->s, x->n);
            *out = v ? v : y ? y : &R->none;
            return HIRED_OK;
        }
        if (name_is(m, mn, "items") || name_is(m, mn, "keys") || name_is(m, mn, "values")) {
            jv_t *r = jv_list(&R->ar);
            for (size_t i = 0; r && i < obj->n; i++) {
                jv_t *k = jv_str(&R->ar, obj->keys[i], obj->klen[i]), *e = k;
                if (m[0] == 'v') e = obj->items[i];
                else if (m[0] == 'i') {
                    e = jv_list(&R->ar);
                    if (jv_list_push(&R->ar, e, k) || jv_list_push(&R->ar, e, obj->items[i])) return room(R);
                }
                if (jv_list_push(&R->ar, r, e)) return room(R);
            }
            *out = r;
            return r ? HIRED_OK : room(R);
        }
    }
    return FAILS(R, n, "unsupported method '%.*s'", m, mn);
}

static int call(rs_t *R, const jnode_t *n, jv_t **out) {
    const jnode_t *f = n->a;
    if (f->k == JN_ATTR) {
        jv_t *obj;
        int rc = eval(R, f->a, &obj);
        if (rc) return rc;
        return call_method(R, n, obj, f->s, f->sn, out);
    }
    if (f->k != JN_NAME) return FAIL(R, n, "only named functions and methods can be called");
    args_t a;
    int rc = eval_args(R, n, &a);
    if (rc) return rc;
    if (name_is(f->s, f->sn, "raise_exception")) {
        jv_t *msg = arg(&a, 0, NULL);
        jv_t *s = msg ? stringify(R, msg) : NULL;
        return hired_errf(R->err, HIRED_EINVAL, "%s: line %d: the template raised an error: %.*s", R->J->name, n->line,
                          s ? (int)(s->n > 300 ? 300 : s->n) : 0, s ? s->s : "");
    }
    if (name_is(f->s, f->sn, "range")) {
        int64_t lo = 0, hi, step = 1;
        for (int i = 0; i < a.n_pos; i++)
            if (a.pos[i]->k != JV_INT) return FAIL(R, n, "range needs integers");
        if (a.n_pos == 1) hi = a.pos[0]->i;
        else if (a.n_pos >= 2) lo = a.pos[0]->i, hi = a.pos[1]->i, step = a.n_pos > 2 ? a.pos[2]->i : 1;
        else return FAIL(R, n, "range needs arguments");
        if (step == 0) return FAIL(R, n, "range step cannot be zero");
        jv_t *r = jv_list(&R->ar);
        if (!r) return room(R);
        for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) {
            if (r->n >= (size_t)JJ_MAX_ITERS) return rfail(R, n, HIRED_ERANGE, "%.*srange too long", "", 0);
            if (jv_list_push(&R->ar, r, jv_int(&R->ar, i))) return room(R);
        }
        *out = r;
        return HIRED_OK;
    }
    if (name_is(f->s, f->sn, "namespace") || name_is(f->s, f->sn, "dict")) {
        jv_t *d = jv_dict(&R->ar);
        if (!d) return room(R);
        d->ns = f->sn == 9;
        for (int i = 0; i < a.n_kw; i++)
            if (jj_dict_set_n(&R->ar, d, a.kw_name[i], a.kw_len[i], a.kw[i])) return room(R);
        *out = d;
        return HIRED_OK;
    }
    return FAILS(R, n, "unsupported function '%.*s'", f->s, f->sn);
}

static int eval(rs_t *R, const jnode_t *n, jv_t **out) {
    int rc;
    if (++R->depth > 4 * JJ_MAX_DEPTH) return rfail(R, n, HIRED_ERANGE, "%.*sevaluation nested too deeply", "", 0);
    switch (n->k) {
    case JN_LIT: *out = n->v; rc = HIRED_OK; break;
    case JN_NAME:
        *out = lookup(R, n->s, n->sn);
        rc = HIRED_OK;
        break;
    case JN_ATTR: {
        jv_t *obj;
        rc = eval(R, n->a, &obj);
        if (!rc) {
            if (obj->k == JV_UNDEF) rc = FAILS(R, n, "'%.*s' of an undefined value", n->s, n->sn);
            else rc = get_attr(R, obj, n->s, n->sn, out);
        }
        break;
    }
    case JN_ITEM: {
        jv_t *obj, *key;
        if ((rc = eval(R, n->a, &obj)) || (rc = eval(R, n->b, &key))) break;
        if (obj->k == JV_UNDEF) rc = FAIL(R, n, "subscript of an undefined value");
        else if (key->k == JV_INT && (obj->k == JV_LIST || obj->k == JV_STR)) rc = get_index(R, obj, key->i, out);
        else if (key->k == JV_STR) rc = get_attr(R, obj, key->s, key->n, out);
        else *out = &R->undef;
        break;
    }
    case JN_SLICE: rc = eval_slice(R, n, out); break;
    case JN_CALL: rc = call(R, n, out); break;
    case JN_FILTER: {
        jv_t *v;
        rc = eval(R, n->a, &v);
        if (!rc) rc = apply_filter(R, n, v, out);
        break;
    }
    case JN_TEST: {
        jv_t *v, *x = NULL;
        bool r = false;
        if (!(rc = eval(R, n->a, &v)) && !(n->n_kids > 0 && (rc = eval(R, n->kids[0], &x))))
            rc = apply_test(R, n, n->s, n->sn, v, x, &r);
        *out = r != (n->op == 1) ? &R->t : &R->f;
        break;
    }
    case JN_UNARY: {
        jv_t *v;
        rc = eval(R, n->a, &v);
        if (rc) break;
        if (n->op == OP_NOT) *out = jj_truthy(v) ? &R->f : &R->t;
        else if (v->k == JV_INT || v->k == JV_BOOL) {
            int64_t x = v->k == JV_BOOL ? v->b : v->i;
            if (x == INT64_MIN) rc = FAIL(R, n, "integer overflow");
            else if (!(*out = jv_int(&R->ar, n->op == OP_NEG ? -x : x))) rc = room(R);
        } else rc = FAIL(R, n, "unary minus/plus on a non-number");
        break;
    }
    case JN_BINARY: rc = binop(R, n, out); break;
    case JN_COND: {
        jv_t *c;
        rc = eval(R, n->a, &c);
        if (!rc) {
            if (jj_truthy(c)) rc = eval(R, n->b, out);
            else if (n->c) rc = eval(R, n->c, out);
            else *out = &R->undef;
        }
        break;
    }
    case JN_LISTLIT:
    case JN_DICTLIT: {
        bool dict = n->k == JN_DICTLIT;
        jv_t *r = dict ? jv_dict(&R->ar) : jv_list(&R->ar);
        rc = r ? HIRED_OK : room(R);
        for (int i = 0; !rc && i < n->n_kids; i += dict ? 2 : 1) {
            jv_t *k, *v;
            if ((rc = eval(R, n->kids[i], &k))) break;
            if (!dict) {
                rc = jv_list_push(&R->ar, r, k) ? room(R) : HIRED_OK;
                continue;
            }
            if (k->k != JV_STR) rc = FAIL(R, n, "dict keys must be strings");
            else if (!(rc = eval(R, n->kids[i + 1], &v))) rc = jj_dict_set_n(&R->ar, r, k->s, k->n, v) ? room(R) : HIRED_OK;
        }
        *out = r;
        break;
    }
    default: rc = FAIL(R, n, "not an expression"); break;
    }
    R->depth--;
    return rc;
}

// ---- statements -------------------------------------------------------------------------------

static int exec_body(rs_t *R, const jnode_t *body);

static int exec_for(rs_t *R, const jnode_t *n) {
    jv_t *it, *l;
    int rc = eval(R, n->a, &it);
    if (rc) return rc;
    if (it->k == JV_UNDEF || it->k == JV_NONE) l = NULL; /* jinja2 iterates Undefined as empty */
    else if ((rc = as_list(R, n, it, &l))) return rc;
    size_t len = l ? l->n : 0;
    if (!len) return n->c ? exec_body(R, n->c) : HIRED_OK;
    frame_t frame = {.up = R->top};
    R->top = &frame;
    for (size_t i = 0; i < len && !rc; i++) {
        if (++R->iters > JJ_MAX_ITERS) {
            rc = rfail(R, n, HIRED_ERANGE, "%.*sloop iteration limit reached", "", 0);
            break;
        }
        frame.n = 0; /* a fresh scope per iteration */
        jv_t *loop = jv_dict(&R->ar);
        if (!loop) {
            rc = room(R);
            break;
        }
        static const char *const keys[] = {"index", "index0", "revindex", "revindex0", "first", "last", "length"};
        int64_t vals[] = {(int64_t)i + 1, (int64_t)i, (int64_t)(len - i), (int64_t)(len - i - 1), 0, 0, (int64_t)len};
        for (size_t k = 0; k < ARRAY_LEN(keys) && !rc; k++) {
            jv_t *v = k == 4 ? (i == 0 ? &R->t : &R->f) : k == 5 ? (i + 1 == len ? &R->t : &R->f) : jv_int(&R->ar, vals[k]);
            if (jv_dict_set(&R->ar, loop, keys[k], v)) rc = room(R);
        }
        if (!rc && i > 0 && jv_dict_set(&R->ar, loop, "previtem", l->items[i - 1])) rc = room(R);
        if (!rc && i + 1 < len && jv_dict_set(&R->ar, loop, "nextitem", l->items[i + 1])) rc = room(R);
        if (!rc) rc = assign(R, "loop", 4, loop);
        jv_t *item = l->items[i];
        if (!rc && n->s2) { /* for a, b in pairs */
            if (item->k != JV_LIST || item->n != 2) {
                rc = FAIL(R, n, "cannot unpack a loop item into two variables");
                break;
            }
            rc = assign(R, n->s, n->sn, item->items[0]);
            if (!rc) rc = assign(R, n->s2, n->s2n, item->items[1]);
        } else if (!rc) {
            rc = assign(R, n->s, n->sn, item);
        }
        if (!rc) rc = exec_body(R, n->b);
        if (rc == RC_CONTINUE) rc = HIRED_OK;
        if (rc == RC_BREAK) {
            rc = HIRED_OK;
            break;
        }
    }
    R->top = frame.up;
    return rc;
}

static int exec_body(rs_t *R, const jnode_t *body) {
    int rc = HIRED_OK;
    if (++R->depth > 4 * JJ_MAX_DEPTH) return rfail(R, body, HIRED_ERANGE, "%.*sblocks nested too deeply", "", 0);
    for (int i = 0; i < body->n_kids && !rc; i++) {
        const jnode_t *n = body->kids[i];
        switch (n->k) {
        case JN_TEXT: rc = emit(R, n->s, n->sn); break;
        case JN_PRINT: {
            jv_t *v;
            if ((rc = eval(R, n->a, &v))) break;
            if (v->k == JV_STR) rc = emit(R, v->s, v->n);
            else {
                jv_t *s = stringify(R, v);
                rc = s ? emit(R, s->s, s->n) : room(R);
            }
            break;
        }
        case JN_IF: {
            int k = 0;
            for (; k + 1 < n->n_kids; k += 2) {
                jv_t *c;
                if ((rc = eval(R, n->kids[k], &c))) break;
                if (jj_truthy(c)) {
                    rc = exec_body(R, n->kids[k + 1]);
                    break;
                }
            }
            if (!rc && k + 1 >= n->n_kids && k < n->n_kids) rc = exec_body(R, n->kids[k]); /* else */
            break;
        }
        case JN_FOR: rc = exec_for(R, n); break;
        case JN_SET: {
            jv_t *v;
            if ((rc = eval(R, n->a, &v))) break;
            if (n->s2) {
                jv_t *ns = lookup(R, n->s, n->sn);
                if (ns->k != JV_DICT || !ns->ns) rc = FAIL(R, n, "attribute assignment needs a namespace()");
                else rc = jj_dict_set_n(&R->ar, ns, n->s2, n->s2n, v) ? room(R) : HIRED_OK;
            } else {
                rc = assign(R, n->s, n->sn, v);
            }
            break;
        }
        case JN_BREAK: rc = RC_BREAK; break;
        case JN_CONTINUE: rc = RC_CONTINUE; break;
        case JN_BODY: rc = exec_body(R, n); break;
        default: rc = FAIL(R, n, "not a statement"); break;
        }
    }
    R->depth--;
    return rc;
}

int jinja_render(const jinja_t *t, const jv_t *vars, char **out, size_t *len, char *err) {
    *out = NULL;
    if (len) *len = 0;
    frame_t global = {0};
    rs_t R = {.J = t, .top = &global, .vars = vars, .err = err};
    R.ar.limit = JJ_MAX_VALUES;
    R.undef.k = JV_UNDEF, R.none.k = JV_NONE, R.t.k = R.f.k = JV_BOOL, R.t.b = true;
    int rc = emit(&R, "", 0);
    if (!rc) rc = exec_body(&R, t->root);
    if (rc == RC_BREAK || rc == RC_CONTINUE) rc = hired_errf(err, HIRED_EINVAL, "%s: break/continue outside a loop", t->name);
    if (rc == HIRED_ENOMEM && R.ar.total + 4096 > R.ar.limit)
        rc = hired_errf(err, HIRED_ERANGE, "%s: rendering needs more than %zu bytes of values", t->name, JJ_MAX_VALUES);
    for (jblock_t *b = R.ar.head, *nx; b; b = nx) {
        nx = b->next;
        mem_free(b);
    }
    if (rc) {
        mem_free(R.out);
        return rc;
    }
    *out = R.out;
    if (len) *len = R.len;
    return HIRED_OK;
}
