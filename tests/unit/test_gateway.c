/* test_gateway.c — the gateway's pure parts through their headers: request parsing and the
 * conversation -> prompt mapping (gateway/chat.h), base64 and image sniffing, stop strings and
 * UTF-8 handling (openai.h), the answers' JSON, STATUS reading (status.h) and the Prometheus
 * text (metrics.h, status.h). Every refusal is checked for its HTTP status and the field it
 * names. The live server is tested by tests/gateway/ (real processes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "chat.h"
#include "err.h"
#include "mem.h"
#include "metrics.h"
#include "openai.h"
#include "status.h"
#include "test.h"

/* "iVBORw0KGgo=" is the 8-byte PNG signature; "/9j/" the JPEG start FF D8 FF */
#define PNG64 "iVBORw0KGgoAAAANSUhEUg=="
#define JPG64 "/9j/4AAQSkZJRg=="

static gw_chat_limits_t g_lim = {.default_max_tokens = 77, .max_image_bytes = 1024, .fetch_http = false,
                                 .max_deadline_ms = 60000};

static int parse(const char *json, gw_chat_t *c, gw_error_t *e) { return gw_chat_parse(json, strlen(json), &g_lim, c, e); }

/* A request with the given messages JSON and extra top-level fields (may be ""). */
static char *req(const char *extra, const char *messages) {
    static char buf[8192];
    snprintf(buf, sizeof buf, "{\"model\":\"m-1\",%s%s\"messages\":%s}", extra, extra[0] ? "," : "", messages);
    return buf;
}

#define USER_IMG(text) "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"" text "\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64," PNG64 "\"}}]}"

/* Expects a refusal with status http whose param is `param` and whose message holds `needle`. */
static void refused(const char *json, int http, const char *param, const char *needle) {
    gw_chat_t c;
    gw_error_t e;
    int rc = parse(json, &c, &e);
    CHECK_MSG(rc == http, "%d != %d for %s (%s)", rc, http, json, e.message);
    CHECK_MSG(!strcmp(e.param, param), "param '%s' != '%s' (%s)", e.param, param, e.message);
    CHECK_MSG(strstr(e.message, needle) != NULL, "'%s' not in '%s'", needle, e.message);
    CHECK(c.msgs == NULL && c.n_images == 0 && c.n_messages == 0);
}

/* Part k of message i of c is the text want (NULL: an image part). */
static bool part_is(const gw_chat_t *c, int i, int k, const char *want) {
    if (i >= c->n_messages || k >= c->msgs[i].n_parts) return false;
    const char *t = c->msgs[i].parts[k].text;
    return want ? t && !strcmp(t, want) : t == NULL;
}

static void test_base64(void) {
    char err[HIRED_ERR_LEN];
    uint8_t *b;
    size_t n;
    CHECK_EQ_INT(gw_base64_decode("aGVsbG8=", 8, 100, &b, &n, err), 0);
    CHECK(n == 5 && !memcmp(b, "hello", 5));
    mem_free(b);
    CHECK_EQ_INT(gw_base64_decode("aGVsbG8", 7, 100, &b, &n, err), 0); /* padding optional */
    CHECK(n == 5 && !memcmp(b, "hello", 5));
    mem_free(b);
    CHECK_EQ_INT(gw_base64_decode("", 0, 100, &b, &n, err), 0);
    CHECK(n == 0);
    mem_free(b);
    CHECK_EQ_INT(gw_base64_decode("aGV*bG8=", 8, 100, &b, &n, err), HIRED_EFORMAT);
    CHECK_MSG(strstr(err, "'*' at offset 3") != NULL, "%s", err);
    CHECK_EQ_INT(gw_base64_decode("aGVsb", 5, 100, &b, &n, err), HIRED_EFORMAT); /* 4k+1 characters */
    CHECK_EQ_INT(gw_base64_decode("aGVsbG8==", 9, 100, &b, &n, err), HIRED_EFORMAT);
    CHECK_EQ_INT(gw_base64_decode("aGVs bG8=", 9, 100, &b, &n, err), HIRED_EFORMAT); /* no whitespace */
    CHECK_EQ_INT(gw_base64_decode("aGVsbG8=", 8, 4, &b, &n, err), HIRED_ERANGE);
    CHECK_MSG(strstr(err, "limit of 4") != NULL, "%s", err);
    CHECK(gw_image_kind((const uint8_t *)"\xff\xd8\xff\xe0", 4) && !strcmp(gw_image_kind((const uint8_t *)"\xff\xd8\xff", 3), "jpeg"));
    CHECK(!strcmp(gw_image_kind((const uint8_t *)"\x89PNG\r\n\x1a\n", 8), "png"));
    CHECK(gw_image_kind((const uint8_t *)"GIF89a", 6) == NULL);
    CHECK(gw_image_kind((const uint8_t *)"\x89PNG", 4) == NULL);
}

static void test_parse_ok(void) {
    gw_chat_t c;
    gw_error_t e;
    /* one user message: its parts in order, the image decoded */
    CHECK_EQ_INT(parse(req("", "[" USER_IMG("What is this?") "]"), &c, &e), 0);
    CHECK(c.n_messages == 1 && !strcmp(c.msgs[0].role, "user") && c.msgs[0].n_parts == 2);
    CHECK(part_is(&c, 0, 0, "What is this?") && part_is(&c, 0, 1, NULL));
    CHECK(!strcmp(c.model, "m-1"));
    CHECK(c.n_images == 1 && c.images[0].len == 16 && c.images[0].bytes[0] == 0x89 && !c.images[0].url);
    CHECK_EQ_INT(c.params.max_tokens, 77);
    CHECK(c.params.temperature == 0 && c.params.top_p == 1 && c.params.seed == 0);
    CHECK(!strcmp(c.params.strategy, "hired") && !strcmp(c.params.newline, "hf") && c.params.budget == 0.2);
    CHECK(!c.stream && c.n_stop == 0 && c.params.stream);
    gw_chat_free(&c);
    gw_chat_free(&c); /* twice is safe */

    /* a conversation travels as it is: roles (developer -> system), parts in order */
    const char *conv = "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64," JPG64 "\"}},"
                       "{\"type\":\"text\",\"text\":\"What colour?\"},{\"type\":\"text\",\"text\":\"Answer in one word.\"}]},"
                       "{\"role\":\"assistant\",\"content\":\"Red.\"},"
                       "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"No lists.\"}]},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"And the sky?\"}]}]";
    CHECK_EQ_INT(parse(req("", conv), &c, &e), 0);
    CHECK_EQ_INT(c.n_messages, 5);
    CHECK(!strcmp(c.msgs[0].role, "system") && part_is(&c, 0, 0, "Be brief.") && c.msgs[0].n_parts == 1);
    CHECK(!strcmp(c.msgs[1].role, "user") && c.msgs[1].n_parts == 3 && part_is(&c, 1, 0, NULL) &&
          part_is(&c, 1, 1, "What colour?") && part_is(&c, 1, 2, "Answer in one word."));
    CHECK(!strcmp(c.msgs[2].role, "assistant") && part_is(&c, 2, 0, "Red."));
    CHECK(!strcmp(c.msgs[3].role, "system") && part_is(&c, 3, 0, "No lists."));
    CHECK(!strcmp(c.msgs[4].role, "user") && part_is(&c, 4, 0, "And the sky?"));
    CHECK(c.n_images == 1 && c.images[0].len == 10 && c.images[0].bytes[0] == 0xff);
    gw_chat_free(&c);

    /* every parameter; max_completion_tokens wins over max_tokens; unknown fields ignored */
    const char *all = "\"max_tokens\":5,\"max_completion_tokens\":9,\"temperature\":0.7,\"top_p\":0.5,\"seed\":-1,"
                      "\"stop\":[\"A\",\"BC\"],\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":1,"
                      "\"strategy\":\"prumerge+\",\"budget\":0.4,\"alpha\":0,\"newline\":\"none\",\"top_k\":-1,"
                      "\"deadline_ms\":1500,\"user\":\"u\",\"frequency_penalty\":0,\"response_format\":{\"type\":\"text\"},"
                      "\"some_future_field\":{\"x\":1}";
    CHECK_EQ_INT(parse(req(all, "[" USER_IMG("q") "]"), &c, &e), 0);
    CHECK_EQ_INT(c.params.max_tokens, 9);
    CHECK(c.params.temperature == 0.7 && c.params.top_p == 0.5 && c.params.top_k == 0);
    CHECK(c.params.seed == UINT64_MAX); /* -1 as two's complement */
    CHECK(c.n_stop == 2 && !strcmp(c.stop[0], "A") && !strcmp(c.stop[1], "BC"));
    CHECK(c.stream && c.include_usage);
    CHECK(!strcmp(c.params.strategy, "prumerge+") && c.params.budget == 0.4 && c.params.alpha == 0);
    CHECK(!strcmp(c.params.newline, "none") && c.deadline_ms == 1500);
    gw_chat_free(&c);
    CHECK_EQ_INT(parse(req("\"stop\":\"END\",\"max_tokens\":null", "[" USER_IMG("q") "]"), &c, &e), 0);
    CHECK(c.n_stop == 1 && !strcmp(c.stop[0], "END") && c.params.max_tokens == 77);
    gw_chat_free(&c);

    /* http(s) URLs are kept for the fetch threads when fetching is on */
    g_lim.fetch_http = true;
    CHECK_EQ_INT(parse(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":\"https://x.test/a.png\"}]}]"),
                       &c, &e),
                 0);
    CHECK(c.n_images == 1 && c.images[0].bytes == NULL && c.images[0].url &&
          !strcmp(c.images[0].url, "https://x.test/a.png") && c.msgs[0].n_parts == 1 && part_is(&c, 0, 0, NULL));
    gw_chat_free(&c);
    /* several images, data: and http(s) mixed, in the order of their parts; text only */
    CHECK_EQ_INT(parse(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":\"https://x.test/1.png\"},"
                               "{\"type\":\"text\",\"text\":\"vs\"}]}," USER_IMG("and?") "]"),
                       &c, &e),
                 0);
    CHECK(c.n_images == 2 && c.images[0].url && c.images[1].bytes && c.images[1].len == 16);
    CHECK(part_is(&c, 0, 0, NULL) && part_is(&c, 0, 1, "vs") && part_is(&c, 1, 0, "and?") && part_is(&c, 1, 1, NULL));
    gw_chat_free(&c);
    CHECK_EQ_INT(parse(req("", "[{\"role\":\"user\",\"content\":\"hi\"}]"), &c, &e), 0);
    CHECK(c.n_images == 0 && c.n_messages == 1 && part_is(&c, 0, 0, "hi"));
    gw_chat_free(&c);
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"file:///etc/passwd\"}}]}]"),
            400, "messages[0].content[0].image_url", "only data: URIs and http(s) URLs");
    g_lim.fetch_http = false;
}

static void test_parse_refused(void) {
    refused("{not json", 400, "", "not valid JSON");
    refused("[1,2]", 400, "", "JSON object");
    refused("{\"messages\":[]}", 400, "model", "'model' is required");
    refused("{\"model\":\"a b\",\"messages\":[]}", 400, "model", "[A-Za-z0-9._:/+-]");
    refused("{\"model\":7,\"messages\":[]}", 400, "model", "must be a string");
    refused("{\"model\":\"m\"}", 400, "messages", "'messages' is required");
    refused(req("", "[]"), 400, "messages", "non-empty array");
    refused(req("", "{}"), 400, "messages", "non-empty array");
    /* more than 16 images: the limit is named; text with the placeholder; the last turn not the user's */
    static char seventeen[8192];
    int at = snprintf(seventeen, sizeof seventeen, "[");
    for (int i = 0; i < 17; i++) at += snprintf(seventeen + at, sizeof seventeen - (size_t)at, "%s" USER_IMG("x"), i ? "," : "");
    snprintf(seventeen + at, sizeof seventeen - (size_t)at, "]");
    refused(req("", seventeen), 400, "messages", "at most 16 images");
    refused(req("", "[{\"role\":\"user\",\"content\":\"see <image>\"}]"), 400, "messages[0].content", "'<image>'");
    refused(req("", "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]"), 400,
            "messages[1].role", "the last message must have role 'user'");
    /* broken base64, a non-image, a media type that is not one, a non-base64 data URI */
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO%%%\"}}]}]"),
            400, "messages[0].content[0].image_url", "invalid base64 character '%' at offset 4");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,aGVsbG8gd29ybGQ=\"}}]}]"),
            400, "messages[0].content[0].image_url", "not a JPEG or PNG image");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:text/plain;base64,aGk=\"}}]}]"),
            400, "messages[0].content[0].image_url", "media type 'text/plain'");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]"),
            400, "messages[0].content[0].image_url", "only base64 data: URIs");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.png\"}}]}]"),
            400, "messages[0].content[0].image_url", "does not fetch http(s) images");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"file:///etc/passwd\"}}]}]"),
            400, "messages[0].content[0].image_url", "only data: URIs are accepted");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]"), 400,
            "messages[0].content[0].image_url", "string 'url'");
    /* an image over images.max_bytes (1024 here) */
    static char big[4096];
    memset(big, 'A', 2000);
    memcpy(big, "iVBORw0KGgo", 11);
    big[2000] = 0;
    char *msgs = malloc(5000);
    snprintf(msgs, 5000, "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,%s\"}}]}]", big);
    refused(req("", msgs), 400, "messages[0].content[0].image_url", "limit of 1024");
    free(msgs);
    /* wrong types and ranges, each named */
    refused(req("\"temperature\":\"hot\"", "[" USER_IMG("q") "]"), 400, "temperature", "must be a number");
    refused(req("\"temperature\":-1", "[" USER_IMG("q") "]"), 400, "temperature", "[0, 100]");
    refused(req("\"max_tokens\":-5", "[" USER_IMG("q") "]"), 400, "max_tokens", "in [1, 16384] (got -5)");
    refused(req("\"max_tokens\":2.5", "[" USER_IMG("q") "]"), 400, "max_tokens", "an integer");
    refused(req("\"max_completion_tokens\":0", "[" USER_IMG("q") "]"), 400, "max_completion_tokens", "(got 0)");
    refused(req("\"top_p\":0", "[" USER_IMG("q") "]"), 400, "top_p", "(0, 1]");
    refused(req("\"seed\":\"x\"", "[" USER_IMG("q") "]"), 400, "seed", "an integer");
    refused(req("\"stream\":1", "[" USER_IMG("q") "]"), 400, "stream", "true or false");
    refused(req("\"stream_options\":{\"include_usage\":3}", "[" USER_IMG("q") "]"), 400, "stream_options.include_usage",
            "true or false");
    refused(req("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", "[" USER_IMG("q") "]"), 400, "stop", "at most 4");
    refused(req("\"stop\":[\"\"]", "[" USER_IMG("q") "]"), 400, "stop", "1-256 bytes");
    refused(req("\"stop\":5", "[" USER_IMG("q") "]"), 400, "stop", "a string or an array");
    refused(req("\"strategy\":\"best\"", "[" USER_IMG("q") "]"), 400, "strategy", "none|hired|spatial|prumerge|prumerge+");
    refused(req("\"budget\":1.5", "[" USER_IMG("q") "]"), 400, "budget", "(0, 1]");
    refused(req("\"alpha\":2", "[" USER_IMG("q") "]"), 400, "alpha", "[0, 1]");
    refused(req("\"newline\":\"crlf\"", "[" USER_IMG("q") "]"), 400, "newline", "hf|none");
    refused(req("\"deadline_ms\":60001", "[" USER_IMG("q") "]"), 400, "deadline_ms", "[1, 60000]");
    refused(req("\"n\":2", "[" USER_IMG("q") "]"), 400, "n", "must be 1");
    refused(req("\"logprobs\":true", "[" USER_IMG("q") "]"), 400, "logprobs", "not supported");
    refused(req("\"tools\":[{\"type\":\"function\"}]", "[" USER_IMG("q") "]"), 400, "tools", "not supported");
    refused(req("\"response_format\":{\"type\":\"json_object\"}", "[" USER_IMG("q") "]"), 400, "response_format", "text");
    /* message shapes */
    refused(req("", "[\"hi\"]"), 400, "messages[0].role", "string 'role'");
    refused(req("", "[{\"role\":\"tool\",\"content\":\"x\"}]"), 400, "messages[0].role", "'tool' is not supported");
    refused(req("", "[" USER_IMG("q") ",{\"role\":\"assistant\",\"content\":\"x\"}]"), 400, "messages[1].role",
            "last message must have role 'user'");
    refused(req("", "[{\"role\":\"user\",\"content\":5}]"), 400, "messages[0].content", "string or an array");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]"), 400, "messages[0].content[0]",
            "'input_audio' is not supported");
    refused(req("", "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":7}]}]"), 400, "messages[0].content[0]",
            "text must be a string");
    refused(req("", "[{\"role\":\"assistant\",\"content\":[{\"type\":\"image_url\",\"image_url\":\"data:,\"}]},{\"role\":\"user\",\"content\":\"x\"}]"),
            400, "messages[0].content[0]", "user messages only");
    refused(req("", "[" USER_IMG("look: <image>") "]"), 400, "messages[0].content[0]", "'<image>'");
}

static void test_stop(void) {
    char *stops[] = {"END", "xyz"};
    size_t cut = 99, safe = 99;
    /* nothing that could start a stop string: everything goes */
    CHECK(!gw_stop_scan("hello", 5, 0, stops, 2, &cut, &safe) && safe == 5);
    /* a tail that may grow into "END" is held back */
    CHECK(!gw_stop_scan("hello E", 7, 0, stops, 2, &cut, &safe) && safe == 6);
    CHECK(!gw_stop_scan("hello EN", 8, 6, stops, 2, &cut, &safe) && safe == 6);
    /* ... and cut when it completes, across pieces */
    CHECK(gw_stop_scan("hello ENDING", 12, 6, stops, 2, &cut, &safe) && cut == 6);
    /* the earliest of several */
    CHECK(gw_stop_scan("a xyz b END", 11, 0, stops, 2, &cut, &safe) && cut == 2);
    /* a false start is released once it cannot match any more */
    CHECK(!gw_stop_scan("hello ENq", 9, 6, stops, 2, &cut, &safe) && safe == 9);
    CHECK(!gw_stop_scan("hello ENx", 9, 6, stops, 2, &cut, &safe) && safe == 8); /* "x" may start "xyz" */
    /* text already handed out is never looked at again */
    char *one[] = {"ab"};
    CHECK(!gw_stop_scan("abab", 4, 4, one, 1, &cut, &safe) && safe == 4);
    CHECK(gw_stop_scan("abxab", 5, 3, one, 1, &cut, &safe) && cut == 3);
}

static void test_utf8(void) {
    size_t n;
    CHECK_EQ_INT(gw_utf8_complete("abc", 3), 3);
    CHECK_EQ_INT(gw_utf8_complete("ab\xe2\x82", 4), 2);       /* € cut after 2 of 3 bytes */
    CHECK_EQ_INT(gw_utf8_complete("ab\xe2\x82\xac", 5), 5);
    CHECK_EQ_INT(gw_utf8_complete("\xf0\x9f\x98", 3), 0);     /* 3 of a 4-byte emoji */
    CHECK_EQ_INT(gw_utf8_complete("a\xff", 2), 2);            /* invalid, not incomplete */
    CHECK_EQ_INT(gw_utf8_complete("a\xe2\x28", 3), 3);        /* a broken sequence is not held */
    char *c = gw_utf8_clean("a\xffz", 3, &n);
    CHECK(n == 5 && !strcmp(c, "a\xef\xbf\xbdz"));
    free(c);
    /* Python's errors="replace": one U+FFFD per maximal invalid subpart */
    c = gw_utf8_clean("\xed\xa0\x80!", 4, &n); /* a surrogate: 3 bad bytes */
    CHECK(!strcmp(c, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!"));
    free(c);
    c = gw_utf8_clean("\xe2\x82x", 3, &n); /* a truncated sequence: one */
    CHECK(!strcmp(c, "\xef\xbf\xbdx"));
    free(c);
    c = gw_utf8_clean("\xc3\xa9t\xc3\xa9", 5, &n);
    CHECK(n == 5 && !strcmp(c, "\xc3\xa9t\xc3\xa9"));
    free(c);
}

static void test_json(void) {
    gw_error_t e;
    gw_error_set(&e, 400, "invalid_request_error", NULL, "max_tokens", "bad \"%s\"", "x");
    char *s = gw_error_json(&e);
    cJSON *o = cJSON_Parse(s), *er = cJSON_GetObjectItem(o, "error");
    CHECK(er && !strcmp(cJSON_GetObjectItem(er, "message")->valuestring, "bad \"x\""));
    CHECK(!strcmp(cJSON_GetObjectItem(er, "param")->valuestring, "max_tokens"));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(er, "code")));
    cJSON_Delete(o);
    free(s);

    gw_usage_t u = {.prompt_tokens = 10, .completion_tokens = 3, .visual_kept = 115, .visual_total = 576, .result_bytes = 4096};
    for (int i = 0; i < HIRED_STAGE_COUNT; i++) u.timings_ms[i] = -1;
    u.timings_ms[HIRED_STAGE_VIT] = 12.5;
    s = gw_completion_json("chatcmpl-1", 1700000000, "m", "hi\xff", 3, "length", &u);
    o = cJSON_Parse(s);
    CHECK_MSG(o != NULL, "%s", s);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "content")->valuestring, "hi\xef\xbf\xbd"));
    CHECK(!strcmp(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "length"));
    cJSON *us = cJSON_GetObjectItem(o, "usage"), *h = cJSON_GetObjectItem(us, "hired");
    CHECK(cJSON_GetObjectItem(us, "total_tokens")->valuedouble == 13);
    CHECK(cJSON_GetObjectItem(h, "visual_tokens_kept")->valuedouble == 115);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "timings_ms"), "vit")->valuedouble == 12.5);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "timings_ms"), "queue") == NULL); /* not reported */
    cJSON_Delete(o);
    free(s);
    s = gw_chunk_json("c", 1, "m", true, "", 0, NULL, NULL);
    CHECK_MSG(strstr(s, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}") && strstr(s, "\"finish_reason\":null"), "%s", s);
    free(s);
    s = gw_chunk_json("c", 1, "m", false, NULL, 0, "stop", NULL);
    CHECK_MSG(strstr(s, "\"delta\":{}") && strstr(s, "\"finish_reason\":\"stop\""), "%s", s);
    free(s);
    s = gw_chunk_json("c", 1, "m", false, NULL, 0, NULL, &u);
    CHECK_MSG(strstr(s, "\"choices\":[]") && strstr(s, "\"completion_tokens\":3"), "%s", s);
    free(s);
}

static const char *k_status =
    "{\"v\":3,\"epoch\":\"1\",\"uptime_ms\":5000,"
    "\"pools\":[{\"service\":\"encode\",\"model\":\"a\",\"capacity\":2,\"in_use\":1,\"workers\":[{\"quarantined\":false},{\"quarantined\":true}]},"
    "{\"service\":\"decode\",\"model\":\"a\",\"capacity\":1,\"in_use\":0,\"workers\":[{\"quarantined\":false}]},"
    "{\"service\":\"encode\",\"model\":\"b\",\"capacity\":1,\"in_use\":0,\"workers\":[{\"quarantined\":false}]}],"
    "\"queues\":{\"encode\":2,\"decode\":3},\"active_jobs\":4,\"undelivered_results\":0,\"clients\":1,"
    "\"bytes\":{\"held\":100,\"queued_images\":50},"
    "\"counters\":{\"submitted\":10,\"busy\":2,\"cancelled\":1},"
    "\"timings\":{\"vit\":{\"count\":8,\"mean_ms\":12,\"p50_ms\":11,\"p95_ms\":14}}}";

static void test_status(void) {
    cJSON *st = cJSON_Parse(k_status);
    int ne, nd;
    CHECK(gw_status_model(st, "a", &ne, &nd) && ne == 1 && nd == 1); /* the quarantined one does not count */
    CHECK(gw_status_model(st, "b", &ne, &nd) && ne == 1 && nd == 0);
    CHECK(!gw_status_model(st, "c", &ne, &nd));
    char why[300];
    CHECK(!gw_status_health(NULL, NULL, why, sizeof why) && strstr(why, "did not answer"));
    CHECK(!gw_status_health(st, NULL, why, sizeof why) && strstr(why, "model 'b' has 1 usable encode and 0 usable decode"));
    cfg_strlist_t only_a = {1, (char *[]){"a"}}, only_c = {1, (char *[]){"c"}};
    CHECK(gw_status_health(st, &only_a, why, sizeof why) && !strcmp(why, "ok"));
    CHECK(!gw_status_health(st, &only_c, why, sizeof why) && strstr(why, "'c' has 0 usable encode"));
    cJSON *empty = cJSON_Parse("{\"pools\":[]}");
    CHECK(!gw_status_health(empty, NULL, why, sizeof why) && strstr(why, "no workers of any model"));
    cJSON_Delete(empty);

    char *s = gw_status_models_json(st, NULL, 42);
    CHECK_MSG(s && strstr(s, "\"id\":\"a\"") && strstr(s, "\"id\":\"b\"") && strstr(s, "\"owned_by\":\"hired\""), "%s", s);
    free(s);
    s = gw_status_models_json(st, &only_a, 42);
    CHECK(s && strstr(s, "\"id\":\"a\"") && !strstr(s, "\"id\":\"b\""));
    free(s);
    s = gw_status_model_json(st, "b", NULL, 42);
    CHECK(s && strstr(s, "\"decode_workers\":0"));
    free(s);
    CHECK(gw_status_model_json(st, "zz", NULL, 42) == NULL);

    char *out = NULL;
    size_t len = 0, cap = 0;
    CHECK(gw_status_prometheus(st, &out, &len, &cap));
    CHECK_EQ_INT(strlen(out), len);
    static const char *const want[] = {"hired_broker_up 1\n", "hired_broker_queue_depth{service=\"decode\"} 3\n",
                                       "hired_broker_active_jobs 4\n", "# TYPE hired_broker_busy_total counter\nhired_broker_busy_total 2\n",
                                       "hired_broker_cancelled_total 1\n",
                                       "hired_broker_workers{service=\"encode\",model=\"a\"} 2\n",
                                       "hired_broker_workers_usable{service=\"encode\",model=\"a\"} 1\n",
                                       "hired_broker_stage_seconds{stage=\"vit\",quantile=\"0.95\"} 0.014000\n",
                                       "hired_broker_stage_seconds_sum{stage=\"vit\"} 0.096000\n",
                                       "hired_broker_stage_seconds_count{stage=\"vit\"} 8\n"};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) CHECK_MSG(strstr(out, want[i]) != NULL, "no '%s' in\n%s", want[i], out);
    free(out);
    out = NULL, len = cap = 0;
    CHECK(gw_status_prometheus(NULL, &out, &len, &cap) && strstr(out, "hired_broker_up 0\n") && !strstr(out, "queue"));
    free(out);
    cJSON_Delete(st);
    char lb[32];
    CHECK(!strcmp(gw_prom_label("a\"b\\c\nd", lb, sizeof lb), "a\\\"b\\\\c\\nd"));
}

static void test_metrics(void) {
    gw_metrics_t m;
    gw_metrics_init(&m);
    gw_metrics_request(&m, GW_EP_CHAT, 200);
    gw_metrics_request(&m, GW_EP_CHAT, 200);
    gw_metrics_request(&m, GW_EP_CHAT, 429);
    gw_metrics_request(&m, GW_EP_HEALTH, 503);
    gw_hist_add(&m.latency, 0.004);
    gw_hist_add(&m.latency, 0.3);
    gw_hist_add(&m.latency, 1000);
    hired_event ev;
    memset(&ev, 0, sizeof ev);
    for (int i = 0; i < HIRED_STAGE_COUNT; i++) ev.timings_ms[i] = -1;
    ev.timings_ms[HIRED_STAGE_DECODE] = 40;
    ev.visual_kept = 115, ev.visual_total = 576, ev.result_bytes = 9000, ev.prompt_tokens = 700;
    gw_metrics_done(&m, &ev);
    m.tokens_streamed = 12;
    char *out = NULL;
    size_t len = 0, cap = 0;
    CHECK(gw_metrics_prometheus(&m, &out, &len, &cap));
    static const char *const want[] = {
        "hired_gateway_requests_total{endpoint=\"chat_completions\",code=\"200\"} 2\n",
        "hired_gateway_requests_total{endpoint=\"chat_completions\",code=\"429\"} 1\n",
        "hired_gateway_requests_total{endpoint=\"health\",code=\"503\"} 1\n",
        "hired_gateway_request_duration_seconds_bucket{le=\"0.005\"} 1\n", /* cumulative */
        "hired_gateway_request_duration_seconds_bucket{le=\"0.25\"} 1\n",
        "hired_gateway_request_duration_seconds_bucket{le=\"0.5\"} 2\n",
        "hired_gateway_request_duration_seconds_bucket{le=\"120\"} 2\n",
        "hired_gateway_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
        "hired_gateway_request_duration_seconds_count 3\n",
        "hired_gateway_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.05\"} 1\n",
        "hired_gateway_stage_duration_seconds_count{stage=\"decode\"} 1\n",
        "hired_gateway_stage_duration_seconds_count{stage=\"vit\"} 0\n",
        "hired_gateway_visual_tokens_kept_total 115\n", "hired_gateway_visual_tokens_input_total 576\n",
        "hired_gateway_result_bytes_total 9000\n", "hired_gateway_tokens_streamed_total 12\n"};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) CHECK_MSG(strstr(out, want[i]) != NULL, "no '%s' in\n%s", want[i], out);
    free(out);
    /* a 17th distinct code is counted with the 16th, never dropped */
    for (int c = 0; c < 20; c++) gw_metrics_request(&m, GW_EP_OTHER, 400 + c);
    uint64_t total = 0;
    for (int i = 0; i < m.requests[GW_EP_OTHER].used; i++) total += m.requests[GW_EP_OTHER].n[i];
    CHECK_EQ_INT(total, 20);
}

/* Every allocation of a parse (cJSON's included) failing in turn: a clean refusal (500 out of
 * memory, or 400 where cJSON's own failure reads as malformed JSON), never a crash or a leak
 * (the sanitizer build checks), until the sweep passes the last allocation and the parse
 * succeeds with the right result. */
static void test_alloc_failures(void) {
    cJSON_Hooks hooks = {mem_alloc, mem_free};
    cJSON_InitHooks(&hooks);
    const char *body = req("\"stop\":[\"A\",\"BC\"],\"seed\":5",
                           "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"x\"}]}," USER_IMG("q") "]");
    int i, fails = 0;
    for (i = 0; i < 1000; i++) {
        gw_chat_t c;
        gw_error_t e;
        mem_fail_after(i, false);
        int rc = gw_chat_parse(body, strlen(body), &g_lim, &c, &e);
        mem_fail_after(-1, false);
        if (rc == 0) {
            CHECK(c.n_messages == 3 && part_is(&c, 0, 0, "S") && part_is(&c, 1, 0, "x") && part_is(&c, 2, 0, "q") &&
                  c.n_stop == 2 && c.n_images == 1 && c.images[0].len == 16);
            gw_chat_free(&c);
            break;
        }
        fails++;
        CHECK_MSG((rc == 500 || rc == 400) && e.message[0], "allocation %d: %d %s", i, rc, e.message);
        CHECK(c.msgs == NULL && c.n_images == 0 && c.n_stop == 0);
    }
    CHECK_MSG(i < 1000 && fails >= 8, "the sweep ended after %d allocations (%d failed)", i, fails);
    cJSON_InitHooks(NULL);
}

int main(void) {
    test_base64();
    test_alloc_failures();
    test_parse_ok();
    test_parse_refused();
    test_stop();
    test_utf8();
    test_json();
    test_status();
    test_metrics();
    return test_summary();
}
