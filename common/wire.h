/* wire.h — hired's wire protocol: one msgpack header frame plus raw payload frames per ZeroMQ
 * multipart message (docs/protocol.md is the normative description; this header is its C form).
 *
 * What is here: the message types and their fields as one flat struct (wire_msg_t), the limits,
 * header encode (msgpack-c packer) and decode (bounds pre-scan, then msgpack-c unpack, then a
 * per-type field table: required / optional / unknown keys, types, ranges), the frame-count and
 * frame-size rules per type, and multipart send/receive helpers that move zmq_msg_t frames
 * without copying payloads.
 * Invariants: every header carries v == WIRE_VERSION and a known type; wire_encode refuses to
 * emit a message that wire_decode would reject (both run wire_validate).
 * Not here: routing, queues, heartbeat timing (broker/, common/worker_conn.c, client/). */
#ifndef HIRED_WIRE_H
#define HIRED_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "err.h"

// ---- version and limits ---------------------------------------------------------------------

#define WIRE_VERSION 6 /* 2: DONE usage gained visual_kept, visual_total, result_bytes;
                          3: client sessions (RESUME, ACK, BYE, `session`), attempt fencing on
                             worker messages, DONE `seq`, checkpoint `fingerprint`;
                          4: the encoder result's geometry as typed fields `parts` and
                             `patch_grid` (RESULT, decode JOB); the opaque `meta` is gone;
                          5: conversations and several images: SUBMIT carries `prompt` (one image)
                             or `messages` (0..16 images, one frame per image part); the encoder
                             result is the array `visuals` (one record and one tensor frame per
                             image) in RESULT and the decode JOB; an encode JOB carries no text;
                          6: a decoder's HEARTBEAT `load` gained a fourth number, the jobs it
                             holds that wait for KV blocks (the broker sends it no new job
                             while that is not 0) */

#define WIRE_MAX_HEADER (256u * 1024)         /* bytes of the msgpack header frame */
#define WIRE_MAX_FRAME (64u * 1024 * 1024)    /* any frame; also ZMQ_MAXMSGSIZE on every socket */
#define WIRE_MAX_IMAGE (32u * 1024 * 1024)    /* one SUBMIT image frame */
#define WIRE_MAX_IMAGES 16                    /* images of one job: SUBMIT frames, visual records */
#define WIRE_MAX_IMAGES_BYTES (64u * 1024 * 1024) /* all image frames of one SUBMIT together */
#define WIRE_MAX_PROMPT (64u * 1024)          /* text bytes: the prompt, or all text parts of the
                                                 messages together */
#define WIRE_MAX_MESSAGES 256                 /* messages of one conversation */
#define WIRE_MAX_CONTENT 64                   /* content parts of one message */
#define WIRE_MAX_PAYLOADS WIRE_MAX_IMAGES     /* payload frames after the header */
#define WIRE_MAX_PARTS (2 + WIRE_MAX_PAYLOADS) /* routing id + header + payloads */
#define WIRE_MAX_ID 64                        /* job id chars: [A-Za-z0-9._:-] */
#define WIRE_MAX_MODEL 128                    /* model name chars: [A-Za-z0-9._:/+-] */
#define WIRE_MAX_SERVICE 6                    /* "encode" | "decode" */
#define WIRE_MAX_STRATEGY 16                  /* none|hired|prumerge|prumerge+|spatial */
#define WIRE_MAX_NEWLINE 4                    /* hf|none */
#define WIRE_MAX_ROLE 9                       /* system|user|assistant */
#define WIRE_MAX_FINISH 16                    /* stop|length|cancelled */
#define WIRE_MAX_TOKEN_TEXT 256               /* bytes of one TOKEN's text */
#define WIRE_MAX_TEXT (128u * 1024)           /* bytes of DONE's full text */
#define WIRE_MAX_MESSAGE 1024                 /* bytes of an ERROR message */
#define WIRE_MAX_TOKENS 16384                 /* params.max_tokens */
#define WIRE_MAX_KEPT 16384                   /* visual tokens in a RESULT */
#define WIRE_MAX_DIM 16384                    /* feature width of a RESULT */
#define WIRE_MAX_VISUAL_PARTS 16              /* `parts`: partitions of one image */
#define WIRE_MAX_PATCH_GRID 1024              /* `patch_grid`: patches per partition side */
#define WIRE_MAX_CAPACITY 1024                /* READY capacity */
#define WIRE_MAX_DEPTH 8                      /* msgpack nesting */
#define WIRE_MIN_SESSION 16                   /* client session: 16-64 chars of [0-9a-f] */
#define WIRE_MAX_SESSION 64
#define WIRE_MAX_FINGERPRINT 64               /* checkpoint fingerprint: 1-64 chars of [0-9a-f] */

/* Limits a peer enforces; any field 0 means the WIRE_MAX_* default. A broker may configure
 * tighter limits than the defaults, never looser ones. */
typedef struct wire_limits {
    size_t max_header;
    size_t max_frame;
    size_t max_image;        /* one image frame */
    size_t max_prompt;       /* text bytes of a job */
    size_t max_images_bytes; /* all image frames of one SUBMIT */
} wire_limits_t;

// ---- message types and fields ---------------------------------------------------------------

typedef enum {
    WIRE_NONE = 0,
    WIRE_SUBMIT,       /* client -> broker: job; payload = image bytes, one frame per image */
    WIRE_ACCEPTED,     /* broker -> client */
    WIRE_TOKEN,        /* decoder -> broker -> client */
    WIRE_DONE,         /* decoder -> broker -> client */
    WIRE_ERROR,        /* anyone -> anyone */
    WIRE_BUSY,         /* broker -> client: queue full, not accepted */
    WIRE_CANCEL,       /* client -> broker, broker -> worker */
    WIRE_STATUS,       /* client -> broker */
    WIRE_STATUS_REPLY, /* broker -> client; payload = JSON text */
    WIRE_HEARTBEAT,    /* both ways on both sockets */
    WIRE_READY,        /* worker -> broker */
    WIRE_JOB,          /* broker -> worker; payload = images (encode) or tensors (decode) */
    WIRE_RESULT,       /* encoder -> broker; payload = one tensor [kept, dim] per visual */
    WIRE_DISCONNECT,   /* worker -> broker (leaving), broker -> worker (unknown, re-announce) */
    WIRE_RESUME,       /* client -> broker: send job `id` again from TOKEN `seq` */
    WIRE_ACK,          /* client -> broker: the final message of job `id` arrived; forget it */
    WIRE_BYE,          /* client -> broker: this session ends; its unfinished jobs are cancelled */
    WIRE_TYPE_COUNT
} wire_type_t;

/* Per-stage timings in DONE (and the encoder's in RESULT), milliseconds. */
typedef enum {
    WIRE_STAGE_QUEUE = 0, /* broker: time spent queued (encode + decode queues) */
    WIRE_STAGE_PREPROCESS,
    WIRE_STAGE_VIT,
    WIRE_STAGE_SELECT,
    WIRE_STAGE_TRANSFER,
    WIRE_STAGE_PROJECT,
    WIRE_STAGE_PREFILL,
    WIRE_STAGE_DECODE,
    WIRE_STAGE_TOTAL, /* broker: SUBMIT accepted -> DONE */
    WIRE_STAGE_COUNT
} wire_stage_t;

typedef enum { WIRE_DTYPE_F16 = 0, WIRE_DTYPE_BF16, WIRE_DTYPE_F32 } wire_dtype_t;

/* Generation and selection parameters (SUBMIT, JOB). wire_msg_init sets the defaults. */
typedef struct wire_params {
    int32_t max_tokens;                   /* [1, WIRE_MAX_TOKENS], default 256 */
    double temperature;                   /* [0, 100], default 0 (greedy) */
    double top_p;                         /* (0, 1], default 1 */
    int32_t top_k;                        /* [0, 1000000], 0 = off, default 0 */
    uint64_t seed;                        /* default 0 */
    double budget;                        /* (0, 1], visual token budget rate, default 0.2 */
    char strategy[WIRE_MAX_STRATEGY + 1]; /* none|hired|prumerge|prumerge+|spatial, default hired */
    double alpha;                         /* [0, 1], default 0.5 */
    char newline[WIRE_MAX_NEWLINE + 1];   /* hf|none, default hf */
    bool stream;                          /* default true: TOKEN messages are relayed */
} wire_params_t;

/* DONE usage. Every key optional (encoded when non-zero). */
typedef struct wire_usage {
    uint32_t prompt_tokens, image_tokens, completion_tokens;
    uint32_t visual_kept;  /* K of the encoder RESULT (tokens the selection kept) */
    uint32_t visual_total; /* visual tokens before selection */
    uint32_t result_bytes; /* encoder RESULT header + tensor frame bytes as the broker received
                              them (set by the broker when it relays DONE) */
} wire_usage_t;

/* Bit per header key; wire_msg_t.present says which ones a decoded header carried. */
enum {
    WIRE_F_ID = 1u << 0, WIRE_F_MODEL = 1u << 1, WIRE_F_SERVICE = 1u << 2, WIRE_F_PROMPT = 1u << 3,
    WIRE_F_PARAMS = 1u << 4, WIRE_F_DEADLINE = 1u << 5, WIRE_F_ATTEMPT = 1u << 6,
    WIRE_F_CAPACITY = 1u << 7, WIRE_F_EPOCH = 1u << 8, WIRE_F_ATTACHED = 1u << 9,
    WIRE_F_SEQ = 1u << 10, WIRE_F_TOKEN = 1u << 11, WIRE_F_TEXT = 1u << 12, WIRE_F_CODE = 1u << 13,
    WIRE_F_MESSAGE = 1u << 14, WIRE_F_RETRY = 1u << 15, WIRE_F_FINISH = 1u << 16,
    WIRE_F_USAGE = 1u << 17, WIRE_F_TIMINGS = 1u << 18, WIRE_F_SESSION = 1u << 19,
    WIRE_F_FINGERPRINT = 1u << 20, WIRE_F_MESSAGES = 1u << 21, WIRE_F_VISUALS = 1u << 22,
    WIRE_F_LOAD = 1u << 23,
};

/* A conversation (SUBMIT, decode JOB): messages whose content is text and image parts. */
typedef enum { WIRE_ROLE_SYSTEM = 0, WIRE_ROLE_USER, WIRE_ROLE_ASSISTANT, WIRE_ROLE_COUNT } wire_role_t;

/* One content part: text, or an image (text == NULL) whose bytes are the next image frame. */
typedef struct wire_part {
    char *text; /* owned, NUL-terminated (may be empty); NULL: an image part */
} wire_part_t;

typedef struct wire_message {
    wire_role_t role;
    uint32_t n_parts;   /* [0, WIRE_MAX_CONTENT] */
    wire_part_t *parts; /* [n_parts], owned */
} wire_message_t;

/* The encoder's record of one image (RESULT, decode JOB; common/visual.h is its decoded form),
 * next to its tensor frame [kept, dim] of dtype. */
typedef struct wire_visual {
    uint32_t kept;          /* K visual tokens kept, [1, WIRE_MAX_KEPT] */
    uint32_t dim;           /* D feature width, [1, WIRE_MAX_DIM] */
    wire_dtype_t dtype;     /* element type of the tensor frame [K, D] */
    uint32_t grid[2];       /* anyres grid of sub-images: rows, cols (0,0 = not given) */
    uint32_t image_size[2]; /* original image width, height (0,0 = not given) */
    uint16_t *positions;    /* [kept][3] (partition, row, col) per kept token. Owned. */
    uint32_t parts;         /* partitions of the image, [1, WIRE_MAX_VISUAL_PARTS] (base first) */
    uint32_t patch_grid;    /* patches per partition side, [1, WIRE_MAX_PATCH_GRID] */
} wire_visual_t;

/* One header, any type. Only the fields of `type` are meaningful (docs/protocol.md lists them).
 * Pointer fields are owned by the struct (wire_msg_clear frees them with mem_free); to set one,
 * assign a mem_alloc'd buffer or use the wire_msg_set_* helpers. An optional field is encoded
 * when it is set: strings non-empty / non-NULL, numbers non-zero, timings when timings_mask has
 * bits, attached when true. */
typedef struct wire_msg {
    wire_type_t type;
    uint32_t present; /* WIRE_F_* bits seen by wire_decode; ignored by wire_encode */
    char id[WIRE_MAX_ID + 1];
    char model[WIRE_MAX_MODEL + 1];
    char service[WIRE_MAX_SERVICE + 1];
    char *prompt; /* owned, NUL-terminated: one question about one image (SUBMIT, decode JOB) */
    wire_params_t params;
    uint32_t deadline_ms; /* SUBMIT: job deadline from acceptance (0 = broker default);
                             JOB: milliseconds left */
    uint32_t attempt;     /* JOB: the dispatch number of this job (1 = first; grows with every
                             dispatch of either stage); RESULT, TOKEN, DONE, ERROR from a worker:
                             the attempt of the JOB they answer (the broker's fence) */
    uint32_t capacity;    /* READY: jobs the worker runs at once, [1, WIRE_MAX_CAPACITY] */
    uint64_t epoch;       /* ACCEPTED, HEARTBEAT from the broker: changes on every broker start */
    bool attached;        /* ACCEPTED: the id was already running; this connection now gets it */
    uint32_t seq;         /* TOKEN: 0, 1, 2, ... within the job; DONE: TOKENs sent before it;
                             RESUME: the first TOKEN seq the client still needs */
    int32_t token;        /* TOKEN: vocabulary id */
    char *text;           /* TOKEN: this token's text; DONE: the full text. Owned. */
    int32_t code;         /* ERROR: negative HIRED_E* code */
    char *message;        /* ERROR: one sentence. Owned. */
    uint32_t retry_ms;    /* BUSY: suggested wait before retrying */
    char finish[WIRE_MAX_FINISH + 1]; /* DONE: stop|length|cancelled */
    wire_usage_t usage;               /* DONE */
    double timings[WIRE_STAGE_COUNT]; /* DONE, RESULT: milliseconds per stage */
    uint32_t timings_mask;            /* bit (1 << stage) per stage present */
    /* The conversation: SUBMIT (instead of prompt), decode JOB. */
    wire_message_t *messages;    /* [n_messages], owned */
    uint32_t n_messages;         /* [1, WIRE_MAX_MESSAGES] when set */
    /* The encoder's records, one per image in order: RESULT, decode JOB. */
    wire_visual_t *visuals;      /* [n_visuals], owned */
    uint32_t n_visuals;          /* [0, WIRE_MAX_IMAGES] */
    char session[WIRE_MAX_SESSION + 1];         /* client messages: the client's session secret */
    char fingerprint[WIRE_MAX_FINGERPRINT + 1]; /* READY, RESULT, decode JOB: checkpoint hash */
    uint32_t load[4];            /* HEARTBEAT from a decoder: jobs in its last decode batch, KV
                                    blocks in use, KV blocks in its pool, jobs waiting in it for
                                    KV blocks (sent when the third is non-zero; each < 2^30) */
} wire_msg_t;

// ---- header encode / decode -----------------------------------------------------------------

/* Zeroes m, sets its type and the default params. */
void wire_msg_init(wire_msg_t *m, wire_type_t type);
/* Frees the owned fields and zeroes m (type becomes WIRE_NONE). Safe on a zeroed or cleared m. */
void wire_msg_clear(wire_msg_t *m);
/* Copies of the strings / bytes into the owned fields (replacing old ones). HIRED_ENOMEM. */
int wire_msg_set_prompt(wire_msg_t *m, const char *s);
int wire_msg_set_text(wire_msg_t *m, const char *s);
int wire_msg_set_message(wire_msg_t *m, const char *s);
/* A deep copy of msgs[0..n) (borrowed) as m's conversation (replacing the old one). HIRED_ENOMEM. */
int wire_msg_set_messages(wire_msg_t *m, const wire_message_t *msgs, uint32_t n);
/* n zeroed records as m's visuals (replacing the old ones); n may be 0. HIRED_ENOMEM. */
int wire_msg_new_visuals(wire_msg_t *m, uint32_t n);
/* Deep copy of src into dst (dst is overwritten, not cleared first). HIRED_ENOMEM. */
int wire_msg_copy(wire_msg_t *dst, const wire_msg_t *src);
/* Image parts of m's messages (0 without messages). */
uint32_t wire_msg_image_parts(const wire_msg_t *m);
/* Images the job's text takes: 1 for a prompt, the image parts of messages. */
uint32_t wire_msg_images(const wire_msg_t *m);
/* Bytes of text: the prompt's, or all text parts of the messages together. */
size_t wire_msg_text_bytes(const wire_msg_t *m);

/* A record's positions: a copy of pos [kept][3] (replacing the old ones). HIRED_ENOMEM. */
int wire_visual_set_positions(wire_visual_t *v, const uint16_t *pos, uint32_t kept);
/* Deep copy of src into dst (dst is overwritten, not cleared first). HIRED_ENOMEM. */
int wire_visual_copy(wire_visual_t *dst, const wire_visual_t *src);
/* Frees the positions and zeroes v. */
void wire_visual_clear(wire_visual_t *v);
/* "system", "user", "assistant" ("?" when out of range); parse: 0 or HIRED_EPROTO. */
const char *wire_role_name(wire_role_t r);
int wire_role_parse(const char *s, wire_role_t *r);

/* Checks m against the rules of its type (required fields, ranges, charsets, lengths).
 * lim may be NULL (defaults). HIRED_EPROTO / HIRED_ERANGE with err naming the field. */
int wire_validate(const wire_msg_t *m, const wire_limits_t *lim, char *err);

/* Decodes one header frame. m is initialised here; on failure it may still hold the type and id
 * (when they were readable) so the reply can be addressed; wire_msg_clear it either way.
 * Errors: HIRED_EPROTO (not msgpack, wrong structure or types, unknown or missing key,
 * version mismatch: the message names both versions), HIRED_ERANGE (a limit), HIRED_ENOMEM. */
int wire_decode(const void *buf, size_t len, const wire_limits_t *lim, wire_msg_t *m, char *err);

/* Encodes m (after wire_validate) into a malloc'd buffer the caller frees with free().
 * HIRED_EPROTO / HIRED_ERANGE (invalid m), HIRED_ENOMEM. */
int wire_encode_buf(const wire_msg_t *m, char **buf, size_t *len, char *err);
/* Same, into a zmq message that owns the buffer (no copy). out is initialised on success only. */
int wire_encode(const wire_msg_t *m, zmq_msg_t *out, char *err);

/* Payload frame rules for m's type: how many (SUBMIT: 1 for a prompt, one per image part of the
 * messages; encode JOB: 1..WIRE_MAX_IMAGES; RESULT, decode JOB: one per visual; STATUS_REPLY: 1;
 * others: 0) and their sizes (images 1..max_image bytes each and max_images_bytes together; a
 * tensor exactly kept*dim*dtype size of its visual; any frame <= max_frame). sizes[n].
 * HIRED_EPROTO / HIRED_ERANGE with err naming the frame. */
int wire_check_payloads(const wire_msg_t *m, int n, const size_t *sizes, const wire_limits_t *lim,
                        char *err);

/* Names for logs and the protocol: "SUBMIT", "queue", "f16", ... ("?" when out of range). */
const char *wire_type_name(wire_type_t t);
const char *wire_stage_name(wire_stage_t s);
const char *wire_dtype_name(wire_dtype_t d);
size_t wire_dtype_size(wire_dtype_t d);
/* Non-finite elements (NaN, +-Inf) among n elements of dtype dt at data (any alignment): what
 * the encoder checks before it sends a RESULT and the decoder before it uses one. */
size_t wire_count_nonfinite(const void *data, size_t n, wire_dtype_t dt);
/* Reads a limits struct with defaults filled in for zero fields. lim may be NULL. */
wire_limits_t wire_limits_resolve(const wire_limits_t *lim);

// ---- frames and sockets ---------------------------------------------------------------------

/* One received multipart message. part[0..n) are open zmq messages owned by this struct. */
typedef struct wire_parts {
    int n;
    bool truncated; /* more than WIRE_MAX_PARTS frames arrived; the extra ones were dropped */
    zmq_msg_t part[WIRE_MAX_PARTS];
} wire_parts_t;

/* Receives one whole multipart message (flags: 0 or ZMQ_DONTWAIT). Frames past WIRE_MAX_PARTS
 * are received and dropped (truncated = true), so the socket stays in step.
 * 0, HIRED_ETIMEOUT (EAGAIN: nothing waiting), HIRED_EIO (socket error; p->n == 0). */
int wire_recv(void *sock, wire_parts_t *p, int flags);
/* Closes every part; p->n = 0. Safe twice. */
void wire_parts_close(wire_parts_t *p);
/* Moves part i out of p into *out (the slot becomes an empty message). */
void wire_parts_take(wire_parts_t *p, int i, zmq_msg_t *out);

/* Sends [route][header][payload] without blocking. route (ROUTER peers: the routing id bytes)
 * may be NULL for DEALER sockets. payload may be NULL; otherwise it is moved (sent or closed:
 * either way *payload is left an empty message the caller may close again).
 * 0, HIRED_EPROTO/ERANGE (invalid m; err), HIRED_EBUSY (high-water mark: nothing was sent),
 * HIRED_ENOTFOUND (a ROUTER with ZMQ_ROUTER_MANDATORY has no peer of that routing id: nothing was
 * sent), HIRED_EIO. */
int wire_send(void *sock, const void *route, size_t route_len, const wire_msg_t *m, zmq_msg_t *payload,
              char *err);
/* The same with n payload frames payloads[0..n) (n in [0, WIRE_MAX_PAYLOADS]), each moved. */
int wire_sendv(void *sock, const void *route, size_t route_len, const wire_msg_t *m, zmq_msg_t *payloads, int n,
               char *err);

/* Socket options every hired socket gets: ZMQ_MAXMSGSIZE = lim->max_frame (bigger frames drop
 * the connection), linger, and TCP keepalive. CURVE, when configured, is applied by the
 * callers right after this (common/curve.h). 0 or HIRED_EIO. */
int wire_sock_setup(void *sock, const wire_limits_t *lim);

#endif
