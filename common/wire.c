/* wire.c — header encode / decode / validation for the hired protocol (see wire.h and
 * docs/protocol.md).
 *
 * Decoding outside bytes happens in three steps: (1) wp_scan() (wire_parse.c) walks the raw
 * msgpack and checks every declared length and element count against the bytes that remain and
 * the nesting depth, because msgpack-c's unpacker allocates a container's slots from its declared
 * count before reading them (a 5-byte "array of 4 billion" would ask for 96 GB); (2) msgpack-c
 * unpacks the now-bounded object; (3) the field table below checks keys, types and presence per
 * message type (with the typed readers of wire_parse.c), and wire_validate checks ranges.
 * Nothing asserts on input.
 * Not here: sockets and frames (wire_io.c), the msgpack readers (wire_parse.c). */
#include "wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "mem.h"
#include "wire_int.h"

// ---- names ----------------------------------------------------------------------------------

static const char *const k_type_names[WIRE_TYPE_COUNT] = {
    "?", "SUBMIT", "ACCEPTED", "TOKEN", "DONE", "ERROR", "BUSY", "CANCEL", "STATUS",
    "STATUS_REPLY", "HEARTBEAT", "READY", "JOB", "RESULT", "DISCONNECT", "RESUME", "ACK", "BYE",
};
static const char *const k_stage_names[WIRE_STAGE_COUNT] = {
    "queue", "preprocess", "vit", "select", "transfer", "project", "prefill", "decode", "total",
};
static const char *const k_dtype_names[] = {"f16", "bf16", "f32"};
static const char *const k_strategies[] = {"none", "hired", "prumerge", "prumerge+", "spatial"};
static const char *const k_newlines[] = {"hf", "none"};
static const char *const k_finishes[] = {"stop", "length", "cancelled"};

const char *wire_type_name(wire_type_t t) {
    return (t > WIRE_NONE && t < WIRE_TYPE_COUNT) ? k_type_names[t] : "?";
}
const char *wire_stage_name(wire_stage_t s) {
    return ((unsigned)s < WIRE_STAGE_COUNT) ? k_stage_names[s] : "?";
}
const char *wire_dtype_name(wire_dtype_t d) {
    return ((unsigned)d < ARRAY_LEN(k_dtype_names)) ? k_dtype_names[d] : "?";
}
size_t wire_dtype_size(wire_dtype_t d) { return d == WIRE_DTYPE_F32 ? 4 : 2; }

size_t wire_count_nonfinite(const void *data, size_t n, wire_dtype_t dt) {
    const uint8_t *p = data;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (dt == WIRE_DTYPE_F32) {
            float f;
            memcpy(&f, p + 4 * i, 4);
            bad += !isfinite(f);
        } else { /* all exponent bits set: Inf or NaN */
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint16_t e = dt == WIRE_DTYPE_F16 ? 0x7c00 : 0x7f80;
            bad += (h & e) == e;
        }
    }
    return bad;
}

wire_limits_t wire_limits_resolve(const wire_limits_t *lim) {
    wire_limits_t r = {WIRE_MAX_HEADER, WIRE_MAX_FRAME, WIRE_MAX_IMAGE, WIRE_MAX_PROMPT, WIRE_MAX_IMAGES_BYTES};
    if (lim) {
        if (lim->max_header && lim->max_header < r.max_header) r.max_header = lim->max_header;
        if (lim->max_frame && lim->max_frame < r.max_frame) r.max_frame = lim->max_frame;
        if (lim->max_image && lim->max_image < r.max_image) r.max_image = lim->max_image;
        if (lim->max_prompt && lim->max_prompt < r.max_prompt) r.max_prompt = lim->max_prompt;
        if (lim->max_images_bytes && lim->max_images_bytes < r.max_images_bytes) r.max_images_bytes = lim->max_images_bytes;
    }
    return r;
}

// ---- the field table --------------------------------------------------------------------------

/* Header keys in WIRE_F_* bit order. */
static const char *const k_field_names[] = {
    "id", "model", "service", "prompt", "params", "deadline_ms", "attempt", "capacity", "epoch",
    "attached", "seq", "token", "text", "code", "message", "retry_ms", "finish", "usage",
    "timings", "session", "fingerprint", "messages", "visuals", "load",
};
#define N_FIELDS ((int)ARRAY_LEN(k_field_names))

/* Per type: keys that must be present, keys that may be. A client's `session` is optional in
 * CANCEL, HEARTBEAT and STATUS because the broker sends CANCEL and HEARTBEAT to workers too and a
 * STATUS without one is anonymous; the broker requires it where it acts on a job. Worker messages
 * carry `attempt` (and DONE its `seq`) as optional keys for the same reason: the broker relays
 * TOKEN, DONE and ERROR to clients without them, and requires them from workers. A job's text is
 * `prompt` or `messages` (wire_validate requires exactly one in SUBMIT and a decode JOB, none in
 * an encode JOB); a decode JOB of a text-only conversation has no `visuals`. Payload frames
 * follow from the fields (wire_check_payloads). */
static const struct {
    uint32_t req, opt;
} k_rules[WIRE_TYPE_COUNT] = {
    [WIRE_SUBMIT] = {WIRE_F_ID | WIRE_F_MODEL | WIRE_F_SESSION,
                     WIRE_F_PROMPT | WIRE_F_MESSAGES | WIRE_F_PARAMS | WIRE_F_DEADLINE},
    [WIRE_ACCEPTED] = {WIRE_F_ID, WIRE_F_EPOCH | WIRE_F_ATTACHED},
    [WIRE_TOKEN] = {WIRE_F_ID | WIRE_F_SEQ | WIRE_F_TOKEN | WIRE_F_TEXT, WIRE_F_ATTEMPT},
    [WIRE_DONE] = {WIRE_F_ID, WIRE_F_USAGE | WIRE_F_TIMINGS | WIRE_F_FINISH | WIRE_F_TEXT | WIRE_F_SEQ | WIRE_F_ATTEMPT},
    [WIRE_ERROR] = {WIRE_F_CODE | WIRE_F_MESSAGE, WIRE_F_ID | WIRE_F_ATTEMPT},
    [WIRE_BUSY] = {WIRE_F_ID | WIRE_F_SERVICE, WIRE_F_RETRY | WIRE_F_MESSAGE},
    [WIRE_CANCEL] = {WIRE_F_ID, WIRE_F_SESSION},
    [WIRE_STATUS] = {0, WIRE_F_SESSION},
    [WIRE_STATUS_REPLY] = {0, 0},
    [WIRE_HEARTBEAT] = {0, WIRE_F_EPOCH | WIRE_F_SESSION | WIRE_F_LOAD},
    [WIRE_READY] = {WIRE_F_SERVICE | WIRE_F_MODEL | WIRE_F_CAPACITY | WIRE_F_FINGERPRINT, 0},
    [WIRE_JOB] = {WIRE_F_ID | WIRE_F_SERVICE | WIRE_F_MODEL | WIRE_F_PARAMS | WIRE_F_ATTEMPT,
                  WIRE_F_DEADLINE | WIRE_F_PROMPT | WIRE_F_MESSAGES | WIRE_F_VISUALS | WIRE_F_FINGERPRINT},
    [WIRE_RESULT] = {WIRE_F_ID | WIRE_F_VISUALS | WIRE_F_ATTEMPT | WIRE_F_FINGERPRINT, WIRE_F_TIMINGS},
    [WIRE_DISCONNECT] = {0, 0},
    [WIRE_RESUME] = {WIRE_F_ID | WIRE_F_SEQ | WIRE_F_SESSION, 0},
    [WIRE_ACK] = {WIRE_F_ID | WIRE_F_SESSION, 0},
    [WIRE_BYE] = {WIRE_F_SESSION, 0},
};

static int field_index(uint32_t bit) {
    for (int i = 0; i < N_FIELDS; i++)
        if ((1u << i) == bit) return i;
    return 0;
}

// ---- message helpers ------------------------------------------------------------------------

void wire_msg_init(wire_msg_t *m, wire_type_t type) {
    memset(m, 0, sizeof *m);
    m->type = type;
    m->params.max_tokens = 256;
    m->params.temperature = 0.0;
    m->params.top_p = 1.0;
    m->params.top_k = 0;
    m->params.seed = 0;
    m->params.budget = 0.2;
    strcpy(m->params.strategy, "hired");
    m->params.alpha = 0.5;
    strcpy(m->params.newline, "hf");
    m->params.stream = true;
}

void wire_msg_clear(wire_msg_t *m) {
    if (!m) return;
    mem_free(m->prompt);
    mem_free(m->text);
    mem_free(m->message);
    wr_messages_free(m->messages, m->n_messages);
    wr_visuals_free(m->visuals, m->n_visuals);
    memset(m, 0, sizeof *m);
}

static int set_bytes(void **dst, const void *src, size_t n, size_t extra) {
    void *p = NULL;
    if (src) {
        p = mem_alloc(n + extra);
        if (!p) return HIRED_ENOMEM;
        memcpy(p, src, n);
        if (extra) ((char *)p)[n] = 0;
    }
    mem_free(*dst);
    *dst = p;
    return HIRED_OK;
}

int wire_msg_set_prompt(wire_msg_t *m, const char *s) {
    return set_bytes((void **)&m->prompt, s, s ? strlen(s) : 0, 1);
}
int wire_msg_set_text(wire_msg_t *m, const char *s) {
    return set_bytes((void **)&m->text, s, s ? strlen(s) : 0, 1);
}
int wire_msg_set_message(wire_msg_t *m, const char *s) {
    return set_bytes((void **)&m->message, s, s ? strlen(s) : 0, 1);
}
int wire_msg_copy(wire_msg_t *dst, const wire_msg_t *src) {
    *dst = *src;
    dst->prompt = dst->text = dst->message = NULL;
    dst->messages = NULL, dst->visuals = NULL;
    dst->n_messages = dst->n_visuals = 0;
    if (wire_msg_set_prompt(dst, src->prompt) || wire_msg_set_text(dst, src->text) ||
        wire_msg_set_message(dst, src->message) || wire_msg_set_messages(dst, src->messages, src->n_messages) ||
        wr_visuals_copy(&dst->visuals, src->visuals, src->n_visuals)) {
        wire_msg_clear(dst);
        return HIRED_ENOMEM;
    }
    dst->n_visuals = src->visuals ? src->n_visuals : 0;
    return HIRED_OK;
}

// ---- validation -------------------------------------------------------------------------------

static bool in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

static bool charset_ok(const char *s, const char *extra) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr(extra, c) != NULL;
        if (!ok) return false;
    }
    return true;
}

static bool hex_ok(const char *s) {
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

static bool finite_in(double x, double lo, double hi) { return isfinite(x) && x >= lo && x <= hi; }

static int check_params(const wire_params_t *p, const char *tn, char *err) {
    if (p->max_tokens < 1 || p->max_tokens > WIRE_MAX_TOKENS)
        return hired_errf(err, HIRED_ERANGE, "%s: params.max_tokens must be in [1, %d] (got %d)", tn,
                          WIRE_MAX_TOKENS, (int)p->max_tokens);
    if (!finite_in(p->temperature, 0, 100))
        return hired_errf(err, HIRED_ERANGE, "%s: params.temperature must be in [0, 100]", tn);
    if (!finite_in(p->top_p, 0, 1) || p->top_p == 0)
        return hired_errf(err, HIRED_ERANGE, "%s: params.top_p must be in (0, 1]", tn);
    if (p->top_k < 0 || p->top_k > 1000000)
        return hired_errf(err, HIRED_ERANGE, "%s: params.top_k must be in [0, 1000000]", tn);
    if (!finite_in(p->budget, 0, 1) || p->budget == 0)
        return hired_errf(err, HIRED_ERANGE, "%s: params.budget must be in (0, 1]", tn);
    if (!finite_in(p->alpha, 0, 1))
        return hired_errf(err, HIRED_ERANGE, "%s: params.alpha must be in [0, 1]", tn);
    if (!in_list(p->strategy, k_strategies, ARRAY_LEN(k_strategies)))
        return hired_errf(err, HIRED_EPROTO,
                          "%s: unknown strategy '%s' (none, hired, prumerge, prumerge+, spatial)", tn,
                          p->strategy);
    if (!in_list(p->newline, k_newlines, ARRAY_LEN(k_newlines)))
        return hired_errf(err, HIRED_EPROTO, "%s: params.newline must be 'hf' or 'none' (got '%s')",
                          tn, p->newline);
    return HIRED_OK;
}

/* Whether an optional field counts as set for encoding. */
static bool field_set(const wire_msg_t *m, uint32_t bit) {
    switch (bit) {
    case WIRE_F_ID: return m->id[0] != 0;
    case WIRE_F_MODEL: return m->model[0] != 0;
    case WIRE_F_SERVICE: return m->service[0] != 0;
    case WIRE_F_PROMPT: return m->prompt != NULL;
    case WIRE_F_PARAMS: return true;
    case WIRE_F_DEADLINE: return m->deadline_ms != 0;
    case WIRE_F_ATTEMPT: return m->attempt != 0;
    case WIRE_F_CAPACITY: return m->capacity != 0;
    case WIRE_F_EPOCH: return m->epoch != 0;
    case WIRE_F_ATTACHED: return m->attached;
    case WIRE_F_TEXT: return m->text != NULL;
    case WIRE_F_MESSAGE: return m->message != NULL;
    case WIRE_F_RETRY: return m->retry_ms != 0;
    case WIRE_F_FINISH: return m->finish[0] != 0;
    case WIRE_F_USAGE:
        return m->usage.prompt_tokens || m->usage.image_tokens || m->usage.completion_tokens ||
               m->usage.visual_kept || m->usage.visual_total || m->usage.result_bytes;
    case WIRE_F_TIMINGS: return m->timings_mask != 0;
    case WIRE_F_MESSAGES: return m->n_messages != 0;
    case WIRE_F_VISUALS: return m->n_visuals != 0;
    case WIRE_F_LOAD: return m->load[2] != 0;
    case WIRE_F_SESSION: return m->session[0] != 0;
    case WIRE_F_FINGERPRINT: return m->fingerprint[0] != 0;
    case WIRE_F_SEQ: return m->type != WIRE_DONE || m->seq != 0; /* DONE: optional, 0 = no tokens */
    default: return true; /* token, code: numbers where 0 is meaningful */
    }
}

int wire_validate(const wire_msg_t *m, const wire_limits_t *lim_in, char *err) {
    if (m->type <= WIRE_NONE || m->type >= WIRE_TYPE_COUNT)
        return hired_errf(err, HIRED_EPROTO, "unknown message type %d", (int)m->type);
    wire_limits_t lim = wire_limits_resolve(lim_in);
    const char *tn = wire_type_name(m->type);
    uint32_t req = k_rules[m->type].req, has = req | k_rules[m->type].opt;
    /* Required fields that are strings or pointers must be set. */
    for (int i = 0; i < N_FIELDS; i++) {
        uint32_t b = 1u << i;
        if ((req & b) && !field_set(m, b))
            return hired_errf(err, HIRED_EPROTO, "%s: missing field '%s'", tn, k_field_names[i]);
    }
    if ((has & WIRE_F_ID) && field_set(m, WIRE_F_ID) &&
        (strlen(m->id) > WIRE_MAX_ID || !charset_ok(m->id, "._:-")))
        return hired_errf(err, HIRED_EPROTO, "%s: field 'id' must be 1-%d characters of [A-Za-z0-9._:-]",
                          tn, WIRE_MAX_ID);
    if ((has & WIRE_F_MODEL) && field_set(m, WIRE_F_MODEL) &&
        (strlen(m->model) > WIRE_MAX_MODEL || !charset_ok(m->model, "._:/+-")))
        return hired_errf(err, HIRED_EPROTO,
                          "%s: field 'model' must be 1-%d characters of [A-Za-z0-9._:/+-]", tn,
                          WIRE_MAX_MODEL);
    if ((has & WIRE_F_SESSION) && field_set(m, WIRE_F_SESSION) &&
        (strlen(m->session) < WIRE_MIN_SESSION || strlen(m->session) > WIRE_MAX_SESSION ||
         !hex_ok(m->session)))
        return hired_errf(err, HIRED_EPROTO, "%s: field 'session' must be %d-%d characters of [0-9a-f]", tn,
                          WIRE_MIN_SESSION, WIRE_MAX_SESSION);
    if ((has & WIRE_F_FINGERPRINT) && field_set(m, WIRE_F_FINGERPRINT) &&
        (strlen(m->fingerprint) > WIRE_MAX_FINGERPRINT || !hex_ok(m->fingerprint)))
        return hired_errf(err, HIRED_EPROTO, "%s: field 'fingerprint' must be 1-%d characters of [0-9a-f]", tn,
                          WIRE_MAX_FINGERPRINT);
    if ((has & WIRE_F_SERVICE) && field_set(m, WIRE_F_SERVICE) && strcmp(m->service, "encode") &&
        strcmp(m->service, "decode"))
        return hired_errf(err, HIRED_EPROTO, "%s: field 'service' must be 'encode' or 'decode'", tn);
    /* The job's text: `prompt` (one image) or `messages` (its image parts), never both. */
    const bool decode_job = m->type == WIRE_JOB && !strcmp(m->service, "decode");
    if (m->type == WIRE_SUBMIT || decode_job) {
        if (m->prompt && m->n_messages)
            return hired_errf(err, HIRED_EPROTO, "%s: 'prompt' and 'messages' are two forms of the request: set one, "
                              "not both", tn);
        if (!m->prompt && !m->n_messages) return hired_errf(err, HIRED_EPROTO, "%s: missing field 'prompt' (or 'messages')", tn);
    } else if (m->type == WIRE_JOB && (m->prompt || m->n_messages || m->n_visuals)) {
        return hired_errf(err, HIRED_EPROTO, "JOB: an encode job carries no 'prompt', 'messages' or 'visuals'");
    }
    if ((has & WIRE_F_PROMPT) && m->prompt) {
        size_t n = strlen(m->prompt);
        if (n == 0) return hired_errf(err, HIRED_EPROTO, "%s: field 'prompt' is empty", tn);
        if (n > lim.max_prompt)
            return hired_errf(err, HIRED_ERANGE, "%s: prompt is %zu bytes, limit %zu", tn, n,
                              lim.max_prompt);
    }
    if ((has & WIRE_F_MESSAGES) && m->n_messages) {
        int rc = wr_check_messages(m, &lim, tn, err);
        if (rc) return rc;
    }
    if (has & WIRE_F_VISUALS) {
        int rc = wr_check_visuals(m, &lim, tn, err);
        if (rc) return rc;
        if (decode_job && m->n_visuals != wire_msg_images(m))
            return hired_errf(err, HIRED_EPROTO, "JOB: the decode job's %s takes %u image%s but it carries %u visual "
                              "record%s", m->prompt ? "prompt" : "messages", wire_msg_images(m),
                              wire_msg_images(m) == 1 ? "" : "s", m->n_visuals, m->n_visuals == 1 ? "" : "s");
    }
    if (has & WIRE_F_PARAMS) {
        int rc = check_params(&m->params, tn, err);
        if (rc) return rc;
    }
    if ((req & WIRE_F_ATTEMPT) && m->attempt < 1)
        return hired_errf(err, HIRED_ERANGE, "%s: field 'attempt' must be >= 1", tn);
    if ((req & WIRE_F_CAPACITY) && (m->capacity < 1 || m->capacity > WIRE_MAX_CAPACITY))
        return hired_errf(err, HIRED_ERANGE, "%s: field 'capacity' must be in [1, %d] (got %u)", tn,
                          WIRE_MAX_CAPACITY, m->capacity);
    if ((has & WIRE_F_TEXT) && m->text) {
        size_t n = strlen(m->text), max = m->type == WIRE_TOKEN ? WIRE_MAX_TOKEN_TEXT : WIRE_MAX_TEXT;
        if (n > max)
            return hired_errf(err, HIRED_ERANGE, "%s: text is %zu bytes, limit %zu", tn, n, max);
    }
    if ((req & WIRE_F_CODE) && (m->code >= 0 || m->code < -1000))
        return hired_errf(err, HIRED_ERANGE, "%s: field 'code' must be in [-1000, -1] (got %d)", tn,
                          (int)m->code);
    if ((has & WIRE_F_MESSAGE) && m->message && strlen(m->message) > WIRE_MAX_MESSAGE)
        return hired_errf(err, HIRED_ERANGE, "%s: message longer than %d bytes", tn, WIRE_MAX_MESSAGE);
    if ((has & WIRE_F_FINISH) && m->finish[0] &&
        !in_list(m->finish, k_finishes, ARRAY_LEN(k_finishes)))
        return hired_errf(err, HIRED_EPROTO, "%s: field 'finish' must be stop, length or cancelled", tn);
    if ((has & WIRE_F_TIMINGS) && m->timings_mask) {
        if (m->timings_mask >> WIRE_STAGE_COUNT)
            return hired_errf(err, HIRED_EPROTO, "%s: timings mask names an unknown stage", tn);
        for (int s = 0; s < WIRE_STAGE_COUNT; s++)
            if ((m->timings_mask & (1u << s)) && !finite_in(m->timings[s], 0, 1e12))
                return hired_errf(err, HIRED_ERANGE, "%s: timings.%s must be a finite number >= 0",
                                  tn, k_stage_names[s]);
    }
    return HIRED_OK;
}

// ---- encoding -------------------------------------------------------------------------------

static void pack_str(msgpack_packer *pk, const char *s) { msgpack_pack_str_with_body(pk, s, strlen(s)); }

static void pack_key(msgpack_packer *pk, uint32_t bit) { pack_str(pk, k_field_names[field_index(bit)]); }

static void pack_params(msgpack_packer *pk, const wire_params_t *p) {
    msgpack_pack_map(pk, 10);
    pack_str(pk, "max_tokens"); msgpack_pack_int32(pk, p->max_tokens);
    pack_str(pk, "temperature"); msgpack_pack_double(pk, p->temperature);
    pack_str(pk, "top_p"); msgpack_pack_double(pk, p->top_p);
    pack_str(pk, "top_k"); msgpack_pack_int32(pk, p->top_k);
    pack_str(pk, "seed"); msgpack_pack_uint64(pk, p->seed);
    pack_str(pk, "budget"); msgpack_pack_double(pk, p->budget);
    pack_str(pk, "strategy"); pack_str(pk, p->strategy);
    pack_str(pk, "alpha"); msgpack_pack_double(pk, p->alpha);
    pack_str(pk, "newline"); pack_str(pk, p->newline);
    pack_str(pk, "stream");
    if (p->stream) msgpack_pack_true(pk); else msgpack_pack_false(pk);
}

static void pack_field(msgpack_packer *pk, const wire_msg_t *m, uint32_t bit) {
    pack_key(pk, bit);
    switch (bit) {
    case WIRE_F_ID: pack_str(pk, m->id); break;
    case WIRE_F_MODEL: pack_str(pk, m->model); break;
    case WIRE_F_SERVICE: pack_str(pk, m->service); break;
    case WIRE_F_PROMPT: pack_str(pk, m->prompt); break;
    case WIRE_F_PARAMS: pack_params(pk, &m->params); break;
    case WIRE_F_DEADLINE: msgpack_pack_uint32(pk, m->deadline_ms); break;
    case WIRE_F_ATTEMPT: msgpack_pack_uint32(pk, m->attempt); break;
    case WIRE_F_CAPACITY: msgpack_pack_uint32(pk, m->capacity); break;
    case WIRE_F_EPOCH: msgpack_pack_uint64(pk, m->epoch); break;
    case WIRE_F_ATTACHED: if (m->attached) msgpack_pack_true(pk); else msgpack_pack_false(pk); break;
    case WIRE_F_SEQ: msgpack_pack_uint32(pk, m->seq); break;
    case WIRE_F_TOKEN: msgpack_pack_int32(pk, m->token); break;
    case WIRE_F_TEXT: pack_str(pk, m->text); break;
    case WIRE_F_CODE: msgpack_pack_int32(pk, m->code); break;
    case WIRE_F_MESSAGE: pack_str(pk, m->message); break;
    case WIRE_F_RETRY: msgpack_pack_uint32(pk, m->retry_ms); break;
    case WIRE_F_FINISH: pack_str(pk, m->finish); break;
    case WIRE_F_USAGE:
        msgpack_pack_map(pk, 6);
        pack_str(pk, "prompt_tokens"); msgpack_pack_uint32(pk, m->usage.prompt_tokens);
        pack_str(pk, "image_tokens"); msgpack_pack_uint32(pk, m->usage.image_tokens);
        pack_str(pk, "completion_tokens"); msgpack_pack_uint32(pk, m->usage.completion_tokens);
        pack_str(pk, "visual_kept"); msgpack_pack_uint32(pk, m->usage.visual_kept);
        pack_str(pk, "visual_total"); msgpack_pack_uint32(pk, m->usage.visual_total);
        pack_str(pk, "result_bytes"); msgpack_pack_uint32(pk, m->usage.result_bytes);
        break;
    case WIRE_F_TIMINGS: {
        int n = 0;
        for (int s = 0; s < WIRE_STAGE_COUNT; s++) n += (m->timings_mask >> s) & 1;
        msgpack_pack_map(pk, (size_t)n);
        for (int s = 0; s < WIRE_STAGE_COUNT; s++)
            if (m->timings_mask & (1u << s)) {
                pack_str(pk, k_stage_names[s]);
                msgpack_pack_double(pk, m->timings[s]);
            }
        break;
    }
    case WIRE_F_LOAD:
        msgpack_pack_array(pk, 4);
        for (int i = 0; i < 4; i++) msgpack_pack_uint32(pk, m->load[i]);
        break;
    case WIRE_F_SESSION: pack_str(pk, m->session); break;
    case WIRE_F_FINGERPRINT: pack_str(pk, m->fingerprint); break;
    case WIRE_F_MESSAGES: wr_pack_messages(pk, m); break;
    case WIRE_F_VISUALS: wr_pack_visuals(pk, m); break;
    default: msgpack_pack_nil(pk); break;
    }
}

int wire_encode_buf(const wire_msg_t *m, char **buf, size_t *len, char *err) {
    *buf = NULL;
    *len = 0;
    int rc = wire_validate(m, NULL, err);
    if (rc) return rc;
    uint32_t req = k_rules[m->type].req, opt = k_rules[m->type].opt, fields = req;
    for (int i = 0; i < N_FIELDS; i++)
        if ((opt & (1u << i)) && field_set(m, 1u << i)) fields |= 1u << i;
    int n = 2;
    for (int i = 0; i < N_FIELDS; i++) n += (fields >> i) & 1;

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)n);
    pack_str(&pk, "v");
    msgpack_pack_uint32(&pk, WIRE_VERSION);
    pack_str(&pk, "type");
    pack_str(&pk, wire_type_name(m->type));
    for (int i = 0; i < N_FIELDS; i++)
        if (fields & (1u << i)) pack_field(&pk, m, 1u << i);
    /* sbuffer writes report allocation failure only through a short buffer: re-check the size
     * by packing into a counter would double the work; a NULL data pointer means it failed. */
    if (!sb.data) {
        msgpack_sbuffer_destroy(&sb);
        return hired_errf(err, HIRED_ENOMEM, "%s: out of memory encoding header", wire_type_name(m->type));
    }
    if (sb.size > WIRE_MAX_HEADER) {
        size_t sz = sb.size;
        msgpack_sbuffer_destroy(&sb);
        return hired_errf(err, HIRED_ERANGE, "%s: header is %zu bytes, limit %u", wire_type_name(m->type),
                          sz, WIRE_MAX_HEADER);
    }
    /* msgpack's sbuffer grows in steps of at least 8 KiB: give back what the header does not use,
     * so a queued 80-byte TOKEN costs its size, not 8 KiB. */
    if (sb.alloc > sb.size + 64) {
        char *shrunk = realloc(sb.data, sb.size ? sb.size : 1);
        if (shrunk) sb.data = shrunk;
    }
    *buf = sb.data;
    *len = sb.size;
    return HIRED_OK;
}

static void free_buf(void *data, void *hint) {
    (void)hint;
    free(data);
}

int wire_encode(const wire_msg_t *m, zmq_msg_t *out, char *err) {
    char *buf;
    size_t len;
    int rc = wire_encode_buf(m, &buf, &len, err);
    if (rc) return rc;
    if (zmq_msg_init_data(out, buf, len, free_buf, NULL) != 0) {
        free(buf);
        return hired_errf(err, HIRED_ENOMEM, "zmq_msg_init_data failed");
    }
    return HIRED_OK;
}

static int params_kv(wp_ctx_t *c, const msgpack_object *k, const msgpack_object *v, void *dst, uint32_t *seen) {
    wire_params_t *p = dst;
    static const char *const keys[] = {"max_tokens", "temperature", "top_p", "top_k", "seed",
                                       "budget", "strategy", "alpha", "newline", "stream"};
    for (int i = 0; i < (int)ARRAY_LEN(keys); i++) {
        if (!wp_key_is(k, keys[i])) continue;
        int rc = wp_dup_check(c, "params", i, seen);
        if (rc) return rc;
        char name[32];
        snprintf(name, sizeof name, "params.%s", keys[i]);
        uint64_t u = 0; /* get_u64 sets it on success; gcc -O3 cannot see that */
        switch (i) {
        case 0: return wp_get_i32(c, v, name, &p->max_tokens);
        case 1: return wp_get_double(c, v, name, &p->temperature);
        case 2: return wp_get_double(c, v, name, &p->top_p);
        case 3: return wp_get_i32(c, v, name, &p->top_k);
        case 4: rc = wp_get_u64(c, v, name, UINT64_MAX, &u); if (!rc) p->seed = u; return rc;
        case 5: return wp_get_double(c, v, name, &p->budget);
        case 6: return wp_get_fixed(c, v, name, p->strategy, WIRE_MAX_STRATEGY);
        case 7: return wp_get_double(c, v, name, &p->alpha);
        case 8: return wp_get_fixed(c, v, name, p->newline, WIRE_MAX_NEWLINE);
        default: return wp_get_bool(c, v, name, &p->stream);
        }
    }
    return wp_unknown_sub(c, "params", k);
}

static int usage_kv(wp_ctx_t *c, const msgpack_object *k, const msgpack_object *v, void *dst, uint32_t *seen) {
    wire_usage_t *u = dst;
    static const char *const keys[] = {"prompt_tokens", "image_tokens", "completion_tokens",
                                       "visual_kept", "visual_total", "result_bytes"};
    uint32_t *vals[] = {&u->prompt_tokens, &u->image_tokens, &u->completion_tokens,
                        &u->visual_kept, &u->visual_total, &u->result_bytes};
    for (int i = 0; i < 6; i++)
        if (wp_key_is(k, keys[i])) {
            int rc = wp_dup_check(c, "usage", i, seen);
            return rc ? rc : wp_get_u32(c, v, keys[i], UINT32_MAX, vals[i]);
        }
    return wp_unknown_sub(c, "usage", k);
}

static int timings_kv(wp_ctx_t *c, const msgpack_object *k, const msgpack_object *v, void *dst, uint32_t *seen) {
    wire_msg_t *m = dst;
    for (int s = 0; s < WIRE_STAGE_COUNT; s++)
        if (wp_key_is(k, k_stage_names[s])) {
            int rc = wp_dup_check(c, "timings", s, seen);
            if (rc) return rc;
            rc = wp_get_double(c, v, k_stage_names[s], &m->timings[s]);
            if (rc) return rc;
            m->timings_mask |= 1u << s;
            return HIRED_OK;
        }
    return wp_unknown_sub(c, "timings", k);
}

/* Parses one top-level field (bit) of m from v. */
static int parse_field(wp_ctx_t *c, wire_msg_t *m, uint32_t bit, const msgpack_object *v, const wire_limits_t *lim) {
    const char *f = k_field_names[field_index(bit)];
    uint64_t u = 0; /* get_u64 sets it on success */
    int rc;
    switch (bit) {
    case WIRE_F_ID: return wp_get_fixed(c, v, f, m->id, WIRE_MAX_ID);
    case WIRE_F_MODEL: return wp_get_fixed(c, v, f, m->model, WIRE_MAX_MODEL);
    case WIRE_F_SERVICE: return wp_get_fixed(c, v, f, m->service, WIRE_MAX_SERVICE);
    case WIRE_F_PROMPT:
        if (v->type == MSGPACK_OBJECT_STR && v->via.str.size > lim->max_prompt)
            return hired_errf(c->err, HIRED_ERANGE, "%s: prompt is %u bytes, limit %zu", c->tn,
                              v->via.str.size, lim->max_prompt);
        return wp_get_owned(c, v, f, lim->max_prompt, &m->prompt);
    case WIRE_F_PARAMS: return wp_get_submap(c, v, f, params_kv, &m->params);
    case WIRE_F_DEADLINE: return wp_get_u32(c, v, f, 86400000u, &m->deadline_ms);
    case WIRE_F_ATTEMPT: return wp_get_u32(c, v, f, UINT32_MAX, &m->attempt);
    case WIRE_F_CAPACITY: return wp_get_u32(c, v, f, UINT32_MAX, &m->capacity);
    case WIRE_F_EPOCH: rc = wp_get_u64(c, v, f, UINT64_MAX, &u); if (!rc) m->epoch = u; return rc;
    case WIRE_F_ATTACHED: return wp_get_bool(c, v, f, &m->attached);
    case WIRE_F_SEQ: return wp_get_u32(c, v, f, UINT32_MAX, &m->seq);
    case WIRE_F_TOKEN: return wp_get_i32(c, v, f, &m->token);
    case WIRE_F_TEXT:
        return wp_get_owned(c, v, f, m->type == WIRE_TOKEN ? WIRE_MAX_TOKEN_TEXT : WIRE_MAX_TEXT, &m->text);
    case WIRE_F_CODE: return wp_get_i32(c, v, f, &m->code);
    case WIRE_F_MESSAGE: return wp_get_owned(c, v, f, WIRE_MAX_MESSAGE, &m->message);
    case WIRE_F_RETRY: return wp_get_u32(c, v, f, 3600000u, &m->retry_ms);
    case WIRE_F_FINISH: return wp_get_fixed(c, v, f, m->finish, WIRE_MAX_FINISH);
    case WIRE_F_USAGE: return wp_get_submap(c, v, f, usage_kv, &m->usage);
    case WIRE_F_TIMINGS: return wp_get_submap(c, v, f, timings_kv, m);
    case WIRE_F_LOAD:
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != 4)
            return wp_type_err(c, f, "an array of 4 non-negative integers");
        for (int i = 0; i < 4; i++) {
            int rc = wp_get_u32(c, &v->via.array.ptr[i], f, (1u << 30) - 1, &m->load[i]);
            if (rc) return rc;
        }
        return HIRED_OK;
    case WIRE_F_SESSION: return wp_get_fixed(c, v, f, m->session, WIRE_MAX_SESSION);
    case WIRE_F_FINGERPRINT: return wp_get_fixed(c, v, f, m->fingerprint, WIRE_MAX_FINGERPRINT);
    case WIRE_F_MESSAGES: return wr_parse_messages(c, v, lim->max_prompt, m);
    case WIRE_F_VISUALS: return wr_parse_visuals(c, v, m);
    default: return hired_errf(c->err, HIRED_EPROTO, "%s: internal: unhandled field", c->tn);
    }
}

// ---- decoding: the driver ---------------------------------------------------------------------

static int decode_root(const msgpack_object *root, const wire_limits_t *lim, wire_msg_t *m, char *err) {
    if (root->type != MSGPACK_OBJECT_MAP)
        return hired_errf(err, HIRED_EPROTO, "header must be a msgpack map");
    const msgpack_object_map *map = &root->via.map;
    const msgpack_object *v = NULL, *type = NULL, *id = NULL;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return hired_errf(err, HIRED_EPROTO, "header has a key that is not a string");
        if (wp_key_is(k, "v")) v = v ? root : &map->ptr[i].val;
        else if (wp_key_is(k, "type")) type = type ? root : &map->ptr[i].val;
        else if (wp_key_is(k, "id")) id = &map->ptr[i].val;
    }
    if (v == root || type == root) return hired_errf(err, HIRED_EPROTO, "header has a duplicate key");
    if (!v) return hired_errf(err, HIRED_EPROTO, "header: missing field 'v' (protocol version)");
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return hired_errf(err, HIRED_EPROTO, "header: field 'v' must be a non-negative integer");
    /* Read the type before judging the version so the reply can say what it refused. */
    if (type && type->type == MSGPACK_OBJECT_STR)
        for (int t = 1; t < WIRE_TYPE_COUNT; t++)
            if (wp_key_is(type, k_type_names[t])) m->type = (wire_type_t)t;
    wp_ctx_t c = {m->type ? wire_type_name(m->type) : "header", err};
    if (id && id->type == MSGPACK_OBJECT_STR && id->via.str.size <= WIRE_MAX_ID) {
        char tmp[WIRE_MAX_ID + 1];
        if (wp_get_fixed(&c, id, "id", tmp, WIRE_MAX_ID) == 0 && charset_ok(tmp, "._:-")) strcpy(m->id, tmp);
    }
    if (v->via.u64 != WIRE_VERSION)
        return hired_errf(err, HIRED_EPROTO, "protocol version %llu not supported (this peer speaks version %d)",
                          (unsigned long long)v->via.u64, WIRE_VERSION);
    if (!type) return hired_errf(err, HIRED_EPROTO, "header: missing field 'type'");
    if (type->type != MSGPACK_OBJECT_STR) return hired_errf(err, HIRED_EPROTO, "header: field 'type' must be a string");
    if (m->type == WIRE_NONE) {
        int n = type->via.str.size > 32 ? 32 : (int)type->via.str.size;
        return hired_errf(err, HIRED_EPROTO, "unknown message type '%.*s'", n, type->via.str.ptr);
    }
    /* Fill defaults now that the type is known (params are optional in SUBMIT). */
    wire_type_t t = m->type;
    char keep_id[WIRE_MAX_ID + 1];
    strcpy(keep_id, m->id);
    wire_msg_init(m, t);
    strcpy(m->id, keep_id);

    uint32_t allowed = k_rules[t].req | k_rules[t].opt;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key, *val = &map->ptr[i].val;
        if (wp_key_is(k, "v") || wp_key_is(k, "type")) continue;
        int fi = -1;
        for (int j = 0; j < N_FIELDS; j++)
            if (wp_key_is(k, k_field_names[j])) fi = j;
        uint32_t bit = fi >= 0 ? 1u << fi : 0;
        if (!(bit & allowed)) {
            int n = k->via.str.size > 64 ? 64 : (int)k->via.str.size;
            return hired_errf(err, HIRED_EPROTO, "%s: unknown field '%.*s'", c.tn, n, k->via.str.ptr);
        }
        if (m->present & bit)
            return hired_errf(err, HIRED_EPROTO, "%s: duplicate field '%s'", c.tn, k_field_names[fi]);
        m->present |= bit;
        int rc = parse_field(&c, m, bit, val, lim);
        if (rc) return rc;
    }
    uint32_t missing = k_rules[t].req & ~m->present;
    if (missing)
        return hired_errf(err, HIRED_EPROTO, "%s: missing field '%s'", c.tn, k_field_names[field_index(missing & -missing)]);
    return wire_validate(m, lim, err);
}

int wire_decode(const void *buf, size_t len, const wire_limits_t *lim_in, wire_msg_t *m, char *err) {
    memset(m, 0, sizeof *m);
    wire_limits_t lim = wire_limits_resolve(lim_in);
    if (len > lim.max_header)
        return hired_errf(err, HIRED_ERANGE, "header is %zu bytes, limit %zu", len, lim.max_header);
    if (len == 0) return hired_errf(err, HIRED_EPROTO, "header frame is empty");
    size_t pos = 0;
    int rc = wp_scan(buf, len, &pos, 0, err);
    if (rc) return rc;
    if (pos != len)
        return hired_errf(err, HIRED_EPROTO, "header has %zu trailing bytes after the msgpack map", len - pos);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, buf, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) rc = hired_errf(err, HIRED_ENOMEM, "out of memory decoding header");
    else if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
        rc = hired_errf(err, HIRED_EPROTO, "header is not valid msgpack");
    else
        rc = decode_root(&up.data, &lim, m, err);
    msgpack_unpacked_destroy(&up);
    /* A refused header may hold an id that is itself the problem (a non-ASCII character, too
     * long): keep only an id that an ERROR reply can carry, so the sender still gets one. */
    if (rc && m->id[0] && !charset_ok(m->id, "._:-")) m->id[0] = 0;
    return rc;
}

// ---- payload frames -----------------------------------------------------------------------------

/* The image frames sizes[0..n) of a SUBMIT or encode JOB: each 1..max_image, all together at most
 * max_images_bytes. */
static int check_images(const char *tn, int n, const size_t *sizes, const wire_limits_t *lim, char *err) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        char which[32] = "image";
        if (n > 1) snprintf(which, sizeof which, "image %d of %d", i + 1, n);
        if (sizes[i] == 0) return hired_errf(err, HIRED_EPROTO, "%s: %s frame is empty", tn, which);
        if (sizes[i] > lim->max_image)
            return hired_errf(err, HIRED_ERANGE, "%s: %s is %zu bytes, limit %zu", tn, which, sizes[i], lim->max_image);
        total += sizes[i];
    }
    if (total > lim->max_images_bytes)
        return hired_errf(err, HIRED_ERANGE, "%s: the %d images are %zu bytes together, limit %zu", tn, n, total,
                          lim->max_images_bytes);
    return HIRED_OK;
}

int wire_check_payloads(const wire_msg_t *m, int n, const size_t *sizes, const wire_limits_t *lim_in,
                        char *err) {
    if (m->type <= WIRE_NONE || m->type >= WIRE_TYPE_COUNT)
        return hired_errf(err, HIRED_EPROTO, "unknown message type %d", (int)m->type);
    wire_limits_t lim = wire_limits_resolve(lim_in);
    const char *tn = wire_type_name(m->type);
    for (int i = 0; i < n; i++)
        if (sizes[i] > lim.max_frame)
            return hired_errf(err, HIRED_ERANGE, "%s: payload frame %d is %zu bytes, limit %zu", tn, i + 1, sizes[i],
                              lim.max_frame);
    const bool job = m->type == WIRE_JOB, encode = job && !strcmp(m->service, "encode");
    if (m->type == WIRE_SUBMIT && m->n_messages) { /* one frame per image part, in order */
        uint32_t parts = wire_msg_image_parts(m);
        if ((uint32_t)n < parts)
            return hired_errf(err, HIRED_EPROTO, "SUBMIT: the messages have %u image part%s but %d image frame%s "
                              "follow%s the header (image part %d has no frame)", parts, parts == 1 ? "" : "s", n,
                              n == 1 ? "" : "s", n == 1 ? "s" : "", n + 1);
        if ((uint32_t)n > parts)
            return hired_errf(err, HIRED_EPROTO, "SUBMIT: %d image frame%s follow%s the header but the messages have %u "
                              "image part%s (frame %u has no image part)", n, n == 1 ? "" : "s", n == 1 ? "s" : "",
                              parts, parts == 1 ? "" : "s", parts + 1);
        return check_images(tn, n, sizes, &lim, err);
    }
    if (encode) {
        if (n < 1 || n > WIRE_MAX_IMAGES)
            return hired_errf(err, HIRED_EPROTO, "JOB: an encode job takes 1-%d image frames, got %d", WIRE_MAX_IMAGES, n);
        return check_images(tn, n, sizes, &lim, err);
    }
    if (m->type == WIRE_RESULT || job) { /* one tensor per visual record */
        if ((uint32_t)n != m->n_visuals)
            return hired_errf(err, HIRED_EPROTO, "%s: %u visual record%s but %d tensor frame%s after the header", tn,
                              m->n_visuals, m->n_visuals == 1 ? "" : "s", n, n == 1 ? "" : "s");
        for (int i = 0; i < n; i++) {
            const wire_visual_t *v = &m->visuals[i];
            uint64_t want = (uint64_t)v->kept * v->dim * wire_dtype_size(v->dtype);
            if (sizes[i] != want)
                return hired_errf(err, HIRED_EPROTO, "%s: tensor frame %d is %zu bytes, expected [%u, %u] %s = %llu", tn,
                                  i + 1, sizes[i], v->kept, v->dim, wire_dtype_name(v->dtype), (unsigned long long)want);
        }
        return HIRED_OK;
    }
    int want = m->type == WIRE_SUBMIT || m->type == WIRE_STATUS_REPLY ? 1 : 0;
    if (n != want)
        return hired_errf(err, HIRED_EPROTO, "%s: expected %d payload frame%s after the header%s, got %d", tn, want,
                          want == 1 ? "" : "s", m->type == WIRE_SUBMIT ? " (the image of its 'prompt')" : "", n);
    return m->type == WIRE_SUBMIT ? check_images(tn, n, sizes, &lim, err) : HIRED_OK;
}
