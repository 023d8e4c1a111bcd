/* log.c: the one-line-per-event logger (text or JSON lines). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static struct {
    char component[32];
    vd_log_level min_level;
    int fd;
    vd_log_format format;
} log_cfg = {"visiond", VD_LOG_INFO, 2, VD_LOG_TEXT};

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

int vd_log_format_parse(const char *s)
{
    if (s && strcasecmp(s, "text") == 0) return VD_LOG_TEXT;
    if (s && strcasecmp(s, "json") == 0) return VD_LOG_JSON;
    return -1;
}

void vd_log_set_format(vd_log_format f)
{
    log_cfg.format = f;
}

vd_log_format vd_log_get_format(void)
{
    return log_cfg.format;
}

int vd_log_setup_format(int argc, char **argv, const char **bad)
{
    int out = 1;
    const char *flag = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { /* the rest is not ours */
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "--log-format") == 0) {
            flag = i + 1 < argc ? argv[++i] : "";
            continue;
        }
        if (strncmp(a, "--log-format=", 13) == 0) {
            flag = a + 13;
            continue;
        }
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    if (flag && vd_log_format_parse(flag) < 0) {
        *bad = flag;
        return -1;
    }
    if (flag) setenv("VISIOND_LOG_FORMAT", flag, 1);
    const char *env = getenv("VISIOND_LOG_FORMAT");
    int f = env && *env ? vd_log_format_parse(env) : VD_LOG_TEXT;
    if (f < 0) {
        *bad = env;
        return -1;
    }
    log_cfg.format = (vd_log_format)f;
    return out;
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

/* Copies s into out as the inside of a JSON string (at most cap bytes):
 * '"' and '\\' escaped, control bytes as \u00XX; bytes >= 0x80 are kept when
 * they form valid UTF-8 sequences and written as '?' otherwise, so every line
 * parses. Returns the bytes written (never a cut escape). */
static size_t json_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char ch = *p;
        if (ch >= 0x80) {
            int n = ch >= 0xf0 && ch < 0xf5 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc2 && ch < 0xe0 ? 2 : 0;
            int ok = n > 0;
            for (int k = 1; ok && k < n; k++)
                ok = (p[k] & 0xc0) == 0x80;
            if (!ok) n = 1;
            if (o + (size_t)n > cap) break;
            if (ok)
                memcpy(out + o, p, (size_t)n);
            else
                out[o] = '?';
            o += ok ? (size_t)n : 1;
            p += n;
            continue;
        }
        if (ch == '"' || ch == '\\') {
            if (o + 2 > cap) break;
            out[o++] = '\\', out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            if (o + 6 > cap) break;
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[ch >> 4], out[o + 5] = hex[ch & 15];
            o += 6;
        } else {
            if (o + 1 > cap) break;
            out[o++] = (char)ch;
        }
        p++;
    }
    return o;
}

/* Appends text to line (capacity cap, keeping room for the closing bytes). */
static size_t put(char *line, size_t n, size_t cap, const char *text)
{
    size_t l = strlen(text);
    if (n + l > cap) l = cap > n ? cap - n : 0;
    memcpy(line + n, text, l);
    return n + l;
}

static size_t format_json(char *line, size_t cap, const char *stamp, vd_log_level level,
                          const char *msg, const char *const *kv)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    size_t room = cap - 3; /* for "}}\n" */
    int n = snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"component\":\"",
                     stamp, names[level], (int)getpid());
    size_t o = (size_t)n;
    o += json_escape(log_cfg.component, line + o, room - o);
    o = put(line, o, room, "\",\"message\":\"");
    o += json_escape(msg, line + o, room - o);
    o = put(line, o, room, "\"");
    for (int i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
        o = put(line, o, room, i ? ",\"" : ",\"fields\":{\"");
        o += json_escape(kv[i], line + o, room - o);
        o = put(line, o, room, "\":\"");
        o += json_escape(kv[i + 1], line + o, room - o);
        o = put(line, o, room, "\"");
        if (o >= room) break;
    }
    if (kv && kv[0] && kv[1]) line[o++] = '}';
    line[o++] = '}';
    return o;
}

static void vlog(vd_log_level level, const char *const *kv, const char *fmt, va_list ap)
{
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if (level < log_cfg.min_level) return;
    char line[4096], stamp[40], msg[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + sl, sizeof stamp - sl, ".%03ldZ", ts.tv_nsec / 1000000);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0) msg[0] = '\0';
    size_t len;
    if (log_cfg.format == VD_LOG_JSON) {
        len = format_json(line, sizeof line - 1, stamp, level, msg, kv);
    } else {
        int n = snprintf(line, sizeof line, "%s %s %s[%d] ", stamp, tags[level], log_cfg.component,
                         (int)getpid());
        len = (size_t)n + escape_controls(msg, line + n, sizeof line - (size_t)n - 1);
    }
    line[len++] = '\n';
    ssize_t w = write(log_cfg.fd, line, len);
    (void)w;
}

void vd_log(vd_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap);
    va_end(ap);
}

void vd_log_kv(vd_log_level level, const char *const *kv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, kv, fmt, ap);
    va_end(ap);
}
