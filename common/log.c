/* log.c — see log.h. The threshold is read once from the environment, lazily. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int g_level = -1; /* -1: not yet read from HIRED_LOG_LEVEL */

static log_level_t level_from_env(void) {
    const char *s = getenv("HIRED_LOG_LEVEL");
    if (!s) return LOG_LEVEL_INFO;
    if (!strcmp(s, "debug")) return LOG_LEVEL_DEBUG;
    if (!strcmp(s, "warn")) return LOG_LEVEL_WARN;
    if (!strcmp(s, "error")) return LOG_LEVEL_ERROR;
    if (!strcmp(s, "off")) return LOG_LEVEL_OFF;
    return LOG_LEVEL_INFO;
}

void log_set_level(log_level_t level) { atomic_store(&g_level, (int)level); }

log_level_t log_get_level(void) {
    int l = atomic_load(&g_level);
    if (l < 0) {
        l = (int)level_from_env();
        atomic_store(&g_level, l);
    }
    return (log_level_t)l;
}

void log_msg(log_level_t level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < log_get_level() || level >= LOG_LEVEL_OFF) return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
