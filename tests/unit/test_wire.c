/* test_wire.c — wire header encode/decode: a round trip per message type, every rejection rule
 * with the field named in the message, the msgpack allocation-bomb guard, payload frame rules,
 * headers sized to their content, the non-finite feature count, and an allocation-failure
 * sweep through the mem.c hook. */
#include <malloc.h>
#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "mem.h"
#include "test.h"
#include "wire.h"

static char g_err[HIRED_ERR_LEN];

#define SESSION "0123456789abcdef0123456789abcdef"

/* Encodes m, decodes it back into out (initialised either way); returns the decode code. */
static int roundtrip(const wire_msg_t *m, wire_msg_t *out) {
    wire_msg_init(out, WIRE_NONE);
    char *buf;
    size_t len;
    int rc = wire_encode_buf(m, &buf, &len, g_err);
    CHECK_MSG(rc == 0, "encode %s: %s", wire_type_name(m->type), g_err);
    if (rc) return rc;
    rc = wire_decode(buf, len, NULL, out, g_err);
    CHECK_MSG(rc == 0, "decode %s: %s", wire_type_name(m->type), g_err);
    free(buf);
    return rc;
}

static void test_roundtrip(void) {
    wire_msg_t m, d;
    wire_msg_init(&m, WIRE_SUBMIT);
    strcpy(m.session, SESSION);
    strcpy(m.id, "job-1.a:b");
    strcpy(m.model, "llava-hf/llava-v1.6-vicuna-7b-hf");
    wire_msg_set_prompt(&m, "USER: <image>\nWhat is this? ASSISTANT:");
    m.params.max_tokens = 77;
    m.params.temperature = 0.7;
    m.params.top_k = 40;
    m.params.seed = 0xfeedfacecafebeefull;
    strcpy(m.params.strategy, "prumerge+");
    strcpy(m.params.newline, "none");
    m.params.stream = false;
    m.deadline_ms = 1234;
    if (roundtrip(&m, &d) == 0) {
        CHECK(d.type == WIRE_SUBMIT && strcmp(d.id, m.id) == 0 && strcmp(d.model, m.model) == 0);
        CHECK(strcmp(d.prompt, m.prompt) == 0 && strcmp(d.session, SESSION) == 0);
        CHECK_EQ_INT(d.params.max_tokens, 77);
        CHECK_NEAR(d.params.temperature, 0.7, 0);
        CHECK_EQ_INT(d.params.top_k, 40);
        CHECK(d.params.seed == 0xfeedfacecafebeefull);
        CHECK(strcmp(d.params.strategy, "prumerge+") == 0 && strcmp(d.params.newline, "none") == 0);
        CHECK(!d.params.stream && d.deadline_ms == 1234);
        CHECK((d.present & (WIRE_F_PARAMS | WIRE_F_DEADLINE)) == (WIRE_F_PARAMS | WIRE_F_DEADLINE));
    }
    wire_msg_clear(&d);
    wire_msg_clear(&m);

    wire_msg_init(&m, WIRE_RESULT);
    strcpy(m.id, "r1");
    m.attempt = 3;
    strcpy(m.fingerprint, "0123abcd");
    CHECK(wire_msg_new_visuals(&m, 1) == 0);
    wire_visual_t *mv = &m.visuals[0];
    mv->kept = 3;
    mv->dim = 1024;
    mv->dtype = WIRE_DTYPE_BF16;
    mv->grid[0] = 2, mv->grid[1] = 3;
    mv->image_size[0] = 640, mv->image_size[1] = 480;
    uint16_t pos[9] = {0, 1, 2, 1, 23, 23, 4, 0, 65535};
    wire_visual_set_positions(mv, pos, 3);
    mv->parts = 7, mv->patch_grid = 24;
    m.timings[WIRE_STAGE_VIT] = 12.5;
    m.timings[WIRE_STAGE_SELECT] = 0.25;
    m.timings_mask = (1u << WIRE_STAGE_VIT) | (1u << WIRE_STAGE_SELECT);
    if (roundtrip(&m, &d) == 0 && d.n_visuals == 1) {
        const wire_visual_t *dv = &d.visuals[0];
        CHECK(dv->kept == 3 && dv->dim == 1024 && dv->dtype == WIRE_DTYPE_BF16);
        CHECK(dv->grid[0] == 2 && dv->grid[1] == 3 && dv->image_size[0] == 640 && dv->image_size[1] == 480);
        CHECK(memcmp(dv->positions, pos, sizeof pos) == 0);
        CHECK(dv->parts == 7 && dv->patch_grid == 24);
        CHECK(d.timings_mask == m.timings_mask && d.timings[WIRE_STAGE_VIT] == 12.5);
        CHECK(d.attempt == 3 && strcmp(d.fingerprint, "0123abcd") == 0);
        size_t sz = 3 * 1024 * 2;
        CHECK(wire_check_payloads(&d, 1, &sz, NULL, g_err) == 0);
        sz--;
        CHECK(wire_check_payloads(&d, 1, &sz, NULL, g_err) == HIRED_EPROTO);
        CHECK(strstr(g_err, "tensor frame") != NULL);
    }
    /* A decode JOB carries the same result fields. */
    wire_msg_t j;
    wire_msg_init(&j, WIRE_JOB);
    strcpy(j.id, "r1");
    strcpy(j.service, "decode");
    strcpy(j.model, "m");
    wire_msg_set_prompt(&j, "p");
    j.attempt = 2;
    CHECK(wire_validate(&j, NULL, g_err) != 0); /* decode job of a prompt without its record */
    CHECK(strstr(g_err, "takes 1 image but it carries 0 visual records") != NULL);
    CHECK(wire_msg_new_visuals(&j, 1) == 0 && wire_visual_copy(&j.visuals[0], mv) == 0);
    wire_msg_t dj;
    strcpy(j.fingerprint, "0123abcd");
    if (roundtrip(&j, &dj) == 0 && dj.n_visuals == 1)
        CHECK(dj.visuals[0].kept == 3 && dj.attempt == 2 && memcmp(dj.visuals[0].positions, pos, sizeof pos) == 0 &&
              !strcmp(dj.fingerprint, "0123abcd") && dj.visuals[0].parts == 7 && dj.visuals[0].patch_grid == 24);
    /* the geometry's ranges: parts [1, 16], patch_grid [1, 1024] */
    const uint32_t bad_geom[][2] = {{0, 24}, {17, 24}, {7, 0}, {7, 1025}};
    for (size_t i = 0; i < ARRAY_LEN(bad_geom); i++) {
        mv->parts = bad_geom[i][0], mv->patch_grid = bad_geom[i][1];
        CHECK(wire_validate(&m, NULL, g_err) == HIRED_ERANGE &&
              strstr(g_err, i < 2 ? "'visuals[0].parts'" : "'visuals[0].patch_grid'"));
    }
    mv->parts = 7, mv->patch_grid = 24;
    CHECK(wire_validate(&m, NULL, g_err) == 0);
    wire_msg_clear(&dj);
    wire_msg_clear(&j);
    wire_msg_clear(&d);
    wire_msg_clear(&m);

    wire_msg_init(&m, WIRE_DONE);
    strcpy(m.id, "x");
    m.usage.prompt_tokens = 10, m.usage.completion_tokens = 5;
    m.usage.visual_kept = 576, m.usage.visual_total = 2880, m.usage.result_bytes = 4000000000u;
    strcpy(m.finish, "length");
    wire_msg_set_text(&m, "hello world");
    m.seq = 5, m.attempt = 2;
    if (roundtrip(&m, &d) == 0) {
        CHECK(d.seq == 5 && d.attempt == 2 && (d.present & WIRE_F_SEQ));
        CHECK(d.usage.prompt_tokens == 10 && d.usage.completion_tokens == 5 && d.usage.image_tokens == 0);
        CHECK(d.usage.visual_kept == 576 && d.usage.visual_total == 2880 && d.usage.result_bytes == 4000000000u);
        CHECK(d.present & WIRE_F_USAGE);
        CHECK(strcmp(d.finish, "length") == 0 && strcmp(d.text, "hello world") == 0);
        CHECK(!(d.present & WIRE_F_TIMINGS));
    }
    wire_msg_clear(&d);
    wire_msg_clear(&m);

    wire_msg_init(&m, WIRE_TOKEN);
    strcpy(m.id, "x");
    m.seq = 7;
    m.token = -1;
    wire_msg_set_text(&m, "");
    if (roundtrip(&m, &d) == 0) CHECK(d.seq == 7 && d.token == -1 && d.text && d.text[0] == 0);
    wire_msg_clear(&d);
    wire_msg_clear(&m);

    wire_msg_init(&m, WIRE_ERROR);
    m.code = HIRED_ETIMEOUT;
    wire_msg_set_message(&m, "deadline passed");
    if (roundtrip(&m, &d) == 0) CHECK(d.code == HIRED_ETIMEOUT && d.id[0] == 0 && strcmp(d.message, "deadline passed") == 0);
    wire_msg_clear(&d);
    wire_msg_clear(&m);

    wire_type_t simple[] = {WIRE_STATUS, WIRE_HEARTBEAT, WIRE_DISCONNECT, WIRE_STATUS_REPLY};
    for (size_t i = 0; i < ARRAY_LEN(simple); i++) {
        wire_msg_init(&m, simple[i]);
        m.epoch = simple[i] == WIRE_HEARTBEAT ? 99 : 0;
        if (roundtrip(&m, &d) == 0) CHECK(d.type == simple[i] && d.epoch == m.epoch);
        wire_msg_clear(&d);
    }
    wire_msg_init(&m, WIRE_READY);
    strcpy(m.service, "encode");
    strcpy(m.model, "m");
    m.capacity = 4;
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "missing field 'fingerprint'"));
    strcpy(m.fingerprint, "XYZ");
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "'fingerprint' must be"));
    strcpy(m.fingerprint, "00ff");
    if (roundtrip(&m, &d) == 0) CHECK(d.capacity == 4 && strcmp(d.service, "encode") == 0 && !strcmp(d.fingerprint, "00ff"));
    wire_msg_clear(&d);
    {
        /* a decoder's HEARTBEAT with its load; none without KV blocks */
        wire_msg_t h, hd;
        wire_msg_init(&h, WIRE_HEARTBEAT);
        h.load[0] = 3, h.load[1] = 10, h.load[2] = 100, h.load[3] = 2;
        if (roundtrip(&h, &hd) == 0)
            CHECK((hd.present & WIRE_F_LOAD) && hd.load[0] == 3 && hd.load[1] == 10 && hd.load[2] == 100 &&
                  hd.load[3] == 2);
        wire_msg_clear(&hd);
        h.load[2] = 0;
        if (roundtrip(&h, &hd) == 0) CHECK(!(hd.present & WIRE_F_LOAD) && hd.load[0] == 0);
        wire_msg_clear(&hd);
        h.load[2] = 1u << 30; /* out of range: refused by the decoder */
        char *buf = NULL;
        size_t len = 0;
        CHECK(wire_encode_buf(&h, &buf, &len, g_err) == 0);
        CHECK(buf && wire_decode(buf, len, NULL, &hd, g_err) != 0 && strstr(g_err, "load"));
        wire_msg_clear(&hd);
        free(buf);
    }
    m.capacity = 0;
    CHECK(wire_validate(&m, NULL, g_err) != 0 && strstr(g_err, "capacity"));
    m.capacity = 5000;
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_ERANGE && strstr(g_err, "capacity"));
    wire_msg_init(&m, WIRE_BUSY);
    strcpy(m.id, "b");
    strcpy(m.service, "decode");
    m.retry_ms = 500;
    if (roundtrip(&m, &d) == 0) CHECK(d.retry_ms == 500);
    wire_msg_clear(&d);
    wire_msg_set_message(&m, "encode queue full");
    if (roundtrip(&m, &d) == 0) CHECK(d.retry_ms == 500 && !strcmp(d.message, "encode queue full"));
    wire_msg_clear(&d);
    wire_msg_clear(&m);
    wire_msg_init(&m, WIRE_ACCEPTED);
    strcpy(m.id, "a");
    m.attached = true;
    m.epoch = 5;
    if (roundtrip(&m, &d) == 0) CHECK(d.attached && d.epoch == 5);
    wire_msg_clear(&d);
    /* the session messages: RESUME from a seq, ACK of a final, BYE */
    wire_msg_init(&m, WIRE_RESUME);
    strcpy(m.id, "r");
    m.seq = 0;
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "missing field 'session'"));
    strcpy(m.session, "0123");
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "'session' must be 16-64"));
    strcpy(m.session, "0123456789ABCDEF0123");
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "'session' must be"));
    strcpy(m.session, SESSION);
    if (roundtrip(&m, &d) == 0) CHECK(d.type == WIRE_RESUME && d.seq == 0 && !strcmp(d.session, SESSION) && !strcmp(d.id, "r"));
    wire_msg_clear(&d);
    m.type = WIRE_ACK;
    if (roundtrip(&m, &d) == 0) CHECK(d.type == WIRE_ACK && !strcmp(d.id, "r"));
    wire_msg_clear(&d);
    wire_msg_init(&m, WIRE_BYE);
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO);
    strcpy(m.session, SESSION);
    if (roundtrip(&m, &d) == 0) CHECK(d.type == WIRE_BYE && !strcmp(d.session, SESSION));
    wire_msg_clear(&d);
    /* a worker's TOKEN carries its attempt; the one relayed to a client does not need to */
    wire_msg_init(&m, WIRE_TOKEN);
    strcpy(m.id, "t");
    m.attempt = 4;
    wire_msg_set_text(&m, "x");
    if (roundtrip(&m, &d) == 0) CHECK(d.attempt == 4 && (d.present & WIRE_F_ATTEMPT));
    wire_msg_clear(&d);
    m.attempt = 0;
    if (roundtrip(&m, &d) == 0) CHECK(!(d.present & WIRE_F_ATTEMPT));
    wire_msg_clear(&d);
    wire_msg_clear(&m);
}

/* A header owns a buffer of its own size, not msgpack's 8 KiB growth step. */
static void test_sized(void) {
    wire_msg_t m;
    wire_msg_init(&m, WIRE_TOKEN);
    strcpy(m.id, "0123456789abcdef0123456789abcdef");
    wire_msg_set_text(&m, " word");
    char *buf;
    size_t len;
    CHECK(wire_encode_buf(&m, &buf, &len, g_err) == 0);
    CHECK_MSG(len < 100 && malloc_usable_size(buf) < 256, "%zu bytes in a %zu-byte block", len, malloc_usable_size(buf));
    free(buf);
    wire_msg_clear(&m);
}

static void test_nonfinite(void) {
    float f[5] = {1.0f, -2.0f, NAN, INFINITY, 0.0f};
    CHECK_EQ_INT(wire_count_nonfinite(f, 5, WIRE_DTYPE_F32), 2);
    uint16_t h[5] = {0x3c00, 0x7c00, 0xfc00, 0x7e00, 0x7bff}; /* 1, +inf, -inf, nan, 65504 */
    CHECK_EQ_INT(wire_count_nonfinite(h, 5, WIRE_DTYPE_F16), 3);
    uint16_t b[4] = {0x3f80, 0x7f80, 0x7fc0, 0x7f7f}; /* 1, inf, nan, max */
    CHECK_EQ_INT(wire_count_nonfinite(b, 4, WIRE_DTYPE_BF16), 2);
    uint8_t odd[1 + 2 * sizeof(float)];
    memcpy(odd + 1, f + 1, 2 * sizeof(float)); /* unaligned */
    CHECK_EQ_INT(wire_count_nonfinite(odd + 1, 2, WIRE_DTYPE_F32), 1);
}

// ---- hand-made headers --------------------------------------------------------------------------

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} raw_t;

static void raw_begin(raw_t *r, size_t n) {
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&r->pk, n);
}
static void raw_str(raw_t *r, const char *s) { msgpack_pack_str_with_body(&r->pk, s, strlen(s)); }
static void raw_kv(raw_t *r, const char *k, const char *v) { raw_str(r, k); raw_str(r, v); }
/* A map of n fields whose first two are this version's "v" and "type". */
static void raw_head(raw_t *r, size_t n, const char *type) {
    raw_begin(r, n);
    raw_str(r, "v"), msgpack_pack_uint32(&r->pk, WIRE_VERSION);
    raw_kv(r, "type", type);
}
/* A SUBMIT's head (v, type, id, model "m", the session) with room for `extra` more fields. */
static void raw_submit(raw_t *r, const char *id, size_t extra) {
    raw_head(r, 5 + extra, "SUBMIT");
    raw_kv(r, "id", id);
    raw_kv(r, "model", "m");
    raw_kv(r, "session", SESSION);
}

/* Decodes r's bytes, expects code and a message containing want; frees r. */
static void expect(raw_t *r, int code, const char *want, int line) {
    wire_msg_t m;
    int rc = wire_decode(r->sb.data, r->sb.size, NULL, &m, g_err);
    CHECK_MSG(rc == code, "line %d: rc %d, want %d (%s)", line, rc, code, g_err);
    if (want) CHECK_MSG(strstr(g_err, want) != NULL, "line %d: '%s' lacks '%s'", line, g_err, want);
    wire_msg_clear(&m);
    msgpack_sbuffer_destroy(&r->sb);
}
#define EXPECT(r, code, want) expect(r, code, want, __LINE__)

/* A whole valid SUBMIT (prompt "hi") with room for `extra` more fields. */
static void raw_submit_head(raw_t *r, size_t extra) {
    raw_submit(r, "j1", 1 + extra);
    raw_kv(r, "prompt", "hi");
}

/* A RESULT header of one visual record with `kept` tokens and 6 bytes of positions (the
 * geometry `parts` and `patch_grid` when geometry), room for `extra` more keys in the record. */
static void raw_result_head(raw_t *r, uint32_t kept, bool geometry, size_t extra) {
    raw_head(r, 6, "RESULT");
    raw_kv(r, "id", "j");
    raw_str(r, "attempt"), msgpack_pack_uint32(&r->pk, 1);
    raw_kv(r, "fingerprint", "ab");
    raw_str(r, "visuals");
    msgpack_pack_array(&r->pk, 1);
    msgpack_pack_map(&r->pk, (geometry ? 6 : 4) + extra);
    raw_str(r, "kept"), msgpack_pack_uint32(&r->pk, kept);
    raw_str(r, "dim"), msgpack_pack_uint32(&r->pk, 4);
    raw_kv(r, "dtype", "f16");
    if (geometry) {
        raw_str(r, "parts"), msgpack_pack_uint32(&r->pk, 1);
        raw_str(r, "patch_grid"), msgpack_pack_uint32(&r->pk, 24);
    }
    raw_str(r, "positions"), msgpack_pack_bin_with_body(&r->pk, "123456", 6);
}

static void test_rejections(void) {
    raw_t r;
    raw_begin(&r, 2);
    raw_str(&r, "v"), msgpack_pack_uint32(&r.pk, 2); /* version 2 had no sessions */
    raw_kv(&r, "type", "SUBMIT");
    EXPECT(&r, HIRED_EPROTO, "version 2 not supported (this peer speaks version 6)");
    raw_begin(&r, 2);
    raw_str(&r, "v"), msgpack_pack_uint32(&r.pk, 3); /* version 3 carried the encoder's geometry in `meta` */
    raw_kv(&r, "type", "SUBMIT");
    EXPECT(&r, HIRED_EPROTO, "version 3 not supported (this peer speaks version 6)");
    raw_begin(&r, 2);
    raw_str(&r, "v"), msgpack_pack_uint32(&r.pk, 4); /* version 4 had one image and no conversations */
    raw_kv(&r, "type", "SUBMIT");
    EXPECT(&r, HIRED_EPROTO, "version 4 not supported (this peer speaks version 6)");
    raw_begin(&r, 2);
    raw_str(&r, "v"), msgpack_pack_uint32(&r.pk, 5); /* version 5's decoder load had three numbers */
    raw_kv(&r, "type", "SUBMIT");
    EXPECT(&r, HIRED_EPROTO, "version 5 not supported (this peer speaks version 6)");
    raw_begin(&r, 2);
    raw_str(&r, "v"), msgpack_pack_uint32(&r.pk, 7);
    raw_kv(&r, "type", "SUBMIT");
    EXPECT(&r, HIRED_EPROTO, "version 7 not supported (this peer speaks version 6)");
    raw_begin(&r, 1);
    raw_kv(&r, "type", "SUBMIT");
    EXPECT(&r, HIRED_EPROTO, "missing field 'v'");
    raw_head(&r, 2, "FROB");
    EXPECT(&r, HIRED_EPROTO, "unknown message type 'FROB'");
    raw_head(&r, 5, "SUBMIT");
    raw_kv(&r, "id", "j1");
    raw_kv(&r, "prompt", "x");
    raw_kv(&r, "session", SESSION);
    EXPECT(&r, HIRED_EPROTO, "SUBMIT: missing field 'model'");
    raw_submit_head(&r, 1);
    raw_kv(&r, "colour", "red");
    EXPECT(&r, HIRED_EPROTO, "unknown field 'colour'");
    raw_submit_head(&r, 1);
    raw_str(&r, "params"), msgpack_pack_map(&r.pk, 1), raw_kv(&r, "temprature", "x");
    EXPECT(&r, HIRED_EPROTO, "unknown key 'params.temprature'");
    raw_submit_head(&r, 1);
    raw_str(&r, "params"), msgpack_pack_map(&r.pk, 1), raw_str(&r, "max_tokens"), msgpack_pack_int(&r.pk, 0);
    EXPECT(&r, HIRED_ERANGE, "params.max_tokens");
    raw_submit_head(&r, 1);
    raw_str(&r, "params"), msgpack_pack_map(&r.pk, 1), raw_kv(&r, "strategy", "magic");
    EXPECT(&r, HIRED_EPROTO, "unknown strategy 'magic'");
    raw_submit_head(&r, 1);
    raw_str(&r, "params"), msgpack_pack_map(&r.pk, 1), raw_kv(&r, "top_p", "high");
    EXPECT(&r, HIRED_EPROTO, "'params.top_p' must be a number");
    raw_submit_head(&r, 1);
    raw_str(&r, "deadline_ms"), msgpack_pack_int(&r.pk, -5);
    EXPECT(&r, HIRED_EPROTO, "'deadline_ms' must be a non-negative integer");
    raw_submit_head(&r, 1);
    raw_kv(&r, "id", "again");
    EXPECT(&r, HIRED_EPROTO, "duplicate field 'id'");
    raw_head(&r, 6, "SUBMIT");
    raw_kv(&r, "id", "bad id!");
    raw_kv(&r, "model", "m");
    raw_kv(&r, "prompt", "x");
    raw_kv(&r, "session", SESSION);
    EXPECT(&r, HIRED_EPROTO, "field 'id' must be");
    /* An id that is itself the problem is not kept, so an ERROR reply can still be sent. */
    raw_head(&r, 6, "SUBMIT");
    raw_kv(&r, "id", "caf\xc3\xa9");
    raw_kv(&r, "model", "m");
    raw_kv(&r, "prompt", "x");
    raw_kv(&r, "session", SESSION);
    {
        wire_msg_t m;
        CHECK(wire_decode(r.sb.data, r.sb.size, NULL, &m, g_err) == HIRED_EPROTO && strstr(g_err, "field 'id' must be"));
        CHECK(m.type == WIRE_SUBMIT && m.id[0] == 0);
        wire_msg_clear(&m);
        msgpack_sbuffer_destroy(&r.sb);
    }
    raw_submit(&r, "j", 1);
    raw_str(&r, "prompt"), msgpack_pack_str_with_body(&r.pk, "a\0b", 3);
    EXPECT(&r, HIRED_EPROTO, "NUL");
    /* Oversized prompt: named with its size. */
    char *big = malloc(WIRE_MAX_PROMPT + 2);
    memset(big, 'a', WIRE_MAX_PROMPT + 1);
    big[WIRE_MAX_PROMPT + 1] = 0;
    raw_submit(&r, "j", 1);
    raw_kv(&r, "prompt", big);
    EXPECT(&r, HIRED_ERANGE, "prompt is 65537 bytes, limit 65536");
    free(big);
    /* Not a map, trailing bytes, truncated, empty. */
    raw_begin(&r, 0);
    msgpack_pack_int(&r.pk, 3);
    EXPECT(&r, HIRED_EPROTO, "trailing bytes");
    wire_msg_t m;
    CHECK(wire_decode("\x93\x01\x02\x03", 4, NULL, &m, g_err) == HIRED_EPROTO && strstr(g_err, "must be a msgpack map"));
    CHECK(wire_decode("\x82\xa1v\x01", 4, NULL, &m, g_err) == HIRED_EPROTO && strstr(g_err, "msgpack"));
    CHECK(wire_decode("\x81\xa4typ", 5, NULL, &m, g_err) == HIRED_EPROTO && strstr(g_err, "truncated"));
    CHECK(wire_decode("", 0, NULL, &m, g_err) == HIRED_EPROTO);
    CHECK(wire_decode("\xc1", 1, NULL, &m, g_err) == HIRED_EPROTO);
    /* Allocation bombs: huge declared counts must be refused before msgpack-c allocates. */
    CHECK(wire_decode("\xdd\xff\xff\xff\x0f", 5, NULL, &m, g_err) == HIRED_EPROTO && strstr(g_err, "elements"));
    CHECK(wire_decode("\xdf\xff\xff\xff\xff", 5, NULL, &m, g_err) == HIRED_EPROTO);
    CHECK(wire_decode("\xdb\xff\xff\xff\xff", 5, NULL, &m, g_err) == HIRED_EPROTO);
    /* Deep nesting. */
    char deep[32];
    memset(deep, 0x91, sizeof deep);
    deep[31] = 0x01;
    CHECK(wire_decode(deep, sizeof deep, NULL, &m, g_err) == HIRED_EPROTO && strstr(g_err, "nests"));
    /* Header limit. */
    wire_limits_t lim = {.max_header = 8};
    CHECK(wire_decode("\x82\xa1v\x01\xa4type\xa9HEARTBEAT", 18, &lim, &m, g_err) == HIRED_ERANGE &&
          strstr(g_err, "limit 8"));
    /* Version error keeps type and id so the reply can be addressed. */
    raw_begin(&r, 3);
    raw_str(&r, "v"), msgpack_pack_uint32(&r.pk, 9);
    raw_kv(&r, "type", "SUBMIT");
    raw_kv(&r, "id", "keep-me");
    CHECK(wire_decode(r.sb.data, r.sb.size, NULL, &m, g_err) == HIRED_EPROTO);
    CHECK(m.type == WIRE_SUBMIT && strcmp(m.id, "keep-me") == 0);
    wire_msg_clear(&m);
    msgpack_sbuffer_destroy(&r.sb);
    /* RESULT with positions of the wrong length. */
    raw_result_head(&r, 2, true, 0);
    EXPECT(&r, HIRED_EPROTO, "visuals[0].positions is 6 bytes, expected kept*6 = 12");
    /* a record without the geometry (`parts` and `patch_grid` are required) */
    raw_result_head(&r, 1, false, 0);
    EXPECT(&r, HIRED_EPROTO, "visuals[0]: missing key 'parts'");
    /* an unknown key in a record */
    raw_result_head(&r, 1, true, 1);
    raw_str(&r, "meta"), msgpack_pack_bin_with_body(&r.pk, "{}", 2);
    EXPECT(&r, HIRED_EPROTO, "meta");
    /* v4's top-level result fields are unknown in v5 */
    raw_head(&r, 3, "RESULT");
    raw_str(&r, "kept"), msgpack_pack_uint32(&r.pk, 1);
    EXPECT(&r, HIRED_EPROTO, "unknown field 'kept'");
}

static void test_payloads(void) {
    wire_msg_t m;
    wire_msg_init(&m, WIRE_SUBMIT);
    size_t sz[2] = {0, 10};
    CHECK(wire_check_payloads(&m, 0, sz, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "expected 1 payload frame"));
    CHECK(wire_check_payloads(&m, 1, sz, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "image frame is empty"));
    sz[0] = 2000;
    wire_limits_t lim = {.max_image = 1000};
    CHECK(wire_check_payloads(&m, 1, sz, &lim, g_err) == HIRED_ERANGE && strstr(g_err, "image is 2000 bytes, limit 1000"));
    CHECK(wire_check_payloads(&m, 1, sz, NULL, g_err) == 0);
    wire_msg_init(&m, WIRE_HEARTBEAT);
    CHECK(wire_check_payloads(&m, 1, sz, NULL, g_err) == HIRED_EPROTO);
    CHECK(wire_check_payloads(&m, 0, sz, NULL, g_err) == 0);
}

/* A SUBMIT with a conversation (protocol v5): text and image parts survive the round trip in
 * order, a one-text message travels as a string, the frames must match the image parts, and
 * every limit names what it refuses. */
static void test_conversation(void) {
    wire_part_t sys[1] = {{"Be brief."}}, u1[3] = {{NULL}, {"What is this?"}, {NULL}}, a1[1] = {{"A cat."}},
                u2[2] = {{NULL}, {"And this one?"}};
    const wire_message_t msgs[4] = {{WIRE_ROLE_SYSTEM, 1, sys}, {WIRE_ROLE_USER, 3, u1}, {WIRE_ROLE_ASSISTANT, 1, a1},
                                    {WIRE_ROLE_USER, 2, u2}};
    wire_msg_t m, d;
    wire_msg_init(&m, WIRE_SUBMIT);
    strcpy(m.id, "c1");
    strcpy(m.model, "m");
    strcpy(m.session, SESSION);
    CHECK(wire_msg_set_messages(&m, msgs, 4) == 0);
    CHECK_EQ_INT((int)wire_msg_images(&m), 3);
    CHECK_EQ_INT((int)wire_msg_text_bytes(&m), 9 + 13 + 6 + 13);
    if (roundtrip(&m, &d) == 0) {
        CHECK(d.n_messages == 4 && d.prompt == NULL);
        CHECK(d.messages[0].role == WIRE_ROLE_SYSTEM && d.messages[0].n_parts == 1 &&
              !strcmp(d.messages[0].parts[0].text, "Be brief."));
        CHECK(d.messages[1].role == WIRE_ROLE_USER && d.messages[1].n_parts == 3 && !d.messages[1].parts[0].text &&
              !strcmp(d.messages[1].parts[1].text, "What is this?") && !d.messages[1].parts[2].text);
        CHECK(d.messages[2].role == WIRE_ROLE_ASSISTANT && !strcmp(d.messages[2].parts[0].text, "A cat."));
        CHECK(d.messages[3].n_parts == 2 && !d.messages[3].parts[0].text);
        size_t sz[4] = {10, 20, 30, 40};
        CHECK(wire_check_payloads(&d, 3, sz, NULL, g_err) == 0);
        CHECK(wire_check_payloads(&d, 2, sz, NULL, g_err) == HIRED_EPROTO &&
              strstr(g_err, "the messages have 3 image parts but 2 image frames follow the header"));
        CHECK(wire_check_payloads(&d, 4, sz, NULL, g_err) == HIRED_EPROTO &&
              strstr(g_err, "4 image frames follow the header but the messages have 3 image parts"));
        wire_limits_t lim = {.max_images_bytes = 59};
        CHECK(wire_check_payloads(&d, 3, sz, &lim, g_err) == HIRED_ERANGE &&
              strstr(g_err, "the 3 images are 60 bytes together, limit 59"));
        lim = (wire_limits_t){.max_image = 25};
        CHECK(wire_check_payloads(&d, 3, sz, &lim, g_err) == HIRED_ERANGE && strstr(g_err, "image 3 of 3 is 30 bytes"));
        wire_msg_t c;
        CHECK(wire_msg_copy(&c, &d) == 0 && c.n_messages == 4 && !strcmp(c.messages[3].parts[1].text, "And this one?"));
        wire_msg_clear(&c);
    }
    wire_msg_clear(&d);
    /* text only: no image parts, no frames */
    CHECK(wire_msg_set_messages(&m, msgs, 1) == 0);
    size_t none = 0;
    CHECK(wire_check_payloads(&m, 0, &none, NULL, g_err) == 0);
    /* prompt and messages together, neither */
    wire_msg_set_prompt(&m, "hi");
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "set one, not both"));
    wire_msg_set_prompt(&m, NULL);
    CHECK(wire_msg_set_messages(&m, NULL, 0) == 0);
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "missing field 'prompt' (or 'messages')"));
    /* more image parts than a job may carry */
    wire_part_t many[WIRE_MAX_IMAGES + 1];
    for (int i = 0; i <= WIRE_MAX_IMAGES; i++) many[i].text = NULL;
    const wire_message_t big = {WIRE_ROLE_USER, WIRE_MAX_IMAGES + 1, many};
    CHECK(wire_msg_set_messages(&m, &big, 1) == 0);
    CHECK(wire_validate(&m, NULL, g_err) == HIRED_ERANGE && strstr(g_err, "17 image parts, limit 16"));
    /* text over the limit, counted over all parts */
    CHECK(wire_msg_set_messages(&m, msgs, 4) == 0);
    wire_limits_t small = {.max_prompt = 40};
    CHECK(wire_validate(&m, &small, g_err) == HIRED_ERANGE && strstr(g_err, "41 bytes of text, limit 40"));
    wire_msg_clear(&m);

    /* raw headers: an empty conversation, a bad role, a bad part */
    raw_t r;
    raw_submit(&r, "j1", 1);
    raw_str(&r, "messages"), msgpack_pack_array(&r.pk, 0);
    EXPECT(&r, HIRED_EPROTO, "field 'messages' is empty");
    raw_submit(&r, "j1", 1);
    raw_str(&r, "messages"), msgpack_pack_array(&r.pk, 1), msgpack_pack_map(&r.pk, 2);
    raw_kv(&r, "role", "robot"), raw_kv(&r, "content", "hi");
    EXPECT(&r, HIRED_EPROTO, "messages[0].role must be system, user or assistant (got 'robot')");
    raw_submit(&r, "j1", 1);
    raw_str(&r, "messages"), msgpack_pack_array(&r.pk, 1), msgpack_pack_map(&r.pk, 2);
    raw_kv(&r, "role", "user"), raw_str(&r, "content"), msgpack_pack_array(&r.pk, 1), msgpack_pack_map(&r.pk, 1);
    raw_kv(&r, "type", "video");
    EXPECT(&r, HIRED_EPROTO, "messages[0].content[0].type");

    /* a decode JOB of a text-only conversation carries no records; an encode JOB no text */
    wire_msg_t j;
    wire_msg_init(&j, WIRE_JOB);
    strcpy(j.id, "w1");
    strcpy(j.service, "decode");
    strcpy(j.model, "m");
    j.attempt = 1;
    CHECK(wire_msg_set_messages(&j, msgs, 1) == 0);
    CHECK(wire_validate(&j, NULL, g_err) == 0);
    CHECK(wire_check_payloads(&j, 0, &none, NULL, g_err) == 0);
    CHECK(wire_check_payloads(&j, 1, &none, NULL, g_err) == HIRED_EPROTO);
    CHECK(wire_msg_set_messages(&j, msgs, 2) == 0); /* two image parts, no records */
    CHECK(wire_validate(&j, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "takes 2 images but it carries 0"));
    strcpy(j.service, "encode");
    CHECK(wire_validate(&j, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "an encode job carries no"));
    CHECK(wire_msg_set_messages(&j, NULL, 0) == 0);
    CHECK(wire_validate(&j, NULL, g_err) == 0);
    size_t three[3] = {5, 5, 5};
    CHECK(wire_check_payloads(&j, 3, three, NULL, g_err) == 0);
    CHECK(wire_check_payloads(&j, 0, three, NULL, g_err) == HIRED_EPROTO && strstr(g_err, "1-16 image frames"));
    wire_msg_clear(&j);
}

/* Every allocation of a decode may fail; the result is ENOMEM or success, never a leak. */
static void test_oom(void) {
    wire_msg_t m;
    wire_msg_init(&m, WIRE_RESULT);
    strcpy(m.id, "o");
    m.attempt = 1;
    strcpy(m.fingerprint, "ab");
    CHECK(wire_msg_new_visuals(&m, 1) == 0);
    m.visuals[0].kept = 2, m.visuals[0].dim = 2;
    uint16_t pos[6] = {1, 2, 3, 4, 5, 6};
    wire_visual_set_positions(&m.visuals[0], pos, 2);
    m.visuals[0].parts = 1, m.visuals[0].patch_grid = 2;
    char *buf;
    size_t len;
    CHECK(wire_encode_buf(&m, &buf, &len, g_err) == 0);
    int ok_seen = 0;
    for (long i = 0; i < 20 && !ok_seen; i++) {
        wire_msg_t d;
        mem_fail_after(i, true);
        int rc = wire_decode(buf, len, NULL, &d, g_err);
        mem_fail_after(-1, false);
        CHECK_MSG(rc == 0 || rc == HIRED_ENOMEM, "i=%ld rc=%d %s", i, rc, g_err);
        ok_seen = rc == 0;
        wire_msg_clear(&d);
    }
    CHECK(ok_seen);
    free(buf);
    wire_msg_clear(&m);
}

int main(void) {
    test_roundtrip();
    test_sized();
    test_nonfinite();
    test_rejections();
    test_payloads();
    test_conversation();
    test_oom();
    return test_summary();
}
