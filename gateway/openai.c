/* openai.c — see openai.h. JSON is built with cJSON; every string put into it is valid UTF-8
 * (gw_utf8_clean) so the output is valid JSON for strict parsers. */
#include "openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* hired_stage order (hired_client.h) */
static const char *const k_stage[HIRED_STAGE_COUNT] = {"queue",    "preprocess", "vit",     "select", "transfer",
                                                       "project",  "prefill",    "decode",  "total"};

void gw_usage_from_event(gw_usage_t *u, const hired_event *ev) {
    u->prompt_tokens = ev->prompt_tokens;
    u->completion_tokens = ev->completion_tokens;
    u->image_tokens = ev->image_tokens;
    u->visual_kept = ev->visual_kept;
    u->visual_total = ev->visual_total;
    u->result_bytes = ev->result_bytes;
    for (int s = 0; s < HIRED_STAGE_COUNT; s++) u->timings_ms[s] = ev->timings_ms[s];
}

static char *print_free(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* A string item from bytes that may not be valid UTF-8 or NUL-terminated. */
static cJSON *clean_string(const char *s, size_t n) {
    size_t l = 0;
    char *c = gw_utf8_clean(s, n, &l);
    if (!c) return NULL;
    cJSON *v = cJSON_CreateString(c);
    free(c);
    return v;
}

char *gw_error_json(const gw_error_t *e) {
    cJSON *o = cJSON_CreateObject(), *er = cJSON_AddObjectToObject(o, "error");
    if (!er) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToObject(er, "message", clean_string(e->message, strlen(e->message)));
    cJSON_AddStringToObject(er, "type", e->type ? e->type : "server_error");
    if (e->param[0]) cJSON_AddStringToObject(er, "param", e->param);
    else cJSON_AddNullToObject(er, "param");
    if (e->code) cJSON_AddStringToObject(er, "code", e->code);
    else cJSON_AddNullToObject(er, "code");
    return print_free(o);
}

static cJSON *usage_obj(const gw_usage_t *u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_tokens", u->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", u->completion_tokens);
    cJSON_AddNumberToObject(o, "total_tokens", (double)u->prompt_tokens + u->completion_tokens);
    cJSON *h = cJSON_AddObjectToObject(o, "hired");
    cJSON_AddNumberToObject(h, "visual_tokens_kept", u->visual_kept);
    cJSON_AddNumberToObject(h, "visual_tokens_total", u->visual_total);
    cJSON_AddNumberToObject(h, "image_tokens", u->image_tokens);
    cJSON_AddNumberToObject(h, "result_bytes", u->result_bytes);
    cJSON *t = cJSON_AddObjectToObject(h, "timings_ms");
    for (int s = 0; s < HIRED_STAGE_COUNT; s++)
        if (u->timings_ms[s] >= 0) cJSON_AddNumberToObject(t, k_stage[s], u->timings_ms[s]);
    cJSON_AddNumberToObject(h, "gateway_ms", u->gateway_ms);
    return o;
}

char *gw_usage_json(const gw_usage_t *u) { return print_free(usage_obj(u)); }

char *gw_completion_json(const char *id, int64_t created, const char *model, const char *text, size_t len,
                         const char *finish, const gw_usage_t *u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddItemToObject(msg, "content", clean_string(text, len));
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", finish);
    cJSON_AddItemToObject(o, "usage", usage_obj(u));
    return print_free(o);
}

char *gw_chunk_json(const char *id, int64_t created, const char *model, bool role, const char *text, size_t len,
                    const char *finish, const gw_usage_t *usage) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (usage) {
        cJSON_AddItemToObject(o, "usage", usage_obj(usage));
    } else {
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddNumberToObject(ch, "index", 0);
        cJSON *d = cJSON_AddObjectToObject(ch, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (text) cJSON_AddItemToObject(d, "content", clean_string(text, len));
        cJSON_AddNullToObject(ch, "logprobs");
        if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
        else cJSON_AddNullToObject(ch, "finish_reason");
    }
    return print_free(o);
}

// ---- stop strings ----------------------------------------------------------------------------

bool gw_stop_scan(const char *t, size_t n, size_t sent, char *const *stops, int n_stops, size_t *cut, size_t *safe) {
    size_t longest = 0;
    for (int k = 0; k < n_stops; k++) {
        size_t l = strlen(stops[k]);
        if (l > longest) longest = l;
    }
    /* Text before `sent` was handed out only where no stop string could start (the held-back
     * tail below), so a match starts at or after from = sent - (longest - 1) at the earliest and
     * must end after sent. */
    size_t from = longest > 0 && sent >= longest - 1 ? sent - (longest - 1) : 0;
    bool found = false;
    size_t best = n;
    for (int k = 0; k < n_stops; k++) {
        size_t l = strlen(stops[k]);
        for (size_t i = from; i + l <= n && i < best; i++)
            if (i + l > sent && !memcmp(t + i, stops[k], l)) {
                best = i, found = true;
                break;
            }
    }
    if (found) {
        *cut = best < sent ? sent : best; /* cannot happen with the invariant; never go back */
        return true;
    }
    /* the earliest tail t[i..n) that is a proper prefix of some stop string */
    size_t hold = n;
    size_t start = n > longest ? n - longest + 1 : 0;
    if (start < sent) start = sent;
    for (size_t i = start; i < n && hold == n; i++)
        for (int k = 0; k < n_stops; k++) {
            size_t l = strlen(stops[k]);
            if (n - i < l && !memcmp(t + i, stops[k], n - i)) {
                hold = i;
                break;
            }
        }
    *safe = hold;
    return false;
}

// ---- UTF-8 -----------------------------------------------------------------------------------

/* The sequence at s[i]: *need = its full length (0 for an invalid lead byte); returns how many of
 * its bytes, from i, are valid so far (1 for a valid lead, up to need). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t i, size_t *need) {
    unsigned char b = s[i];
    unsigned char lo = 0x80, hi = 0xbf;
    if (b < 0x80) return *need = 1, 1;
    if (b >= 0xc2 && b <= 0xdf) *need = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        *need = 3;
        if (b == 0xe0) lo = 0xa0;
        if (b == 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        *need = 4;
        if (b == 0xf0) lo = 0x90;
        if (b == 0xf4) hi = 0x8f;
    } else {
        return *need = 0, 0;
    }
    size_t k = 1;
    while (k < *need && i + k < n) {
        unsigned char c = s[i + k];
        if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xbf)) break;
        k++;
    }
    return k;
}

size_t gw_utf8_complete(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        size_t i = n - back;
        if ((s[i] & 0xc0) == 0x80) continue; /* a continuation byte: look further back */
        size_t need = 0, got = utf8_seq(s, n, i, &need);
        return need > 1 && got == back && back < need ? i : n;
    }
    return n;
}

char *gw_utf8_clean(const char *str, size_t n, size_t *out_len) {
    const unsigned char *s = (const unsigned char *)str;
    char *o = malloc(n * 3 + 1); /* each bad byte becomes at most 3 bytes */
    if (!o) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t need = 0, got = utf8_seq(s, n, i, &need);
        if (need && got == need) {
            if (s[i]) memcpy(o + w, s + i, got), w += got;
            else memcpy(o + w, "\xef\xbf\xbd", 3), w += 3; /* NUL: never inside a C string */
            i += got;
        } else {
            memcpy(o + w, "\xef\xbf\xbd", 3);
            w += 3;
            i += got ? got : 1;
        }
    }
    o[w] = 0;
    *out_len = w;
    return o;
}
