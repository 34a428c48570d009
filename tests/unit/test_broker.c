/* test_broker.c — the broker's data structures without sockets: job table (two indexes, owner
 * isolation, queue order, token log growth, request hash incl. image bytes, byte accounting per
 * client), client sessions, worker registry (least-loaded pick, slow-start credit, strikes and
 * quarantine, avoided workers, zombies, known-model TTL, fingerprints) and stats (nearest-rank
 * p50/p95, ring wrap-around, STATUS JSON that lists only the asker's own jobs). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker.h"
#include "test.h"

static void test_jobs(void) {
    job_table_t t;
    client_table_t ct;
    CHECK(jobs_init(&t, 42) == 0 && clients_init(&ct) == 0);
    client_t *alice = clients_add(&ct, "aaaaaaaaaaaaaaaa", "session:aaaaaaaaaaaaaaaa", false);
    client_t *bob = clients_add(&ct, "bbbbbbbbbbbbbbbb", "session:bbbbbbbbbbbbbbbb", false);
    CHECK(clients_find(&ct, "bbbbbbbbbbbbbbbb") == bob && clients_find(&ct, "cccccccccccccccc") == NULL);
    job_t *a = jobs_add(&t, alice, "a"), *b = jobs_add(&t, alice, "b"), *c = jobs_add(&t, alice, "c");
    job_t *bb = jobs_add(&t, bob, "b"); /* the same client id, another owner: another job */
    CHECK(jobs_find(&t, alice->owner, "b") == b && jobs_find(&t, bob->owner, "b") == bb && bb != b);
    CHECK(jobs_find(&t, bob->owner, "a") == NULL && jobs_find(&t, alice->owner, "zz") == NULL);
    CHECK(strcmp(b->wid, bb->wid) != 0 && jobs_find_wid(&t, bb->wid) == bb && jobs_find_wid(&t, "nope") == NULL);
    CHECK(alice->njobs == 3 && bob->njobs == 1 && alice->jobs == c);
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
    /* bytes: a's stream counts in alice's total and the table's */
    jobs_account(&t, a);
    CHECK(a->bytes >= jobs_stream_bytes(a) && jobs_stream_bytes(a) >= 4000 + 1000 * sizeof(tok_t));
    CHECK(alice->bytes == a->bytes && t.bytes_total == a->bytes && bob->bytes == 0);
    /* moving a job to another session of the owner moves its bytes */
    client_t *alice2 = clients_add(&ct, "dddddddddddddddd", "session:aaaaaaaaaaaaaaaa", false);
    jobs_move(a, alice2);
    CHECK(a->client == alice2 && alice->bytes == 0 && alice2->bytes == a->bytes && alice->njobs == 2);
    jobs_move(a, alice);
    CHECK(alice->bytes == a->bytes && alice2->njobs == 0);
    clients_remove(&ct, alice2);

    wire_msg_t m1, m2;
    wire_msg_init(&m1, WIRE_SUBMIT);
    wire_msg_init(&m2, WIRE_SUBMIT);
    strcpy(m1.model, "m"), strcpy(m2.model, "m");
    wire_msg_set_prompt(&m1, "p");
    wire_msg_set_prompt(&m2, "p");
    zmq_msg_t img[3];
    const char *bytes[3] = {"img1", "img2", "img1"};
    for (int i = 0; i < 3; i++) zmq_msg_init_size(&img[i], 4), memcpy(zmq_msg_data(&img[i]), bytes[i], 4);
    CHECK(jobs_hash_request(&m1, &img[0], 1) == jobs_hash_request(&m2, &img[2], 1));
    CHECK(jobs_hash_request(&m1, &img[0], 1) != jobs_hash_request(&m2, &img[1], 1)); /* another image */
    CHECK(jobs_hash_request(&m1, &img[0], 1) != jobs_hash_request(&m2, &img[0], 2)); /* one more image */
    m2.params.seed = 1;
    CHECK(jobs_hash_request(&m1, &img[0], 1) != jobs_hash_request(&m2, &img[0], 1));
    /* a conversation: another role or another order of parts is another request */
    wire_part_t q[2] = {{NULL}, {"p"}}, q2[2] = {{"p"}, {NULL}};
    wire_message_t c1 = {WIRE_ROLE_USER, 2, q}, c2 = {WIRE_ROLE_SYSTEM, 2, q}, c3 = {WIRE_ROLE_USER, 2, q2};
    wire_msg_set_prompt(&m1, NULL);
    wire_msg_set_prompt(&m2, NULL);
    m2.params.seed = 0;
    wire_msg_set_messages(&m1, &c1, 1);
    wire_msg_set_messages(&m2, &c1, 1);
    CHECK(jobs_hash_request(&m1, &img[0], 1) == jobs_hash_request(&m2, &img[0], 1));
    wire_msg_set_messages(&m2, &c2, 1);
    CHECK(jobs_hash_request(&m1, &img[0], 1) != jobs_hash_request(&m2, &img[0], 1));
    wire_msg_set_messages(&m2, &c3, 1);
    CHECK(jobs_hash_request(&m1, &img[0], 1) != jobs_hash_request(&m2, &img[0], 1));
    for (int i = 0; i < 3; i++) zmq_msg_close(&img[i]);
    wire_msg_clear(&m1);
    wire_msg_clear(&m2);
    wire_msg_t fin;
    wire_msg_init(&fin, WIRE_DONE);
    strcpy(fin.id, "c");
    jobs_finish(&t, c, &fin, 20);
    CHECK(c->state == JOB_FINISHED && c->queue == -1 && t.qlen[0] == 1 && t.active == 3 && c->final.type == WIRE_DONE);
    CHECK(c->finished_at == 20 && !c->final_sent);
    jobs_dequeue(&t, b, 0);
    jobs_remove(&t, b);
    CHECK(jobs_find(&t, alice->owner, "b") == NULL && jobs_find(&t, bob->owner, "b") == bb && t.count == 3);
    CHECK(alice->njobs == 2);
    jobs_free(&t);
    CHECK(t.bytes_total == 0 && alice->njobs == 0 && alice->bytes == 0);
    clients_free(&ct);
}

static void test_workers(void) {
    worker_reg_t r;
    memset(&r, 0, sizeof r);
    worker_t *w1 = workers_add(&r, "w1", 2, 1, "m", 2, 0);
    worker_t *w2 = workers_add(&r, "w2", 2, 1, "m", 8, 0);
    workers_add(&r, "e1", 2, 0, "m", 1, 0);
    CHECK(r.count == 3 && workers_find(&r, "w2", 2) == w2 && w1->serial != w2->serial);
    /* slow start: a new worker may hold 2 jobs whatever it announced */
    CHECK(w1->credit == 2 && w2->credit == 2);
    job_t jobs[8];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 4; i++) {
        snprintf(jobs[i].wid, sizeof jobs[i].wid, "j%d", i);
        worker_t *w = workers_pick(&r, 1, "m", &jobs[i], 0);
        CHECK(w != NULL);
        if (w) CHECK(workers_assign(w, &jobs[i], 1) == 0);
    }
    CHECK(w1->nasg == 2 && w2->nasg == 2);
    CHECK(workers_pick(&r, 1, "m", &jobs[4], 0) == NULL && workers_pick(&r, 1, "other", NULL, 0) == NULL);
    for (int i = 0; i < 3; i++) workers_success(w2); /* earns credit: 2 -> 5 */
    CHECK(w2->credit == 5 && workers_pick(&r, 1, "m", &jobs[4], 0) == w2);
    for (int i = 0; i < 10; i++) workers_success(w2);
    CHECK(w2->credit == 8); /* never above the capacity */
    /* a failure halves the credit; quarantine_after strikes in a row quarantine */
    CHECK(!workers_strike(w2, 2, 1000, 50) && w2->credit == 4 && w2->strikes == 1);
    workers_success(w2);
    CHECK(w2->strikes == 0 && !workers_strike(w2, 2, 1000, 60));
    CHECK(workers_strike(w2, 2, 1000, 70) && w2->quarantined_until == 1070 && !workers_has_credit(w2, 500));
    CHECK(workers_pick(&r, 1, "m", &jobs[4], 500) == NULL); /* w1 is full, w2 quarantined: wait */
    CHECK(w2->credit == 1); /* 8 -> 4, +1 -> 5, -> 2, -> 1 */
    /* a job avoids the worker that failed it while another could take it */
    CHECK(workers_release(w1, w1->asg[0].wid, 1) && w1->nasg == 1);
    jobs[5].avoid[0] = w1->serial, jobs[5].navoid = 1;
    CHECK(workers_pick(&r, 1, "m", &jobs[5], 2000) != w1);
    CHECK(workers_pick(&r, 1, "m", &jobs[6], 2000) != NULL);
    /* ... but not when every worker of its pool failed it */
    jobs[7].avoid[0] = w1->serial, jobs[7].avoid[1] = w2->serial, jobs[7].navoid = 2;
    CHECK(workers_pick(&r, 1, "m", &jobs[7], 2000) != NULL);
    CHECK(workers_assign(w1, &jobs[0], 1) == 0 && workers_assign(w1, &jobs[0], 2) == HIRED_EBUSY);
    /* zombies keep the credit until the worker answers; release needs the right attempt */
    workers_zombify(w1, w1->asg[0].job, 50);
    CHECK(w1->nasg == 2 && w1->asg[0].job == NULL && w1->asg[0].zombie_expires == 50);
    CHECK(!workers_release(w1, w1->asg[0].wid, 99));
    CHECK(workers_release(w1, w1->asg[0].wid, w1->asg[0].attempt) && w1->nasg == 1);
    CHECK(!workers_release(w1, "nope", 1));
    /* models: known while served and model_ttl after; one fingerprint per name */
    CHECK(workers_set_fingerprint(&r, "m", "abc", 0) == 0);
    CHECK(workers_model_fingerprint(&r, "m", 1000, 10) && !strcmp(workers_model_fingerprint(&r, "m", 1000, 10), "abc"));
    CHECK(workers_model_known(&r, 1, "m", 1000, 10));
    workers_remove(&r, w1, 100);
    workers_remove(&r, w2, 100);
    CHECK(workers_model_known(&r, 1, "m", 105, 10) && !workers_model_known(&r, 1, "m", 111, 10));
    CHECK(!workers_model_known(&r, 1, "never", 0, 10) && workers_model_known(&r, 0, "m", 1000000, 10));
    workers_remove(&r, r.head, 200); /* the encoder: now the name is forgotten after the ttl */
    CHECK(workers_model_fingerprint(&r, "m", 205, 10) != NULL && workers_model_fingerprint(&r, "m", 300, 10) == NULL);
    workers_free(&r);
}

static void test_stats(void) {
    static broker_t b;
    memset(&b, 0, sizeof b);
    jobs_init(&b.jobs, 1);
    clients_init(&b.clients);
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
    client_t *alice = clients_add(&b.clients, "aaaaaaaaaaaaaaaa", "session:aaaaaaaaaaaaaaaa", false);
    client_t *bob = clients_add(&b.clients, "bbbbbbbbbbbbbbbb", "session:bbbbbbbbbbbbbbbb", false);
    client_t *op = clients_add(&b.clients, "cccccccccccccccc", "key:operator", true);
    job_t *ja = jobs_add(&b.jobs, alice, "alice-job");
    jobs_add(&b.jobs, bob, "bob-job");
    strcpy(ja->req.model, "m");
    /* every asker sees the counts; only the owner (or an operator) sees ids */
    const client_t *askers[] = {NULL, alice, bob, op};
    const int want_a[] = {0, 1, 0, 1}, want_b[] = {0, 0, 1, 1};
    for (int k = 0; k < 4; k++) {
        char *json = stats_status_json(&b, askers[k], 0);
        cJSON *root = json ? cJSON_Parse(json) : NULL;
        CHECK(root && cJSON_GetObjectItem(cJSON_GetObjectItem(root, "counters"), "completed")->valuedouble == 7);
        CHECK(root && cJSON_GetObjectItem(cJSON_GetObjectItem(root, "timings"), "vit") != NULL);
        CHECK(root && cJSON_GetObjectItem(cJSON_GetObjectItem(root, "timings"), "decode") == NULL);
        CHECK(root && cJSON_GetObjectItem(root, "active_jobs")->valuedouble == 2);
        int sa = 0, sb = 0;
        cJSON *j;
        cJSON_ArrayForEach(j, cJSON_GetObjectItem(root, "inflight")) {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "id"));
            sa += id && !strcmp(id, "alice-job");
            sb += id && !strcmp(id, "bob-job");
        }
        CHECK_MSG(sa == want_a[k] && sb == want_b[k], "asker %d sees alice %d bob %d", k, sa, sb);
        CHECK(json && !strstr(json, k == 1 ? "bob-job" : "alice-job") == (k == 0 || k == 1 || k == 2));
        cJSON_Delete(root);
        cJSON_free(json);
    }
    jobs_free(&b.jobs);
    clients_free(&b.clients);
}

int main(void) {
    test_jobs();
    test_workers();
    test_stats();
    return test_summary();
}
