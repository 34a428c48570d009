/* jinja_value.c — see jinja.h. Owns: the values (construction, list/dict growth), their Python
 * conversions (str(), repr(), json.dumps, ==, truthiness) and the string operations the filters
 * and methods share (strip, ASCII case changes, replace, code-point offsets). Everything lives in
 * an arena (jinja_parse.c owns the allocator). Not here: rendering (jinja_eval.c). */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "jinja_impl.h"
#include "mem.h"

// ---- values -----------------------------------------------------------------------------------

jv_t *jj_mk(jarena_t *a, jv_kind_t k) {
    jv_t *v = jj_alloc(a, sizeof *v);
    if (v) v->k = k;
    return v;
}

jv_t *jv_none(jarena_t *a) { return jj_mk(a, JV_NONE); }
jv_t *jv_bool(jarena_t *a, bool b) {
    jv_t *v = jj_mk(a, JV_BOOL);
    if (v) v->b = b;
    return v;
}
jv_t *jv_int(jarena_t *a, int64_t i) {
    jv_t *v = jj_mk(a, JV_INT);
    if (v) v->i = i;
    return v;
}
jv_t *jv_str(jarena_t *a, const char *s, size_t n) {
    jv_t *v = jj_mk(a, JV_STR);
    if (v && !(v->s = jj_strdup(a, s ? s : "", s ? n : 0))) return NULL;
    if (v) v->n = s ? n : 0;
    return v;
}
jv_t *jv_list(jarena_t *a) { return jj_mk(a, JV_LIST); }
jv_t *jv_dict(jarena_t *a) { return jj_mk(a, JV_DICT); }

/* Room for one more entry (arena memory: the old array is simply abandoned). */
static int grow(jarena_t *a, jv_t *c) {
    if (c->n < c->cap) return HIRED_OK;
    size_t cap = c->cap ? c->cap * 2 : 4;
    jv_t **items = jj_alloc(a, cap * sizeof *items);
    const char **keys = c->k == JV_DICT ? jj_alloc(a, cap * sizeof *keys) : NULL;
    size_t *klen = c->k == JV_DICT ? jj_alloc(a, cap * sizeof *klen) : NULL;
    if (!items || (c->k == JV_DICT && (!keys || !klen))) return HIRED_ENOMEM;
    if (c->n) {
        memcpy(items, c->items, c->n * sizeof *items);
        if (keys) memcpy(keys, c->keys, c->n * sizeof *keys), memcpy(klen, c->klen, c->n * sizeof *klen);
    }
    c->items = items, c->keys = keys, c->klen = klen, c->cap = cap;
    return HIRED_OK;
}

int jv_list_push(jarena_t *a, jv_t *list, jv_t *v) {
    if (!list || !v) return !list || list->k != JV_LIST ? HIRED_EINVAL : HIRED_ENOMEM;
    if (list->k != JV_LIST) return HIRED_EINVAL;
    if (grow(a, list)) return HIRED_ENOMEM;
    list->items[list->n++] = v;
    return HIRED_OK;
}

int jj_dict_set_n(jarena_t *a, jv_t *d, const char *key, size_t kn, jv_t *v) {
    if (!d || d->k != JV_DICT) return HIRED_EINVAL;
    if (!v) return HIRED_ENOMEM;
    for (size_t i = 0; i < d->n; i++)
        if (d->klen[i] == kn && !memcmp(d->keys[i], key, kn)) {
            d->items[i] = v;
            return HIRED_OK;
        }
    if (grow(a, d)) return HIRED_ENOMEM;
    const char *k = jj_strdup(a, key, kn);
    if (!k) return HIRED_ENOMEM;
    d->keys[d->n] = k, d->klen[d->n] = kn, d->items[d->n++] = v;
    return HIRED_OK;
}

int jv_dict_set(jarena_t *a, jv_t *d, const char *key, jv_t *v) {
    return key ? jj_dict_set_n(a, d, key, strlen(key), v) : HIRED_EINVAL;
}

jv_t *jj_dict_get(const jv_t *d, const char *key, size_t kn) {
    if (!d || d->k != JV_DICT) return NULL;
    for (size_t i = 0; i < d->n; i++)
        if (d->klen[i] == kn && !memcmp(d->keys[i], key, kn)) return d->items[i];
    return NULL;
}

// ---- conversions ------------------------------------------------------------------------------

bool jj_truthy(const jv_t *v) {
    switch (v->k) {
    case JV_BOOL: return v->b;
    case JV_INT: return v->i != 0;
    case JV_STR:
    case JV_LIST:
    case JV_DICT: return v->n > 0;
    default: return false;
    }
}

void jj_sb_put(jj_sb_t *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = mem_realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void jj_sb_cstr(jj_sb_t *b, const char *s) { jj_sb_put(b, s, strlen(s)); }

/* Python repr of a string: single quotes unless it holds ' and no ". */
static void repr_str(jj_sb_t *b, const char *s, size_t n) {
    bool sq = memchr(s, '\'', n) && !memchr(s, '"', n);
    char q = sq ? '"' : '\'';
    jj_sb_put(b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '\\') jj_sb_cstr(b, "\\\\");
        else if (c == (unsigned char)q) jj_sb_put(b, "\\", 1), jj_sb_put(b, &q, 1);
        else if (c == '\n') jj_sb_cstr(b, "\\n");
        else if (c == '\r') jj_sb_cstr(b, "\\r");
        else if (c == '\t') jj_sb_cstr(b, "\\t");
        else if (c < 0x20 || c == 0x7f) snprintf(esc, sizeof esc, "\\x%02x", c), jj_sb_cstr(b, esc);
        else jj_sb_put(b, s + i, 1);
    }
    jj_sb_put(b, &q, 1);
}

void jj_to_text(jj_sb_t *b, const jv_t *v, bool repr, int depth) {
    char num[32];
    if (depth > JJ_MAX_DEPTH) {
        jj_sb_cstr(b, "...");
        return;
    }
    switch (v->k) {
    case JV_UNDEF: break;
    case JV_NONE: jj_sb_cstr(b, "None"); break;
    case JV_BOOL: jj_sb_cstr(b, v->b ? "True" : "False"); break;
    case JV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->i);
        jj_sb_cstr(b, num);
        break;
    case JV_STR:
        if (repr) repr_str(b, v->s, v->n);
        else jj_sb_put(b, v->s, v->n);
        break;
    case JV_LIST:
        jj_sb_cstr(b, "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i) jj_sb_cstr(b, ", ");
            jj_to_text(b, v->items[i], true, depth + 1);
        }
        jj_sb_cstr(b, "]");
        break;
    case JV_DICT:
        if (v->ns) jj_sb_cstr(b, "<Namespace ");
        jj_sb_cstr(b, "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i) jj_sb_cstr(b, ", ");
            repr_str(b, v->keys[i], v->klen[i]);
            jj_sb_cstr(b, ": ");
            jj_to_text(b, v->items[i], true, depth + 1);
        }
        jj_sb_cstr(b, v->ns ? "}>" : "}");
        break;
    }
}

/* json.dumps(v, ensure_ascii=False) with the default separators. */
void jj_to_json(jj_sb_t *b, const jv_t *v, int depth) {
    char num[32];
    if (depth > JJ_MAX_DEPTH) return;
    switch (v->k) {
    case JV_UNDEF:
    case JV_NONE: jj_sb_cstr(b, "null"); break;
    case JV_BOOL: jj_sb_cstr(b, v->b ? "true" : "false"); break;
    case JV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->i);
        jj_sb_cstr(b, num);
        break;
    case JV_STR:
        jj_sb_cstr(b, "\"");
        for (size_t i = 0; i < v->n; i++) {
            unsigned char c = (unsigned char)v->s[i];
            if (c == '"') jj_sb_cstr(b, "\\\"");
            else if (c == '\\') jj_sb_cstr(b, "\\\\");
            else if (c == '\n') jj_sb_cstr(b, "\\n");
            else if (c == '\r') jj_sb_cstr(b, "\\r");
            else if (c == '\t') jj_sb_cstr(b, "\\t");
            else if (c == '\b') jj_sb_cstr(b, "\\b");
            else if (c == '\f') jj_sb_cstr(b, "\\f");
            else if (c < 0x20) snprintf(num, sizeof num, "\\u%04x", c), jj_sb_cstr(b, num);
            else jj_sb_put(b, v->s + i, 1);
        }
        jj_sb_cstr(b, "\"");
        break;
    case JV_LIST:
        jj_sb_cstr(b, "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i) jj_sb_cstr(b, ", ");
            jj_to_json(b, v->items[i], depth + 1);
        }
        jj_sb_cstr(b, "]");
        break;
    case JV_DICT:
        jj_sb_cstr(b, "{");
        for (size_t i = 0; i < v->n; i++) {
            jv_t key = {.k = JV_STR, .s = v->keys[i], .n = v->klen[i]};
            if (i) jj_sb_cstr(b, ", ");
            jj_to_json(b, &key, depth + 1);
            jj_sb_cstr(b, ": ");
            jj_to_json(b, v->items[i], depth + 1);
        }
        jj_sb_cstr(b, "}");
        break;
    }
}

bool jj_equal(const jv_t *a, const jv_t *b, int depth) {
    bool na = a->k == JV_INT || a->k == JV_BOOL, nb = b->k == JV_INT || b->k == JV_BOOL;
    if (na && nb) return (a->k == JV_BOOL ? a->b : a->i) == (b->k == JV_BOOL ? b->b : b->i);
    if (a->k != b->k || depth > JJ_MAX_DEPTH) return false;
    switch (a->k) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a->n == b->n && !memcmp(a->s, b->s, a->n);
    case JV_LIST:
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++)
            if (!jj_equal(a->items[i], b->items[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++) {
            const jv_t *o = jj_dict_get(b, a->keys[i], a->klen[i]);
            if (!o || !jj_equal(a->items[i], o, depth + 1)) return false;
        }
        return true;
    default: return false;
    }
}

// ---- code points ------------------------------------------------------------------------------

/* Byte offsets of the code points of s (count in *n_cp; offsets[n_cp] = n). Caller frees. */
size_t *jj_cp_offsets(const char *s, size_t n, size_t *n_cp) {
    size_t *o = mem_alloc((n + 1) * sizeof *o), k = 0;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) o[k++] = i;
    o[k] = n;
    *n_cp = k;
    return o;
}

bool jj_is_ascii_space(unsigned char c) { return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20); }

/* Python str.strip/lstrip/rstrip: whitespace (chars == NULL) or any code point of chars. */
static bool strip_match(const char *s, size_t n, size_t i, size_t w, const jv_t *chars) {
    if (!chars) {
        if (w == 1) return jj_is_ascii_space((unsigned char)s[i]);
        uint32_t c = 0;
        const unsigned char *u = (const unsigned char *)s + i;
        if (w == 2) c = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
        else if (w == 3) c = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
        (void)n;
        return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
               c == 0x202F || c == 0x205F || c == 0x3000;
    }
    for (size_t j = 0; j < chars->n;) {
        size_t cw = 1;
        while (j + cw < chars->n && ((unsigned char)chars->s[j + cw] & 0xC0) == 0x80) cw++;
        if (cw == w && !memcmp(chars->s + j, s + i, w)) return true;
        j += cw;
    }
    return false;
}

jv_t *jj_str_strip(jarena_t *A, const jv_t *v, const jv_t *chars, bool left, bool right) {
    size_t nc, *o = jj_cp_offsets(v->s, v->n, &nc);
    if (!o) return NULL;
    size_t a = 0, b = nc;
    while (left && a < b && strip_match(v->s, v->n, o[a], o[a + 1] - o[a], chars)) a++;
    while (right && b > a && strip_match(v->s, v->n, o[b - 1], o[b] - o[b - 1], chars)) b--;
    jv_t *r = jv_str(A, v->s + o[a], o[b] - o[a]);
    mem_free(o);
    return r;
}

/* mode: 'u' upper, 'l' lower, 'c' capitalize, 't' title — ASCII letters only (see jinja.h). */
jv_t *jj_str_case(jarena_t *A, const jv_t *v, char mode) {
    jv_t *r = jv_str(A, v->s, v->n);
    if (!r) return NULL;
    char *s = (char *)r->s;
    bool prev_letter = false;
    for (size_t i = 0; i < r->n; i++) {
        char c = s[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool up = mode == 'u' || (mode == 'c' && i == 0) || (mode == 't' && !prev_letter);
        if (letter) s[i] = up ? (char)(c & ~0x20) : (char)(c | 0x20);
        prev_letter = letter || ((unsigned char)c >= 0x80 && mode == 't' && prev_letter);
    }
    return r;
}

jv_t *jj_str_replace(jarena_t *A, const jv_t *s, const jv_t *a, const jv_t *b) {
    jj_sb_t o = {0};
    if (!a->n) { /* Python inserts the replacement between every code point */
        for (size_t i = 0; i <= s->n; i++) {
            if (i == s->n || ((unsigned char)s->s[i] & 0xC0) != 0x80) jj_sb_put(&o, b->s, b->n);
            if (i < s->n) jj_sb_put(&o, s->s + i, 1);
        }
    } else {
        size_t i = 0, run = 0;
        while (i + a->n <= s->n) {
            if (!memcmp(s->s + i, a->s, a->n)) {
                jj_sb_put(&o, s->s + run, i - run);
                jj_sb_put(&o, b->s, b->n);
                i += a->n;
                run = i;
            } else {
                i++;
            }
        }
        jj_sb_put(&o, s->s + run, s->n - run);
    }
    jv_t *r = o.oom ? NULL : jv_str(A, o.p ? o.p : "", o.n);
    mem_free(o.p);
    return r;
}

