/* chat.c — see chat.h. Every refusal names the field (OpenAI's `param`) and the rule broken;
 * nothing here trusts a length or a type it has not checked. Allocations go through mem.h, so
 * tests sweep allocation failures (test_gateway), and cJSON's too when the caller routes its
 * hooks there. */
#include "chat.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "mem.h"

#define BAD_REQUEST "invalid_request_error"

int gw_error_set(gw_error_t *e, int http, const char *type, const char *code, const char *param, const char *fmt, ...) {
    e->http = http;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return http;
}

void gw_chat_free(gw_chat_t *c) {
    if (!c) return;
    for (int i = 0; c->msgs && i < c->n_messages; i++) {
        for (int k = 0; k < c->msgs[i].n_parts; k++) mem_free(c->msgs[i].parts[k].text);
        mem_free(c->msgs[i].parts);
    }
    mem_free(c->msgs);
    for (int i = 0; i < c->n_images; i++) mem_free(c->images[i].bytes), mem_free(c->images[i].url);
    for (int i = 0; i < c->n_stop; i++) mem_free(c->stop[i]);
    memset(c, 0, sizeof *c);
}

// ---- base64 and image sniffing ---------------------------------------------------------------

static int b64_value(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

int gw_base64_decode(const char *s, size_t n, size_t max, uint8_t **out, size_t *out_len, char *err) {
    *out = NULL;
    *out_len = 0;
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) n--, pad++;
    if (pad && (n + pad) % 4 != 0)
        return hired_errf(err, HIRED_EFORMAT, "'=' padding at offset %zu does not end a 4-character group", n);
    if (n % 4 == 1) return hired_errf(err, HIRED_EFORMAT, "%zu characters cannot be base64 (one too many)", n);
    size_t bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (bytes > max) return hired_errf(err, HIRED_ERANGE, "decodes to %zu bytes, more than the limit of %zu", bytes, max);
    uint8_t *b = mem_alloc(bytes ? bytes : 1);
    if (!b) return hired_errf(err, HIRED_ENOMEM, "out of memory decoding %zu bytes", bytes);
    size_t o = 0;
    uint32_t acc = 0;
    int nacc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            mem_free(b);
            unsigned char ch = (unsigned char)s[i];
            if (ch >= 0x20 && ch < 0x7f)
                return hired_errf(err, HIRED_EFORMAT, "invalid base64 character '%c' at offset %zu", ch, i);
            return hired_errf(err, HIRED_EFORMAT, "invalid base64 byte 0x%02x at offset %zu", ch, i);
        }
        acc = acc << 6 | (uint32_t)v;
        if (++nacc == 4) {
            b[o++] = (uint8_t)(acc >> 16), b[o++] = (uint8_t)(acc >> 8), b[o++] = (uint8_t)acc;
            acc = 0, nacc = 0;
        }
    }
    if (nacc == 2) b[o++] = (uint8_t)(acc >> 4);
    else if (nacc == 3) b[o++] = (uint8_t)(acc >> 10), b[o++] = (uint8_t)(acc >> 2);
    *out = b;
    *out_len = o;
    return HIRED_OK;
}

const char *gw_image_kind(const uint8_t *b, size_t n) {
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return "jpeg";
    if (n >= 8 && memcmp(b, png, 8) == 0) return "png";
    return NULL;
}

// ---- typed field readers ---------------------------------------------------------------------

/* A field that is absent or null counts as not given. */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* Reads an integer field in [lo, hi]. 1 given, 0 absent, <0 refused (e filled). */
static int get_int(const cJSON *o, const char *name, double lo, double hi, int64_t *out, gw_error_t *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return -gw_error_set(e, 400, BAD_REQUEST, NULL, name, "'%s' must be an integer", name);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return -gw_error_set(e, 400, BAD_REQUEST, NULL, name, "'%s' must be in [%.0f, %.0f] (got %.0f)", name, lo, hi,
                             v->valuedouble);
    *out = (int64_t)v->valuedouble;
    return 1;
}

/* Reads a number field in [lo, hi] (lo excluded when lo_open). */
static int get_num(const cJSON *o, const char *name, double lo, bool lo_open, double hi, double *out, gw_error_t *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return -gw_error_set(e, 400, BAD_REQUEST, NULL, name, "'%s' must be a number", name);
    double x = v->valuedouble;
    if ((lo_open ? x <= lo : x < lo) || x > hi)
        return -gw_error_set(e, 400, BAD_REQUEST, NULL, name, "'%s' must be in %c%g, %g] (got %g)", name,
                             lo_open ? '(' : '[', lo, hi, x);
    *out = x;
    return 1;
}

static int get_bool(const cJSON *o, const char *name, bool *out, gw_error_t *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return -gw_error_set(e, 400, BAD_REQUEST, NULL, name, "'%s' must be true or false", name);
    *out = cJSON_IsTrue(v);
    return 1;
}

/* A string field whose value is one of `choices` ("a|b|c"); copied into out[cap]. */
static int get_choice(const cJSON *o, const char *name, const char *choices, char *out, size_t cap, gw_error_t *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (cJSON_IsString(v)) {
        size_t l = strlen(v->valuestring);
        for (const char *c = choices; l > 0 && *c;) {
            size_t cl = strcspn(c, "|");
            if (cl == l && !strncmp(c, v->valuestring, l) && l < cap) {
                memcpy(out, c, l);
                out[l] = 0;
                return 1;
            }
            c += cl + (c[cl] == '|');
        }
    }
    return -gw_error_set(e, 400, BAD_REQUEST, NULL, name, "'%s' must be one of %s", name, choices);
}

// ---- messages --------------------------------------------------------------------------------


/* One image_url part: decodes a data: URI into im->bytes or keeps an http(s) URL in im->url. */
static int take_image(const cJSON *part, int msg, int idx, const gw_chat_limits_t *lim, gw_image_t *im, gw_error_t *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content[%d].image_url", msg, idx);
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const cJSON *url = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : iu;
    if (!cJSON_IsString(url))
        return gw_error_set(e, 400, BAD_REQUEST, NULL, param, "%s must be an object with a string 'url'", param);
    const char *u = url->valuestring;
    if (!strncmp(u, "data:", 5)) {
        const char *comma = strchr(u, ',');
        if (!comma)
            return gw_error_set(e, 400, BAD_REQUEST, NULL, param, "%s: a data: URI needs a ',' before its data", param);
        size_t hl = (size_t)(comma - u);
        if (hl < 12 || strncmp(comma - 7, ";base64", 7) != 0)
            return gw_error_set(e, 400, BAD_REQUEST, NULL, param,
                                "%s: only base64 data: URIs are accepted (data:image/jpeg;base64,... or "
                                "data:image/png;base64,...)",
                                param);
        const char *mt = u + 5;
        size_t ml = hl - 5 - 7;
        if (!(ml == 10 && !strncmp(mt, "image/jpeg", 10)) && !(ml == 9 && !strncmp(mt, "image/jpg", 9)) &&
            !(ml == 9 && !strncmp(mt, "image/png", 9)))
            return gw_error_set(e, 400, BAD_REQUEST, NULL, param,
                                "%s: media type '%.*s' is not accepted; send image/jpeg or image/png", param,
                                (int)(ml < 64 ? ml : 64), mt);
        char err[HIRED_ERR_LEN];
        int rc = gw_base64_decode(comma + 1, strlen(comma + 1), lim->max_image_bytes, &im->bytes, &im->len, err);
        if (rc == HIRED_ENOMEM) return gw_error_set(e, 500, "server_error", NULL, param, "%s: %s", param, err);
        if (rc) return gw_error_set(e, 400, BAD_REQUEST, rc == HIRED_ERANGE ? "image_too_large" : "invalid_base64",
                                    param, "%s: the data: URI %s", param, err);
        if (!gw_image_kind(im->bytes, im->len))
            return gw_error_set(e, 400, BAD_REQUEST, "invalid_image", param,
                                "%s: the data (%zu bytes) is not a JPEG or PNG image", param, im->len);
        return 0;
    }
    if (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) {
        if (!lim->fetch_http)
            return gw_error_set(e, 400, BAD_REQUEST, "image_url_not_allowed", param,
                                "%s: this server does not fetch http(s) images (images.fetch is off); send the image "
                                "as a data: URI",
                                param);
        if (strlen(u) > 8192) return gw_error_set(e, 400, BAD_REQUEST, NULL, param, "%s: URL longer than 8192 bytes", param);
        im->url = mem_strdup(u);
        if (!im->url) return gw_error_set(e, 500, "server_error", NULL, param, "out of memory");
        return 0;
    }
    return gw_error_set(e, 400, BAD_REQUEST, "image_url_not_allowed", param,
                        "%s: only data: URIs%s are accepted (not '%.16s...')", param,
                        lim->fetch_http ? " and http(s) URLs" : "", u);
}

/* Message m's content into x (its role set): a string is one text part; a list keeps its text
 * and image_url parts in order, each image taken into c->images. *text counts the bytes. */
static int message_parts(const cJSON *m, int idx, gw_msg_t *x, size_t *text, const gw_chat_limits_t *lim, gw_chat_t *c,
                         gw_error_t *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", idx);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const bool one = cJSON_IsString(content);
    if (!one && !cJSON_IsArray(content))
        return gw_error_set(e, 400, BAD_REQUEST, NULL, param, "%s must be a string or an array of content parts", param);
    int n = one ? 1 : cJSON_GetArraySize(content);
    if (n > GW_MAX_PARTS)
        return gw_error_set(e, 400, BAD_REQUEST, NULL, param, "%s has %d parts; the limit is %d", param, n, GW_MAX_PARTS);
    if (n && !(x->parts = mem_calloc((size_t)n, sizeof *x->parts)))
        return gw_error_set(e, 500, "server_error", NULL, param, "out of memory");
    int k = 0;
    const cJSON *part = one ? NULL : content->child;
    for (; k < n; k++, part = part ? part->next : NULL) {
        char pp[80];
        snprintf(pp, sizeof pp, "%s[%d]", param, k);
        const cJSON *t = one ? content : NULL;
        if (!one) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
            if (!cJSON_IsObject(part) || !cJSON_IsString(type))
                return gw_error_set(e, 400, BAD_REQUEST, NULL, pp, "%s must be an object with a string 'type'", pp);
            if (!strcmp(type->valuestring, "image_url")) {
                if (strcmp(x->role, "user") != 0)
                    return gw_error_set(e, 400, BAD_REQUEST, NULL, pp, "%s: images are accepted in user messages only", pp);
                if (c->n_images == GW_MAX_IMAGES)
                    return gw_error_set(e, 400, BAD_REQUEST, "too_many_images", "messages",
                                        "this server takes at most %d images per request (image_url content parts)",
                                        GW_MAX_IMAGES);
                int rc = take_image(part, idx, k, lim, &c->images[c->n_images++], e);
                if (rc) return rc;
                x->n_parts = k + 1; /* an image part: text NULL */
                continue;
            }
            if (strcmp(type->valuestring, "text"))
                return gw_error_set(e, 400, BAD_REQUEST, "unsupported_content", pp,
                                    "%s: content part type '%.40s' is not supported (text and image_url are)", pp,
                                    type->valuestring);
            t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (!cJSON_IsString(t)) return gw_error_set(e, 400, BAD_REQUEST, NULL, pp, "%s.text must be a string", pp);
        }
        const char *s = t->valuestring;
        if (strstr(s, "<image>"))
            return gw_error_set(e, 400, BAD_REQUEST, NULL, one ? param : pp,
                                "message text must not contain '<image>' (the model's image placeholder); send images "
                                "as image_url parts");
        *text += strlen(s);
        if (*text > GW_MAX_PROMPT)
            return gw_error_set(e, 400, BAD_REQUEST, "prompt_too_long", "messages",
                                "the conversation's text is more than %d bytes (the limit)", GW_MAX_PROMPT);
        if (!(x->parts[k].text = mem_strdup(s))) return gw_error_set(e, 500, "server_error", NULL, param, "out of memory");
        x->n_parts = k + 1;
    }
    return 0;
}

static int parse_messages(const cJSON *root, const gw_chat_limits_t *lim, gw_chat_t *c, gw_error_t *e) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs) return gw_error_set(e, 400, BAD_REQUEST, NULL, "messages", "'messages' is required");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "messages", "'messages' must be a non-empty array");
    int n = cJSON_GetArraySize(msgs), i = 0;
    if (n > GW_MAX_MESSAGES)
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "messages", "'messages' has %d messages; the limit is %d", n,
                            GW_MAX_MESSAGES);
    if (!(c->msgs = mem_calloc((size_t)n, sizeof *c->msgs)))
        return gw_error_set(e, 500, "server_error", NULL, "messages", "out of memory");
    size_t text = 0;
    int rc = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        char param[48];
        snprintf(param, sizeof param, "messages[%d].role", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            rc = gw_error_set(e, 400, BAD_REQUEST, NULL, param, "messages[%d] must be an object with a string 'role'", i);
            break;
        }
        const char *r = role->valuestring;
        if (strcmp(r, "system") && strcmp(r, "developer") && strcmp(r, "user") && strcmp(r, "assistant")) {
            rc = gw_error_set(e, 400, BAD_REQUEST, NULL, param,
                              "%s '%.32s' is not supported (system, developer, user, assistant are)", param, r);
            break;
        }
        if (cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
            rc = gw_error_set(e, 400, BAD_REQUEST, NULL, param, "messages[%d]: tool calls are not supported", i);
            break;
        }
        if (i == n - 1 && strcmp(r, "user") != 0) {
            rc = gw_error_set(e, 400, BAD_REQUEST, NULL, param, "the last message must have role 'user' (got '%.32s')", r);
            break;
        }
        c->msgs[i].role = !strcmp(r, "user") ? "user" : !strcmp(r, "assistant") ? "assistant" : "system";
        c->n_messages = i + 1; /* gw_chat_free frees what a failure leaves */
        rc = message_parts(m, i, &c->msgs[i], &text, lim, c, e);
        if (rc) break;
        i++;
    }
    return rc;
}

// ---- the request -----------------------------------------------------------------------------

static int parse_stop(const cJSON *root, gw_chat_t *c, gw_error_t *e) {
    const cJSON *s = field(root, "stop");
    if (!s) return 0;
    const cJSON *one = cJSON_IsString(s) ? s : NULL;
    if (!one && (!cJSON_IsArray(s) || cJSON_GetArraySize(s) > GW_MAX_STOP))
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "stop", "'stop' must be a string or an array of at most %d strings",
                            GW_MAX_STOP);
    const cJSON *it = one ? one : s->child;
    for (; it; it = one ? NULL : it->next) {
        size_t l = cJSON_IsString(it) ? strlen(it->valuestring) : 0;
        if (l == 0 || l > GW_MAX_STOP_LEN)
            return gw_error_set(e, 400, BAD_REQUEST, NULL, "stop", "each stop sequence must be a string of 1-%d bytes",
                                GW_MAX_STOP_LEN);
        if (!(c->stop[c->n_stop] = mem_strdup(it->valuestring)))
            return gw_error_set(e, 500, "server_error", NULL, "stop", "out of memory");
        c->n_stop++;
    }
    return 0;
}

/* Fields of features this server does not have: refused by name instead of silently ignored. */
static int refuse_unsupported(const cJSON *root, gw_error_t *e) {
    int64_t n = 1;
    if (get_int(root, "n", 1, 1, &n, e) < 0) return gw_error_set(e, 400, BAD_REQUEST, NULL, "n", "'n' must be 1 (one choice per request)");
    bool lp = false;
    if (get_bool(root, "logprobs", &lp, e) < 0) return e->http;
    if (lp) return gw_error_set(e, 400, BAD_REQUEST, NULL, "logprobs", "'logprobs' is not supported");
    const cJSON *tools = field(root, "tools");
    if (tools && (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) > 0))
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "tools", "'tools' (function calling) is not supported");
    const cJSON *fns = field(root, "functions");
    if (fns) return gw_error_set(e, 400, BAD_REQUEST, NULL, "functions", "'functions' is not supported");
    const cJSON *rf = field(root, "response_format");
    const cJSON *rft = cJSON_IsObject(rf) ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
    if (rf && !(cJSON_IsString(rft) && !strcmp(rft->valuestring, "text")))
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "response_format", "only response_format {\"type\": \"text\"} is supported");
    const cJSON *mod = field(root, "modalities");
    if (cJSON_IsArray(mod)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, mod) if (!cJSON_IsString(it) || strcmp(it->valuestring, "text"))
            return gw_error_set(e, 400, BAD_REQUEST, NULL, "modalities", "only the text output modality is supported");
    }
    return 0;
}

static int parse_root(const cJSON *root, const gw_chat_limits_t *lim, gw_chat_t *c, gw_error_t *e) {
    if (!cJSON_IsObject(root)) return gw_error_set(e, 400, BAD_REQUEST, NULL, NULL, "the request body must be a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model) return gw_error_set(e, 400, BAD_REQUEST, NULL, "model", "'model' is required");
    size_t ml = cJSON_IsString(model) ? strlen(model->valuestring) : 0;
    bool ok = ml >= 1 && ml <= GW_MAX_MODEL;
    for (size_t i = 0; ok && i < ml; i++) {
        char ch = model->valuestring[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("._:/+-", ch);
    }
    if (!ok)
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "model",
                            "'model' must be a string of 1-%d characters of [A-Za-z0-9._:/+-]", GW_MAX_MODEL);
    memcpy(c->model, model->valuestring, ml + 1);

    int rc = refuse_unsupported(root, e);
    if (rc) return rc;

    hired_job job;
    hired_job_init(&job);
    c->params = job.params;
    c->params.max_tokens = lim->default_max_tokens;
    int64_t iv;
    double dv;
    /* max_completion_tokens wins over the older max_tokens when both are given (OpenAI's rule) */
    if ((rc = get_int(root, "max_tokens", 1, 16384, &iv, e)) < 0) return -rc;
    if (rc) c->params.max_tokens = (int)iv;
    if ((rc = get_int(root, "max_completion_tokens", 1, 16384, &iv, e)) < 0) return -rc;
    if (rc) c->params.max_tokens = (int)iv;
    if ((rc = get_num(root, "temperature", 0, false, 100, &dv, e)) < 0) return -rc;
    if (rc) c->params.temperature = dv;
    if ((rc = get_num(root, "top_p", 0, true, 1, &dv, e)) < 0) return -rc;
    if (rc) c->params.top_p = dv;
    if ((rc = get_int(root, "top_k", -1, 1000000, &iv, e)) < 0) return -rc;
    if (rc) c->params.top_k = iv < 0 ? 0 : (int)iv; /* -1 = off, as in vLLM */
    /* seeds travel as JSON numbers (doubles): integers up to 2^53 are exact; negative ones are
     * taken as their 64-bit two's complement */
    if ((rc = get_int(root, "seed", -9007199254740992.0, 9007199254740992.0, &iv, e)) < 0) return -rc;
    if (rc) c->params.seed = (uint64_t)iv;
    if ((rc = get_num(root, "budget", 0, true, 1, &dv, e)) < 0) return -rc;
    if (rc) c->params.budget = dv;
    if ((rc = get_num(root, "alpha", 0, false, 1, &dv, e)) < 0) return -rc;
    if (rc) c->params.alpha = dv;
    snprintf(c->strategy, sizeof c->strategy, "hired");
    snprintf(c->newline, sizeof c->newline, "hf");
    if ((rc = get_choice(root, "strategy", "none|hired|spatial|prumerge|prumerge+", c->strategy, sizeof c->strategy, e)) < 0)
        return -rc;
    if ((rc = get_choice(root, "newline", "hf|none", c->newline, sizeof c->newline, e)) < 0) return -rc;
    c->params.strategy = c->strategy;
    c->params.newline = c->newline;
    c->params.stream = true; /* the gateway always reads the token stream (stop strings, SSE) */
    if ((rc = get_int(root, "deadline_ms", 1, lim->max_deadline_ms, &iv, e)) < 0) return -rc;
    if (rc) c->deadline_ms = (int)iv;
    if ((rc = get_bool(root, "stream", &c->stream, e)) < 0) return -rc;
    const cJSON *so = field(root, "stream_options");
    if (so && !cJSON_IsObject(so))
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "stream_options", "'stream_options' must be an object");
    if (so && get_bool(so, "include_usage", &c->include_usage, e) < 0)
        return gw_error_set(e, 400, BAD_REQUEST, NULL, "stream_options.include_usage",
                            "'stream_options.include_usage' must be true or false");
    if ((rc = parse_stop(root, c, e))) return rc;
    return parse_messages(root, lim, c, e);
}

int gw_chat_parse(const char *body, size_t len, const gw_chat_limits_t *lim, gw_chat_t *out, gw_error_t *e) {
    memset(out, 0, sizeof *out);
    memset(e, 0, sizeof *e);
    const char *at = NULL; /* not cJSON_GetErrorPtr: a global other threads may write */
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &at, false);
    if (!root) {
        size_t off = at && at >= body && at <= body + len ? (size_t)(at - body) : 0;
        return gw_error_set(e, 400, BAD_REQUEST, "invalid_json", NULL,
                            "the request body is not valid JSON (error near byte %zu of %zu)", off, len);
    }
    int rc = parse_root(root, lim, out, e);
    cJSON_Delete(root);
    if (rc) gw_chat_free(out);
    return rc;
}
