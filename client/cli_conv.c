/* cli_conv.c — the command line's conversation (cli_conv.h): the turns, the --messages file in
 * the OpenAI chat shape (local files, file:// and base64 data URLs for images), the images. */
#include "cli_conv.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "json.h"
#include "mem.h"

int cli_take_turn(void *user, const char *key, const char *value, char *err) {
    turns_t *t = user;
    static const char *const roles[] = {"system", "user", "assistant"};
    for (size_t i = 0; i < ARRAY_LEN(roles); i++)
        if (!strcmp(key, roles[i])) {
            if (t->n == RUN_MAX_TURNS - 1) return hired_errf(err, HIRED_ERANGE, "at most %d turns", RUN_MAX_TURNS - 1);
            t->role[t->n] = roles[i];
            t->text[t->n++] = value;
            return 1;
        }
    return 0;
}

// ---- the conversation --------------------------------------------------------------------------

void cli_conv_free(conv_t *c) {
    for (int i = 0; i < c->n_img; i++) mem_free(c->img_owned[i]);
    for (int i = 0; i < c->n_texts; i++) mem_free(c->texts[i]);
}

/* Appends a message with no parts yet. */
static int conv_turn(conv_t *c, const char *role, char *err) {
    if (c->n_msg == RUN_MAX_TURNS) return hired_errf(err, HIRED_ERANGE, "more than %d messages", RUN_MAX_TURNS);
    c->msg[c->n_msg++] = (tpl_message_t){role, c->part + c->n_part, 0};
    return HIRED_OK;
}

static int conv_part(conv_t *c, tpl_part_kind_t kind, const char *text, char *err) {
    if (c->n_part == RUN_MAX_PARTS) return hired_errf(err, HIRED_ERANGE, "more than %d message parts", RUN_MAX_PARTS);
    c->part[c->n_part++] = (tpl_part_t){kind, text};
    c->msg[c->n_msg - 1].n_parts++;
    return HIRED_OK;
}

static int conv_image(conv_t *c, uint8_t *bytes, size_t n, char *err) {
    if (c->n_img == GEN_MAX_IMAGES) {
        mem_free(bytes);
        return hired_errf(err, HIRED_ERANGE, "more than %d images", GEN_MAX_IMAGES);
    }
    c->img_owned[c->n_img] = bytes;
    c->img[c->n_img++] = (run_image_t){bytes, n};
    return conv_part(c, TPL_PART_IMAGE, NULL, err);
}

/* Standard base64 (padding optional). Caller owns *out (mem_free). */
static int base64_decode(const char *s, size_t n, uint8_t **out, size_t *len, char *err) {
    uint8_t *o = mem_alloc(n / 4 * 3 + 3);
    if (!o) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int v = ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26 : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '+' ? 62 : ch == '/' ? 63 : -1;
        if (ch == '=') break;
        if (v < 0) {
            mem_free(o);
            return hired_errf(err, HIRED_EFORMAT, "data URL: invalid base64 at character %zu", i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) bits -= 8, o[k++] = (uint8_t)(acc >> bits);
    }
    *out = o;
    *len = k;
    return HIRED_OK;
}

/* An image_url part: a local path, file://path or a base64 data URL. */
static int load_url(conv_t *c, const char *url, char *err) {
    uint8_t *bytes = NULL;
    size_t n = 0;
    int rc;
    if (!strncmp(url, "data:", 5)) {
        const char *comma = strchr(url, ','), *b64 = strstr(url, ";base64,");
        if (!comma || !b64 || b64 + 7 != comma)
            return hired_errf(err, HIRED_EUNSUPPORTED, "image_url: only base64 data URLs are supported");
        rc = base64_decode(comma + 1, strlen(comma + 1), &bytes, &n, err);
    } else if (strstr(url, "://") && strncmp(url, "file://", 7)) {
        return hired_errf(err, HIRED_EUNSUPPORTED, "image_url \"%.100s\": only local files, file:// and data: URLs", url);
    } else {
        rc = file_read(strncmp(url, "file://", 7) ? url : url + 7, CLI_MAX_FILE, &bytes, &n, err);
    }
    return rc ? rc : conv_image(c, bytes, n, err);
}

/* A copy of s owned by the conversation. */
static const char *keep_text(conv_t *c, const char *s, char *err) {
    char *d = c->n_texts < RUN_MAX_PARTS ? mem_strdup(s) : NULL;
    if (!d) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    return c->texts[c->n_texts++] = d;
}

/* --messages FILE: the OpenAI messages shape (see the top of the file). files: the --image
 * files, taken in order by {"type": "image"} parts. */
static int load_messages(conv_t *c, const char *path, const char *const *files, int n_files, char *err) {
    cJSON *root = NULL;
    int rc = json_read_file(path, RUN_MAX_MESSAGES_BYTES, &root, err);
    if (rc) return rc;
    int used = 0, i = 0;
    const cJSON *m, *list = cJSON_IsArray(root) ? root : NULL;
    if (!list) rc = hired_errf(err, HIRED_EFORMAT, "%s: must be a list of messages", path);
    cJSON_ArrayForEach(m, list) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const char *r = cJSON_IsString(role) ? keep_text(c, role->valuestring, err) : NULL;
        if (!cJSON_IsString(role)) rc = hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].role must be a string", path, i);
        if (!rc && !r) rc = HIRED_ENOMEM;
        if (!rc) rc = conv_turn(c, r, err);
        if (!rc && cJSON_IsString(content)) {
            const char *t = keep_text(c, content->valuestring, err);
            rc = t ? conv_part(c, TPL_PART_TEXT, t, err) : HIRED_ENOMEM;
        } else if (!rc && cJSON_IsArray(content)) {
            const cJSON *p;
            int k = 0;
            cJSON_ArrayForEach(p, content) {
                const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
                const char *type = cJSON_IsString(ty) ? ty->valuestring : "";
                if (!strcmp(type, "text")) {
                    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(p, "text");
                    const char *t = cJSON_IsString(tx) ? keep_text(c, tx->valuestring, err) : NULL;
                    rc = !cJSON_IsString(tx) ? hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content[%d].text must be a "
                                                          "string", path, i, k)
                         : t ? conv_part(c, TPL_PART_TEXT, t, err)
                             : HIRED_ENOMEM;
                } else if (!strcmp(type, "image_url")) {
                    const cJSON *u = cJSON_GetObjectItemCaseSensitive(p, "image_url");
                    if (cJSON_IsObject(u)) u = cJSON_GetObjectItemCaseSensitive(u, "url");
                    rc = cJSON_IsString(u) ? load_url(c, u->valuestring, err)
                                           : hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content[%d].image_url needs "
                                                        "a url", path, i, k);
                } else if (!strcmp(type, "image")) {
                    uint8_t *bytes;
                    size_t n;
                    if (used == n_files)
                        rc = hired_errf(err, HIRED_EINVAL, "%s: messages[%d].content[%d] is an image part but only %d "
                                        "--image file%s given", path, i, k, n_files, n_files == 1 ? " was" : "s were");
                    else if (!(rc = file_read(files[used++], CLI_MAX_FILE, &bytes, &n, err)))
                        rc = conv_image(c, bytes, n, err);
                } else {
                    rc = hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content[%d].type \"%.40s\" is not text, "
                                    "image_url or image", path, i, k, type);
                }
                if (rc) break;
                k++;
            }
        } else if (!rc && content && !cJSON_IsNull(content)) {
            rc = hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content must be a string or a list of parts", path, i);
        }
        if (rc) break;
        i++;
    }
    if (!rc && used < n_files)
        rc = hired_errf(err, HIRED_EINVAL, "%d --image file%s but the messages take %d", n_files, n_files == 1 ? "" : "s",
                        used);
    if (!rc && c->n_msg == 0) rc = hired_errf(err, HIRED_EINVAL, "%s: no messages", path);
    cJSON_Delete(root);
    return rc;
}

int cli_conv_usage(const char *prog, const turns_t *turns, const char *question, const char *messages, int n_images) {
    if (!question && !turns->n && !messages) {
        fprintf(stderr, "%s: a question (or --user / --messages) is required\n", prog);
        return 2;
    }
    if (messages && (question || turns->n)) {
        fprintf(stderr, "%s: --messages gives the whole conversation; drop the question and --system/--user/"
                        "--assistant\n", prog);
        return 2;
    }
    bool user = question != NULL;
    for (int k = 0; k < turns->n; k++) user |= !strcmp(turns->role[k], "user");
    if (!messages && n_images && !user) {
        fprintf(stderr, "%s: --image needs a user turn to attach to (a question or --user)\n", prog);
        return 2;
    }
    return 0;
}

int cli_conv_build(conv_t *c, const turns_t *turns_in, const char *question, const char *messages,
                   const char *const *images, int n_images, char *err) {
    if (messages) return load_messages(c, messages, images, n_images, err);
    turns_t turns = *turns_in;
    if (question) turns.role[turns.n] = "user", turns.text[turns.n++] = question;
    int last_user = -1;
    for (int k = 0; k < turns.n; k++)
        if (!strcmp(turns.role[k], "user")) last_user = k;
    int rc = HIRED_OK;
    for (int t = 0; !rc && t < turns.n; t++) {
        rc = conv_turn(c, turns.role[t], err);
        for (int k = 0; !rc && t == last_user && k < n_images; k++) {
            uint8_t *bytes;
            size_t nb;
            if (!(rc = file_read(images[k], CLI_MAX_FILE, &bytes, &nb, err))) rc = conv_image(c, bytes, nb, err);
        }
        if (!rc) rc = conv_part(c, TPL_PART_TEXT, turns.text[t], err);
    }
    return rc;
}
