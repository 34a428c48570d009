/* cfg.c — the configuration table: defaults, libconfig files, command-line overrides, logging
 * (see cfg.h).
 *
 * Every value, whatever its source (default text, command-line text, libconfig setting), goes
 * through one path: parse into a value_t, check its range, then store it into the caller's
 * struct (freeing what the field held). So a default that is out of range is caught like a bad
 * file value, and a failed cfg_set leaves the field untouched.
 * libconfig allocates with plain malloc; only cfg's own copies go through mem.h.
 * Not here: the tables themselves (each service), hired.cfg.example. */
#include "cfg.h"

#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "mem.h"

#define CFG_KEY_MAX 256

/* One parsed value, owned until stored or freed. */
typedef struct {
    int64_t i;
    double d;
    bool b;
    int e;
    char *s;
    cfg_strlist_t l;
} value_t;

// ---- helpers ---------------------------------------------------------------------------------

static void *field(const cfg_entry_t *e, void *values) { return (char *)values + e->offset; }
static const void *cfield(const cfg_entry_t *e, const void *values) { return (const char *)values + e->offset; }

static void list_free(cfg_strlist_t *l) {
    for (int i = 0; i < l->n; i++) mem_free(l->items[i]);
    mem_free(l->items);
    l->items = NULL;
    l->n = 0;
}

static void value_free(value_t *v) {
    mem_free(v->s);
    v->s = NULL;
    list_free(&v->l);
}

/* Index of `s` (length len) among e->choices, or -1. */
static int choice_index(const cfg_entry_t *e, const char *s, size_t len) {
    const char *c = e->choices;
    for (int i = 0; c && *c; i++) {
        const char *bar = strchr(c, '|');
        size_t cl = bar ? (size_t)(bar - c) : strlen(c);
        if (cl == len && !strncmp(c, s, len)) return i;
        if (!bar) break;
        c = bar + 1;
    }
    return -1;
}

/* Writes the i-th choice into buf. */
static const char *choice_name(const cfg_entry_t *e, int idx, char *buf, size_t cap) {
    const char *c = e->choices;
    for (int i = 0; c; i++) {
        const char *bar = strchr(c, '|');
        size_t cl = bar ? (size_t)(bar - c) : strlen(c);
        if (i == idx) {
            snprintf(buf, cap, "%.*s", (int)cl, c);
            return buf;
        }
        c = bar ? bar + 1 : NULL;
    }
    snprintf(buf, cap, "?");
    return buf;
}

static bool has_max(const cfg_entry_t *e) { return e->max > 0; }

/* "an integer in [1, 65535]" etc. */
static const char *describe(const cfg_entry_t *e, char *buf, size_t cap) {
    switch (e->type) {
    case CFG_INT: snprintf(buf, cap, "an integer in [%.0f, %.0f]", e->min, e->max); break;
    case CFG_DOUBLE: snprintf(buf, cap, "a number in [%g, %g]", e->min, e->max); break;
    case CFG_BOOL: snprintf(buf, cap, "true or false"); break;
    case CFG_STRING:
        if (has_max(e))
            snprintf(buf, cap, "a string of %.0f to %.0f characters", e->min, e->max);
        else
            snprintf(buf, cap, "a string");
        break;
    case CFG_STRLIST:
        if (has_max(e))
            snprintf(buf, cap, "a list of %.0f to %.0f non-empty strings", e->min, e->max);
        else
            snprintf(buf, cap, "a list of non-empty strings");
        break;
    case CFG_ENUM: snprintf(buf, cap, "one of %s", e->choices ? e->choices : ""); break;
    }
    return buf;
}

static int type_error(const cfg_entry_t *e, const char *where, const char *got, char *err) {
    char d[128];
    return hired_errf(err, HIRED_EFORMAT, "%s: '%s' must be %s (got %s)", where, e->key, describe(e, d, sizeof d), got);
}

static int range_error(const cfg_entry_t *e, const char *where, const char *got, char *err) {
    char d[128];
    return hired_errf(err, HIRED_ERANGE, "%s: '%s' must be %s (got %s)", where, e->key, describe(e, d, sizeof d), got);
}

/* Checks v against e's range. */
static int check_range(const cfg_entry_t *e, const value_t *v, const char *where, char *err) {
    char got[64];
    switch (e->type) {
    case CFG_INT:
        if ((double)v->i < e->min || (double)v->i > e->max) {
            snprintf(got, sizeof got, "%lld", (long long)v->i);
            return range_error(e, where, got, err);
        }
        break;
    case CFG_DOUBLE:
        if (!isfinite(v->d) || v->d < e->min || v->d > e->max) {
            snprintf(got, sizeof got, "%g", v->d);
            return range_error(e, where, got, err);
        }
        break;
    case CFG_STRING:
        if (has_max(e) && ((double)strlen(v->s) < e->min || (double)strlen(v->s) > e->max)) {
            snprintf(got, sizeof got, "%zu characters", strlen(v->s));
            return range_error(e, where, got, err);
        }
        break;
    case CFG_STRLIST:
        if (has_max(e) && ((double)v->l.n < e->min || (double)v->l.n > e->max)) {
            snprintf(got, sizeof got, "%d items", v->l.n);
            return range_error(e, where, got, err);
        }
        for (int i = 0; i < v->l.n; i++)
            if (!v->l.items[i][0]) return type_error(e, where, "an empty item", err);
        break;
    case CFG_BOOL:
    case CFG_ENUM: break;
    }
    return HIRED_OK;
}

/* Moves v into the caller's field, freeing what the field held. */
static void store(const cfg_entry_t *e, void *values, value_t *v) {
    void *f = field(e, values);
    switch (e->type) {
    case CFG_INT: *(int64_t *)f = v->i; break;
    case CFG_DOUBLE: *(double *)f = v->d; break;
    case CFG_BOOL: *(bool *)f = v->b; break;
    case CFG_ENUM: *(int *)f = v->e; break;
    case CFG_STRING:
        mem_free(*(char **)f);
        *(char **)f = v->s;
        v->s = NULL;
        break;
    case CFG_STRLIST:
        list_free((cfg_strlist_t *)f);
        *(cfg_strlist_t *)f = v->l;
        v->l = (cfg_strlist_t){0, NULL};
        break;
    }
}

/* Copies len bytes of s into a new string. Caller owns the result. */
static char *dup_n(const char *s, size_t len) {
    char *d = mem_alloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

// ---- values from text (defaults, command line) -----------------------------------------------

static int parse_text(const cfg_entry_t *e, const char *text, value_t *v, const char *where, char *err) {
    char got[96];
    snprintf(got, sizeof got, "'%.80s'", text);
    switch (e->type) {
    case CFG_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(text, &end, 0);
        if (!text[0] || *end || errno) return type_error(e, where, got, err);
        v->i = x;
        break;
    }
    case CFG_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(text, &end);
        if (!text[0] || *end || errno || !isfinite(x)) return type_error(e, where, got, err);
        v->d = x;
        break;
    }
    case CFG_BOOL:
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcasecmp(text, "on") || !strcmp(text, "1"))
            v->b = true;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcasecmp(text, "off") || !strcmp(text, "0"))
            v->b = false;
        else
            return type_error(e, where, got, err);
        break;
    case CFG_ENUM:
        v->e = choice_index(e, text, strlen(text));
        if (v->e < 0) return type_error(e, where, got, err);
        break;
    case CFG_STRING:
        v->s = mem_strdup(text);
        if (!v->s) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
        break;
    case CFG_STRLIST: {
        int n = 0;
        if (text[0]) {
            n = 1;
            for (const char *p = text; *p; p++) n += *p == ',';
        }
        v->l.items = mem_calloc((size_t)n + 1, sizeof *v->l.items);
        if (!v->l.items) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
        const char *p = text;
        for (int i = 0; i < n; i++) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            v->l.items[i] = dup_n(p, len);
            if (!v->l.items[i]) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
            v->l.n++;
            p += len + 1;
        }
        break;
    }
    }
    return check_range(e, v, where, err);
}

// ---- values from libconfig settings ----------------------------------------------------------

static const char *setting_type_name(int type) {
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "an unknown type";
    }
}

static int parse_setting(const cfg_entry_t *e, const config_setting_t *s, value_t *v, const char *where, char *err) {
    int type = config_setting_type(s);
    const char *tn = setting_type_name(type);
    switch (e->type) {
    case CFG_INT:
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) return type_error(e, where, tn, err);
        v->i = config_setting_get_int64(s);
        break;
    case CFG_DOUBLE:
        if (type == CONFIG_TYPE_FLOAT)
            v->d = config_setting_get_float(s);
        else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
            v->d = (double)config_setting_get_int64(s);
        else
            return type_error(e, where, tn, err);
        break;
    case CFG_BOOL:
        if (type != CONFIG_TYPE_BOOL) return type_error(e, where, tn, err);
        v->b = config_setting_get_bool(s) != 0;
        break;
    case CFG_STRING:
    case CFG_ENUM: {
        if (type != CONFIG_TYPE_STRING) return type_error(e, where, tn, err);
        const char *str = config_setting_get_string(s);
        if (!str) str = "";
        if (e->type == CFG_ENUM) {
            v->e = choice_index(e, str, strlen(str));
            if (v->e < 0) {
                char got[96];
                snprintf(got, sizeof got, "'%.80s'", str);
                return type_error(e, where, got, err);
            }
        } else {
            v->s = mem_strdup(str);
            if (!v->s) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
        }
        break;
    }
    case CFG_STRLIST: {
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) return type_error(e, where, tn, err);
        int n = config_setting_length(s);
        v->l.items = mem_calloc((size_t)n + 1, sizeof *v->l.items);
        if (!v->l.items) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
        for (int i = 0; i < n; i++) {
            const config_setting_t *it = config_setting_get_elem(s, (unsigned)i);
            if (!it || config_setting_type(it) != CONFIG_TYPE_STRING)
                return type_error(e, where, "a list holding a non-string", err);
            v->l.items[i] = mem_strdup(config_setting_get_string(it));
            if (!v->l.items[i]) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
            v->l.n++;
        }
        break;
    }
    }
    return check_range(e, v, where, err);
}

// ---- table -----------------------------------------------------------------------------------

static const cfg_entry_t *find(const cfg_entry_t *t, int n, const char *key, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(t[i].key) == len && !strncmp(t[i].key, key, len)) return &t[i];
    return NULL;
}

/* True when some key starts with "prefix." */
static bool is_group(const cfg_entry_t *t, int n, const char *prefix) {
    size_t pl = strlen(prefix);
    for (int i = 0; i < n; i++)
        if (!strncmp(t[i].key, prefix, pl) && t[i].key[pl] == '.') return true;
    return false;
}

void cfg_free(const cfg_entry_t *t, int n, void *values) {
    for (int i = 0; i < n; i++) {
        if (t[i].type == CFG_STRING) {
            char **s = field(&t[i], values);
            mem_free(*s);
            *s = NULL;
        } else if (t[i].type == CFG_STRLIST) {
            list_free(field(&t[i], values));
        }
    }
}

int cfg_defaults(const cfg_entry_t *t, int n, void *values, char *err) {
    for (int i = 0; i < n; i++) {
        const cfg_entry_t *e = &t[i];
        if (!e->key || !e->key[0] || strlen(e->key) >= CFG_KEY_MAX || e->key[0] == '.' ||
            e->key[strlen(e->key) - 1] == '.' || strstr(e->key, ".."))
            return hired_errf(err, HIRED_EINVAL, "config table: entry %d has an invalid key", i);
        if ((unsigned)e->type > CFG_ENUM || (e->type == CFG_ENUM && (!e->choices || !e->choices[0])))
            return hired_errf(err, HIRED_EINVAL, "config table: '%s' has an invalid type or no choices", e->key);
        if (find(t, i, e->key, strlen(e->key)))
            return hired_errf(err, HIRED_EINVAL, "config table: '%s' appears twice", e->key);
        if (is_group(t, n, e->key))
            return hired_errf(err, HIRED_EINVAL, "config table: '%s' is both a key and a group", e->key);
        if (!e->def) return hired_errf(err, HIRED_EINVAL, "config table: '%s' has no default", e->key);
    }
    cfg_free(t, n, values);
    for (int i = 0; i < n; i++) {
        value_t v = {0};
        int rc = parse_text(&t[i], t[i].def, &v, "config table default", err);
        if (rc) {
            value_free(&v);
            return rc == HIRED_ENOMEM ? rc : HIRED_EINVAL;
        }
        store(&t[i], values, &v);
    }
    return HIRED_OK;
}

// ---- files -----------------------------------------------------------------------------------

/* "FILE:LINE" of a setting. */
static void where_of(const config_setting_t *s, const char *path, char *buf, size_t cap) {
    const char *f = config_setting_source_file(s);
    snprintf(buf, cap, "%s:%u", f ? f : path, (unsigned)config_setting_source_line(s));
}

/* Applies every setting of group `g` (whose dotted name is prefix, "" at the root). */
static int apply_group(const cfg_entry_t *t, int n, const config_setting_t *g, const char *prefix, const char *path,
                       void *values, char *err) {
    int count = config_setting_length(g);
    for (int i = 0; i < count; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        char where[CFG_KEY_MAX + 64], key[CFG_KEY_MAX];
        where_of(s, path, where, sizeof where);
        int kl = snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", name ? name : "");
        if (kl < 0 || kl >= (int)sizeof key)
            return hired_errf(err, HIRED_EFORMAT, "%s: unknown key '%.200s...'", where, key);
        const cfg_entry_t *e = find(t, n, key, strlen(key));
        if (config_setting_type(s) == CONFIG_TYPE_GROUP && !e) {
            if (!is_group(t, n, key)) return hired_errf(err, HIRED_EFORMAT, "%s: unknown key '%s'", where, key);
            int rc = apply_group(t, n, s, key, path, values, err);
            if (rc) return rc;
            continue;
        }
        if (!e) return hired_errf(err, HIRED_EFORMAT, "%s: unknown key '%s'", where, key);
        value_t v = {0};
        int rc = parse_setting(e, s, &v, where, err);
        if (rc) {
            value_free(&v);
            return rc;
        }
        store(e, values, &v);
    }
    return HIRED_OK;
}

int cfg_load(const cfg_entry_t *t, int n, const char *path, void *values, char *err) {
    int rc = cfg_defaults(t, n, values, err);
    if (rc || !path) return rc;
    FILE *probe = fopen(path, "r"); /* libconfig does not report why a file could not be read */
    if (!probe) {
        int e = errno;
        return hired_errf(err, e == ENOENT ? HIRED_ENOTFOUND : HIRED_EIO, "cannot open %s: %s", path, strerror(e));
    }
    fclose(probe);
    config_t c;
    config_init(&c);
    if (!config_read_file(&c, path)) {
        if (config_error_type(&c) == CONFIG_ERR_FILE_IO)
            rc = hired_errf(err, HIRED_EIO, "cannot read %s", path);
        else
            rc = hired_errf(err, HIRED_EFORMAT, "%s:%d: %s", config_error_file(&c) ? config_error_file(&c) : path,
                            config_error_line(&c), config_error_text(&c) ? config_error_text(&c) : "syntax error");
    } else {
        rc = apply_group(t, n, config_root_setting(&c), "", path, values, err);
    }
    config_destroy(&c);
    return rc;
}

// ---- command line ----------------------------------------------------------------------------

int cfg_set(const cfg_entry_t *t, int n, void *values, const char *assignment, char *err) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return hired_errf(err, HIRED_EINVAL, "command line: '%.200s' is not key=value", assignment);
    const cfg_entry_t *e = find(t, n, assignment, (size_t)(eq - assignment));
    if (!e)
        return hired_errf(err, HIRED_EINVAL, "command line: unknown key '%.*s'", (int)(eq - assignment), assignment);
    value_t v = {0};
    int rc = parse_text(e, eq + 1, &v, "command line", err);
    if (rc) {
        value_free(&v);
        return rc;
    }
    store(e, values, &v);
    return HIRED_OK;
}

int cfg_args(const cfg_entry_t *t, int n, void *values, int argc, char **argv, char *err) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cfg_help(t, n, stdout);
            return 1;
        }
        const char *p = NULL;
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) return hired_errf(err, HIRED_EINVAL, "command line: %s needs a file", a);
            p = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            p = a + 9;
        } else if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) return hired_errf(err, HIRED_EINVAL, "command line: -o needs key=value");
            i++;
        } else if (strncmp(a, "--", 2) || !strchr(a, '=')) {
            return hired_errf(err, HIRED_EINVAL, "command line: unknown argument '%.200s'", a);
        }
        if (p) {
            if (path) return hired_errf(err, HIRED_EINVAL, "command line: more than one configuration file");
            path = p;
        }
    }
    int rc = cfg_load(t, n, path, values, err);
    if (rc) return rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            i++;
        } else if (!strcmp(a, "-o")) {
            if ((rc = cfg_set(t, n, values, argv[++i], err))) return rc;
        } else if (!strncmp(a, "--", 2) && strncmp(a, "--config=", 9)) {
            if ((rc = cfg_set(t, n, values, a + 2, err))) return rc;
        }
    }
    return HIRED_OK;
}

// ---- a command's options -----------------------------------------------------------------------

/* Appends one item to a list field (its range is checked once every argument is read); the
 * first item given on the command line replaces the default items (*fresh: not yet). */
static int list_append(const cfg_entry_t *e, void *values, const char *item, bool *fresh, const char *where,
                       char *err) {
    cfg_strlist_t *l = field(e, values);
    if (*fresh) {
        list_free(l);
        *fresh = false;
    }
    char **items = mem_realloc(l->items, ((size_t)l->n + 2) * sizeof *items);
    if (!items) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
    l->items = items;
    if (!(items[l->n] = mem_strdup(item))) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", where);
    items[++l->n] = NULL;
    return HIRED_OK;
}

/* One option of a command (name without the dashes) with its value text (NULL: bare). Returns
 * 1 when the value was taken from the next argument, 0 when not, negative on an error. */
static int cli_option(const cfg_entry_t *t, int n, void *values, bool *fresh, const char *name, size_t len,
                      const char *inline_val, const char *next, cfg_cli_extra_fn extra, void *user, char *err) {
    char opt[CFG_KEY_MAX + 3];
    snprintf(opt, sizeof opt, "--%.*s", (int)(len < CFG_KEY_MAX ? len : CFG_KEY_MAX), name);
    const cfg_entry_t *e = find(t, n, name, len);
    const char *val = inline_val ? inline_val : e && e->type == CFG_BOOL ? "true" : next;
    if (!e) {
        int rc = extra && val ? extra(user, opt + 2, val, err) : 0;
        if (rc < 0) return rc;
        if (rc == 0) return hired_errf(err, HIRED_EINVAL, "unknown option '%s'", opt);
        return inline_val ? 0 : 1;
    }
    if (!val) return hired_errf(err, HIRED_EINVAL, "%s needs a value", opt);
    int rc;
    if (e->type == CFG_STRLIST) {
        rc = val[0] ? list_append(e, values, val, &fresh[e - t], opt, err) : type_error(e, opt, "an empty item", err);
    } else {
        value_t v = {0};
        rc = parse_text(e, val, &v, opt, err);
        if (!rc) store(e, values, &v);
        value_free(&v);
    }
    if (rc) return rc;
    return inline_val || e->type == CFG_BOOL ? 0 : 1;
}

int cfg_cli(const cfg_entry_t *t, int n, void *values, int argc, char **argv, const char *usage, const char **pos,
            int max_pos, int *n_pos, cfg_cli_extra_fn extra, void *user, char *err) {
    int rc = cfg_defaults(t, n, values, err);
    if (n_pos) *n_pos = 0;
    bool *fresh = rc ? NULL : mem_calloc((size_t)n, sizeof *fresh); /* list still holding its defaults */
    if (!rc && !fresh) rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) fresh[i] = true;
    for (int i = 0; !rc && i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s", usage);
            cfg_options(t, n, stdout);
            mem_free(fresh);
            return 1;
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            if (!n_pos || *n_pos >= max_pos)
                rc = max_pos ? hired_errf(err, HIRED_EINVAL, "at most %d argument%s besides the options (got '%.200s'; "
                                            "quote a question)", max_pos, max_pos == 1 ? "" : "s", a)
                               : hired_errf(err, HIRED_EINVAL, "unexpected argument '%.200s'", a);
            else pos[(*n_pos)++] = a;
            continue;
        }
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        int used = cli_option(t, n, values, fresh, a + 2, len, eq ? eq + 1 : NULL, i + 1 < argc ? argv[i + 1] : NULL, extra,
                              user, err);
        if (used < 0) rc = used;
        else i += used;
    }
    for (int i = 0; !rc && i < n; i++)
        if (t[i].type == CFG_STRLIST) {
            char opt[CFG_KEY_MAX + 3];
            snprintf(opt, sizeof opt, "--%s", t[i].key);
            value_t v = {.l = *(cfg_strlist_t *)field(&t[i], values)};
            rc = check_range(&t[i], &v, opt, err);
        }
    mem_free(fresh);
    return rc;
}

void cfg_options(const cfg_entry_t *t, int n, FILE *out) {
    for (int i = 0; i < n; i++) {
        char d[128];
        const char *def = t[i].def && t[i].def[0] ? t[i].def : NULL;
        fprintf(out, "  --%-22s %s%s%s%s\n      %s\n", t[i].key, describe(&t[i], d, sizeof d),
                t[i].type == CFG_STRLIST ? " (repeat the option)" : "", def ? "; default " : "", def ? def : "",
                t[i].help ? t[i].help : "");
    }
}

// ---- output ----------------------------------------------------------------------------------

/* The value of e in values, as text (strings quoted). */
static const char *format_value(const cfg_entry_t *e, const void *values, char *buf, size_t cap) {
    const void *f = cfield(e, values);
    switch (e->type) {
    case CFG_INT: snprintf(buf, cap, "%lld", (long long)*(const int64_t *)f); break;
    case CFG_DOUBLE: { /* shortest of %.15g / %.17g that reads back exactly */
        double d = *(const double *)f;
        snprintf(buf, cap, "%.15g", d);
        if (strtod(buf, NULL) != d) snprintf(buf, cap, "%.17g", d);
        break;
    }
    case CFG_BOOL: snprintf(buf, cap, "%s", *(const bool *)f ? "true" : "false"); break;
    case CFG_ENUM: choice_name(e, *(const int *)f, buf, cap); break;
    case CFG_STRING: {
        const char *s = *(char *const *)f;
        snprintf(buf, cap, s ? "\"%s\"" : "(unset)", s);
        break;
    }
    case CFG_STRLIST: {
        const cfg_strlist_t *l = f;
        size_t off = (size_t)snprintf(buf, cap, "[");
        for (int i = 0; i < l->n && off < cap; i++)
            off += (size_t)snprintf(buf + off, cap - off, "%s\"%s\"", i ? ", " : "", l->items[i]);
        if (off < cap) snprintf(buf + off, cap - off, "]");
        break;
    }
    }
    return buf;
}

void cfg_log(const cfg_entry_t *t, int n, const void *values) {
    for (int i = 0; i < n; i++) {
        char buf[1024];
        log_info("config: %s = %s", t[i].key, format_value(&t[i], values, buf, sizeof buf));
    }
}

void cfg_help(const cfg_entry_t *t, int n, FILE *out) {
    fprintf(out, "Options: -c FILE (libconfig syntax), -o KEY=VALUE or --KEY=VALUE (override), -h\n");
    for (int i = 0; i < n; i++) {
        char d[128];
        fprintf(out, "  %-28s %s; default %s\n      %s\n", t[i].key, describe(&t[i], d, sizeof d),
                t[i].def ? t[i].def : "", t[i].help ? t[i].help : "");
    }
}
