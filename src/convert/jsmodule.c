/* jsmodule.c: JS-module payload extraction (object literal to JSON, base64 strings). */
#include "convert/jsmodule.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vd_jsmodule_is_js(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".js") == 0;
}

/* A growable NUL-terminated string. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_putn(sbuf *b, const char *p, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->s, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->s = q;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_putc(sbuf *b, char c)
{
    sb_putn(b, &c, 1);
}

/* Finds the start of the exported value: the first "exports" followed by '='
 * (not "==") and then one of the characters in `starts`. */
static const char *find_export(const char *src, size_t n, const char *starts)
{
    const char *end = src + n;
    for (const char *p = src; p + 7 < end; p++) {
        if (memcmp(p, "exports", 7) != 0) continue;
        const char *q = p + 7;
        while (q < end && isspace((unsigned char)*q))
            q++;
        if (q >= end || *q != '=' || (q + 1 < end && q[1] == '=')) continue;
        q++;
        while (q < end && isspace((unsigned char)*q))
            q++;
        if (q < end && strchr(starts, *q)) return q;
    }
    return NULL;
}

typedef struct {
    const char *p, *end, *start;
    sbuf out;
    vd_error *err;
    vd_status st;
} lit;

static void lit_fail(lit *l, const char *what)
{
    if (l->st == VD_OK)
        l->st = vd_error_set(l->err, VD_ERR_UNSUPPORTED,
                             "JS module: %s at offset %ld (only literal exports are understood)",
                             what, (long)(l->p - l->start));
}

static void skip_ws(lit *l)
{
    for (;;) {
        while (l->p < l->end && isspace((unsigned char)*l->p))
            l->p++;
        if (l->p + 1 < l->end && l->p[0] == '/' && l->p[1] == '*') {
            const char *e = l->p + 2;
            while (e + 1 < l->end && !(e[0] == '*' && e[1] == '/'))
                e++;
            l->p = e + 1 < l->end ? e + 2 : l->end;
        } else if (l->p + 1 < l->end && l->p[0] == '/' && l->p[1] == '/') {
            while (l->p < l->end && *l->p != '\n')
                l->p++;
        } else {
            return;
        }
    }
}

/* Copies a JS string literal (either quote) as a JSON string. */
static void lit_string(lit *l)
{
    char q = *l->p++;
    sb_putc(&l->out, '"');
    while (l->p < l->end && *l->p != q) {
        char c = *l->p++;
        if (c == '\\') {
            if (l->p >= l->end) break;
            char e = *l->p++;
            switch (e) {
            case '\'':
                sb_putc(&l->out, '\'');
                break;
            case '"':
                sb_putn(&l->out, "\\\"", 2);
                break;
            case 'x': {
                if (l->end - l->p < 2) {
                    lit_fail(l, "bad \\x escape");
                    return;
                }
                char u[7] = {'\\', 'u', '0', '0', l->p[0], l->p[1], 0};
                sb_putn(&l->out, u, 6);
                l->p += 2;
                break;
            }
            case '\n':
                break; /* line continuation */
            case 'v':
                sb_putn(&l->out, "\\u000b", 6);
                break;
            case '0':
                sb_putn(&l->out, "\\u0000", 6);
                break;
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
            case 'u':
                sb_putc(&l->out, '\\');
                sb_putc(&l->out, e);
                break;
            default:
                sb_putc(&l->out, e);
                break;
            }
        } else if (c == '"') {
            sb_putn(&l->out, "\\\"", 2);
        } else if ((unsigned char)c < 0x20) {
            lit_fail(l, "control character in a string");
            return;
        } else {
            sb_putc(&l->out, c);
        }
    }
    if (l->p >= l->end) {
        lit_fail(l, "unterminated string");
        return;
    }
    l->p++;
    sb_putc(&l->out, '"');
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$';
}

static void lit_number(lit *l)
{
    const char *s = l->p;
    char buf[64];
    size_t n = 0;
    if (*s == '-' || *s == '+') {
        if (*s == '-') buf[n++] = '-';
        s++;
    }
    if (s + 1 < l->end && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        char *e;
        unsigned long long v = strtoull(s, &e, 16);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%llu", v);
        l->p = e;
        sb_putn(&l->out, buf, n);
        return;
    }
    if (s < l->end && *s == '.') buf[n++] = '0';
    int saw_dot = 0;
    while (s < l->end && n < sizeof buf - 2 &&
           (isdigit((unsigned char)*s) || *s == '.' || *s == 'e' || *s == 'E' ||
            ((*s == '-' || *s == '+') && (s[-1] == 'e' || s[-1] == 'E')))) {
        if (*s == '.') saw_dot = 1;
        if ((*s == 'e' || *s == 'E') && saw_dot && buf[n - 1] == '.') buf[n++] = '0';
        buf[n++] = *s++;
    }
    if (n && buf[n - 1] == '.') buf[n++] = '0';
    if (n == 0 || !isdigit((unsigned char)buf[n - 1])) {
        lit_fail(l, "bad number");
        return;
    }
    l->p = s;
    sb_putn(&l->out, buf, n);
}

static void lit_value(lit *l, int depth);

/* Drops a trailing comma before a closing bracket (JS allows it, JSON does not). */
static void drop_trailing_comma(lit *l)
{
    if (l->out.len && l->out.s[l->out.len - 1] == ',') l->out.s[--l->out.len] = 0;
}

static void lit_object(lit *l, int depth)
{
    l->p++;
    sb_putc(&l->out, '{');
    for (;;) {
        skip_ws(l);
        if (l->st != VD_OK || l->p >= l->end) break;
        if (*l->p == '}') {
            l->p++;
            drop_trailing_comma(l);
            sb_putc(&l->out, '}');
            return;
        }
        /* key */
        if (*l->p == '"' || *l->p == '\'') {
            lit_string(l);
        } else if (ident_char(*l->p)) {
            const char *k = l->p;
            while (l->p < l->end && ident_char(*l->p))
                l->p++;
            sb_putc(&l->out, '"');
            sb_putn(&l->out, k, (size_t)(l->p - k));
            sb_putc(&l->out, '"');
        } else {
            lit_fail(l, "bad object key");
            return;
        }
        skip_ws(l);
        if (l->p >= l->end || *l->p != ':') {
            lit_fail(l, "expected ':'");
            return;
        }
        l->p++;
        sb_putc(&l->out, ':');
        lit_value(l, depth + 1);
        if (l->st != VD_OK) return;
        skip_ws(l);
        if (l->p < l->end && *l->p == ',') {
            l->p++;
            sb_putc(&l->out, ',');
        } else if (l->p < l->end && *l->p != '}') {
            lit_fail(l, "expected ',' or '}'");
            return;
        }
    }
    lit_fail(l, "unterminated object");
}

static void lit_array(lit *l, int depth)
{
    l->p++;
    sb_putc(&l->out, '[');
    for (;;) {
        skip_ws(l);
        if (l->st != VD_OK || l->p >= l->end) break;
        if (*l->p == ']') {
            l->p++;
            drop_trailing_comma(l);
            sb_putc(&l->out, ']');
            return;
        }
        lit_value(l, depth + 1);
        if (l->st != VD_OK) return;
        skip_ws(l);
        if (l->p < l->end && *l->p == ',') {
            l->p++;
            sb_putc(&l->out, ',');
        } else if (l->p < l->end && *l->p != ']') {
            lit_fail(l, "expected ',' or ']'");
            return;
        }
    }
    lit_fail(l, "unterminated array");
}

static int word_at(lit *l, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0 &&
           (l->p + n == l->end || !ident_char(l->p[n]));
}

static void lit_value(lit *l, int depth)
{
    skip_ws(l);
    if (l->p >= l->end) {
        lit_fail(l, "unexpected end");
        return;
    }
    if (depth > 200) {
        lit_fail(l, "nesting too deep");
        return;
    }
    char c = *l->p;
    if (c == '{') {
        lit_object(l, depth);
    } else if (c == '[') {
        lit_array(l, depth);
    } else if (c == '"' || c == '\'') {
        lit_string(l);
    } else if (c == '!' && l->p + 1 < l->end && (l->p[1] == '0' || l->p[1] == '1')) {
        sb_putn(&l->out, l->p[1] == '0' ? "true" : "false", l->p[1] == '0' ? 4 : 5);
        l->p += 2;
    } else if (word_at(l, "true") || word_at(l, "false") || word_at(l, "null")) {
        size_t n = word_at(l, "true") ? 4 : word_at(l, "false") ? 5 : 4;
        sb_putn(&l->out, l->p, n);
        l->p += n;
    } else if (word_at(l, "void 0")) {
        sb_putn(&l->out, "null", 4);
        l->p += 6;
    } else if (c == '-' || c == '+' || c == '.' || isdigit((unsigned char)c)) {
        lit_number(l);
    } else {
        lit_fail(l, "unsupported expression");
    }
}

vd_status vd_jsmodule_object_json(const char *src, size_t n, char **json_out, vd_error *err)
{
    *json_out = NULL;
    const char *p = find_export(src, n, "{");
    if (!p)
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "JS module: no 'exports=' followed by an object literal");
    lit l = {.p = p, .end = src + n, .start = src, .err = err, .st = VD_OK};
    lit_value(&l, 0);
    if (l.st == VD_OK && l.out.oom) l.st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (l.st != VD_OK) {
        free(l.out.s);
        return l.st;
    }
    *json_out = l.out.s;
    return VD_OK;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

vd_status vd_base64_decode(const char *text, size_t n, uint8_t **data_out, size_t *len_out,
                           vd_error *err)
{
    *data_out = NULL;
    *len_out = 0;
    uint8_t *out = malloc(n / 4 * 3 + 4);
    if (!out) return vd_error_set(err, VD_ERR_NOMEM, "out of memory (%zu bytes of base64)", n);
    size_t len = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (isspace((unsigned char)c)) continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) {
            free(out);
            return vd_error_set(err, VD_ERR_INVALID, "base64: bad character 0x%02x at offset %zu",
                                (unsigned char)c, i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (uint8_t)(acc >> bits);
        }
    }
    *data_out = out;
    *len_out = len;
    return VD_OK;
}

vd_status vd_jsmodule_base64_bytes(const char *src, size_t n, uint8_t **data_out, size_t *len_out,
                                   vd_error *err)
{
    *data_out = NULL;
    *len_out = 0;
    const char *p = find_export(src, n, "\"'");
    if (!p)
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "JS module: no 'exports=' followed by a string literal");
    char q = *p++;
    const char *e = memchr(p, q, (size_t)(src + n - p));
    if (!e) return vd_error_set(err, VD_ERR_INVALID, "JS module: unterminated string literal");
    return vd_base64_decode(p, (size_t)(e - p), data_out, len_out, err);
}
