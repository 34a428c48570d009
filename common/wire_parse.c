/* wire_parse.c — the msgpack side of decoding a header (see wire_int.h): the bounded structural
 * scan that runs before msgpack-c allocates anything, and the typed readers every field parser
 * uses. Nothing here asserts on input; every refusal names the message type and the field.
 * Not here: which fields a message has (wire.c), the array fields (wire_records.c). */
#include <math.h>
#include <string.h>

#include "mem.h"
#include "wire_int.h"

// ---- the bounded structural scan ---------------------------------------------------------------

static uint64_t rd_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

int wp_scan(const uint8_t *p, size_t n, size_t *pos, int depth, char *err) {
    if (depth > WIRE_MAX_DEPTH)
        return hired_errf(err, HIRED_EPROTO, "header nests deeper than %d levels", WIRE_MAX_DEPTH);
    if (*pos >= n) return hired_errf(err, HIRED_EPROTO, "header is not valid msgpack (truncated)");
    uint8_t b = p[(*pos)++];
    size_t left = n - *pos;
    uint64_t count = 0, skip = 0;
    int lenbytes = 0, kind = 0; /* kind: 0 scalar/bytes, 1 array, 2 map */
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return HIRED_OK;
    if (b >= 0x80 && b <= 0x8f) { kind = 2; count = b & 0x0f; }
    else if (b >= 0x90 && b <= 0x9f) { kind = 1; count = b & 0x0f; }
    else if (b >= 0xa0 && b <= 0xbf) { skip = b & 0x1f; }
    else switch (b) {
        case 0xc4: case 0xd9: lenbytes = 1; break;
        case 0xc5: case 0xda: lenbytes = 2; break;
        case 0xc6: case 0xdb: lenbytes = 4; break;
        case 0xc7: lenbytes = 1; skip = 1; break; /* ext: + type byte */
        case 0xc8: lenbytes = 2; skip = 1; break;
        case 0xc9: lenbytes = 4; skip = 1; break;
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: kind = 1; lenbytes = 2; break;
        case 0xdd: kind = 1; lenbytes = 4; break;
        case 0xde: kind = 2; lenbytes = 2; break;
        case 0xdf: kind = 2; lenbytes = 4; break;
        default: return hired_errf(err, HIRED_EPROTO, "header is not valid msgpack (byte 0x%02x)", b);
        }
    if (lenbytes) {
        if (left < (size_t)lenbytes)
            return hired_errf(err, HIRED_EPROTO, "header is not valid msgpack (truncated)");
        uint64_t v = rd_be(p + *pos, lenbytes);
        *pos += (size_t)lenbytes;
        left -= (size_t)lenbytes;
        if (kind) count = v; else skip += v;
    }
    if (kind == 0) {
        if (skip > left) return hired_errf(err, HIRED_EPROTO, "header is not valid msgpack (truncated)");
        *pos += (size_t)skip;
        return HIRED_OK;
    }
    /* Every element takes at least one byte, so a count above what is left is a lie. */
    uint64_t elems = kind == 2 ? count * 2 : count;
    if (elems > left)
        return hired_errf(err, HIRED_EPROTO, "header is not valid msgpack (%s of %llu elements in %zu bytes)",
                          kind == 2 ? "map" : "array", (unsigned long long)count, left);
    for (uint64_t i = 0; i < elems; i++) {
        int rc = wp_scan(p, n, pos, depth + 1, err);
        if (rc) return rc;
    }
    return HIRED_OK;
}


// ---- typed readers ----------------------------------------------------------------------------

bool wp_key_is(const msgpack_object *k, const char *s) {
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

int wp_type_err(wp_ctx_t *c, const char *field, const char *what) {
    return hired_errf(c->err, HIRED_EPROTO, "%s: field '%s' must be %s", c->tn, field, what);
}

int wp_get_u64(wp_ctx_t *c, const msgpack_object *o, const char *f, uint64_t max, uint64_t *out) {
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return wp_type_err(c, f, "a non-negative integer");
    if (o->via.u64 > max)
        return hired_errf(c->err, HIRED_ERANGE, "%s: field '%s' is %llu, limit %llu", c->tn, f,
                          (unsigned long long)o->via.u64, (unsigned long long)max);
    *out = o->via.u64;
    return HIRED_OK;
}

int wp_get_u32(wp_ctx_t *c, const msgpack_object *o, const char *f, uint32_t max, uint32_t *out) {
    uint64_t v = 0;
    int rc = wp_get_u64(c, o, f, max, &v);
    if (rc == 0) *out = (uint32_t)v;
    return rc;
}

int wp_get_i32(wp_ctx_t *c, const msgpack_object *o, const char *f, int32_t *out) {
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT32_MAX) return wp_type_err(c, f, "a 32-bit integer");
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 < INT32_MIN) return wp_type_err(c, f, "a 32-bit integer");
        v = o->via.i64;
    } else {
        return wp_type_err(c, f, "an integer");
    }
    *out = (int32_t)v;
    return HIRED_OK;
}

int wp_get_double(wp_ctx_t *c, const msgpack_object *o, const char *f, double *out) {
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; break;
    default: return wp_type_err(c, f, "a number");
    }
    if (!isfinite(*out)) return wp_type_err(c, f, "a finite number");
    return HIRED_OK;
}

int wp_get_bool(wp_ctx_t *c, const msgpack_object *o, const char *f, bool *out) {
    if (o->type != MSGPACK_OBJECT_BOOLEAN) return wp_type_err(c, f, "a boolean");
    *out = o->via.boolean;
    return HIRED_OK;
}

int wp_get_fixed(wp_ctx_t *c, const msgpack_object *o, const char *f, char *dst, size_t cap) {
    if (o->type != MSGPACK_OBJECT_STR) return wp_type_err(c, f, "a string");
    size_t n = o->via.str.size;
    if (n == 0) return hired_errf(c->err, HIRED_EPROTO, "%s: field '%s' is empty", c->tn, f);
    if (n > cap)
        return hired_errf(c->err, HIRED_ERANGE, "%s: field '%s' is %zu bytes, limit %zu", c->tn, f, n, cap);
    if (memchr(o->via.str.ptr, 0, n))
        return hired_errf(c->err, HIRED_EPROTO, "%s: field '%s' contains a NUL byte", c->tn, f);
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = 0;
    return HIRED_OK;
}

int wp_get_owned(wp_ctx_t *c, const msgpack_object *o, const char *f, size_t cap, char **dst) {
    if (o->type != MSGPACK_OBJECT_STR) return wp_type_err(c, f, "a string");
    size_t n = o->via.str.size;
    if (n > cap)
        return hired_errf(c->err, HIRED_ERANGE, "%s: field '%s' is %zu bytes, limit %zu", c->tn, f, n, cap);
    if (memchr(o->via.str.ptr, 0, n))
        return hired_errf(c->err, HIRED_EPROTO, "%s: field '%s' contains a NUL byte", c->tn, f);
    char *s = mem_alloc(n + 1);
    if (!s) return hired_errf(c->err, HIRED_ENOMEM, "out of memory");
    memcpy(s, o->via.str.ptr, n);
    s[n] = 0;
    mem_free(*dst);
    *dst = s;
    return HIRED_OK;
}

int wp_get_pair(wp_ctx_t *c, const msgpack_object *o, const char *f, uint32_t out[2]) {
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2)
        return wp_type_err(c, f, "an array of 2 non-negative integers");
    for (int i = 0; i < 2; i++) {
        int rc = wp_get_u32(c, &o->via.array.ptr[i], f, 1u << 20, &out[i]);
        if (rc) return rc;
    }
    return HIRED_OK;
}

int wp_get_submap(wp_ctx_t *c, const msgpack_object *o, const char *f, wp_sub_fn fn, void *dst) {
    if (o->type != MSGPACK_OBJECT_MAP) return wp_type_err(c, f, "a map");
    uint32_t seen = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return hired_errf(c->err, HIRED_EPROTO, "%s: '%s' has a key that is not a string", c->tn, f);
        int rc = fn(c, &kv->key, &kv->val, dst, &seen);
        if (rc) return rc;
    }
    return HIRED_OK;
}

int wp_unknown_sub(wp_ctx_t *c, const char *f, const msgpack_object *k) {
    int n = k->via.str.size > 64 ? 64 : (int)k->via.str.size;
    return hired_errf(c->err, HIRED_EPROTO, "%s: unknown key '%s.%.*s'", c->tn, f, n, k->via.str.ptr);
}

int wp_dup_check(wp_ctx_t *c, const char *f, int i, uint32_t *seen) {
    if (*seen & (1u << i)) return hired_errf(c->err, HIRED_EPROTO, "%s: duplicate key in '%s'", c->tn, f);
    *seen |= 1u << i;
    return HIRED_OK;
}


int wp_get_bin(wp_ctx_t *c, const msgpack_object *o, const char *f, size_t cap, const char **ptr, size_t *n) {
    if (o->type != MSGPACK_OBJECT_BIN) return wp_type_err(c, f, "binary");
    if (o->via.bin.size > cap)
        return hired_errf(c->err, HIRED_ERANGE, "%s: field '%s' is %u bytes, limit %zu", c->tn, f,
                          o->via.bin.size, cap);
    *ptr = o->via.bin.ptr;
    *n = o->via.bin.size;
    return HIRED_OK;
}
