/* wire_records.c — the two array fields of protocol v5 (docs/protocol.md §4): `messages`, a
 * conversation of system / user / assistant messages whose content is a string or a list of text
 * and image parts (SUBMIT, decode JOB), and `visuals`, the encoder's typed record of each image
 * (RESULT, decode JOB). Here: their decoding (each element a map with its own strict keys, every
 * count bounded before anything is allocated, errors naming the element: "messages[2].role",
 * "visuals[1].kept"), their encoding, their validation, copies and frees, and the public helpers
 * of wire.h that work on them.
 * A message whose content is exactly one text part travels as a plain string; any other content
 * as a list. Decoding a string gives that one text part, so the two spellings are one message.
 * Not here: the header's other fields and the message table (wire.c), the typed readers
 * (wire_parse.c). */
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "wire_int.h"

static const char *const k_roles[WIRE_ROLE_COUNT] = {"system", "user", "assistant"};

const char *wire_role_name(wire_role_t r) { return (unsigned)r < WIRE_ROLE_COUNT ? k_roles[r] : "?"; }

int wire_role_parse(const char *s, wire_role_t *r) {
    for (int i = 0; i < WIRE_ROLE_COUNT; i++)
        if (s && !strcmp(s, k_roles[i])) {
            *r = (wire_role_t)i;
            return HIRED_OK;
        }
    return HIRED_EPROTO;
}

// ---- the conversation: helpers ------------------------------------------------------------------

void wr_messages_free(wire_message_t *msgs, uint32_t n) {
    for (uint32_t i = 0; msgs && i < n; i++) {
        for (uint32_t k = 0; msgs[i].parts && k < msgs[i].n_parts; k++) mem_free(msgs[i].parts[k].text);
        mem_free(msgs[i].parts);
    }
    mem_free(msgs);
}

int wr_messages_copy(wire_message_t **dst, const wire_message_t *src, uint32_t n) {
    *dst = NULL;
    if (!n) return HIRED_OK;
    wire_message_t *d = mem_calloc(n, sizeof *d);
    if (!d) return HIRED_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        d[i].role = src[i].role;
        if (!src[i].n_parts) continue;
        if (!(d[i].parts = mem_calloc(src[i].n_parts, sizeof *d[i].parts))) goto fail;
        d[i].n_parts = src[i].n_parts;
        for (uint32_t k = 0; k < src[i].n_parts; k++)
            if (src[i].parts[k].text && !(d[i].parts[k].text = mem_strdup(src[i].parts[k].text))) goto fail;
    }
    *dst = d;
    return HIRED_OK;
fail:
    wr_messages_free(d, n);
    return HIRED_ENOMEM;
}

int wire_msg_set_messages(wire_msg_t *m, const wire_message_t *msgs, uint32_t n) {
    wire_message_t *copy;
    if (wr_messages_copy(&copy, msgs, n)) return HIRED_ENOMEM;
    wr_messages_free(m->messages, m->n_messages);
    m->messages = copy;
    m->n_messages = n;
    return HIRED_OK;
}

uint32_t wire_msg_image_parts(const wire_msg_t *m) {
    uint32_t n = 0;
    for (uint32_t i = 0; m->messages && i < m->n_messages; i++)
        for (uint32_t k = 0; m->messages[i].parts && k < m->messages[i].n_parts; k++) n += !m->messages[i].parts[k].text;
    return n;
}

uint32_t wire_msg_images(const wire_msg_t *m) { return m->prompt ? 1 : wire_msg_image_parts(m); }

size_t wire_msg_text_bytes(const wire_msg_t *m) {
    size_t n = m->prompt ? strlen(m->prompt) : 0;
    for (uint32_t i = 0; m->messages && i < m->n_messages; i++)
        for (uint32_t k = 0; m->messages[i].parts && k < m->messages[i].n_parts; k++)
            if (m->messages[i].parts[k].text) n += strlen(m->messages[i].parts[k].text);
    return n;
}

// ---- the conversation: validation and encoding ----------------------------------------------------

int wr_check_messages(const wire_msg_t *m, const wire_limits_t *lim, const char *tn, char *err) {
    if (m->n_messages > WIRE_MAX_MESSAGES)
        return hired_errf(err, HIRED_ERANGE, "%s: field 'messages' has %u messages, limit %d", tn, m->n_messages,
                          WIRE_MAX_MESSAGES);
    if (!m->messages) return hired_errf(err, HIRED_EPROTO, "%s: field 'messages' has no storage", tn);
    for (uint32_t i = 0; i < m->n_messages; i++) {
        const wire_message_t *x = &m->messages[i];
        if ((unsigned)x->role >= WIRE_ROLE_COUNT)
            return hired_errf(err, HIRED_EPROTO, "%s: messages[%u].role must be system, user or assistant", tn, i);
        if (x->n_parts > WIRE_MAX_CONTENT)
            return hired_errf(err, HIRED_ERANGE, "%s: messages[%u].content has %u parts, limit %d", tn, i, x->n_parts,
                              WIRE_MAX_CONTENT);
        if (x->n_parts && !x->parts)
            return hired_errf(err, HIRED_EPROTO, "%s: messages[%u].content has no storage", tn, i);
    }
    uint32_t images = wire_msg_image_parts(m);
    if (images > WIRE_MAX_IMAGES)
        return hired_errf(err, HIRED_ERANGE, "%s: the messages have %u image parts, limit %d", tn, images,
                          WIRE_MAX_IMAGES);
    size_t text = wire_msg_text_bytes(m);
    if (text > lim->max_prompt)
        return hired_errf(err, HIRED_ERANGE, "%s: the messages hold %zu bytes of text, limit %zu", tn, text,
                          lim->max_prompt);
    return HIRED_OK;
}

static void pack_str(msgpack_packer *pk, const char *s) { msgpack_pack_str_with_body(pk, s, strlen(s)); }

void wr_pack_messages(msgpack_packer *pk, const wire_msg_t *m) {
    msgpack_pack_array(pk, m->n_messages);
    for (uint32_t i = 0; i < m->n_messages; i++) {
        const wire_message_t *x = &m->messages[i];
        msgpack_pack_map(pk, 2);
        pack_str(pk, "role");
        pack_str(pk, wire_role_name(x->role));
        pack_str(pk, "content");
        if (x->n_parts == 1 && x->parts[0].text) {
            pack_str(pk, x->parts[0].text);
            continue;
        }
        msgpack_pack_array(pk, x->n_parts);
        for (uint32_t k = 0; k < x->n_parts; k++) {
            const char *t = x->parts[k].text;
            msgpack_pack_map(pk, t ? 2 : 1);
            pack_str(pk, "type");
            pack_str(pk, t ? "text" : "image");
            if (t) pack_str(pk, "text"), pack_str(pk, t);
        }
    }
}

// ---- the conversation: decoding -----------------------------------------------------------------

/* Running totals of one conversation while it is decoded. */
typedef struct {
    size_t text, max_text;
    uint32_t images;
} conv_count_t;

/* Text of `field` (a string value) into *dst, counted against the conversation's text limit. */
static int take_text(wp_ctx_t *c, const msgpack_object *v, const char *field, conv_count_t *n, char **dst) {
    if (v->type == MSGPACK_OBJECT_STR) {
        if (v->via.str.size > n->max_text - n->text)
            return hired_errf(c->err, HIRED_ERANGE, "%s: the messages hold more than %zu bytes of text (at %s)", c->tn,
                              n->max_text, field);
        n->text += v->via.str.size;
    }
    return wp_get_owned(c, v, field, n->max_text, dst);
}

/* One content part {type: "text", text} | {type: "image"} of messages[i].content[k]. */
static int parse_part(wp_ctx_t *c, const msgpack_object *o, uint32_t i, uint32_t k, conv_count_t *n, wire_part_t *p) {
    char f[64];
    snprintf(f, sizeof f, "messages[%u].content[%u]", i, k);
    if (o->type != MSGPACK_OBJECT_MAP) return wp_type_err(c, f, "a map {type, text}");
    const msgpack_object *type = NULL, *text = NULL;
    for (uint32_t e = 0; e < o->via.map.size; e++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[e];
        const msgpack_object **slot = wp_key_is(&kv->key, "type") ? &type : wp_key_is(&kv->key, "text") ? &text : NULL;
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return hired_errf(c->err, HIRED_EPROTO, "%s: '%s' has a key that is not a string", c->tn, f);
        if (!slot) return wp_unknown_sub(c, f, &kv->key);
        if (*slot) return hired_errf(c->err, HIRED_EPROTO, "%s: duplicate key in '%s'", c->tn, f);
        *slot = &kv->val;
    }
    char tf[80], kind[8];
    snprintf(tf, sizeof tf, "%s.type", f);
    if (!type) return hired_errf(c->err, HIRED_EPROTO, "%s: %s: missing key 'type'", c->tn, f);
    if (type->type != MSGPACK_OBJECT_STR || type->via.str.size > 5)
        return wp_type_err(c, tf, "'text' or 'image'");
    int rc = wp_get_fixed(c, type, tf, kind, 5);
    if (rc) return rc;
    if (!strcmp(kind, "image")) {
        if (text) return hired_errf(c->err, HIRED_EPROTO, "%s: unknown key '%s.text' (an image part has none)", c->tn, f);
        if (++n->images > WIRE_MAX_IMAGES)
            return hired_errf(c->err, HIRED_ERANGE, "%s: the messages have more than %d image parts (at %s)", c->tn,
                              WIRE_MAX_IMAGES, f);
        p->text = NULL;
        return HIRED_OK;
    }
    if (strcmp(kind, "text")) return wp_type_err(c, tf, "'text' or 'image'");
    if (!text) return hired_errf(c->err, HIRED_EPROTO, "%s: %s: missing key 'text'", c->tn, f);
    snprintf(tf, sizeof tf, "%s.text", f);
    return take_text(c, text, tf, n, &p->text);
}

/* messages[i]: {role, content}. */
static int parse_message(wp_ctx_t *c, const msgpack_object *o, uint32_t i, conv_count_t *n, wire_message_t *x) {
    char f[48];
    snprintf(f, sizeof f, "messages[%u]", i);
    if (o->type != MSGPACK_OBJECT_MAP) return wp_type_err(c, f, "a map {role, content}");
    const msgpack_object *role = NULL, *content = NULL;
    for (uint32_t e = 0; e < o->via.map.size; e++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[e];
        const msgpack_object **slot = wp_key_is(&kv->key, "role") ? &role : wp_key_is(&kv->key, "content") ? &content : NULL;
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return hired_errf(c->err, HIRED_EPROTO, "%s: '%s' has a key that is not a string", c->tn, f);
        if (!slot) return wp_unknown_sub(c, f, &kv->key);
        if (*slot) return hired_errf(c->err, HIRED_EPROTO, "%s: duplicate key in '%s'", c->tn, f);
        *slot = &kv->val;
    }
    if (!role || !content)
        return hired_errf(c->err, HIRED_EPROTO, "%s: %s: missing key '%s'", c->tn, f, role ? "content" : "role");
    char rf[64], r[WIRE_MAX_ROLE + 1];
    snprintf(rf, sizeof rf, "%s.role", f);
    if (role->type != MSGPACK_OBJECT_STR || role->via.str.size > WIRE_MAX_ROLE || wp_get_fixed(c, role, rf, r, WIRE_MAX_ROLE) ||
        wire_role_parse(r, &x->role)) {
        int len = role->type == MSGPACK_OBJECT_STR ? (int)(role->via.str.size > 32 ? 32 : role->via.str.size) : 0;
        return hired_errf(c->err, HIRED_EPROTO, "%s: %s must be system, user or assistant (got %s%.*s%s)", c->tn, rf,
                          len ? "'" : "", len, len ? role->via.str.ptr : "not a string", len ? "'" : "");
    }
    snprintf(rf, sizeof rf, "%s.content", f);
    if (content->type == MSGPACK_OBJECT_STR) {
        if (!(x->parts = mem_calloc(1, sizeof *x->parts))) return hired_errf(c->err, HIRED_ENOMEM, "out of memory");
        x->n_parts = 1;
        return take_text(c, content, rf, n, &x->parts[0].text);
    }
    if (content->type != MSGPACK_OBJECT_ARRAY) return wp_type_err(c, rf, "a string or an array of parts");
    uint32_t np = content->via.array.size;
    if (np > WIRE_MAX_CONTENT)
        return hired_errf(c->err, HIRED_ERANGE, "%s: %s has %u parts, limit %d", c->tn, rf, np, WIRE_MAX_CONTENT);
    if (np && !(x->parts = mem_calloc(np, sizeof *x->parts))) return hired_errf(c->err, HIRED_ENOMEM, "out of memory");
    x->n_parts = np;
    for (uint32_t k = 0; k < np; k++) {
        int rc = parse_part(c, &content->via.array.ptr[k], i, k, n, &x->parts[k]);
        if (rc) return rc;
    }
    return HIRED_OK;
}

int wr_parse_messages(wp_ctx_t *c, const msgpack_object *o, size_t max_text, wire_msg_t *m) {
    if (o->type != MSGPACK_OBJECT_ARRAY) return wp_type_err(c, "messages", "an array of messages");
    uint32_t n = o->via.array.size;
    if (n == 0) return hired_errf(c->err, HIRED_EPROTO, "%s: field 'messages' is empty", c->tn);
    if (n > WIRE_MAX_MESSAGES)
        return hired_errf(c->err, HIRED_ERANGE, "%s: field 'messages' has %u messages, limit %d", c->tn, n,
                          WIRE_MAX_MESSAGES);
    wr_messages_free(m->messages, m->n_messages);
    if (!(m->messages = mem_calloc(n, sizeof *m->messages))) {
        m->n_messages = 0;
        return hired_errf(c->err, HIRED_ENOMEM, "out of memory");
    }
    m->n_messages = n; /* set first: wire_msg_clear frees what a failure leaves */
    conv_count_t count = {.max_text = max_text};
    for (uint32_t i = 0; i < n; i++) {
        int rc = parse_message(c, &o->via.array.ptr[i], i, &count, &m->messages[i]);
        if (rc) return rc;
    }
    return HIRED_OK;
}

// ---- the visual records: helpers ----------------------------------------------------------------

int wire_visual_set_positions(wire_visual_t *v, const uint16_t *pos, uint32_t kept) {
    uint16_t *p = NULL;
    if (pos) {
        size_t bytes = (size_t)kept * 3 * sizeof *p;
        if (!(p = mem_alloc(bytes ? bytes : 1))) return HIRED_ENOMEM;
        memcpy(p, pos, bytes);
    }
    mem_free(v->positions);
    v->positions = p;
    return HIRED_OK;
}

void wire_visual_clear(wire_visual_t *v) {
    if (!v) return;
    mem_free(v->positions);
    memset(v, 0, sizeof *v);
}

int wire_visual_copy(wire_visual_t *dst, const wire_visual_t *src) {
    *dst = *src;
    dst->positions = NULL;
    return wire_visual_set_positions(dst, src->positions, src->kept);
}

void wr_visuals_free(wire_visual_t *v, uint32_t n) {
    for (uint32_t i = 0; v && i < n; i++) wire_visual_clear(&v[i]);
    mem_free(v);
}

int wr_visuals_copy(wire_visual_t **dst, const wire_visual_t *src, uint32_t n) {
    *dst = NULL;
    if (!n) return HIRED_OK;
    wire_visual_t *d = mem_calloc(n, sizeof *d);
    if (!d) return HIRED_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        if (wire_visual_copy(&d[i], &src[i])) {
            wr_visuals_free(d, n);
            return HIRED_ENOMEM;
        }
    *dst = d;
    return HIRED_OK;
}

int wire_msg_new_visuals(wire_msg_t *m, uint32_t n) {
    wire_visual_t *v = NULL;
    if (n && !(v = mem_calloc(n, sizeof *v))) return HIRED_ENOMEM;
    wr_visuals_free(m->visuals, m->n_visuals);
    m->visuals = v;
    m->n_visuals = n;
    return HIRED_OK;
}

// ---- the visual records: validation and encoding --------------------------------------------------

int wr_check_visuals(const wire_msg_t *m, const wire_limits_t *lim, const char *tn, char *err) {
    if (m->n_visuals > WIRE_MAX_IMAGES)
        return hired_errf(err, HIRED_ERANGE, "%s: field 'visuals' has %u records, limit %d", tn, m->n_visuals,
                          WIRE_MAX_IMAGES);
    if (m->n_visuals && !m->visuals) return hired_errf(err, HIRED_EPROTO, "%s: field 'visuals' has no storage", tn);
    for (uint32_t i = 0; i < m->n_visuals; i++) {
        const wire_visual_t *v = &m->visuals[i];
        if (v->kept < 1 || v->kept > WIRE_MAX_KEPT)
            return hired_errf(err, HIRED_ERANGE, "%s: field 'visuals[%u].kept' must be in [1, %d] (got %u)", tn, i,
                              WIRE_MAX_KEPT, v->kept);
        if (v->dim < 1 || v->dim > WIRE_MAX_DIM)
            return hired_errf(err, HIRED_ERANGE, "%s: field 'visuals[%u].dim' must be in [1, %d] (got %u)", tn, i,
                              WIRE_MAX_DIM, v->dim);
        if ((unsigned)v->dtype > WIRE_DTYPE_F32)
            return hired_errf(err, HIRED_EPROTO, "%s: field 'visuals[%u].dtype' must be f16, bf16 or f32", tn, i);
        if (!v->positions) return hired_errf(err, HIRED_EPROTO, "%s: visuals[%u]: missing key 'positions'", tn, i);
        if (v->parts < 1 || v->parts > WIRE_MAX_VISUAL_PARTS)
            return hired_errf(err, HIRED_ERANGE, "%s: field 'visuals[%u].parts' must be in [1, %d] (got %u)", tn, i,
                              WIRE_MAX_VISUAL_PARTS, v->parts);
        if (v->patch_grid < 1 || v->patch_grid > WIRE_MAX_PATCH_GRID)
            return hired_errf(err, HIRED_ERANGE, "%s: field 'visuals[%u].patch_grid' must be in [1, %d] (got %u)", tn,
                              i, WIRE_MAX_PATCH_GRID, v->patch_grid);
        if ((uint64_t)v->kept * v->dim * wire_dtype_size(v->dtype) > lim->max_frame)
            return hired_errf(err, HIRED_ERANGE, "%s: visuals[%u]: tensor [%u, %u] %s exceeds the frame limit %zu", tn,
                              i, v->kept, v->dim, wire_dtype_name(v->dtype), lim->max_frame);
    }
    return HIRED_OK;
}

static void pack_pair(msgpack_packer *pk, const char *key, const uint32_t p[2]) {
    pack_str(pk, key);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint32(pk, p[0]);
    msgpack_pack_uint32(pk, p[1]);
}

void wr_pack_visuals(msgpack_packer *pk, const wire_msg_t *m) {
    msgpack_pack_array(pk, m->n_visuals);
    for (uint32_t i = 0; i < m->n_visuals; i++) {
        const wire_visual_t *v = &m->visuals[i];
        bool grid = v->grid[0] || v->grid[1], size = v->image_size[0] || v->image_size[1];
        msgpack_pack_map(pk, 6 + grid + size);
        pack_str(pk, "kept"), msgpack_pack_uint32(pk, v->kept);
        pack_str(pk, "dim"), msgpack_pack_uint32(pk, v->dim);
        pack_str(pk, "dtype"), pack_str(pk, wire_dtype_name(v->dtype));
        pack_str(pk, "parts"), msgpack_pack_uint32(pk, v->parts);
        pack_str(pk, "patch_grid"), msgpack_pack_uint32(pk, v->patch_grid);
        if (grid) pack_pair(pk, "grid", v->grid);
        if (size) pack_pair(pk, "image_size", v->image_size);
        size_t n = (size_t)v->kept * 3;
        pack_str(pk, "positions");
        msgpack_pack_bin(pk, n * 2);
        for (size_t k = 0; k < n; k++) {
            uint8_t le[2] = {(uint8_t)(v->positions[k] & 0xff), (uint8_t)(v->positions[k] >> 8)};
            msgpack_pack_bin_body(pk, le, 2);
        }
    }
}

// ---- the visual records: decoding ---------------------------------------------------------------

static const char *const k_visual_keys[] = {"kept", "dim", "dtype", "positions", "parts", "patch_grid", "grid",
                                            "image_size"};
#define VISUAL_REQUIRED 6 /* the first six keys */

/* visuals[i]: the record's map. */
static int parse_visual(wp_ctx_t *c, const msgpack_object *o, uint32_t i, wire_visual_t *v) {
    char f[40];
    snprintf(f, sizeof f, "visuals[%u]", i);
    if (o->type != MSGPACK_OBJECT_MAP) return wp_type_err(c, f, "a map");
    uint32_t seen = 0;
    const char *pos = NULL;
    size_t pos_bytes = 0;
    for (uint32_t e = 0; e < o->via.map.size; e++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[e];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return hired_errf(c->err, HIRED_EPROTO, "%s: '%s' has a key that is not a string", c->tn, f);
        int key = -1;
        for (int k = 0; k < (int)ARRAY_LEN(k_visual_keys); k++)
            if (wp_key_is(&kv->key, k_visual_keys[k])) key = k;
        if (key < 0) return wp_unknown_sub(c, f, &kv->key);
        int rc = wp_dup_check(c, f, key, &seen);
        if (rc) return rc;
        char name[64];
        snprintf(name, sizeof name, "%s.%s", f, k_visual_keys[key]);
        const msgpack_object *x = &kv->val;
        switch (key) {
        case 0: rc = wp_get_u32(c, x, name, WIRE_MAX_KEPT, &v->kept); break;
        case 1: rc = wp_get_u32(c, x, name, WIRE_MAX_DIM, &v->dim); break;
        case 2: {
            char s[8];
            rc = x->type == MSGPACK_OBJECT_STR && x->via.str.size <= 4 ? wp_get_fixed(c, x, name, s, 4)
                                                                        : wp_type_err(c, name, "f16, bf16 or f32");
            int d = -1;
            for (int k = 0; !rc && k <= WIRE_DTYPE_F32; k++)
                if (!strcmp(s, wire_dtype_name((wire_dtype_t)k))) d = k;
            if (!rc && d < 0) rc = wp_type_err(c, name, "f16, bf16 or f32");
            if (!rc) v->dtype = (wire_dtype_t)d;
            break;
        }
        case 3: rc = wp_get_bin(c, x, name, (size_t)WIRE_MAX_KEPT * 6, &pos, &pos_bytes); break;
        case 4: rc = wp_get_u32(c, x, name, WIRE_MAX_VISUAL_PARTS, &v->parts); break;
        case 5: rc = wp_get_u32(c, x, name, WIRE_MAX_PATCH_GRID, &v->patch_grid); break;
        case 6: rc = wp_get_pair(c, x, name, v->grid); break;
        default: rc = wp_get_pair(c, x, name, v->image_size); break;
        }
        if (rc) return rc;
    }
    for (int k = 0; k < VISUAL_REQUIRED; k++)
        if (!(seen & (1u << k)))
            return hired_errf(c->err, HIRED_EPROTO, "%s: %s: missing key '%s'", c->tn, f, k_visual_keys[k]);
    if (pos_bytes != (size_t)v->kept * 6)
        return hired_errf(c->err, HIRED_EPROTO, "%s: %s.positions is %zu bytes, expected kept*6 = %zu", c->tn, f,
                          pos_bytes, (size_t)v->kept * 6);
    if (!(v->positions = mem_alloc(pos_bytes ? pos_bytes : 1))) return hired_errf(c->err, HIRED_ENOMEM, "out of memory");
    for (size_t k = 0; k < pos_bytes / 2; k++)
        v->positions[k] = (uint16_t)((uint8_t)pos[2 * k] | ((uint8_t)pos[2 * k + 1] << 8));
    return HIRED_OK;
}

int wr_parse_visuals(wp_ctx_t *c, const msgpack_object *o, wire_msg_t *m) {
    if (o->type != MSGPACK_OBJECT_ARRAY) return wp_type_err(c, "visuals", "an array of visual records");
    uint32_t n = o->via.array.size;
    if (n == 0) return hired_errf(c->err, HIRED_EPROTO, "%s: field 'visuals' is empty", c->tn);
    if (n > WIRE_MAX_IMAGES)
        return hired_errf(c->err, HIRED_ERANGE, "%s: field 'visuals' has %u records, limit %d", c->tn, n,
                          WIRE_MAX_IMAGES);
    if (wire_msg_new_visuals(m, n)) return hired_errf(c->err, HIRED_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        int rc = parse_visual(c, &o->via.array.ptr[i], i, &m->visuals[i]);
        if (rc) return rc;
    }
    return HIRED_OK;
}
