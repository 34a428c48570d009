/* chat.h — an OpenAI chat completions request body (POST /v1/chat/completions) turned into the
 * job the hired wire carries (protocol v5): one model name, the conversation as messages of text
 * and image parts, 0..16 images, and the sampling and selection parameters. Pure functions (no
 * I/O, no threads): the gateway's HTTP layer calls gw_chat_parse on the body and submits what
 * comes out.
 *
 * The conversation (docs/gateway.md §3 states it for users):
 *   - the messages travel as they are: role (system, user, assistant; "developer" counts as
 *     system) and content, a string or a list of `text` and `image_url` parts kept in order; the
 *     decoder renders them with the model's chat template, each image part becoming that image's
 *     kept visual tokens at its own place;
 *   - images are accepted in user messages only, at most 16 per request (more is a 400
 *     `too_many_images`); none is a text-only request;
 *   - the last message must be a user message (the answer is the assistant's next turn);
 *   - text containing "<image>" is refused (it is the decoder's image placeholder), and the text
 *     of all messages together is at most 64 KiB (the wire's limit).
 * Images: `data:image/jpeg;base64,...` / `data:image/png;base64,...` are decoded here and must
 * be a JPEG or PNG by their first bytes; http(s) URLs are left in `image_url` for the caller to
 * fetch when fetching is enabled and refused otherwise; any other scheme (file:, ftp:, ...) is
 * refused always.
 * Fields: model, messages, max_tokens / max_completion_tokens, temperature, top_p, seed, stop,
 * stream, stream_options.include_usage, n (1 only); hired's extras: strategy, budget, alpha,
 * newline, top_k, deadline_ms. Features this server cannot honour (tools, logprobs, n > 1,
 * response_format other than text, audio) are refused by name; other unknown fields are ignored,
 * as OpenAI-compatible servers do, so newer SDKs keep working.
 * Not here: HTTP (http.c), the answer's JSON (openai.h), fetching URLs (fetch.h). */
#ifndef HIRED_GW_CHAT_H
#define HIRED_GW_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hired_client.h"

#define GW_MAX_STOP 4           /* stop strings per request (OpenAI's limit) */
#define GW_MAX_STOP_LEN 256     /* bytes per stop string */
#define GW_MAX_MODEL 128        /* model name characters, [A-Za-z0-9._:/+-] (the wire's rule) */
#define GW_MAX_PROMPT (64 * 1024) /* text bytes of all messages together (the wire's limit) */
#define GW_MAX_IMAGES 16          /* images per request (the wire's limit) */
#define GW_MAX_MESSAGES 256       /* messages per request (the wire's limit) */
#define GW_MAX_PARTS 64           /* content parts per message (the wire's limit) */

/* What a refusal says: the HTTP status and the OpenAI error object's fields. */
typedef struct gw_error {
    int http;           /* 400, 401, 404, 413, 429, 500, 503, 504 */
    const char *type;   /* "invalid_request_error", "server_error", ... (static) */
    const char *code;   /* machine-readable code, or NULL (static) */
    char param[64];     /* the request field at fault, "" when none */
    char message[768];  /* one sentence naming the problem */
} gw_error_t;

/* Fills e and returns e->http. */
int gw_error_set(gw_error_t *e, int http, const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Limits a parse applies (from the gateway's configuration). */
typedef struct gw_chat_limits {
    int default_max_tokens;   /* when the request gives none, [1, 16384] */
    size_t max_image_bytes;   /* decoded image bytes at most */
    bool fetch_http;          /* http(s) image URLs allowed (fetched by the caller) */
    int max_deadline_ms;      /* largest deadline_ms a request may ask for */
} gw_chat_limits_t;

/* One content part: text, or (text == NULL) an image, the next entry of gw_chat_t.images. */
typedef struct gw_part {
    char *text;
} gw_part_t;

typedef struct gw_msg {
    const char *role;  /* "system", "user" or "assistant" (static) */
    gw_part_t *parts;  /* [n_parts] */
    int n_parts;
} gw_msg_t;

/* One image: decoded data: URI bytes, or an http(s) URL the caller fetches. */
typedef struct gw_image {
    uint8_t *bytes;    /* NULL when url is set */
    size_t len;
    char *url;
} gw_image_t;

/* One parsed request. Strings and buffers are owned, allocated with mem.h (gw_chat_free). */
typedef struct gw_chat {
    char model[GW_MAX_MODEL + 1];
    gw_msg_t *msgs;          /* [n_messages], the conversation in order */
    gw_image_t images[GW_MAX_IMAGES]; /* [n_images], in the order of the image parts */
    int n_images;
    hired_params params;     /* strategy / newline point into the two arrays below */
    char strategy[16], newline[8];
    bool stream, include_usage;
    char *stop[GW_MAX_STOP]; /* [n_stop] non-empty strings */
    int n_stop;
    int deadline_ms;         /* 0 = the gateway's default */
    int n_messages;
} gw_chat_t;

/* Parses body[0..len) (borrowed). 0 and *out filled, or the HTTP status (400, 413) with e
 * naming the field; *out is then freed and zeroed. Caller frees *out with gw_chat_free. */
int gw_chat_parse(const char *body, size_t len, const gw_chat_limits_t *lim, gw_chat_t *out, gw_error_t *e);
/* Frees what *c owns and zeroes it. Safe on a zeroed struct and twice. */
void gw_chat_free(gw_chat_t *c);

/* Decodes standard base64 (RFC 4648 §4, '=' padding optional, no whitespace) from s[0..n).
 * *out (caller frees with mem_free) and *out_len, or HIRED_EFORMAT with err naming the offset of
 * the first bad character, or HIRED_ERANGE when the result would exceed max bytes. */
int gw_base64_decode(const char *s, size_t n, size_t max, uint8_t **out, size_t *out_len, char *err);

/* "jpeg" or "png" by the first bytes of an image file, or NULL. */
const char *gw_image_kind(const uint8_t *b, size_t n);

#endif
