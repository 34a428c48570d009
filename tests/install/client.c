/* client.c — a user's program against an INSTALLED libhired: test_install.sh compiles it with
 * nothing but `cc client.c $(pkg-config --cflags --libs hired)` (the installed hired.pc) and
 * runs it against the installed hired-broker and workers. It must see the public API through
 * <hired/hired_client.h> alone (no project header, no ARRAY_LEN leaking out of it).
 *
 *   client ENDPOINT MODEL IMAGE
 * submits IMAGE with a plain question, prints the streamed text, then one line
 * "DONE finish=F completion_tokens=N tokens_seen=M"; exit 0 only for a DONE with N >= 1 after
 * an ACCEPTED and TOKEN events numbered 0, 1, ..., M-1 without a gap; 1 for ERROR, BUSY, a
 * gap, or no answer in 300 s; 2 for a usage error. */
#include <hired/hired_client.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef ARRAY_LEN
#error "the public headers leak ARRAY_LEN"
#endif

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: client ENDPOINT MODEL IMAGE\n");
        return 2;
    }
    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 2;
    }
    static unsigned char img[32u << 20];
    size_t n = fread(img, 1, sizeof img, f);
    fclose(f);

    hired_client *c = hired_client_new(argv[1], NULL);
    if (!c) {
        fprintf(stderr, "hired_client_new(%s) failed\n", argv[1]);
        return 1;
    }
    hired_job job;
    hired_job_init(&job);
    job.model = argv[2];
    job.prompt = "What is in the picture?";
    job.image = img;
    job.image_len = n;
    job.params.max_tokens = 8;
    job.deadline_ms = 300000;
    char id[HIRED_JOB_ID_LEN];
    int rc = hired_submit(c, &job, id);
    if (rc) {
        fprintf(stderr, "hired_submit: %s\n", hired_strerror(rc));
        hired_client_destroy(&c);
        return 1;
    }
    int status = 1, accepted = 0;
    unsigned seen = 0;
    for (;;) {
        hired_event ev;
        if (hired_next_event(c, 300000, &ev) != 0) {
            fprintf(stderr, "no event for 300 s\n");
            break;
        }
        int end = 1;
        switch (ev.type) {
        case HIRED_EVENT_ACCEPTED:
            accepted = 1;
            end = 0;
            break;
        case HIRED_EVENT_TOKEN:
            end = 0;
            if (ev.seq != seen) {
                fprintf(stderr, "TOKEN seq %u, expected %u\n", (unsigned)ev.seq, seen);
                end = 1;
            }
            seen++;
            fputs(ev.text ? ev.text : "", stdout);
            break;
        case HIRED_EVENT_DONE:
            printf("\nDONE finish=%s completion_tokens=%u tokens_seen=%u\n", ev.finish,
                   (unsigned)ev.completion_tokens, seen);
            status = accepted && ev.completion_tokens >= 1 ? 0 : 1;
            break;
        case HIRED_EVENT_ERROR: fprintf(stderr, "ERROR %s: %s\n", hired_strerror(ev.code), ev.message); break;
        case HIRED_EVENT_BUSY: fprintf(stderr, "BUSY: %s\n", ev.message); break;
        }
        hired_event_clear(&ev);
        if (end) break;
    }
    hired_client_destroy(&c);
    return status;
}
