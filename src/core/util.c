/* util.c: time, ids and string helpers. */
#include "core/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
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

static void getrandom_full(void *buf, size_t n)
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

/* Random bytes are drawn by the page, not one getrandom call per id (a bulk enqueue of
 * 10,000 jobs made 10,000 calls: docs/worker.md, "Per-job cost"). The pool is a page of its
 * own with MADV_WIPEONFORK: a forked child (a work-horse) finds it zeroed, so empty, and
 * draws its own bytes, never the ones its parent will hand out next; the mutex lives in the
 * page too, so a child of a multi-threaded parent finds it unlocked (all zero bytes is
 * PTHREAD_MUTEX_INITIALIZER). Without MADV_WIPEONFORK (Linux < 4.14) every call goes to
 * getrandom, as before. */
typedef struct {
    pthread_mutex_t mu;
    size_t left; /* unread bytes at the end of bytes[]; 0 after a fork */
    unsigned char bytes[2048];
} rand_pool;

static rand_pool *pool_get(void)
{
    static rand_pool *pool; /* set once; the mapping survives fork, wiped */
    static int pool_failed; /* no MADV_WIPEONFORK here */
    rand_pool *p = __atomic_load_n(&pool, __ATOMIC_ACQUIRE);
    if (p || __atomic_load_n(&pool_failed, __ATOMIC_RELAXED)) return p;
    size_t sz = (sizeof *p + 4095) & ~(size_t)4095;
    void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    if (madvise(m, sz, MADV_WIPEONFORK) != 0) {
        munmap(m, sz);
        __atomic_store_n(&pool_failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    rand_pool *expected = NULL;
    if (!__atomic_compare_exchange_n(&pool, &expected, (rand_pool *)m, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        munmap(m, sz); /* another thread won */
        return expected;
    }
    return m;
}

static void random_bytes(void *buf, size_t n)
{
    rand_pool *p = n <= 64 ? pool_get() : NULL;
    if (!p) {
        getrandom_full(buf, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->left < n) {
        getrandom_full(p->bytes, sizeof p->bytes);
        p->left = sizeof p->bytes;
    }
    unsigned char *src = p->bytes + sizeof p->bytes - p->left;
    memcpy(buf, src, n);
    memset(src, 0, n); /* handed out once */
    p->left -= n;
    pthread_mutex_unlock(&p->mu);
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

void vd_job_id_new(char out[VD_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t ms = (uint64_t)vd_now_ms();
    for (int i = 11; i >= 0; i--, ms >>= 4)
        out[i] = hex[ms & 15];
    unsigned char raw[(VD_ID_LEN - 12) / 2];
    random_bytes(raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) {
        out[12 + 2 * i] = hex[raw[i] >> 4];
        out[12 + 2 * i + 1] = hex[raw[i] & 15];
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
