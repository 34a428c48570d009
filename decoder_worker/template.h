/* template.h — chat templates that wrap a user question into the prompt text a LLaVA model was
 * trained on (docs/numerics.md §5.2), and the check that an encoded prompt has exactly one <image>.
 *
 * Every template puts "<image>\n" before the question, unless the question already contains
 * "<image>": then it is used as given (no second placeholder). "raw" returns the question
 * unchanged (the caller supplies the whole prompt). BOS is not part of any template: the
 * tokenizer's post-processor adds it. Templates:
 *   vicuna           USER: <image>\n{q} ASSISTANT:            (llava-v1.6-vicuna-hf processor)
 *   llava-1.5        USER: <image>\n{q} ASSISTANT:            (llava-1.5-7b-hf processor, identical)
 *   vicuna-system    A chat between a curious human ... questions. USER: <image>\n{q} ASSISTANT:
 *   vicuna-lmms-eval A chat between a curious user ... questions. USER: <image>\n{q} ASSISTANT:
 *   mistral          [INST] <image>\n{q} [/INST]              (llava-v1.6-mistral-hf processor)
 *   raw              {q}
 * Not here: tokenisation (tokenizer.h), multi-turn conversations. */
#ifndef HIRED_TEMPLATE_H
#define HIRED_TEMPLATE_H

#include <stdint.h>

#define TPL_IMAGE "<image>"

/* Renders template `name` around `question` (NUL-terminated UTF-8). On success *out is a new
 * NUL-terminated string the caller owns (mem_free). HIRED_EINVAL for an unknown name (the message
 * lists the known ones) or a NULL question, HIRED_ENOMEM; *out = NULL then. */
int tpl_render(const char *name, const char *question, char **out, char *err);

/* The known template names, NULL-terminated. Static storage (never freed). */
const char *const *tpl_names(void);

/* Finds the single position of image_id in ids[0..n). Stores it in *pos and returns 0, or
 * HIRED_EINVAL with err "prompt has no <image> placeholder" / "prompt has K <image> placeholders;
 * exactly one is supported". ids is borrowed. */
int tpl_image_pos(const int32_t *ids, int n, int32_t image_id, int *pos, char *err);

#endif
