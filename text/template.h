/* template.h — chat templates: conversations (system / user / assistant messages whose content is
 * text and image parts) rendered into the prompt text a LLaVA model was trained on, exactly as
 * transformers' apply_chat_template renders them (docs/numerics.md §5.2), and the positions of
 * <image> in an encoded prompt.
 *
 * Where the template comes from (tpl_load, first found wins):
 *   MODEL/chat_template.jinja, MODEL/chat_template.json {"chat_template": ...},
 *   MODEL/processor_config.json "chat_template"   — processor templates: message content is a
 *        list of {"type": "image"} / {"type": "text", "text": ...} parts (what the llava-hf
 *        templates iterate with selectattr);
 *   MODEL/tokenizer_config.json "chat_template" (a string, or a list of {name, template} where
 *        "default" is used) — tokenizer templates: message content is one string, an image part
 *        becoming "<image>\n" at its place in the text (the llava convention).
 * The variables are transformers': messages, add_generation_prompt, tools and documents (none),
 * and bos_token / eos_token / unk_token / pad_token from tokenizer_config.json.
 * Without any of these files, a built-in template by name (the fallbacks, each a Jinja text
 * rendered by the same interpreter, so multi-turn and several images work with them too):
 *   vicuna / llava-1.5   the llava-hf Vicuna processor template: "USER: <image>\n{q} ASSISTANT:"
 *   vicuna-system        vicuna with the original LLaVA system prompt ("A chat between a curious
 *                        human ...") when the conversation has no system message
 *   vicuna-lmms-eval     the same with lmms-eval's wording ("... a curious user ...")
 *   mistral              the llava-hf Mistral processor template: "[INST] <image>\n{q} [/INST]"
 *   chatml               the llava-hf Yi-34B (ChatML) processor template
 *   llama3               the llava-hf Llama-3 processor template
 *   raw                  the text parts of the messages concatenated, nothing added
 * BOS is never added here unless the template itself writes it: the tokenizer's post-processor
 * adds it.
 * Not here: tokenisation (tokenizer.h), the Jinja language (jinja.h). */
#ifndef HIRED_TEMPLATE_H
#define HIRED_TEMPLATE_H

#include <stdbool.h>
#include <stdint.h>

#define TPL_IMAGE "<image>"

typedef enum { TPL_PART_TEXT = 0, TPL_PART_IMAGE } tpl_part_kind_t;

typedef struct {
    tpl_part_kind_t kind;
    const char *text; /* TPL_PART_TEXT: NUL-terminated UTF-8; ignored for images */
} tpl_part_t;

typedef struct {
    const char *role; /* "system", "user", "assistant" (passed through; the template decides) */
    const tpl_part_t *parts;
    int n_parts;
} tpl_message_t;

typedef struct tpl tpl_t;

/* Loads the checkpoint's chat template (see above). *out = NULL and 0 when the directory has
 * none; HIRED_EFORMAT / HIRED_EUNSUPPORTED with err naming the file and field for a malformed
 * file or a template the interpreter cannot parse; HIRED_ENOMEM. Caller owns *out (tpl_destroy). */
int tpl_load(const char *model_dir, tpl_t **out, char *err);
/* A template from Jinja source. content_list: processor-style (parts list) or tokenizer-style
 * (string) message content. bos/eos (may be NULL) become bos_token / eos_token. name prefixes
 * errors. Caller owns the result; NULL with err on a syntax error or when out of memory. */
tpl_t *tpl_new(const char *src, const char *name, bool content_list, const char *bos, const char *eos, char *err);
/* A built-in template (names above). NULL with err listing the known names when unknown. */
tpl_t *tpl_builtin(const char *name, char *err);
void tpl_destroy(tpl_t **p);
/* Where t came from: the file name ("chat_template.json", ...) or the built-in name. Borrowed. */
const char *tpl_source(const tpl_t *t);
/* The known built-in names, NULL-terminated. Static storage. */
const char *const *tpl_names(void);

/* Renders msgs[0..n) (borrowed) with add_generation_prompt. *out is a new NUL-terminated string
 * the caller owns (mem_free). HIRED_EINVAL with err for a bad conversation (an empty role, a
 * NULL text) or a render error (the template's raise_exception message), HIRED_ERANGE, ENOMEM. */
int tpl_render_chat(const tpl_t *t, const tpl_message_t *msgs, int n, bool add_generation_prompt, char **out,
                    char *err);

/* The single-question form: built-in template `name` around `question`, one user message with
 * one image part ahead of the text, unless the question already holds "<image>" (then it is the
 * whole content, used as given) or the name is "raw". Caller owns *out (mem_free). HIRED_EINVAL
 * for an unknown name (the message lists the known ones) or a NULL question; *out = NULL then. */
int tpl_render(const char *name, const char *question, char **out, char *err);

/* The positions of image_id in ids[0..n): up to max of them into pos[], the count into *count.
 * Never fails. ids is borrowed. */
void tpl_image_positions(const int32_t *ids, int n, int32_t image_id, int *pos, int max, int *count);

/* Finds the single position of image_id in ids[0..n). Stores it in *pos and returns 0, or
 * HIRED_EINVAL with err "prompt has no <image> placeholder" / "prompt has K <image> placeholders;
 * exactly one is supported". ids is borrowed. */
int tpl_image_pos(const int32_t *ids, int n, int32_t image_id, int *pos, char *err);

#endif
