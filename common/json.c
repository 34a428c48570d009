/* json.c — see json.h. Owns: the cJSON allocator hook, bounded file reading, typed getters.
 * Invariant: cJSON only ever sees NUL-terminated copies (cJSON_ParseWithLength in cJSON <= 1.7.17
 * can read past the end of an unterminated string), so parsing never touches bytes outside the
 * caller's buffer. Not here: any knowledge of what the keys mean. */
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "file.h"
#include "mem.h"

// ---- allocator hook --------------------------------------------------------------------------

/* Set by the hook when an allocation fails during the current thread's parse, so a NULL from
 * cJSON can be reported as HIRED_ENOMEM rather than as malformed input. */
static _Thread_local bool t_oom;

static void *json_malloc(size_t n) {
    void *p = mem_alloc(n);
    if (!p) t_oom = true;
    return p;
}

static void json_free(void *p) { mem_free(p); }

static pthread_once_t g_hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void) {
    cJSON_Hooks h = {.malloc_fn = json_malloc, .free_fn = json_free};
    cJSON_InitHooks(&h);
}

void json_init(void) { pthread_once(&g_hooks_once, install_hooks); }

// ---- parsing ---------------------------------------------------------------------------------

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* 1-based line and column of byte `pos` in buf. */
static void line_col(const char *buf, size_t pos, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

int json_parse(const char *what, const char *buf, size_t len, cJSON **out, char *err) {
    json_init();
    *out = NULL;
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        int line, col;
        line_col(buf, (size_t)(nul - buf), &line, &col);
        return hired_errf(err, HIRED_EFORMAT, "%s:%d:%d: malformed JSON (NUL byte)", what, line, col);
    }
    if (len == SIZE_MAX) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", what);
    char *copy = mem_alloc(len + 1);
    if (!copy) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory reading JSON", what);
    memcpy(copy, buf, len);
    copy[len] = '\0';

    t_oom = false;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &end, 0);
    if (!root) {
        int rc;
        if (t_oom) {
            rc = hired_errf(err, HIRED_ENOMEM, "%s: out of memory parsing JSON", what);
        } else {
            size_t pos = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
            int line, col;
            line_col(copy, pos, &line, &col);
            rc = hired_errf(err, HIRED_EFORMAT, "%s:%d:%d: malformed JSON", what, line, col);
        }
        mem_free(copy);
        return rc;
    }
    /* only whitespace may follow the value */
    size_t pos = (size_t)(end - copy);
    while (pos < len && is_ws(copy[pos])) pos++;
    if (pos < len) {
        int line, col;
        line_col(copy, pos, &line, &col);
        cJSON_Delete(root);
        mem_free(copy);
        return hired_errf(err, HIRED_EFORMAT, "%s:%d:%d: malformed JSON (trailing data)", what, line, col);
    }
    mem_free(copy);
    *out = root;
    return HIRED_OK;
}

int json_read_file(const char *path, size_t max_bytes, cJSON **out, char *err) {
    *out = NULL;
    uint8_t *buf;
    size_t n;
    int rc = file_read(path, max_bytes, &buf, &n, err);
    if (rc) return rc;
    rc = json_parse(path, (const char *)buf, n, out, err);
    mem_free(buf);
    return rc;
}

// ---- typed getters ---------------------------------------------------------------------------

bool json_has(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) && cJSON_GetObjectItemCaseSensitive(obj, key) != NULL;
}

bool json_is_null(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, key));
}

bool json_is_int_in(const cJSON *item, int64_t lo, int64_t hi) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    /* 2^53 bounds keep the double -> int64 conversion exact and defined */
    if (!isfinite(v) || v != floor(v) || fabs(v) > 9007199254740992.0) return false;
    int64_t i = (int64_t)v;
    return i >= lo && i <= hi;
}

int json_opt_int(const json_where_t *w, const cJSON *obj, const char *key, int64_t lo, int64_t hi,
                 int64_t def, int64_t *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) {
        *out = def;
        return HIRED_OK;
    }
    if (!json_is_int_in(it, INT64_MIN, INT64_MAX))
        return hired_errf(w->err, HIRED_EFORMAT, "%s: %s%s must be an integer", w->file, w->prefix, key);
    int64_t v = (int64_t)it->valuedouble;
    if (v < lo || v > hi)
        return hired_errf(w->err, HIRED_ERANGE, "%s: %s%s must be an integer in [%lld, %lld] (got %lld)", w->file,
                          w->prefix, key, (long long)lo, (long long)hi, (long long)v);
    *out = v;
    return HIRED_OK;
}

int json_opt_double(const json_where_t *w, const cJSON *obj, const char *key, double lo, double hi,
                    double def, double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) {
        *out = def;
        return HIRED_OK;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return hired_errf(w->err, HIRED_EFORMAT, "%s: %s%s must be a number", w->file, w->prefix, key);
    double v = it->valuedouble;
    if (v < lo || v > hi)
        return hired_errf(w->err, HIRED_ERANGE, "%s: %s%s must be a number in [%g, %g] (got %g)", w->file, w->prefix,
                          key, lo, hi, v);
    *out = v;
    return HIRED_OK;
}

int json_opt_bool(const json_where_t *w, const cJSON *obj, const char *key, bool def, bool *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) {
        *out = def;
        return HIRED_OK;
    }
    if (!cJSON_IsBool(it))
        return hired_errf(w->err, HIRED_EFORMAT, "%s: %s%s must be true or false", w->file, w->prefix, key);
    *out = cJSON_IsTrue(it);
    return HIRED_OK;
}

int json_opt_string(const json_where_t *w, const cJSON *obj, const char *key, const char *def,
                    const char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) {
        *out = def;
        return HIRED_OK;
    }
    if (!cJSON_IsString(it) || !it->valuestring)
        return hired_errf(w->err, HIRED_EFORMAT, "%s: %s%s must be a string", w->file, w->prefix, key);
    *out = it->valuestring;
    return HIRED_OK;
}
