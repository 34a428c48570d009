/* ktest.h — what the kernel tests share: one CPU context for the whole test program (the CPU
 * paths take their scratch from its arena). Created on first use, kept until exit. */
#ifndef HIRED_KTEST_H
#define HIRED_KTEST_H

#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "cpu_ops.h"

static inline k_ctx_t *ktest_ctx(void) {
    static k_device_t *dev;
    static k_ctx_t *ctx;
    if (!ctx) {
        char err[HIRED_ERR_LEN];
        if (!(dev = k_device_open("cpu", err)) || !(ctx = k_ctx_new(dev, err))) {
            fprintf(stderr, "cannot open the CPU backend: %s\n", err);
            exit(1);
        }
    }
    return ctx;
}

#endif
