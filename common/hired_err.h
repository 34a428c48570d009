/* hired_err.h — hired's error codes and the message-buffer helper: the part of common/err.h
 * that is public. libhired installs it next to hired_client.h (include/hired/), under a name no
 * system header uses, and it defines nothing but HIRED_-prefixed names and hired_ functions.
 *
 * Functions return int: 0 is HIRED_OK, negatives are HIRED_E*. Functions that can fail on
 * outside input also take `char err[HIRED_ERR_LEN]` and write one human-readable sentence
 * there (naming the file, tensor, key or field at fault). Constructors return NULL and fill
 * err the same way. Nothing here allocates.
 * Not here: the project-internal helpers (ARRAY_LEN, in common/err.h). */
#ifndef HIRED_HIRED_ERR_H
#define HIRED_HIRED_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#define HIRED_ERR_LEN 512

enum {
    HIRED_OK = 0,
    HIRED_EINVAL = -1,       /* bad argument or value */
    HIRED_ENOMEM = -2,       /* allocation failed */
    HIRED_EIO = -3,          /* open/read/mmap failed */
    HIRED_EFORMAT = -4,      /* malformed file or message */
    HIRED_ENOTFOUND = -5,    /* missing file, tensor or key */
    HIRED_ERANGE = -6,       /* value or size outside the allowed range */
    HIRED_EUNSUPPORTED = -7, /* well-formed but not something we handle */
    HIRED_ESHAPE = -8,       /* tensor shape differs from what the model needs */
    HIRED_ECUDA = -9,        /* CUDA runtime / cuBLAS failure */
    HIRED_EBUSY = -10,       /* queue full */
    HIRED_ETIMEOUT = -11,    /* deadline passed */
    HIRED_EPROTO = -12,      /* wire protocol violation */
    HIRED_ESTALE = -13,      /* the broker does not know (or no longer knows) that job */
};

/* Short static name of a code ("invalid argument", ...). Never NULL. */
const char *hired_strerror(int code);

/* Writes a printf-style message into err (if err is non-NULL; at most HIRED_ERR_LEN bytes with
 * the NUL) and returns code, so parsers can write
 * `return hired_errf(err, HIRED_EFORMAT, "%s: header too long", path);`. */
#if defined(__GNUC__) || defined(__clang__)
int hired_errf(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#else
int hired_errf(char *err, int code, const char *fmt, ...);
#endif

#ifdef __cplusplus
}
#endif

#endif
