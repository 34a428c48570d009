/* openai.h — what the gateway writes back in the OpenAI chat completions format, and the text
 * handling between hired's token stream and it. Pure functions, no I/O:
 *
 *   gw_error_json       {"error":{"message","type","param","code"}}
 *   gw_completion_json  one chat.completion object (non-streaming answer)
 *   gw_chunk_json       one chat.completion.chunk (a server-sent event's data)
 *   gw_usage_json       usage {prompt_tokens, completion_tokens, total_tokens, hired:{...}}
 *   gw_stop_scan        stop strings applied to a growing text (the wire has no field for them)
 *   gw_utf8_*           token text made valid UTF-8 for JSON (incomplete tails held back,
 *                       invalid bytes replaced by U+FFFD)
 *
 * Every function returning char * returns a new NUL-terminated string the caller frees with
 * free(), or NULL when out of memory.
 * Not here: parsing requests (chat.h), HTTP (http.c). */
#ifndef HIRED_GW_OPENAI_H
#define HIRED_GW_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "hired_client.h"

/* What a finished job reports, for `usage` (from its DONE event; zero when unknown). */
typedef struct gw_usage {
    uint32_t prompt_tokens, completion_tokens, image_tokens;
    uint32_t visual_kept, visual_total, result_bytes;
    double timings_ms[HIRED_STAGE_COUNT]; /* -1 = not reported */
    double gateway_ms;                     /* the request's time in the gateway, arrival to end */
} gw_usage_t;

/* Copies the usage figures of a DONE event (counts and timings). */
void gw_usage_from_event(gw_usage_t *u, const hired_event *ev);

/* The OpenAI error object of e. */
char *gw_error_json(const gw_error_t *e);

/* usage as a JSON object text: prompt_tokens, completion_tokens, total_tokens and
 * "hired": {visual_tokens_kept, visual_tokens_total, image_tokens, result_bytes, timings_ms:
 * {stage: ms, ...}, gateway_ms}. */
char *gw_usage_json(const gw_usage_t *u);

/* A whole non-streaming answer. id, model, text[0..len) (valid UTF-8), finish ("stop",
 * "length"). */
char *gw_completion_json(const char *id, int64_t created, const char *model, const char *text, size_t len,
                         const char *finish, const gw_usage_t *u);

/* One chunk: delta {role:"assistant"} when role, content text[0..len) when text != NULL,
 * finish_reason when finish != NULL; with usage != NULL a usage chunk (choices empty). */
char *gw_chunk_json(const char *id, int64_t created, const char *model, bool role, const char *text, size_t len,
                    const char *finish, const gw_usage_t *usage);

/* Stop strings over a growing text t[0..n), of which t[0..sent) was already handed out.
 * Returns true with *cut = the offset of the earliest complete stop string at or after the
 * text already handed out (the answer ends there); otherwise false with *safe = how far the
 * text can be handed out now: up to the start of the earliest tail that could still grow into a
 * stop string. stops[0..n_stops) are non-empty. Never looks before sent - (longest stop - 1). */
bool gw_stop_scan(const char *t, size_t n, size_t sent, char *const *stops, int n_stops, size_t *cut, size_t *safe);

/* Length of the longest prefix of s[0..n) that does not end inside an incomplete UTF-8
 * sequence (which the next token may complete). */
size_t gw_utf8_complete(const char *s, size_t n);
/* s[0..n) with every invalid UTF-8 sequence replaced by U+FFFD (one per maximal invalid
 * subpart, as Python's errors="replace" does); *out_len receives the length. */
char *gw_utf8_clean(const char *s, size_t n, size_t *out_len);

#endif
