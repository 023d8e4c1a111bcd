/* jobfmt.c: a job as JSON text without a jansson tree (see jobfmt.h). */
#include "api/jobfmt.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

/* ---- a growable buffer -------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} buf;

static void reserve(buf *b, size_t more)
{
    if (b->oom || b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void put(buf *b, const char *s, size_t n)
{
    reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static void put_i64(buf *b, int64_t v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    put(b, tmp + i, sizeof tmp - (size_t)i);
}

static void put_time(buf *b, int64_t ms)
{
    if (ms > 0)
        put_i64(b, ms);
    else
        PUTS(b, "null");
}

/* ---- UTF-8, as jansson checks it ----------------------------------------- */

/* Returns the length of the valid UTF-8 sequence at s (1-4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0; /* overlong */
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (!n) return 0;
        p += n;
    }
    return 1;
}

/* Writes s as a JSON string as jansson dumps it (UTF-8 kept, '"', '\\' and
 * control characters escaped); s that is not valid UTF-8 is written with its
 * bytes >= 0x80 as '?' (job_json's safe_string). */
static void put_string(buf *b, const char *s)
{
    int valid = utf8_valid(s);
    PUTS(b, "\"");
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c && c >= 0x20 && c != '"' && c != '\\' && (valid || c < 0x80)) continue;
        put(b, run, (size_t)(p - run));
        if (!c) break;
        run = p + 1;
        switch (c) {
        case '"':
            PUTS(b, "\\\"");
            break;
        case '\\':
            PUTS(b, "\\\\");
            break;
        case '\b':
            PUTS(b, "\\b");
            break;
        case '\f':
            PUTS(b, "\\f");
            break;
        case '\n':
            PUTS(b, "\\n");
            break;
        case '\r':
            PUTS(b, "\\r");
            break;
        case '\t':
            PUTS(b, "\\t");
            break;
        default:
            if (c >= 0x80) {
                PUTS(b, "?");
            } else {
                static const char hex[] = "0123456789ABCDEF"; /* as jansson */
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                put(b, e, 6);
            }
        }
    }
    PUTS(b, "\"");
}

/* ---- a JSON validator with jansson's rules -------------------------------- */

typedef struct {
    const char *p;
} scan;

static void skip_ws(scan *s)
{
    while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
        s->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static int v_string(scan *s)
{
    const char *p = s->p + 1; /* after the opening quote */
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') break;
        if (c < 0x20) return 0; /* control characters, and the end of the text */
        if (c == '\\') {
            char e = p[1];
            if (e == 'u') {
                unsigned u;
                if (!hex4(p + 2, &u)) return 0;
                p += 6;
                if (u >= 0xdc00 && u <= 0xdfff) return 0; /* a lone low surrogate */
                if (u >= 0xd800 && u <= 0xdbff) {
                    unsigned lo;
                    if (p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xdc00 ||
                        lo > 0xdfff)
                        return 0;
                    p += 6;
                } else if (u == 0) {
                    return 0; /* \u0000 needs JSON_ALLOW_NUL */
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || !e) return 0;
            p += 2;
            continue;
        }
        size_t n = utf8_len((const unsigned char *)p);
        if (!n) return 0;
        p += n;
    }
    s->p = p + 1;
    return 1;
}

static int v_number(scan *s)
{
    const char *start = s->p, *p = s->p;
    int is_real = 0;
    if (*p == '-') p++;
    if (*p == '0') {
        p++;
        if (*p >= '0' && *p <= '9') return 0; /* no leading zeros */
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9')
            p++;
    } else {
        return 0;
    }
    if (*p == '.') {
        is_real = 1;
        p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        is_real = 1;
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    /* Like jansson: an integer must fit in 64 bits, a real must not overflow. */
    char tmp[400];
    size_t len = (size_t)(p - start);
    if (len >= sizeof tmp) {
        if (!is_real) return 0;
        char *dup = strndup(start, len);
        if (!dup) return 0;
        errno = 0;
        double d = strtod(dup, NULL);
        free(dup);
        if (isinf(d)) return 0;
    } else {
        memcpy(tmp, start, len);
        tmp[len] = '\0';
        errno = 0;
        if (is_real) {
            double d = strtod(tmp, NULL);
            if (isinf(d)) return 0; /* jansson refuses overflow only, not underflow */
        } else {
            (void)strtoll(tmp, NULL, 10);
            if (errno == ERANGE) return 0;
        }
    }
    s->p = p;
    return 1;
}

static int v_value(scan *s, int depth)
{
    skip_ws(s);
    char c = *s->p;
    if (c == '{' || c == '[') {
        if (depth >= MAX_DEPTH) return 0;
        char close = c == '{' ? '}' : ']';
        s->p++;
        skip_ws(s);
        if (*s->p == close) {
            s->p++;
            return 1;
        }
        for (;;) {
            if (c == '{') {
                skip_ws(s);
                if (*s->p != '"' || !v_string(s)) return 0;
                skip_ws(s);
                if (*s->p != ':') return 0;
                s->p++;
            }
            if (!v_value(s, depth + 1)) return 0;
            skip_ws(s);
            if (*s->p == ',') {
                s->p++;
                continue;
            }
            if (*s->p != close) return 0;
            s->p++;
            return 1;
        }
    }
    if (c == '"') return v_string(s);
    if (c == '-' || (c >= '0' && c <= '9')) return v_number(s);
    if (strncmp(s->p, "true", 4) == 0) {
        s->p += 4;
        return 1;
    }
    if (strncmp(s->p, "false", 5) == 0) {
        s->p += 5;
        return 1;
    }
    if (strncmp(s->p, "null", 4) == 0) {
        s->p += 4;
        return 1;
    }
    return 0;
}

int vd_api_json_valid(const char *text)
{
    if (!text) return 0;
    scan s = {text};
    if (!v_value(&s, 0)) return 0;
    skip_ws(&s);
    return *s.p == '\0';
}

/* ---- the job ------------------------------------------------------------- */

/* A stored JSON text as a value: as it is when valid, else as a string. */
static void put_json_text(buf *b, const char *text)
{
    if (vd_api_json_valid(text)) {
        /* Trim the surrounding whitespace so the document stays compact at its edges. */
        const char *p = text;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        size_t n = strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
            n--;
        put(b, p, n);
    } else {
        put_string(b, text);
    }
}

char *vd_api_job_text(const vd_job *j, size_t *len)
{
    buf b = {0};
    size_t plen = j->payload ? strlen(j->payload) : 2;
    size_t rlen = j->result ? strlen(j->result) : 4;
    reserve(&b, 512 + plen + rlen + (j->error ? 2 * strlen(j->error) : 0));
    PUTS(&b, "{\"id\":");
    put_string(&b, j->id);
    PUTS(&b, ",\"type\":");
    put_string(&b, j->type);
    PUTS(&b, ",\"state\":");
    put_string(&b, vd_job_state_name(j->state));
    PUTS(&b, ",\"priority\":");
    put_i64(&b, j->priority);
    PUTS(&b, ",\"attempts\":");
    put_i64(&b, j->attempts);
    PUTS(&b, ",\"max_retries\":");
    put_i64(&b, j->max_retries);
    PUTS(&b, ",\"timeout_ms\":");
    put_i64(&b, j->timeout_ms);
    PUTS(&b, ",\"retry_base_ms\":");
    put_i64(&b, j->retry_base_ms);
    PUTS(&b, ",\"retry_max_ms\":");
    put_i64(&b, j->retry_max_ms);
    PUTS(&b, ",\"result_ttl_ms\":");
    put_i64(&b, j->result_ttl_ms);
    PUTS(&b, ",\"created_ms\":");
    put_i64(&b, j->created_ms);
    PUTS(&b, ",\"run_at_ms\":");
    put_i64(&b, j->run_at_ms);
    PUTS(&b, ",\"started_ms\":");
    put_time(&b, j->started_ms);
    PUTS(&b, ",\"ended_ms\":");
    put_time(&b, j->ended_ms);
    PUTS(&b, ",\"lease_until_ms\":");
    put_time(&b, j->lease_until_ms);
    PUTS(&b, ",\"worker\":");
    if (j->worker[0])
        put_string(&b, j->worker);
    else
        PUTS(&b, "null");
    PUTS(&b, ",\"progress\":{\"done\":");
    put_i64(&b, j->progress_done);
    PUTS(&b, ",\"total\":");
    put_i64(&b, j->progress_total);
    PUTS(&b, "},\"payload\":");
    put_json_text(&b, j->payload ? j->payload : "{}");
    PUTS(&b, ",\"result\":");
    if (j->result)
        put_json_text(&b, j->result);
    else
        PUTS(&b, "null");
    PUTS(&b, ",\"error\":");
    if (j->error)
        put_string(&b, j->error);
    else
        PUTS(&b, "null");
    PUTS(&b, ",\"cancel_requested\":");
    if (j->cancel_requested)
        PUTS(&b, "true}");
    else
        PUTS(&b, "false}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    b.p[b.n] = '\0';
    if (len) *len = b.n;
    return b.p;
}
