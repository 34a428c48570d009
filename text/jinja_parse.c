/* jinja_parse.c — see jinja.h. Owns: the arena, the lexer (template data, tags, whitespace
 * control, trim_blocks / lstrip_blocks exactly as jinja2's lexer applies them) and the
 * recursive-descent parser that builds the tree of jinja_impl.h (operator precedence as
 * jinja2's parser: if-else < or < and < not < comparisons < + - < ~ < * / // % < unary <
 * postfix . [] () | is).
 *
 * Source preprocessing as jinja2 does it: \r\n and \r become \n, and one trailing newline is
 * dropped (keep_trailing_newline=False).
 * Not here: evaluation (jinja_eval.c). */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "jinja_impl.h"
#include "mem.h"

#define JJ_MAX_SOURCE ((size_t)1 << 20)

// ---- arena --------------------------------------------------------------------------------------

void *jj_alloc(jarena_t *a, size_t n) {
    if (!a) return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n > ((size_t)1 << 40) || (a->limit && a->total + n > a->limit)) return NULL;
    jblock_t *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = mem_alloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

char *jj_strdup(jarena_t *a, const char *s, size_t n) {
    char *p = jj_alloc(a, n + 1);
    if (p && n) memcpy(p, s, n);
    return p;
}

static void arena_free(jarena_t *a) {
    for (jblock_t *b = a->head, *nx; b; b = nx) {
        nx = b->next;
        mem_free(b);
    }
    a->head = NULL;
    a->total = 0;
}

jarena_t *jarena_new(void) { return mem_calloc(1, sizeof(jarena_t)); }

void jarena_destroy(jarena_t **p) {
    if (!p || !*p) return;
    arena_free(*p);
    mem_free(*p);
    *p = NULL;
}

void jinja_destroy(jinja_t **p) {
    if (!p || !*p) return;
    arena_free(&(*p)->arena);
    mem_free((*p)->name);
    mem_free(*p);
    *p = NULL;
}

// ---- lexer --------------------------------------------------------------------------------------

typedef enum { T_EOF, T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_OP } ttype_t;

typedef struct {
    ttype_t t;
    const char *p; /* T_TEXT / T_STRING: decoded bytes (arena); others: source */
    size_t n;
    int line;
    int64_t ival;
} token_t;

typedef struct {
    jinja_t *J;
    char *err;
    const char *src;
    size_t len;
    token_t *tok;
    size_t n_tok, cap_tok;
    size_t pos; /* parser position in tok */
    int depth;
} lex_t;

static int fail(lex_t *L, int line, const char *msg, const char *detail) {
    return hired_errf(L->err, HIRED_EFORMAT, "%s: line %d: %s%s%s", L->J->name, line, msg, detail ? " " : "",
                      detail ? detail : "");
}

static int oom(lex_t *L) { return hired_errf(L->err, HIRED_ENOMEM, "%s: out of memory parsing", L->J->name); }

static int push(lex_t *L, token_t t) {
    if (L->n_tok == L->cap_tok) {
        size_t cap = L->cap_tok ? L->cap_tok * 2 : 256;
        token_t *p = mem_realloc(L->tok, cap * sizeof *p);
        if (!p) return oom(L);
        L->tok = p;
        L->cap_tok = cap;
    }
    L->tok[L->n_tok++] = t;
    return HIRED_OK;
}

/* Python's str.isspace for the code point at s (n bytes left); *w receives its byte length. */
static bool py_space(const char *s, size_t n, size_t *w) {
    const unsigned char *u = (const unsigned char *)s;
    *w = 1;
    if (u[0] < 0x80) return (u[0] >= 9 && u[0] <= 13) || (u[0] >= 0x1c && u[0] <= 0x20);
    uint32_t c = 0;
    if (u[0] >= 0xC2 && u[0] < 0xE0 && n >= 2) c = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F), *w = 2;
    else if (u[0] >= 0xE0 && u[0] < 0xF0 && n >= 3)
        c = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F), *w = 3;
    else return false;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Length of s[0..n) without its trailing Python whitespace. */
static size_t rstrip_len(const char *s, size_t n) {
    while (n > 0) {
        size_t k = n - 1, w;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        if (!py_space(s + k, n - k, &w) || k + w != n) break;
        n = k;
    }
    return n;
}

/* Bytes of leading Python whitespace at s. */
static size_t lstrip_len(const char *s, size_t n) {
    size_t i = 0, w;
    while (i < n && py_space(s + i, n - i, &w)) i += w;
    return i;
}

static int count_lines(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

/* Decodes a string literal body (Python unicode-escape on top of the raw characters). */
static int decode_string(lex_t *L, const char *s, size_t n, int line, token_t *t) {
    char *o = jj_alloc(&L->J->arena, n + 1);
    if (!o) return oom(L);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            o[k++] = s[i];
            continue;
        }
        char c = s[++i];
        int hex = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
        if (hex) {
            uint32_t v = 0;
            if (i + (size_t)hex >= n) return fail(L, line, "truncated escape in a string", NULL);
            for (int h = 1; h <= hex; h++) {
                char d = s[i + (size_t)h];
                int x = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10 : d >= 'A' && d <= 'F' ? d - 'A' + 10 : -1;
                if (x < 0) return fail(L, line, "bad hex escape in a string", NULL);
                v = v * 16 + (uint32_t)x;
            }
            i += (size_t)hex;
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return fail(L, line, "escape outside Unicode in a string", NULL);
            if (v < 0x80) o[k++] = (char)v;
            else if (v < 0x800) o[k++] = (char)(0xC0 | v >> 6), o[k++] = (char)(0x80 | (v & 0x3F));
            else if (v < 0x10000)
                o[k++] = (char)(0xE0 | v >> 12), o[k++] = (char)(0x80 | (v >> 6 & 0x3F)), o[k++] = (char)(0x80 | (v & 0x3F));
            else
                o[k++] = (char)(0xF0 | v >> 18), o[k++] = (char)(0x80 | (v >> 12 & 0x3F)),
                o[k++] = (char)(0x80 | (v >> 6 & 0x3F)), o[k++] = (char)(0x80 | (v & 0x3F));
            continue;
        }
        switch (c) {
        case 'n': o[k++] = '\n'; break;
        case 't': o[k++] = '\t'; break;
        case 'r': o[k++] = '\r'; break;
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'v': o[k++] = '\v'; break;
        case '0': o[k++] = '\0'; break;
        case '\\': o[k++] = '\\'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case '\n': break; /* line continuation */
        default: o[k++] = '\\', o[k++] = c; break; /* unknown escapes stay as written */
        }
    }
    t->p = o;
    t->n = k;
    return HIRED_OK;
}

static const char *const k_ops[] = {"//", "**", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ".", ",", ":",
                                    "|", "~", "+", "-", "*", "/", "%", "<", ">", "=", NULL};

/* Lexes the inside of a tag from *i up to its end delimiter ("}}" or "%}", optionally with
 * a leading '-'). Sets *strip_after when the delimiter had '-'. */
static int lex_tag(lex_t *L, size_t *i, const char *end, int *line, bool *strip_after) {
    const char *s = L->src;
    size_t n = L->len;
    for (;;) {
        while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r')) *line += s[(*i)++] == '\n';
        if (*i >= n) return fail(L, *line, "unclosed tag", NULL);
        if (s[*i] == '-' && *i + 2 < n && !memcmp(s + *i + 1, end, 2)) {
            *strip_after = true;
            *i += 3;
            return HIRED_OK;
        }
        if (*i + 1 < n && !memcmp(s + *i, end, 2)) {
            *strip_after = false;
            *i += 2;
            return HIRED_OK;
        }
        token_t t = {.p = s + *i, .line = *line};
        char c = s[*i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t j = *i;
            while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9') ||
                             s[j] == '_'))
                j++;
            t.t = T_NAME;
            t.n = j - *i;
            *i = j;
        } else if (c >= '0' && c <= '9') {
            size_t j = *i;
            int64_t v = 0;
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) {
                if (s[j] != '_') {
                    if (v > (INT64_MAX - 9) / 10) return fail(L, *line, "integer literal too large", NULL);
                    v = v * 10 + (s[j] - '0');
                }
                j++;
            }
            if (j < n && (s[j] == '.' && j + 1 < n && s[j + 1] >= '0' && s[j + 1] <= '9'))
                return fail(L, *line, "floating-point literals are not supported", NULL);
            t.t = T_INT;
            t.ival = v;
            t.n = j - *i;
            *i = j;
        } else if (c == '\'' || c == '"') {
            size_t j = *i + 1;
            while (j < n && s[j] != c) {
                if (s[j] == '\\') j++;
                j++;
            }
            if (j >= n) return fail(L, *line, "unterminated string literal", NULL);
            int rc = decode_string(L, s + *i + 1, j - *i - 1, *line, &t);
            if (rc) return rc;
            t.t = T_STRING;
            *line += count_lines(s + *i, j - *i);
            *i = j + 1;
        } else {
            t.t = T_OP;
            for (int k = 0; k_ops[k]; k++) {
                size_t l = strlen(k_ops[k]);
                if (*i + l <= n && !memcmp(s + *i, k_ops[k], l)) {
                    t.n = l;
                    break;
                }
            }
            if (!t.n) {
                char ch[8];
                snprintf(ch, sizeof ch, "'%c'", c);
                return fail(L, *line, "unexpected character", ch);
            }
            *i += t.n;
        }
        int rc = push(L, t);
        if (rc) return rc;
    }
}

/* Splits the (preprocessed) source into text and tag tokens. */
static int lex(lex_t *L) {
    const char *s = L->src;
    size_t n = L->len, i = 0;
    int line = 1;
    bool line_starting = true, strip_next = false;
    while (i <= n) {
        /* next tag start */
        size_t j = i;
        while (j + 1 < n && !(s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#'))) j++;
        if (j + 1 >= n) j = n;
        const char *text = s + i;
        size_t tn = j - i;
        if (strip_next) {
            size_t k = lstrip_len(text, tn);
            line += count_lines(text, k);
            text += k, tn -= k;
            strip_next = false;
        }
        char kind = j < n ? s[j + 1] : 0;
        char sign = j + 2 < n ? s[j + 2] : 0;
        int text_line = line;
        line += count_lines(text, tn);
        if (kind && sign == '-') {
            tn = rstrip_len(text, tn);
        } else if (kind && kind != '{' && sign != '+') { /* lstrip_blocks */
            size_t l = tn;
            while (l > 0 && text[l - 1] != '\n') l--;
            if (l > 0 || line_starting) {
                size_t k = l, w;
                bool all = k < tn;
                while (k < tn && all) {
                    all = py_space(text + k, tn - k, &w) && text[k] != '\n';
                    k += w;
                }
                if (all) tn = l;
            }
        }
        if (tn) {
            char *d = jj_strdup(&L->J->arena, text, tn);
            if (!d) return oom(L);
            int rc = push(L, (token_t){.t = T_TEXT, .p = d, .n = tn, .line = text_line});
            if (rc) return rc;
        }
        if (!kind) break;
        i = j + 2 + (sign == '-' || sign == '+');
        line_starting = false;
        if (kind == '#') {
            size_t e = i;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) return fail(L, line, "unclosed comment", NULL);
            line += count_lines(s + i, e - i);
            bool dash = e > i && s[e - 1] == '-';
            i = e + 2;
            if (dash) strip_next = true;
            else if (i < n && s[i] == '\n') i++, line++, line_starting = true; /* trim_blocks */
            continue;
        }
        bool var = kind == '{';
        int rc = push(L, (token_t){.t = var ? T_VAR_BEGIN : T_BLOCK_BEGIN, .line = line});
        bool strip_after = false;
        if (!rc) rc = lex_tag(L, &i, var ? "}}" : "%}", &line, &strip_after);
        if (!rc) rc = push(L, (token_t){.t = var ? T_VAR_END : T_BLOCK_END, .line = line});
        if (rc) return rc;
        if (strip_after) strip_next = true;
        else if (!var && i < n && s[i] == '\n') i++, line++, line_starting = true; /* trim_blocks */
    }
    return push(L, (token_t){.t = T_EOF, .line = line});
}

// ---- parser -------------------------------------------------------------------------------------

static token_t *cur(lex_t *L) { return &L->tok[L->pos]; }
static bool is_op(const token_t *t, const char *op) { return t->t == T_OP && t->n == strlen(op) && !memcmp(t->p, op, t->n); }
static bool is_name(const token_t *t, const char *nm) {
    return t->t == T_NAME && t->n == strlen(nm) && !memcmp(t->p, nm, t->n);
}
static bool accept_op(lex_t *L, const char *op) {
    if (!is_op(cur(L), op)) return false;
    L->pos++;
    return true;
}
static bool accept_name(lex_t *L, const char *nm) {
    if (!is_name(cur(L), nm)) return false;
    L->pos++;
    return true;
}

static int expect_op(lex_t *L, const char *op) {
    if (accept_op(L, op)) return HIRED_OK;
    char want[16];
    snprintf(want, sizeof want, "'%s'", op);
    return fail(L, cur(L)->line, "expected", want);
}

static jnode_t *node(lex_t *L, jn_kind_t k, int line) {
    jnode_t *n = jj_alloc(&L->J->arena, sizeof *n);
    if (n) n->k = k, n->line = line;
    return n;
}

/* Growable child list, copied into the arena at the end. */
typedef struct {
    jnode_t **p;
    int n, cap;
} kids_t;

static int kids_push(lex_t *L, kids_t *k, jnode_t *x) {
    if (k->n == k->cap) {
        int cap = k->cap ? k->cap * 2 : 8;
        jnode_t **p = mem_realloc(k->p, (size_t)cap * sizeof *p);
        if (!p) return oom(L);
        k->p = p;
        k->cap = cap;
    }
    k->p[k->n++] = x;
    return HIRED_OK;
}

static int kids_finish(lex_t *L, kids_t *k, jnode_t *into) {
    into->n_kids = k->n;
    if (k->n) {
        into->kids = jj_alloc(&L->J->arena, (size_t)k->n * sizeof *into->kids);
        if (!into->kids) {
            mem_free(k->p);
            return oom(L);
        }
        memcpy(into->kids, k->p, (size_t)k->n * sizeof *into->kids);
    }
    mem_free(k->p);
    k->p = NULL;
    return HIRED_OK;
}

static int parse_expr(lex_t *L, jnode_t **out);

/* Call arguments after '(' up to ')': positional then keyword. */
static int parse_args(lex_t *L, jnode_t *call) {
    kids_t k = {0};
    int rc = HIRED_OK;
    while (!rc && !accept_op(L, ")")) {
        if (k.n && (rc = expect_op(L, ","))) break;
        if (accept_op(L, ")")) break;
        jnode_t *arg;
        if (cur(L)->t == T_NAME && is_op(&L->tok[L->pos + 1], "=")) {
            arg = node(L, JN_KWARG, cur(L)->line);
            if (!arg) rc = oom(L);
            else {
                arg->s = cur(L)->p, arg->sn = cur(L)->n;
                L->pos += 2;
                rc = parse_expr(L, &arg->a);
            }
        } else {
            rc = parse_expr(L, &arg);
        }
        if (!rc) rc = kids_push(L, &k, arg);
    }
    if (rc) {
        mem_free(k.p);
        return rc;
    }
    return kids_finish(L, &k, call);
}

static int parse_primary(lex_t *L, jnode_t **out) {
    token_t *t = cur(L);
    int line = t->line, rc;
    if (t->t == T_STRING || t->t == T_INT) {
        jnode_t *n = node(L, JN_LIT, line);
        jv_t *v = n ? jj_alloc(&L->J->arena, sizeof *v) : NULL;
        if (!v) return oom(L);
        if (t->t == T_INT) v->k = JV_INT, v->i = t->ival;
        else v->k = JV_STR, v->s = t->p, v->n = t->n;
        L->pos++;
        /* adjacent string literals concatenate, as in jinja2 */
        while (v->k == JV_STR && cur(L)->t == T_STRING) {
            char *c = jj_alloc(&L->J->arena, v->n + cur(L)->n + 1);
            if (!c) return oom(L);
            memcpy(c, v->s, v->n);
            memcpy(c + v->n, cur(L)->p, cur(L)->n);
            v->s = c, v->n += cur(L)->n;
            L->pos++;
        }
        n->v = v;
        *out = n;
        return HIRED_OK;
    }
    if (t->t == T_NAME) {
        static const struct {
            const char *name;
            jv_kind_t k;
            bool b;
        } consts[] = {{"true", JV_BOOL, true},   {"True", JV_BOOL, true}, {"false", JV_BOOL, false},
                      {"False", JV_BOOL, false}, {"none", JV_NONE, 0},    {"None", JV_NONE, 0}};
        for (size_t c = 0; c < ARRAY_LEN(consts); c++)
            if (is_name(t, consts[c].name)) {
                jnode_t *n = node(L, JN_LIT, line);
                jv_t *v = n ? jj_alloc(&L->J->arena, sizeof *v) : NULL;
                if (!v) return oom(L);
                v->k = consts[c].k, v->b = consts[c].b;
                n->v = v;
                L->pos++;
                *out = n;
                return HIRED_OK;
            }
        jnode_t *n = node(L, JN_NAME, line);
        if (!n) return oom(L);
        n->s = t->p, n->sn = t->n;
        L->pos++;
        *out = n;
        return HIRED_OK;
    }
    if (accept_op(L, "(")) {
        jnode_t *first;
        if (accept_op(L, ")")) { /* empty tuple */
            *out = node(L, JN_LISTLIT, line);
            return *out ? HIRED_OK : oom(L);
        }
        if ((rc = parse_expr(L, &first))) return rc;
        if (accept_op(L, ")")) {
            *out = first;
            return HIRED_OK;
        }
        jnode_t *tup = node(L, JN_LISTLIT, line);
        kids_t k = {0};
        if (!tup) return oom(L);
        rc = kids_push(L, &k, first);
        while (!rc && accept_op(L, ",")) {
            if (is_op(cur(L), ")")) break;
            jnode_t *x;
            rc = parse_expr(L, &x);
            if (!rc) rc = kids_push(L, &k, x);
        }
        if (!rc) rc = expect_op(L, ")");
        if (rc) {
            mem_free(k.p);
            return rc;
        }
        *out = tup;
        return kids_finish(L, &k, tup);
    }
    if (is_op(t, "[") || is_op(t, "{")) {
        bool dict = is_op(t, "{");
        const char *close = dict ? "}" : "]";
        L->pos++;
        jnode_t *n = node(L, dict ? JN_DICTLIT : JN_LISTLIT, line);
        kids_t k = {0};
        if (!n) return oom(L);
        rc = HIRED_OK;
        while (!rc && !accept_op(L, close)) {
            if (k.n && (rc = expect_op(L, ","))) break;
            if (accept_op(L, close)) break;
            jnode_t *x;
            rc = parse_expr(L, &x);
            if (!rc) rc = kids_push(L, &k, x);
            if (!rc && dict) {
                rc = expect_op(L, ":");
                if (!rc) rc = parse_expr(L, &x);
                if (!rc) rc = kids_push(L, &k, x);
            }
        }
        if (rc) {
            mem_free(k.p);
            return rc;
        }
        *out = n;
        return kids_finish(L, &k, n);
    }
    return fail(L, line, "expected an expression", NULL);
}

/* Filter or test name with optional arguments (or one bare argument for tests). */
static int parse_filter_or_test(lex_t *L, jn_kind_t k, jnode_t *operand, jnode_t **out) {
    int line = cur(L)->line;
    jnode_t *n = node(L, k, line);
    if (!n) return oom(L);
    n->a = operand;
    if (k == JN_TEST && accept_name(L, "not")) n->op = 1;
    if (cur(L)->t != T_NAME) return fail(L, line, k == JN_TEST ? "expected a test name" : "expected a filter name", NULL);
    n->s = cur(L)->p, n->sn = cur(L)->n;
    L->pos++;
    int rc = HIRED_OK;
    if (accept_op(L, "(")) {
        rc = parse_args(L, n);
    } else if (k == JN_TEST && (cur(L)->t == T_STRING || cur(L)->t == T_INT ||
                                (cur(L)->t == T_NAME && !is_name(cur(L), "and") && !is_name(cur(L), "or") &&
                                 !is_name(cur(L), "else") && !is_name(cur(L), "if") && !is_name(cur(L), "in")))) {
        jnode_t *arg;
        rc = parse_primary(L, &arg);
        if (!rc) {
            n->kids = jj_alloc(&L->J->arena, sizeof *n->kids);
            if (!n->kids) return oom(L);
            n->kids[0] = arg;
            n->n_kids = 1;
        }
    }
    *out = n;
    return rc;
}

static int parse_postfix(lex_t *L, jnode_t **io) {
    for (;;) {
        int line = cur(L)->line, rc;
        if (accept_op(L, ".")) {
            if (cur(L)->t != T_NAME && cur(L)->t != T_INT) return fail(L, line, "expected an attribute name", NULL);
            jnode_t *n = node(L, JN_ATTR, line);
            if (!n) return oom(L);
            n->a = *io, n->s = cur(L)->p, n->sn = cur(L)->n;
            L->pos++;
            *io = n;
        } else if (accept_op(L, "[")) {
            jnode_t *part[3] = {NULL, NULL, NULL};
            int np = 0;
            bool slice = false;
            for (;;) {
                if (!is_op(cur(L), ":") && !is_op(cur(L), "]")) {
                    if ((rc = parse_expr(L, &part[np]))) return rc;
                }
                if (np < 2 && accept_op(L, ":")) {
                    slice = true;
                    np++;
                    continue;
                }
                break;
            }
            if ((rc = expect_op(L, "]"))) return rc;
            jnode_t *n = node(L, slice ? JN_SLICE : JN_ITEM, line);
            if (!n) return oom(L);
            n->a = *io;
            if (slice) {
                n->kids = jj_alloc(&L->J->arena, 3 * sizeof *n->kids);
                if (!n->kids) return oom(L);
                for (int i = 0; i < 3; i++) n->kids[i] = part[i];
                n->n_kids = 3;
            } else {
                if (!part[0]) return fail(L, line, "empty subscript", NULL);
                n->b = part[0];
            }
            *io = n;
        } else if (accept_op(L, "(")) {
            jnode_t *n = node(L, JN_CALL, line);
            if (!n) return oom(L);
            n->a = *io;
            if ((rc = parse_args(L, n))) return rc;
            *io = n;
        } else if (accept_op(L, "|")) {
            if ((rc = parse_filter_or_test(L, JN_FILTER, *io, io))) return rc;
        } else if (accept_name(L, "is")) {
            if ((rc = parse_filter_or_test(L, JN_TEST, *io, io))) return rc;
        } else {
            return HIRED_OK;
        }
    }
}

static int parse_unary(lex_t *L, jnode_t **out) {
    int line = cur(L)->line;
    if (is_op(cur(L), "-") || is_op(cur(L), "+")) {
        int op = is_op(cur(L), "-") ? OP_NEG : OP_POS;
        L->pos++;
        jnode_t *n = node(L, JN_UNARY, line);
        if (!n) return oom(L);
        n->op = op;
        if (++L->depth > JJ_MAX_DEPTH) return fail(L, line, "expression nested too deeply", NULL);
        int rc = parse_unary(L, &n->a);
        L->depth--;
        *out = n;
        return rc;
    }
    int rc = parse_primary(L, out);
    return rc ? rc : parse_postfix(L, out);
}

static jnode_t *binary(lex_t *L, int op, jnode_t *a, jnode_t *b, int line) {
    jnode_t *n = node(L, JN_BINARY, line);
    if (n) n->op = op, n->a = a, n->b = b;
    return n;
}

typedef int (*parse_fn)(lex_t *, jnode_t **);

static int parse_math2(lex_t *L, jnode_t **out) {
    int rc = parse_unary(L, out);
    while (!rc) {
        int line = cur(L)->line, op = is_op(cur(L), "*") ? OP_MUL : is_op(cur(L), "/") ? OP_DIV
                                      : is_op(cur(L), "//")                         ? OP_FLOORDIV
                                      : is_op(cur(L), "%")                          ? OP_MOD
                                                                                    : 0;
        if (!op) break;
        L->pos++;
        jnode_t *r;
        if ((rc = parse_unary(L, &r))) break;
        if (!(*out = binary(L, op, *out, r, line))) rc = oom(L);
    }
    return rc;
}

static int parse_concat(lex_t *L, jnode_t **out) {
    int rc = parse_math2(L, out);
    while (!rc && is_op(cur(L), "~")) {
        int line = cur(L)->line;
        L->pos++;
        jnode_t *r;
        if ((rc = parse_math2(L, &r))) break;
        if (!(*out = binary(L, OP_CONCAT, *out, r, line))) rc = oom(L);
    }
    return rc;
}

static int parse_math1(lex_t *L, jnode_t **out) {
    int rc = parse_concat(L, out);
    while (!rc && (is_op(cur(L), "+") || is_op(cur(L), "-"))) {
        int line = cur(L)->line, op = is_op(cur(L), "+") ? OP_ADD : OP_SUB;
        L->pos++;
        jnode_t *r;
        if ((rc = parse_concat(L, &r))) break;
        if (!(*out = binary(L, op, *out, r, line))) rc = oom(L);
    }
    return rc;
}

static int parse_compare(lex_t *L, jnode_t **out) {
    int rc = parse_math1(L, out);
    while (!rc) {
        token_t *t = cur(L);
        int line = t->line, op = 0;
        if (is_op(t, "==")) op = OP_EQ;
        else if (is_op(t, "!=")) op = OP_NE;
        else if (is_op(t, "<")) op = OP_LT;
        else if (is_op(t, "<=")) op = OP_LE;
        else if (is_op(t, ">")) op = OP_GT;
        else if (is_op(t, ">=")) op = OP_GE;
        else if (is_name(t, "in")) op = OP_IN;
        else if (is_name(t, "not") && is_name(&L->tok[L->pos + 1], "in")) op = OP_NOTIN, L->pos++;
        if (!op) break;
        L->pos++;
        jnode_t *r;
        if ((rc = parse_math1(L, &r))) break;
        if (!(*out = binary(L, op, *out, r, line))) rc = oom(L);
    }
    return rc;
}

static int parse_not(lex_t *L, jnode_t **out) {
    int line = cur(L)->line;
    if (accept_name(L, "not")) {
        jnode_t *n = node(L, JN_UNARY, line);
        if (!n) return oom(L);
        n->op = OP_NOT;
        if (++L->depth > JJ_MAX_DEPTH) return fail(L, line, "expression nested too deeply", NULL);
        int rc = parse_not(L, &n->a);
        L->depth--;
        *out = n;
        return rc;
    }
    return parse_compare(L, out);
}

static int parse_and(lex_t *L, jnode_t **out) {
    int rc = parse_not(L, out);
    while (!rc && is_name(cur(L), "and")) {
        int line = cur(L)->line;
        L->pos++;
        jnode_t *r;
        if ((rc = parse_not(L, &r))) break;
        if (!(*out = binary(L, OP_AND, *out, r, line))) rc = oom(L);
    }
    return rc;
}

static int parse_or(lex_t *L, jnode_t **out) {
    int rc = parse_and(L, out);
    while (!rc && is_name(cur(L), "or")) {
        int line = cur(L)->line;
        L->pos++;
        jnode_t *r;
        if ((rc = parse_and(L, &r))) break;
        if (!(*out = binary(L, OP_OR, *out, r, line))) rc = oom(L);
    }
    return rc;
}

/* expr: or-expression with an optional `if cond [else other]`. */
static int parse_expr(lex_t *L, jnode_t **out) {
    if (++L->depth > JJ_MAX_DEPTH) return fail(L, cur(L)->line, "expression nested too deeply", NULL);
    int rc = parse_or(L, out);
    while (!rc && is_name(cur(L), "if")) {
        int line = cur(L)->line;
        L->pos++;
        jnode_t *n = node(L, JN_COND, line);
        if (!n) {
            rc = oom(L);
            break;
        }
        n->b = *out;
        if ((rc = parse_or(L, &n->a))) break;
        if (accept_name(L, "else") && (rc = parse_or(L, &n->c))) break;
        *out = n;
    }
    L->depth--;
    return rc;
}

// ---- statements ---------------------------------------------------------------------------------

static int parse_body(lex_t *L, jnode_t **out, const char *const *stops, int *which);

static int expect_block_end(lex_t *L) {
    if (cur(L)->t == T_BLOCK_END) {
        L->pos++;
        return HIRED_OK;
    }
    return fail(L, cur(L)->line, "expected the end of the tag '%}'", NULL);
}

static int parse_if(lex_t *L, jnode_t **out, int line) {
    jnode_t *n = node(L, JN_IF, line);
    kids_t k = {0};
    int rc = n ? HIRED_OK : oom(L);
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    for (bool more = true; !rc && more;) {
        jnode_t *cond, *body;
        int which;
        if ((rc = parse_expr(L, &cond)) || (rc = expect_block_end(L)) || (rc = parse_body(L, &body, stops, &which)))
            break;
        if ((rc = kids_push(L, &k, cond)) || (rc = kids_push(L, &k, body))) break;
        if (which == 1) { /* else */
            static const char *const end[] = {"endif", NULL};
            if ((rc = expect_block_end(L)) || (rc = parse_body(L, &body, end, &which))) break;
            rc = kids_push(L, &k, body);
            more = false;
        } else if (which == 2) {
            more = false;
        }
        if (!more && !rc) rc = expect_block_end(L);
    }
    if (rc) {
        mem_free(k.p);
        return rc;
    }
    *out = n;
    return kids_finish(L, &k, n);
}

static int parse_for(lex_t *L, jnode_t **out, int line) {
    jnode_t *n = node(L, JN_FOR, line);
    if (!n) return oom(L);
    if (cur(L)->t != T_NAME) return fail(L, line, "for: expected a loop variable", NULL);
    n->s = cur(L)->p, n->sn = cur(L)->n;
    L->pos++;
    if (accept_op(L, ",")) {
        if (cur(L)->t != T_NAME) return fail(L, line, "for: expected a second loop variable", NULL);
        n->s2 = cur(L)->p, n->s2n = cur(L)->n;
        L->pos++;
    }
    if (!accept_name(L, "in")) return fail(L, line, "for: expected 'in'", NULL);
    int rc, which;
    /* the iterable: an or-expression (no inline if, which jinja2 reads as a loop filter) */
    if ((rc = parse_or(L, &n->a))) return rc;
    if (is_name(cur(L), "if")) return fail(L, line, "for: loop filters ('for x in y if c') are not supported", NULL);
    if (accept_name(L, "recursive")) return fail(L, line, "for: recursive loops are not supported", NULL);
    static const char *const stops[] = {"else", "endfor", NULL};
    if ((rc = expect_block_end(L)) || (rc = parse_body(L, &n->b, stops, &which))) return rc;
    if (which == 0) {
        static const char *const end[] = {"endfor", NULL};
        if ((rc = expect_block_end(L)) || (rc = parse_body(L, &n->c, end, &which))) return rc;
    }
    *out = n;
    return expect_block_end(L);
}

static int parse_set(lex_t *L, jnode_t **out, int line) {
    jnode_t *n = node(L, JN_SET, line);
    if (!n) return oom(L);
    if (cur(L)->t != T_NAME) return fail(L, line, "set: expected a variable name", NULL);
    n->s = cur(L)->p, n->sn = cur(L)->n;
    L->pos++;
    if (accept_op(L, ".")) {
        if (cur(L)->t != T_NAME) return fail(L, line, "set: expected an attribute name", NULL);
        n->s2 = cur(L)->p, n->s2n = cur(L)->n;
        L->pos++;
    }
    if (!accept_op(L, "=")) return fail(L, line, "set: block assignments ('{% set x %}...{% endset %}') and tuple "
                                                 "targets are not supported", NULL);
    int rc = parse_expr(L, &n->a);
    if (!rc) rc = expect_block_end(L);
    *out = n;
    return rc;
}

/* Statements up to one of `stops` (a block tag whose keyword is stops[*which]; the keyword is
 * consumed, the tag end is not) or the end of the template when stops is NULL. */
static int parse_body(lex_t *L, jnode_t **out, const char *const *stops, int *which) {
    jnode_t *body = node(L, JN_BODY, cur(L)->line);
    kids_t k = {0};
    int rc = body ? HIRED_OK : oom(L);
    if (++L->depth > JJ_MAX_DEPTH) rc = fail(L, cur(L)->line, "blocks nested too deeply", NULL);
    while (!rc) {
        token_t *t = cur(L);
        int line = t->line;
        jnode_t *st = NULL;
        if (t->t == T_EOF) {
            if (stops) {
                char want[64];
                snprintf(want, sizeof want, "(missing {%% %s %%})", stops[0][0] == 'e' && stops[1] ? stops[1] : stops[0]);
                for (int s = 0; stops[s]; s++)
                    if (!strncmp(stops[s], "end", 3)) snprintf(want, sizeof want, "(missing {%% %s %%})", stops[s]);
                rc = fail(L, line, "unexpected end of template", want);
            }
            break;
        }
        if (t->t == T_TEXT) {
            st = node(L, JN_TEXT, line);
            if (!st) rc = oom(L);
            else st->s = t->p, st->sn = t->n;
            L->pos++;
        } else if (t->t == T_VAR_BEGIN) {
            L->pos++;
            st = node(L, JN_PRINT, line);
            if (!st) rc = oom(L);
            else if (!(rc = parse_expr(L, &st->a))) {
                if (cur(L)->t == T_VAR_END) L->pos++;
                else rc = fail(L, cur(L)->line, "expected the end of the expression '}}'", NULL);
            }
        } else if (t->t == T_BLOCK_BEGIN) {
            L->pos++;
            token_t *kw = cur(L);
            if (kw->t != T_NAME) {
                rc = fail(L, line, "expected a tag name after '{%'", NULL);
                break;
            }
            bool stop = false;
            for (int s = 0; stops && stops[s]; s++)
                if (is_name(kw, stops[s])) {
                    *which = s;
                    L->pos++;
                    stop = true;
                    break;
                }
            if (stop) break;
            L->pos++;
            if (is_name(kw, "if")) rc = parse_if(L, &st, line);
            else if (is_name(kw, "for")) rc = parse_for(L, &st, line);
            else if (is_name(kw, "set")) rc = parse_set(L, &st, line);
            else if (is_name(kw, "break") || is_name(kw, "continue")) {
                st = node(L, is_name(kw, "break") ? JN_BREAK : JN_CONTINUE, line);
                rc = st ? expect_block_end(L) : oom(L);
            } else if (is_name(kw, "generation")) {
                static const char *const end[] = {"endgeneration", NULL};
                int w;
                if (!(rc = expect_block_end(L)) && !(rc = parse_body(L, &st, end, &w))) rc = expect_block_end(L);
            } else {
                char name[64];
                snprintf(name, sizeof name, "'%.*s'", (int)(kw->n < 40 ? kw->n : 40), kw->p);
                rc = fail(L, line, "unsupported or unexpected tag", name);
            }
        } else {
            rc = fail(L, line, "unexpected token", NULL);
        }
        if (!rc && st) rc = kids_push(L, &k, st);
    }
    L->depth--;
    if (rc) {
        mem_free(k.p);
        return rc;
    }
    *out = body;
    return kids_finish(L, &k, body);
}

jinja_t *jinja_parse(const char *src, size_t n, const char *name, char *err) {
    jinja_t *J = mem_calloc(1, sizeof *J);
    if (!J || !(J->name = mem_strdup(name ? name : "template"))) {
        hired_errf(err, HIRED_ENOMEM, "%s: out of memory parsing", name ? name : "template");
        jinja_destroy(&J);
        return NULL;
    }
    if (n > JJ_MAX_SOURCE) {
        hired_errf(err, HIRED_ERANGE, "%s: template of %zu bytes is over the %zu-byte limit", J->name, n, JJ_MAX_SOURCE);
        jinja_destroy(&J);
        return NULL;
    }
    /* newlines normalised to \n, one trailing newline dropped */
    char *s = jj_alloc(&J->arena, n + 1);
    size_t k = 0;
    for (size_t i = 0; s && i < n; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else {
            s[k++] = src[i];
        }
    }
    if (k && s && s[k - 1] == '\n') k--;
    lex_t L = {.J = J, .err = err, .src = s, .len = k};
    int rc = s ? lex(&L) : oom(&L);
    if (!rc) rc = parse_body(&L, &J->root, NULL, NULL);
    mem_free(L.tok);
    if (rc) {
        jinja_destroy(&J);
        return NULL;
    }
    return J;
}
