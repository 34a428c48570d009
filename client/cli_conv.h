/* cli_conv.h — the conversation `hired run` and `hired submit` take from the command line, in
 * one shape for both (so the same flags give the same request in process and through a broker):
 *   flags        --system T / --user T / --assistant T (repeatable, kept in command-line order),
 *                then the positional question as the last user turn; every --image FILE (in
 *                order) goes to the last user turn, ahead of its text. No --image: text only.
 *   --messages F a JSON file in the OpenAI chat shape: [{"role": "system"|"user"|"assistant",
 *                "content": "text" | [parts]}], parts {"type": "text", "text": ...},
 *                {"type": "image_url", "image_url": {"url": PATH | "file://PATH" |
 *                "data:image/...;base64,..."}} or {"type": "image"} (takes the next --image FILE).
 * Not here: what each command does with it (cmd_run.c, cmd_submit.c). */
#ifndef HIRED_CLI_CONV_H
#define HIRED_CLI_CONV_H

#include "run.h"

#define RUN_MAX_TURNS 64
#define RUN_MAX_PARTS 256
#define RUN_MAX_MESSAGES_BYTES ((size_t)64 << 20)

/* The turns given as --system / --user / --assistant, in command-line order. */
typedef struct {
    const char *role[RUN_MAX_TURNS], *text[RUN_MAX_TURNS];
    int n;
} turns_t;

/* cfg_cli_extra_fn for --system, --user, --assistant (user: a turns_t). */
int cli_take_turn(void *user, const char *key, const char *value, char *err);

/* A conversation: messages whose parts borrow the strings of the command line or own copies
 * (texts), and the images' bytes (owned). */
typedef struct {
    tpl_message_t msg[RUN_MAX_TURNS];
    tpl_part_t part[RUN_MAX_PARTS];
    int n_msg, n_part;
    run_image_t img[GEN_MAX_IMAGES];
    uint8_t *img_owned[GEN_MAX_IMAGES]; /* bytes read or decoded here (mem_free) */
    int n_img;
    char *texts[RUN_MAX_PARTS]; /* strings copied out of the messages file (mem_free) */
    int n_texts;
} conv_t;

/* Checks how the request was given: the exit status 2 with the reason printed as "PROG: ...",
 * or 0. question may be NULL; messages: the --messages file or NULL. */
int cli_conv_usage(const char *prog, const turns_t *turns, const char *question, const char *messages, int n_images);
/* Builds c (zeroed) from the flags (turns, question as the last user turn, images at the last user
 * turn) or from the messages file (images taken by its {"type": "image"} parts). c keeps pointers
 * into turns' strings and question. 0 or HIRED_E* with err; cli_conv_free either way. */
int cli_conv_build(conv_t *c, const turns_t *turns, const char *question, const char *messages,
                   const char *const *images, int n_images, char *err);
void cli_conv_free(conv_t *c);

#endif
