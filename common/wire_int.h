/* wire_int.h — internals shared by the wire codec's files (never included outside common/wire*.c,
 * never exported from libhired): the bounded msgpack scan and the typed readers (wire_parse.c).
 * A reader checks the msgpack type and the limit of one value and names the field in its error:
 * "<TYPE>: field '<f>' must be ..." (HIRED_EPROTO) or "... is N, limit M" (HIRED_ERANGE).
 * The array fields `messages` and `visuals` (wire_records.c) are decoded, encoded, checked,
 * copied and freed through the wr_ functions below.
 * Not here: the message table and its rules (wire.c). */
#ifndef HIRED_WIRE_INT_H
#define HIRED_WIRE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "wire.h"

/* What a reader needs to word its error: the message type's name and the error buffer. */
typedef struct {
    const char *tn;
    char *err;
} wp_ctx_t;

/* Walks one msgpack object at p[*pos], checking every declared length and element count against
 * the n bytes there are and the nesting against WIRE_MAX_DEPTH, so that msgpack-c never
 * allocates by a count the bytes cannot back. 0 or HIRED_EPROTO. */
int wp_scan(const uint8_t *p, size_t n, size_t *pos, int depth, char *err);

/* Whether k is the string key s. */
bool wp_key_is(const msgpack_object *k, const char *s);
/* "<TYPE>: field 'field' must be what" (HIRED_EPROTO). */
int wp_type_err(wp_ctx_t *c, const char *field, const char *what);
int wp_get_u64(wp_ctx_t *c, const msgpack_object *o, const char *f, uint64_t max, uint64_t *out);
int wp_get_u32(wp_ctx_t *c, const msgpack_object *o, const char *f, uint32_t max, uint32_t *out);
int wp_get_i32(wp_ctx_t *c, const msgpack_object *o, const char *f, int32_t *out);
int wp_get_double(wp_ctx_t *c, const msgpack_object *o, const char *f, double *out);
int wp_get_bool(wp_ctx_t *c, const msgpack_object *o, const char *f, bool *out);
/* A non-empty string without NUL into dst[cap + 1]. */
int wp_get_fixed(wp_ctx_t *c, const msgpack_object *o, const char *f, char *dst, size_t cap);
/* A string without NUL of at most cap bytes into a new mem_alloc'd *dst (the old one freed);
 * the limit is checked before anything is copied. */
int wp_get_owned(wp_ctx_t *c, const msgpack_object *o, const char *f, size_t cap, char **dst);
/* An array of two integers, each at most 2^20. */
int wp_get_pair(wp_ctx_t *c, const msgpack_object *o, const char *f, uint32_t out[2]);
/* Binary of at most cap bytes: *ptr points into o (borrowed). */
int wp_get_bin(wp_ctx_t *c, const msgpack_object *o, const char *f, size_t cap, const char **ptr, size_t *n);

/* A sub-map read key by key: fn is called per key (string keys only; seen is a bit set for
 * wp_dup_check). */
typedef int (*wp_sub_fn)(wp_ctx_t *c, const msgpack_object *k, const msgpack_object *v, void *dst, uint32_t *seen);
int wp_get_submap(wp_ctx_t *c, const msgpack_object *o, const char *f, wp_sub_fn fn, void *dst);
/* "<TYPE>: unknown key 'f.k'" (HIRED_EPROTO). */
int wp_unknown_sub(wp_ctx_t *c, const char *f, const msgpack_object *k);
/* Refuses key number i of sub-map f when seen already has it; marks it. */
int wp_dup_check(wp_ctx_t *c, const char *f, int i, uint32_t *seen);

// ---- the array fields (wire_records.c) -----------------------------------------------------------

/* Decodes field `messages` into m (text parts counted against max_text bytes together) / field
 * `visuals`. On failure m may hold what was read so far; wire_msg_clear frees it. */
int wr_parse_messages(wp_ctx_t *c, const msgpack_object *o, size_t max_text, wire_msg_t *m);
int wr_parse_visuals(wp_ctx_t *c, const msgpack_object *o, wire_msg_t *m);
/* Encodes the value of the field (the key is the caller's). */
void wr_pack_messages(msgpack_packer *pk, const wire_msg_t *m);
void wr_pack_visuals(msgpack_packer *pk, const wire_msg_t *m);
/* wire_validate's rules for the two fields (counts, roles, text and image limits; each record's
 * ranges). lim is resolved. */
int wr_check_messages(const wire_msg_t *m, const wire_limits_t *lim, const char *tn, char *err);
int wr_check_visuals(const wire_msg_t *m, const wire_limits_t *lim, const char *tn, char *err);
/* Deep copies (*dst = NULL for n == 0) and frees (NULL-safe). HIRED_ENOMEM. */
int wr_messages_copy(wire_message_t **dst, const wire_message_t *src, uint32_t n);
void wr_messages_free(wire_message_t *msgs, uint32_t n);
int wr_visuals_copy(wire_visual_t **dst, const wire_visual_t *src, uint32_t n);
void wr_visuals_free(wire_visual_t *v, uint32_t n);

#endif
