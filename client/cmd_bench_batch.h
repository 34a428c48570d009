/* cmd_bench_batch.h — `hired bench --concurrency`: continuous batching on the decoder's
 * scheduler, in process (cmd_bench_batch.c). */
#ifndef HIRED_CMD_BENCH_BATCH_H
#define HIRED_CMD_BENCH_BATCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *model;       /* model directory ("" : the tiny fixture's tokenizer, with text_layers) */
    const char *concurrency; /* "1,4,16" */
    const char *budgets;     /* "0.2,1.0" */
    int64_t text_layers;     /* > 0: a random F16 text model of LLaVA-NeXT-7B widths */
    int64_t kv_bytes;        /* the fixed pool; 0 = 4 jobs at the largest budget */
    int64_t image_tokens;    /* visual positions before selection */
    int64_t pool_image_tokens; /* the same for the fixed-pool count */
    int64_t max_tokens;
    int64_t rounds;          /* ≥ 1: the table this many times, levels taking turns; each row keeps
                                its best aggregate decode rate */
    const char *json;
    bool kv_f32;             /* float32 KV cache instead of F16 */
    int weights;             /* llm_weights_t: how the text model's linear layers are held */
} bench_batch_opts_t;

/* The exit status: 0, 1 (a failure), 2 (usage). */
int bench_batch(const bench_batch_opts_t *o);

#endif
