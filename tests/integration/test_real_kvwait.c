/* test_real_kvwait.c — a decoder whose KV pool is full takes no new job: the job waits in the
 * broker's queue, where another decoder can take it (real hired-broker and hired-decoder
 * processes on the tiny LLaVA-1.5 model, text-only jobs).
 *
 * Decoder A: batch of 4, a KV pool of 200 blocks (16 positions each; F32, as rt_decoder sets
 * it). A job of
 * 3000 new tokens takes 189 blocks, so A runs one at a time. Steps:
 *   1. three short jobs grow A's credit at the broker to its capacity (4): from here on the
 *      broker's credit would let A hold four jobs;
 *   2. long1 is admitted by A (its KV blocks in use); long2 reaches A and waits there for
 *      blocks — A reports kv_waiting 1 at once (STATUS shows it) — and A is then frozen
 *      (SIGSTOP), so what the broker knows stays as it is;
 *   3. short3 is submitted: the broker keeps it queued although A has credit left (the fault
 *      this guards against: before, it went to A and waited behind long1 and long2);
 *   4. decoder B starts and serves short3 while A is still frozen;
 *   5. A resumes; long1 and long2 end with 3000 tokens each, and every process exits 0.
 * A greedy job of the tiny model does not meet its EOS within 3000 tokens (the jobs end by
 * length; checked). No step depends on how fast the machine is: each waits for a state the
 * broker reports, and the watchdog only catches a hang. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvcache.h"
#include "test.h"
#include "test_real_util.h"

#define MODEL "llava15-tiny"
#define LONG_TOKENS 3000
#define POOL_BLOCKS 200

/* A number of the first decode worker of MODEL in STATUS whose id is not `skip` (NULL: any),
 * or of the decode queue (field "queue"); -1 when absent. The worker's id into id_out when set. */
static double decoder_field(hired_client *c, const char *field, const char *skip, char *id_out) {
    char *json;
    if (hired_status(c, &json)) return -1;
    cJSON *root = cJSON_Parse(json);
    free(json);
    double v = -1;
    if (!strcmp(field, "queue")) {
        cJSON *q = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "queues"), "decode");
        v = cJSON_IsNumber(q) ? q->valuedouble : -1;
    }
    const cJSON *pool;
    cJSON_ArrayForEach(pool, cJSON_GetObjectItem(root, "pools")) {
        if (v >= 0) break;
        if (strcmp(cJSON_GetObjectItem(pool, "service")->valuestring, "decode") ||
            strcmp(cJSON_GetObjectItem(pool, "model")->valuestring, MODEL))
            continue;
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(pool, "workers")) {
            const char *id = cJSON_GetObjectItem(w, "id")->valuestring;
            if (skip && !strcmp(id, skip)) continue;
            const cJSON *f = cJSON_GetObjectItem(w, field);
            v = cJSON_IsNumber(f) ? f->valuedouble : -1;
            if (id_out) snprintf(id_out, 65, "%s", id);
            break;
        }
    }
    cJSON_Delete(root);
    return v;
}

/* Polls until decoder_field(field) >= want (every 10 ms, up to timeout_ms): the value seen. */
static double wait_field(hired_client *c, const char *field, double want, int timeout_ms) {
    double v = -1;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if ((v = decoder_field(c, field, NULL, NULL)) >= want) break;
        h_sleep_ms(10);
    }
    return v;
}

static void submit_text(hired_client *c, const char *id, int max_tokens, h_result *r) {
    hired_part part = {"Tell me everything."};
    hired_message um = {"user", &part, 1};
    hired_job j;
    hired_job_init(&j);
    j.model = MODEL;
    j.id = id;
    j.params.max_tokens = max_tokens;
    j.messages = &um, j.n_messages = 1;
    char err[HIRED_ERR_LEN];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    CHECK_MSG(hired_submit_err(c, &j, NULL, err) == 0, "submit %s: %s", id, err);
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    char front[256], back[256];
    /* liveness 100 x 500 ms: the frozen decoder stays registered while B starts and serves */
    const char *bopts[] = {"--broker.heartbeat_ms=500", "--broker.liveness=100", "--broker.startup_grace_ms=0", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    static char dir[2048], pool_opt[64];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    /* 2 layers x 4 KV heads x 8 dims, keys and values, F32: 8192 bytes per block of 16 */
    size_t block = kv_cache_bytes_for(TENSOR_DTYPE_F32, 2, 32, 16);
    CHECK_EQ_INT((int)block, 8192);
    snprintf(pool_opt, sizeof pool_opt, "--decoder.kv_bytes=%zu", block * POOL_BLOCKS);
    const char *aopts[] = {"--decoder.capacity=4", pool_opt, "--broker.liveness=100", NULL};
    pid_t a = rt_decoder(back, dir, aopts);

    hired_client_opts co = {.timeout_ms = 60000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 0, 1, 60000));

    /* 1. credit up to the capacity */
    char ida[65] = "";
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "warm%d", i);
        h_result r;
        submit_text(c, id, 2, &r);
        CHECK(h_collect(c, &r, 1, 60000) == 1 && r.final == HIRED_EVENT_DONE);
    }
    CHECK_MSG(decoder_field(c, "credit", NULL, ida) == 4, "decoder A's credit after 3 jobs: %.0f",
              decoder_field(c, "credit", NULL, NULL));

    /* 2. long1 runs, long2 waits in A for KV blocks; A frozen */
    h_result r[3];
    submit_text(c, "long1", LONG_TOKENS, &r[0]);
    double used = wait_field(c, "kv_blocks_used", 189, 60000);
    CHECK_MSG(used >= 189 && used <= POOL_BLOCKS, "long1's KV blocks in use: %.0f", used);
    submit_text(c, "long2", LONG_TOKENS, &r[1]);
    double waiting = wait_field(c, "kv_waiting", 1, 60000);
    h_kill(a, SIGSTOP);
    CHECK_MSG(waiting == 1, "decoder A reported %.0f jobs waiting for KV blocks", waiting);
    CHECK_MSG(decoder_field(c, "kv_waiting", NULL, NULL) == 1 && decoder_field(c, "in_use", NULL, NULL) == 2,
              "before short3: A waiting %.0f, in use %.0f (long1 ended before A was frozen?)",
              decoder_field(c, "kv_waiting", NULL, NULL), decoder_field(c, "in_use", NULL, NULL));

    /* 3. short3 stays in the broker's queue although A has credit for two more */
    submit_text(c, "short3", 4, &r[2]);
    double queued = wait_field(c, "queue", 1, 30000);
    h_sleep_ms(1000); /* time for a wrong dispatch to show: it would have happened at once */
    CHECK_MSG(queued == 1 && decoder_field(c, "queue", NULL, NULL) == 1 && decoder_field(c, "in_use", NULL, NULL) == 2,
              "short3: decode queue %.0f, A holds %.0f jobs (want 1 queued, A still 2)", decoder_field(c, "queue", NULL, NULL),
              decoder_field(c, "in_use", NULL, NULL));
    printf("A full (kv_waiting 1, credit 4, in use 2): short3 queued in the broker\n");

    /* 4. decoder B takes it while A is frozen */
    const char *bdopts[] = {"--decoder.capacity=2", "--broker.liveness=100", NULL};
    rt_decoder(back, dir, bdopts);
    CHECK(h_collect(c, &r[2], 1, 120000) == 1);
    CHECK_MSG(r[2].final == HIRED_EVENT_DONE && !strcmp(r[2].finish, "length"), "short3: final %d finish '%s' %s",
              r[2].final, r[2].finish, r[2].message);
    char idb[65] = "";
    /* (B may also take over long1, which makes no progress on the frozen A: the broker's
     * migration of stalled jobs to idle workers) */
    CHECK_MSG(decoder_field(c, "served", ida, idb) >= 1, "decoder B served %.0f jobs",
              decoder_field(c, "served", ida, NULL));
    printf("decoder B (%s) served short3 while A (%s) was frozen\n", idb, ida);

    /* 5. A resumes; both long jobs end by length */
    h_kill(a, SIGCONT);
    CHECK(h_collect(c, r, 2, 120000) == 2);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(r[i].final == HIRED_EVENT_DONE && !strcmp(r[i].finish, "length"), "%s: final %d finish '%s' %s",
                  r[i].id, r[i].final, r[i].finish, r[i].message);
    hired_client_destroy(&c);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
