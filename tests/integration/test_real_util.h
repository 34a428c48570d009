/* test_real_util.h — helpers for the integration tests with the REAL workers (test_real_*.c):
 * start hired-encoder / hired-decoder processes on the tiny fixture models next to the harness's
 * broker, stop them with SIGTERM (they must exit 0: sanitizer leaks count), submit jobs with
 * real image bytes, and compute the answer a job must produce in-process with the same library
 * calls `hired run` makes (pipeline/run.h), including the wire dtype's rounding.
 * Not here: the broker and client side of the harness (harness.h). */
#ifndef HIRED_TEST_REAL_UTIL_H
#define HIRED_TEST_REAL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "curve.h"
#include "harness.h"
#include "run.h"

/* The harness watchdog (h_init) of every test_real_* test: it only catches a hang, so it sits
 * far above any run (a few seconds normally, about ten times that under ASan on a loaded
 * machine) and just below the `integration` label's ctest timeout (180 s; tests/CMakeLists.txt),
 * so the harness, not ctest, ends a hung test and stops its processes. */
#define RT_WATCHDOG_S 170

/* Starts a worker binary (build-dir relative path, e.g. "encoder_worker/hired-encoder") with
 * --model DIR, --broker.endpoint=back_ep, --broker.heartbeat_ms=200, the test log level and
 * the extra "--key=value" options (NULL-terminated; may be NULL). Returns the pid. */
pid_t rt_encoder(const char *back_ep, const char *model_dir, const char *const *opts);
pid_t rt_decoder(const char *back_ep, const char *model_dir, const char *const *opts);
/* Runs a binary with these arguments, stdout+stderr to the file `out_path` (may be NULL: kept
 * on stderr), and returns its exit status (killed after timeout_ms). */
int rt_run(const char *rel_bin, const char *const *args, const char *out_path, int timeout_ms);
/* Full path of a build-dir binary (static buffer). */
const char *rt_bin(const char *rel);
/* SIGTERMs every worker started here and waits for it; then h_cleanup. Returns the number of
 * processes that did not exit 0. */
int rt_cleanup(void);

/* Reads a whole file into a malloc'd buffer (free()). 0 or -1. */
int rt_read(const char *path, uint8_t **bytes, size_t *n);
/* A whole text file as a NUL-terminated malloc'd string (free()), or NULL. */
char *rt_slurp(const char *path);
/* Runs `hired ARGS` (ARGS as a shell would split them) with stdout and stderr into files of the
 * test directory, killed after timeout_s: its exit status (-1 when it did not exit), and both
 * outputs as malloc'd strings ("" when unreadable; free()). */
int rt_drive(const char *args, int timeout_s, char **out, char **errs);
/* Path of a fixture model directory ("llava-next-tiny") or image ("tiny.png"). Static buffers,
 * one for each. */
const char *rt_model_dir(const char *name);
const char *rt_image(const char *name);

/* A model directory loaded in-process: both halves of the pipeline on a CPU device, with one
 * context. Caller owns the result (rt_model_destroy); NULL with err. */
typedef struct rt_model rt_model_t;
rt_model_t *rt_model_load(const char *dir, char *err);
void rt_model_destroy(rt_model_t **m);

/* What the job (bytes, prompt, params) must answer, computed in-process: enc_run, the
 * features rounded through the wire dtype (WIRE_DTYPE_F16 / F32), gen_prompt_build with the
 * model's default template, gen_decode with the job's seed; text pieces concatenated as the
 * decoder streams them (NUL -> U+FFFD). template_name NULL = the model's default. *generated
 * (may be NULL) receives the number of tokens sampled. 0 or -1 (message on stderr). */
int rt_expect(rt_model_t *m, const uint8_t *img, size_t n, const char *prompt, const hired_params *p,
              const char *template_name, int wire_dtype, char *out, size_t cap, int *generated);

/* The two halves of rt_expect: the visual a job's encoder produces (features rounded through
 * wire_dtype; caller frees with visual_free), and the answer to prompt about it. */
int rt_encode(rt_model_t *m, const uint8_t *img, size_t n, const hired_params *p, int wire_dtype, visual_t *vis);
int rt_answer(rt_model_t *m, const visual_t *vis, const char *prompt, const hired_params *p,
              const char *template_name, char *out, size_t cap, int *generated);

/* A czmq key pair: dir/NAME (public) and dir/NAME_secret; with pub_dir, also pub_dir/NAME
 * (authorising it). 0 or -1. */
int rt_make_cert(const char *dir, const char *name, const char *pub_dir);
/* One CURVE handshake test against a ROUTER `server` bound at ep (the caller set it up as the
 * broker does): a DEALER with the client half of cfg (NULL: plain) sends a HEARTBEAT, the server
 * answers whatever arrives. True when the answer came back (the connection was authorised);
 * uid (may be NULL; 128 bytes) receives the ZAP user id the server saw. Waits at most 3 s for
 * each direction: a refused handshake never delivers anything. */
bool rt_curve_served(void *server, const char *ep, const curve_cfg_t *cfg, char *uid);

/* The STATUS state ("encoding", "decoding", ...) of client c's own job id into out[cap], or ""
 * when it is not in flight. */
void rt_job_state(hired_client *c, const char *id, char *out, size_t cap);
/* Whether got (an h_result text buffer of cap bytes, which keeps the first cap - 1 bytes of a
 * stream) holds exactly as much of want as fits. */
bool rt_same_prefix(const char *got, size_t cap, const char *want);

/* Submits a real job; fills r (id; expect stays empty). */
int rt_submit(hired_client *c, const char *model, const uint8_t *img, size_t n, const char *prompt,
              const hired_params *p, h_result *r);

#endif
