/* log.c: the one-line-per-event logger. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static struct {
    char component[32];
    vd_log_level min_level;
    int fd;
} log_cfg = {"visiond", VD_LOG_INFO, 2};

void vd_log_init(const char *component, vd_log_level min_level, int fd)
{
    snprintf(log_cfg.component, sizeof log_cfg.component, "%s", component ? component : "visiond");
    log_cfg.min_level = min_level;
    log_cfg.fd = fd;
}

int vd_log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (s && strcasecmp(s, names[i]) == 0) return i;
    return -1;
}

/* Copies msg into out (at most cap bytes, no NUL) with newlines and carriage
 * returns as spaces and every other control byte (0x00-0x1f, 0x7f: ESC, BEL,
 * backspace ...) as "\xHH", so that text from clients (URLs, file names) can
 * neither split a line nor drive a terminal. Returns the bytes written. */
static size_t escape_controls(const char *msg, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        unsigned char ch = *p;
        if (ch == '\n' || ch == '\r') ch = ' ';
        if (ch >= 0x20 && ch != 0x7f) {
            if (o + 1 > cap) break;
            out[o++] = (char)ch;
        } else {
            if (o + 4 > cap) break;
            out[o++] = '\\', out[o++] = 'x', out[o++] = hex[ch >> 4], out[o++] = hex[ch & 15];
        }
    }
    return o;
}

void vd_log(vd_log_level level, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if (level < log_cfg.min_level) return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %s %s[%d] ", ts.tv_nsec / 1000000,
                  tags[level], log_cfg.component, (int)getpid());
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0) msg[0] = '\0';
    size_t len = (size_t)n + escape_controls(msg, line + n, sizeof line - (size_t)n - 1);
    line[len++] = '\n';
    ssize_t w = write(log_cfg.fd, line, len);
    (void)w;
}
