/* hired_client.h — libhired: submit jobs (a question about an image, or a conversation of
 * system / user / assistant messages with 0..16 images) to a hired broker and receive their
 * streamed answers. Installed as <hired/hired_client.h>; build with
 * `cc app.c $(pkg-config --cflags --libs hired)`.
 *
 *     hired_client *c = hired_client_new("tcp://broker:5555", NULL);
 *     hired_job job;
 *     hired_job_init(&job);
 *     job.model = "llava-v1.6-vicuna-7b-hf";        // the name the workers serve
 *     job.prompt = "What is in this picture?";       // a plain question: the decoder adds the
 *                                                     // chat template and <image> (unless its
 *                                                     // decoder.template is "raw")
 *     job.image = bytes; job.image_len = n;          // JPEG/PNG file bytes, not decoded
 *     char id[HIRED_JOB_ID_LEN];
 *     hired_submit(c, &job, id);
 *     hired_event ev;
 *     while (hired_next_event(c, 60000, &ev) == 0) {
 *         if (ev.type == HIRED_EVENT_TOKEN) fputs(ev.text, stdout);
 *         bool end = ev.type == HIRED_EVENT_DONE || ev.type == HIRED_EVENT_ERROR || ev.type == HIRED_EVENT_BUSY;
 *         hired_event_clear(&ev);
 *         if (end) break;
 *     }
 *     hired_client_destroy(&c);
 *
 * Reliability (docs/protocol.md §5): the client has a random session secret; its jobs belong
 * to that session (or to its CURVE key), so no other client can read, attach to or cancel them.
 * The broker keeps each job's stream until this library acknowledges its end, and the library
 * keeps every unfinished job (including its image) until then. Whatever goes missing on the way
 * — a reconnect (ZeroMQ gives the connection a new routing id), a TCP reset, a stalled or slow
 * link, a lost message — shows as a gap in the TOKEN seq numbers, a DONE whose seq says tokens
 * are missing, or a job that has been quiet for liveness x heartbeat, and the library asks the
 * broker to RESUME the job from the first seq it lacks. When the broker itself is lost (silent
 * for liveness x heartbeat) it reconnects and resumes every job; when the broker restarted (its
 * epoch changed) or no longer knows a job, it resubmits it with the same id. Tokens already
 * delivered are dropped by sequence number, so each job's events are: one ACCEPTED, TOKENs with
 * seq 0, 1, 2, ... without gaps or repeats, then exactly one DONE or ERROR — or a single BUSY
 * (not admitted; nothing was queued; submit again later). A job whose deadline passes while no
 * broker answers ends with a local ERROR HIRED_ETIMEOUT, and so does every pending job when the
 * broker never answered at all within opts.connect_timeout_ms.
 * The client heartbeats while it has jobs; a broker that hears nothing from it for its
 * broker.client_grace_ms cancels its jobs, and hired_client_destroy says goodbye, which cancels
 * them at once: a job lives as long as the client that submitted it.
 * Flow control: when the caller leaves more than opts.max_events undelivered events queued,
 * the library stops reading from the broker until it catches up (the broker keeps the rest).
 *
 * Threads: a client may be shared by any number of threads; every function is thread-safe.
 * Events of all jobs come out of one queue in arrival order. A background thread does the
 * network work. Errors: functions return 0 or a negative HIRED_E* code (hired_err.h, installed
 * next to this header); hired_strerror(code) names it. */
#ifndef HIRED_CLIENT_H
#define HIRED_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hired_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HIRED_JOB_ID_LEN 65 /* 64 characters of [A-Za-z0-9._:-] + NUL */

typedef struct hired_client hired_client;

typedef struct hired_client_opts {
    int timeout_ms;    /* hired_status's wait, and the default job deadline; 0 = 600000 */
    int heartbeat_ms;  /* probe the broker this often; 0 = 1000 */
    int liveness;      /* silent heartbeats before reconnecting; 0 = 3 */
    int connect_timeout_ms; /* pending jobs (and hired_status) fail with HIRED_ETIMEOUT when the
                               broker has not answered once this long after they were submitted;
                               0 = 10000, -1 = wait for the job deadlines */
    int max_events;    /* undelivered events before the library stops reading; 0 = 65536 */
    /* CURVE (for a broker configured with curve.server_cert): both NULL/"" = plain TCP, else
     * both set. File names, copied; the files are read by hired_client_new (NULL when one is
     * missing or malformed) and again on every reconnect. A broker that does not authorise
     * this client's key never answers: its jobs end only by their deadlines. */
    const char *curve_server_key;  /* the broker's public certificate (czmq zcert "NAME") */
    const char *curve_client_cert; /* this client's secret certificate (zcert "NAME_secret") */
} hired_client_opts;

typedef struct hired_params {
    int max_tokens;      /* [1, 16384], default 256 */
    double temperature;  /* [0, 100], default 0 (greedy) */
    double top_p;        /* (0, 1], default 1 */
    int top_k;           /* 0 = off */
    uint64_t seed;       /* sampling seed, default 0 */
    double budget;       /* visual token budget rate (0, 1], default 0.2 */
    const char *strategy;/* none|hired|prumerge|prumerge+|spatial, default "hired" */
    double alpha;        /* [0, 1], default 0.5 */
    const char *newline; /* hf|none, default "hf" */
    bool stream;         /* TOKEN events; false = only DONE with the full text. Default true */
} hired_params;

/* One content part of a message: text, or (text == NULL) an image, which is the next entry of
 * hired_job.images (the image parts of all messages take them in order). */
typedef struct hired_part {
    const char *text;
} hired_part;

/* One message of a conversation. The decoder renders the conversation with the checkpoint's chat
 * template; each image part becomes that image's kept visual tokens at its own <image>. */
typedef struct hired_message {
    const char *role;        /* "system", "user" or "assistant" */
    const hired_part *parts; /* [n_parts], at most 64 */
    int n_parts;
} hired_message;

typedef struct hired_image {
    const void *bytes; /* encoded image file bytes (JPEG/PNG), at most 32 MiB each */
    size_t len;
} hired_image;

/* A job is one of two forms:
 *   a question about one image: prompt and image set, messages NULL;
 *   a conversation: messages[0..n_messages) (1..256) with images[0..n_images) for their image
 *   parts, in order (n_images must equal the number of image parts, 0..16; 0 = text only;
 *   64 MiB of images together by default); prompt and image NULL.
 * Text: at most 64 KiB (the prompt, or all text parts together). */
typedef struct hired_job {
    const char *id;      /* NULL: the library makes a random one */
    const char *model;   /* required */
    const char *prompt;  /* the question form: at most 64 KiB */
    const void *image;   /* the question form: encoded image file bytes, at most 32 MiB */
    size_t image_len;
    hired_params params;
    int deadline_ms;     /* 0 = opts.timeout_ms */
    const hired_message *messages; /* the conversation form */
    int n_messages;
    const hired_image *images;
    int n_images;
} hired_job;

typedef enum {
    HIRED_EVENT_ACCEPTED = 1,
    HIRED_EVENT_TOKEN,
    HIRED_EVENT_DONE,
    HIRED_EVENT_ERROR,
    HIRED_EVENT_BUSY,
} hired_event_type;

typedef enum {
    HIRED_STAGE_QUEUE = 0, HIRED_STAGE_PREPROCESS, HIRED_STAGE_VIT, HIRED_STAGE_SELECT,
    HIRED_STAGE_TRANSFER, HIRED_STAGE_PROJECT, HIRED_STAGE_PREFILL, HIRED_STAGE_DECODE,
    HIRED_STAGE_TOTAL, HIRED_STAGE_COUNT
} hired_stage;

typedef struct hired_event {
    hired_event_type type;
    char job_id[HIRED_JOB_ID_LEN];
    uint32_t seq;        /* TOKEN */
    int32_t token;       /* TOKEN: vocabulary id */
    char *text;          /* TOKEN: the token's text; DONE: the full text. Owned by the event. */
    int code;            /* ERROR: negative HIRED_E* */
    char message[1025];  /* ERROR: what went wrong; BUSY: which queue or limit was full */
    char finish[17];     /* DONE: stop|length|cancelled */
    uint32_t prompt_tokens, image_tokens, completion_tokens; /* DONE */
    double timings_ms[HIRED_STAGE_COUNT]; /* DONE; -1 where the stage was not reported */
    uint32_t retry_ms;   /* BUSY: suggested wait */
    /* DONE (0 when not reported): visual tokens the encoder kept (K of its RESULT) and had
     * before selection, and the bytes of the encoder's RESULT (header + tensor frames) as the
     * broker received them. */
    uint32_t visual_kept, visual_total, result_bytes;
} hired_event;

/* Sets every field to its default (params as documented above). */
void hired_job_init(hired_job *job);

/* Connects to the broker frontend (asynchronously: it may come up later). opts may be NULL.
 * endpoint is a ZeroMQ endpoint such as "tcp://host:5555". Caller owns the client
 * (hired_client_destroy). NULL on bad arguments (a malformed endpoint, CURVE files that are
 * missing, malformed or set alone) or resource failure, with the reason in err (may be NULL;
 * HIRED_ERR_LEN bytes). hired_client_new is the same without err (the reason is logged). */
hired_client *hired_client_open(const char *endpoint, const hired_client_opts *opts, char *err);
hired_client *hired_client_new(const char *endpoint, const hired_client_opts *opts);
/* Says goodbye to the broker (which cancels this client's unfinished jobs), stops the
 * background thread and frees everything, including undelivered events. NULL-safe; sets
 * *pc = NULL. */
void hired_client_destroy(hired_client **pc);

/* Submits a job. The library copies everything it needs (job and its buffers are borrowed for
 * the call only). job_id_out (may be NULL) receives the id. 0, HIRED_EINVAL / HIRED_ERANGE
 * (a parameter or size outside the protocol's limits, both forms or neither, an unknown role,
 * images that do not match the image parts), HIRED_ENOMEM. hired_submit_err is the same with
 * the reason in err (may be NULL; HIRED_ERR_LEN bytes). */
int hired_submit(hired_client *c, const hired_job *job, char job_id_out[HIRED_JOB_ID_LEN]);
int hired_submit_err(hired_client *c, const hired_job *job, char job_id_out[HIRED_JOB_ID_LEN], char *err);

/* Waits up to timeout_ms (-1 = forever, 0 = poll) for the next event and moves it into *ev
 * (caller clears it with hired_event_clear). 0 or HIRED_ETIMEOUT. */
int hired_next_event(hired_client *c, int timeout_ms, hired_event *ev);
/* Frees ev->text. Safe twice. */
void hired_event_clear(hired_event *ev);

/* Asks the broker to cancel job_id; the job then ends with ERROR "cancelled" (unless it ended
 * first). 0, HIRED_ENOTFOUND (not a job of this client that is still running). */
int hired_cancel(hired_client *c, const char *job_id);

/* The broker's STATUS as JSON text (docs/protocol.md §6: counts for everybody, job ids only for
 * this client's own jobs), waiting up to opts.timeout_ms (at most 10 s, and at most the connect
 * timeout while the broker has never answered). Caller frees *json_out with free().
 * 0, HIRED_ETIMEOUT, HIRED_ENOMEM. */
int hired_status(hired_client *c, char **json_out);

/* Jobs submitted and not yet ended. */
int hired_pending(hired_client *c);

#ifdef __cplusplus
}
#endif

#endif
