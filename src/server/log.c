/*
 * Logging to stderr: "<UTC time> <level> <message>\n", written with one
 * write(2) per line so lines from different threads never interleave.
 * berth_log() (log.h) checks the level before any formatting happens.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int berth_log_level = BERTH_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int berth_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, level_names[i]))
            return i;
    if (!strcasecmp(s, "warning"))
        return BERTH_LOG_WARN;
    return -1;
}

void berth_log_write(int level, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    va_list ap;
    int w;

    if (level < 0 || level > BERTH_LOG_DEBUG)
        level = BERTH_LOG_ERROR;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03dZ %-5s ", (int)(tv.tv_usec / 1000),
                          level_names[level]);
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        w = 0;
    n += (size_t)w;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line: atomic for lines under PIPE_BUF on pipes. */
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nothing sensible to do when stderr is gone. */
    }
}
