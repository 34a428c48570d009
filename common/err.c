/* err.c — error names and the message-buffer helper (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

const char *hired_strerror(int code) {
    switch (code) {
    case HIRED_OK: return "ok";
    case HIRED_EINVAL: return "invalid argument";
    case HIRED_ENOMEM: return "out of memory";
    case HIRED_EIO: return "i/o error";
    case HIRED_EFORMAT: return "malformed input";
    case HIRED_ENOTFOUND: return "not found";
    case HIRED_ERANGE: return "out of range";
    case HIRED_EUNSUPPORTED: return "unsupported";
    case HIRED_ESHAPE: return "shape mismatch";
    case HIRED_ECUDA: return "cuda error";
    case HIRED_EBUSY: return "busy";
    case HIRED_ETIMEOUT: return "timed out";
    case HIRED_EPROTO: return "protocol error";
    case HIRED_ESTALE: return "unknown job";
    default: return "unknown error";
    }
}

int hired_errf(char *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, HIRED_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
