/* gen_text.h — internal to pipeline/: the decoded answer text of one job between the streaming
 * detokeniser and the caller's gen_emit_fn, holding back whatever might still become a stop
 * string (generate.h's stopping rules). Shared by gen_decode and the batch scheduler (gen_sched.h)
 * so both stream and stop the same way. */
#ifndef HIRED_GEN_TEXT_H
#define HIRED_GEN_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "generate.h"

/* Decoded answer text, with everything that might still become a stop string held back. */
typedef struct {
    char *buf;
    size_t len, cap, sent;
    const char *const *stop;
    gen_emit_fn emit;
    void *user;
    bool stopped;   /* a stop string was found */
    bool cancelled; /* the callback asked to stop */
} gen_text_t;

/* Appends n bytes of decoded text. HIRED_ENOMEM. */
int gen_text_append(gen_text_t *o, const char *s, size_t n);
/* After new text: emits what can no longer be part of a stop string (stopping at the earliest
 * stop string found); at_end emits the rest. */
void gen_text_flush(gen_text_t *o, int32_t token, bool at_end);

#endif
