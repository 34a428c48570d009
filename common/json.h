/* json.h — small helpers over cJSON for reading JSON from outside: a bounded file reader, a
 * parser whose errors carry a line:column, and typed getters whose errors name the file and the
 * key path ("config.json: text_config.num_attention_heads must be ...").
 *
 * The first call to any function here installs mem_alloc/mem_free as cJSON's allocator
 * (cJSON_InitHooks, once per process), so the mem.h fault hook reaches cJSON's allocations too.
 * That is harmless for other cJSON users: with the hook off mem_alloc is malloc and mem_free is
 * free. Not here: writing JSON, schema knowledge (hfconfig.c, st.c). */
#ifndef HIRED_JSON_H
#define HIRED_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Installs the mem.h allocator into cJSON (idempotent, thread-safe). Called by every function
 * below; call it yourself before using cJSON directly if you want the fault hook to reach it. */
void json_init(void);

/* Parses len bytes of buf as one JSON value followed only by whitespace. buf need not be
 * NUL-terminated; a NUL byte inside is an error. `what` names the input in messages
 * ("WHAT:LINE:COL: malformed JSON"). Caller owns *out (cJSON_Delete). HIRED_EFORMAT /
 * HIRED_ENOMEM with err filled. */
int json_parse(const char *what, const char *buf, size_t len, cJSON **out, char *err);

/* Reads the whole file `path` (at most max_bytes) and parses it. Caller owns *out (cJSON_Delete).
 * HIRED_ENOTFOUND (no such file), HIRED_EIO, HIRED_ERANGE (too large), HIRED_EFORMAT, HIRED_ENOMEM. */
int json_read_file(const char *path, size_t max_bytes, cJSON **out, char *err);

/* Where a getter reports: `file` is the name used in messages, `prefix` the key path of `obj`
 * ("" at top level, else e.g. "text_config."). Borrowed strings. */
typedef struct {
    const char *file;
    const char *prefix;
    char *err;
} json_where_t;

/* Typed optional getters: an absent key yields `def`; a present key of the wrong type or out of
 * [lo, hi] is an error (HIRED_EFORMAT for the type, HIRED_ERANGE for the range) naming
 * file and prefix+key. JSON null counts as present (and wrong) — callers that give null a meaning
 * test json_is_null first. Integers must be integral numbers (1.0 is accepted, 1.5 is not). */
int json_opt_int(const json_where_t *w, const cJSON *obj, const char *key, int64_t lo, int64_t hi,
                 int64_t def, int64_t *out);
int json_opt_double(const json_where_t *w, const cJSON *obj, const char *key, double lo, double hi,
                    double def, double *out);
int json_opt_bool(const json_where_t *w, const cJSON *obj, const char *key, bool def, bool *out);
/* *out is borrowed from obj (or is def). */
int json_opt_string(const json_where_t *w, const cJSON *obj, const char *key, const char *def,
                    const char **out);

/* True when obj has `key` (case-sensitive) / has it with the value null. */
bool json_has(const cJSON *obj, const char *key);
bool json_is_null(const cJSON *obj, const char *key);

/* True when item is a number holding an integer in [lo, hi] (exactly representable). */
bool json_is_int_in(const cJSON *item, int64_t lo, int64_t hi);

#endif
