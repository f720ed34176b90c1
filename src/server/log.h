/*
 * Logging: one line per event to stderr, "<time> <level> <message>". The
 * macro checks the level before formatting anything (redis serverLog), so a
 * disabled debug line costs one comparison. Never log Authorization headers,
 * tokens or passwords.
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum berth_log_level { BERTH_LOG_ERROR = 0, BERTH_LOG_WARN, BERTH_LOG_INFO, BERTH_LOG_DEBUG };

extern int berth_log_level;

/* "error", "warn"/"warning", "info", "debug" → level; -1 when unknown. */
int berth_log_level_parse(const char *s);

void berth_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define berth_log(level, ...)                                                                      \
    do {                                                                                           \
        if ((level) <= berth_log_level)                                                            \
            berth_log_write((level), __VA_ARGS__);                                                 \
    } while (0)

#define berth_log_error(...) berth_log(BERTH_LOG_ERROR, __VA_ARGS__)
#define berth_log_warn(...) berth_log(BERTH_LOG_WARN, __VA_ARGS__)
#define berth_log_info(...) berth_log(BERTH_LOG_INFO, __VA_ARGS__)
#define berth_log_debug(...) berth_log(BERTH_LOG_DEBUG, __VA_ARGS__)

#endif
