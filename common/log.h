/* log.h — leveled logging to stderr, one line per call, with a timestamp and the level.
 * The level threshold comes from HIRED_LOG_LEVEL (debug|info|warn|error) or log_set_level();
 * default info. Thread-safe (one fprintf per line). Not here: structured metrics (see stats). */
#ifndef HIRED_LOG_H
#define HIRED_LOG_H

typedef enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR, LOG_LEVEL_OFF } log_level_t;

void log_set_level(log_level_t level);
log_level_t log_get_level(void);
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
