/* util.c: time, ids and string helpers. */
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>

int64_t vd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vd_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vd_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void vd_sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR)
        req = rem;
}

static void random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            /* getrandom cannot fail on Linux >= 3.17 with these flags; fall back anyway. */
            for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)rand();
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

void vd_id_new(char out[VD_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[VD_ID_LEN / 2];
    random_bytes(raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[VD_ID_LEN] = '\0';
}

double vd_random_unit(void)
{
    uint64_t r;
    random_bytes(&r, sizeof r);
    return (double)(r >> 11) / 9007199254740992.0; /* 2^53 */
}

char *vd_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *vd_strlcpy(char *dst, const char *src, size_t n)
{
    if (n == 0) return dst;
    size_t len = src ? strnlen(src, n - 1) : 0;
    if (len) memcpy(dst, src, len);
    dst[len] = '\0';
    return dst;
}

char *vd_url_redact(const char *url, char *buf, size_t n)
{
    if (n == 0) return buf;
    if (!url) url = "";
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : NULL;
    const char *end = auth ? auth + strcspn(auth, "/?#") : NULL;
    const char *at = NULL;
    for (const char *p = auth; p && p < end; p++)
        if (*p == '@') at = p; /* the last '@' before the path ends the userinfo */
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) return vd_strlcpy(buf, url, n);
    snprintf(buf, n, "%.*s***%s", (int)(colon + 1 - url), url, at);
    return buf;
}

char *vd_describe_wait_status(int wstatus, char *buf, size_t n)
{
    if (WIFSIGNALED(wstatus)) {
        const char *abbr = sigabbrev_np(WTERMSIG(wstatus));
        if (abbr)
            snprintf(buf, n, "killed by SIG%s", abbr);
        else
            snprintf(buf, n, "killed by signal %d", WTERMSIG(wstatus));
    } else if (WIFEXITED(wstatus)) {
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(wstatus));
    } else {
        snprintf(buf, n, "stopped (status 0x%x)", (unsigned)wstatus);
    }
    return buf;
}
