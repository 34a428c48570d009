/* test_broker.c — the broker's data structures without sockets: job table (hash, queue order,
 * token log growth, request hash), worker registry (least-loaded pick, credit limit, zombies,
 * known-model TTL) and stats (nearest-rank p50/p95, ring wrap-around, STATUS JSON). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker.h"
#include "test.h"

static void test_jobs(void) {
    job_table_t t;
    CHECK(jobs_init(&t) == 0);
    job_t *a = jobs_add(&t, "a"), *b = jobs_add(&t, "b"), *c = jobs_add(&t, "c");
    CHECK(jobs_find(&t, "b") == b && jobs_find(&t, "zz") == NULL);
    jobs_enqueue(&t, a, 0, false, 0);
    jobs_enqueue(&t, b, 0, false, 0);
    jobs_enqueue(&t, c, 0, true, 0); /* a retry goes first */
    CHECK(t.qhead[0] == c && c->qnext == a && a->qnext == b && t.qtail[0] == b && t.qlen[0] == 3);
    jobs_dequeue(&t, a, 10);
    CHECK(c->qnext == b && b->qprev == c && t.qlen[0] == 2 && a->queue == -1 && a->queue_ms == 10);
    int logged = 0;
    for (int i = 0; i < 1000; i++) logged += jobs_log_token(a, i, "tok ") == 0;
    CHECK_EQ_INT(logged, 1000);
    CHECK(a->ntok == 1000 && a->text_len == 4000 && a->toks[999].off == 3996 && !strncmp(a->text + 3996, "tok ", 4));
    wire_msg_t m1, m2;
    wire_msg_init(&m1, WIRE_SUBMIT);
    wire_msg_init(&m2, WIRE_SUBMIT);
    strcpy(m1.model, "m"), strcpy(m2.model, "m");
    wire_msg_set_prompt(&m1, "p");
    wire_msg_set_prompt(&m2, "p");
    CHECK(jobs_hash_request(&m1) == jobs_hash_request(&m2));
    m2.params.seed = 1;
    CHECK(jobs_hash_request(&m1) != jobs_hash_request(&m2));
    wire_msg_clear(&m1);
    wire_msg_clear(&m2);
    wire_msg_t fin;
    wire_msg_init(&fin, WIRE_DONE);
    strcpy(fin.id, "c");
    jobs_finish(&t, c, &fin, 100, 20);
    CHECK(c->state == JOB_FINISHED && c->queue == -1 && t.qlen[0] == 1 && t.active == 2 && c->final.type == WIRE_DONE);
    jobs_dequeue(&t, b, 0);
    jobs_remove(&t, b);
    CHECK(jobs_find(&t, "b") == NULL && t.count == 2);
    jobs_free(&t);
}

static void test_workers(void) {
    worker_reg_t r;
    memset(&r, 0, sizeof r);
    worker_t *w1 = workers_add(&r, "w1", 2, 1, "m", 2, 0);
    worker_t *w2 = workers_add(&r, "w2", 2, 1, "m", 4, 0);
    workers_add(&r, "e1", 2, 0, "m", 1, 0);
    CHECK(r.count == 3 && workers_find(&r, "w2", 2) == w2);
    job_t jobs[6];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 6; i++) {
        snprintf(jobs[i].id, sizeof jobs[i].id, "j%d", i);
        worker_t *w = workers_pick(&r, 1, "m");
        CHECK(w != NULL);
        if (w) CHECK(workers_assign(w, &jobs[i]) == 0);
    }
    CHECK(w1->nasg == 2 && w2->nasg == 4); /* filled in proportion to capacity */
    CHECK(workers_pick(&r, 1, "m") == NULL && workers_pick(&r, 1, "other") == NULL);
    CHECK(workers_assign(w1, &jobs[0]) == HIRED_EBUSY);
    workers_zombify(w1, w1->asg[0].job, 50);
    CHECK(w1->nasg == 2 && w1->asg[0].job == NULL && w1->asg[0].zombie_expires == 50);
    CHECK(workers_release(w1, w1->asg[0].id) && w1->nasg == 1);
    CHECK(!workers_release(w1, "nope"));
    CHECK(workers_pick(&r, 1, "m") == w1);
    CHECK(workers_model_known(&r, 1, "m", 1000, 10));
    workers_remove(&r, w1, 100);
    workers_remove(&r, w2, 100);
    CHECK(workers_model_known(&r, 1, "m", 105, 10) && !workers_model_known(&r, 1, "m", 111, 10));
    CHECK(!workers_model_known(&r, 1, "never", 0, 10) && workers_model_known(&r, 0, "m", 1000000, 10));
    workers_free(&r);
}

static void test_stats(void) {
    static broker_t b;
    memset(&b, 0, sizeof b);
    jobs_init(&b.jobs);
    wire_msg_t d;
    wire_msg_init(&d, WIRE_DONE);
    d.timings_mask = 1u << WIRE_STAGE_VIT;
    for (int i = 1; i <= 100; i++) {
        d.timings[WIRE_STAGE_VIT] = i;
        stats_add_timings(&b.stats, &d);
    }
    uint64_t n;
    double mean, p50, p95;
    stats_summary(&b.stats, WIRE_STAGE_VIT, &n, &mean, &p50, &p95);
    CHECK(n == 100 && mean == 50.5 && p50 == 50 && p95 == 95);
    for (int i = 0; i < STATS_RING; i++) { /* the ring forgets the old samples */
        d.timings[WIRE_STAGE_VIT] = 1000;
        stats_add_timings(&b.stats, &d);
    }
    stats_summary(&b.stats, WIRE_STAGE_VIT, &n, &mean, &p50, &p95);
    CHECK(n == 100 + STATS_RING && p50 == 1000 && p95 == 1000);
    stats_summary(&b.stats, WIRE_STAGE_DECODE, &n, &mean, &p50, &p95);
    CHECK(n == 0 && p95 == 0);
    b.stats.completed = 7;
    char *json = stats_status_json(&b, 0);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root && cJSON_GetObjectItem(cJSON_GetObjectItem(root, "counters"), "completed")->valuedouble == 7);
    CHECK(root && cJSON_GetObjectItem(cJSON_GetObjectItem(root, "timings"), "vit") != NULL);
    CHECK(root && cJSON_GetObjectItem(cJSON_GetObjectItem(root, "timings"), "decode") == NULL);
    cJSON_Delete(root);
    cJSON_free(json);
    jobs_free(&b.jobs);
}

int main(void) {
    test_jobs();
    test_workers();
    test_stats();
    return test_summary();
}
