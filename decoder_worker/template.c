/* template.c — see template.h. One table of (name, text before, text after); rendering is
 * before + ["<image>\n"] + question + after. Not here: Jinja, multi-turn, system-prompt options. */
#include "template.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mem.h"

typedef struct {
    const char *name;
    const char *before, *after;
    bool image; /* insert "<image>\n" unless the question has one */
} tpl_t;

#define VICUNA_SYSTEM_HUMAN                                                                                            \
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives "                    \
    "helpful, detailed, and polite answers to the human's questions. "
#define VICUNA_SYSTEM_USER                                                                                             \
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives "                     \
    "helpful, detailed, and polite answers to the user's questions. "

static const tpl_t k_templates[] = {
    {"vicuna", "USER: ", " ASSISTANT:", true},
    {"llava-1.5", "USER: ", " ASSISTANT:", true},
    {"vicuna-system", VICUNA_SYSTEM_HUMAN "USER: ", " ASSISTANT:", true},
    {"vicuna-lmms-eval", VICUNA_SYSTEM_USER "USER: ", " ASSISTANT:", true},
    {"mistral", "[INST] ", " [/INST]", true},
    {"raw", "", "", false},
};

static const char *const k_names[] = {"vicuna", "llava-1.5", "vicuna-system", "vicuna-lmms-eval", "mistral",
                                      "raw",    NULL};

const char *const *tpl_names(void) { return k_names; }

/* Exact-name lookup; the placeholder rule is a plain substring test for "<image>", the same string
 * the tokenizer matches as an added token, so "has a placeholder" here means "encodes to id 32000". */
int tpl_render(const char *name, const char *question, char **out, char *err) {
    *out = NULL;
    const tpl_t *tp = NULL;
    for (size_t i = 0; name && i < ARRAY_LEN(k_templates); i++)
        if (!strcmp(k_templates[i].name, name)) tp = &k_templates[i];
    if (!tp) {
        char known[256] = "";
        for (size_t i = 0; k_names[i]; i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, k_names[i], sizeof known - strlen(known) - 1);
        }
        return hired_errf(err, HIRED_EINVAL, "unknown chat template \"%s\" (known: %s)", name ? name : "(null)", known);
    }
    if (!question) return hired_errf(err, HIRED_EINVAL, "chat template %s: no question", tp->name);
    const char *image = tp->image && !strstr(question, TPL_IMAGE) ? TPL_IMAGE "\n" : "";
    size_t n = strlen(tp->before) + strlen(image) + strlen(question) + strlen(tp->after);
    char *s = mem_alloc(n + 1);
    if (!s) return hired_errf(err, HIRED_ENOMEM, "out of memory rendering chat template %s", tp->name);
    snprintf(s, n + 1, "%s%s%s%s", tp->before, image, question, tp->after);
    *out = s;
    return HIRED_OK;
}

/* One pass: the first position is kept, the count decides the error. */
int tpl_image_pos(const int32_t *ids, int n, int32_t image_id, int *pos, char *err) {
    int count = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] == image_id) {
            if (!count) *pos = i;
            count++;
        }
    if (count == 0) return hired_errf(err, HIRED_EINVAL, "prompt has no " TPL_IMAGE " placeholder");
    if (count > 1)
        return hired_errf(err, HIRED_EINVAL, "prompt has %d " TPL_IMAGE " placeholders; exactly one is supported",
                          count);
    return HIRED_OK;
}
