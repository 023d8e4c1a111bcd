/* bpe.c: encoding text with CLIP's byte-level BPE (the steps of bpe.h). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/bpe_impl.h"

/* The Unicode White_Space property (stable since Unicode 6.3): what Rust's
 * \s, and so tokenizer.json's patterns, call white space. */
static int is_space(int32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static int is_letter(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_number(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* Appends codepoint c to out (room for 4 bytes is the caller's). */
static size_t put_cp(char *out, int32_t c)
{
    return (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)out);
}

/* Step 1 of bpe.h: NFC, white space runs to one space, lower case. Returns
 * a malloc'd NUL-terminated string, or NULL (not UTF-8, or out of memory:
 * *bad says which). */
static char *normalise(const char *text, size_t len, int *bad)
{
    *bad = 0;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        *bad = n != UTF8PROC_ERROR_NOMEM;
        return NULL;
    }
    /* lower case can grow a character (U+0130: 2 bytes -> 3): 2x is enough */
    char *out = malloc((size_t)n * 2 + 1);
    size_t o = 0;
    int in_space = 0;
    for (utf8proc_ssize_t i = 0; out && i < n;) {
        utf8proc_int32_t c;
        i += utf8proc_iterate(nfc + i, n - i, &c);
        if (is_space(c)) {
            if (!in_space) out[o++] = ' ';
            in_space = 1;
            continue;
        }
        in_space = 0;
        if (c == 0x130) { /* full lower-case mapping: i + combining dot above */
            out[o++] = 'i';
            o += put_cp(out + o, 0x307);
        } else {
            o += put_cp(out + o, utf8proc_tolower(c));
        }
    }
    free(nfc);
    if (out) out[o] = '\0';
    return out;
}

/* A growing list of ids with a cap: ids past the cap only set *truncated. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
    int truncated;
} id_list;

static void emit(id_list *l, int32_t id)
{
    if (id < 0) return; /* outside the vocabulary, and no unknown token */
    if (l->n < l->cap)
        l->ids[l->n++] = id;
    else
        l->truncated = 1;
}

/* A symbol of the BPE: a span of the word's byte-alphabet text. */
typedef struct {
    size_t off, len;
} sym;

/* Returns the rank of merging a and b, or -1. */
static int32_t pair_rank(const vd_bpe *b, const char *w, sym a, sym c, char *key, size_t keycap)
{
    if (a.len + c.len + 1 > keycap) return -1;
    memcpy(key, w + a.off, a.len);
    key[a.len] = ' ';
    memcpy(key + a.len + 1, w + c.off, c.len);
    return bpe_map_get(&b->merges, key, a.len + 1 + c.len);
}

/* Step 4 for one piece already in the byte alphabet (w, wlen bytes, the
 * suffix appended; nsym symbols in s). Merges in place, then emits. */
static void bpe_word(const vd_bpe *b, const char *w, sym *s, size_t nsym, id_list *out)
{
    char key[1024];
    for (;;) {
        int32_t best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < nsym; i++) {
            int32_t r = pair_rank(b, w, s[i], s[i + 1], key, sizeof key);
            if (r >= 0 && (best < 0 || r < best)) best = r, at = i;
        }
        if (best < 0) break;
        /* merge every occurrence of the pair, left to right */
        sym first = s[at], second = s[at + 1];
        size_t j = 0;
        for (size_t i = 0; i < nsym; i++) {
            if (i + 1 < nsym && s[i].len == first.len && s[i + 1].len == second.len &&
                !memcmp(w + s[i].off, w + first.off, first.len) &&
                !memcmp(w + s[i + 1].off, w + second.off, second.len)) {
                s[j++] = (sym){s[i].off, s[i].len + s[i + 1].len};
                i++;
            } else {
                s[j++] = s[i];
            }
        }
        nsym = j;
    }
    for (size_t i = 0; i < nsym; i++) {
        int32_t id = bpe_map_get(&b->vocab, w + s[i].off, s[i].len);
        emit(out, id >= 0 ? id : b->unk_id);
    }
}

/* Maps the piece's bytes to the byte alphabet, adds the suffix, runs BPE. */
static int encode_piece(const vd_bpe *b, const char *p, size_t len, id_list *out)
{
    char *w = malloc(len * 2 + b->suffix_len + 1);
    sym *s = malloc(len * sizeof *s);
    if (!w || !s) {
        free(w), free(s);
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *c = b->byte_sym[(unsigned char)p[i]];
        size_t cl = strlen(c);
        s[i] = (sym){o, cl};
        memcpy(w + o, c, cl);
        o += cl;
    }
    memcpy(w + o, b->suffix, b->suffix_len);
    s[len - 1].len += b->suffix_len;
    bpe_word(b, w, s, len, out);
    free(w), free(s);
    return 0;
}

/* Step 3: the length in bytes of the piece that starts at t (never 0 for
 * text that is not white space), per CLIP's pattern; *skip is set when t
 * starts with white space (dropped). */
static size_t next_piece(const char *t, size_t n, int *skip)
{
    static const char *contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    *skip = 0;
    for (size_t k = 0; t[0] == '\'' && k < 7; k++) {
        size_t cl = strlen(contractions[k]);
        if (cl <= n && !memcmp(t, contractions[k], cl)) return cl;
    }
    utf8proc_int32_t c;
    size_t i = (size_t)utf8proc_iterate((const utf8proc_uint8_t *)t, (utf8proc_ssize_t)n, &c);
    if (is_space(c)) {
        *skip = 1;
        return i;
    }
    if (is_number(c)) return i;
    int letters = is_letter(c);
    while (i < n) {
        size_t step = (size_t)utf8proc_iterate((const utf8proc_uint8_t *)t + i,
                                               (utf8proc_ssize_t)(n - i), &c);
        int same = letters ? is_letter(c) : !is_letter(c) && !is_number(c) && !is_space(c);
        if (!same) break;
        i += step;
    }
    return i;
}

static int encode_segment(const vd_bpe *b, const char *t, size_t n, id_list *out)
{
    for (size_t i = 0; i < n;) {
        int skip;
        size_t len = next_piece(t + i, n - i, &skip);
        if (!skip && encode_piece(b, t + i, len, out) != 0) return -1;
        i += len;
    }
    return 0;
}

/* Returns the added token that starts at t, or NULL. */
static const bpe_added *added_at(const vd_bpe *b, const char *t, size_t n)
{
    for (size_t k = 0; k < b->n_added; k++)
        if (b->added[k].len <= n && !memcmp(t, b->added[k].content, b->added[k].len))
            return &b->added[k];
    return NULL;
}

vd_status vd_bpe_encode(const vd_bpe *b, const char *text, size_t len, size_t context_length,
                        int32_t pad_id, int32_t *ids, size_t *n_used, int *truncated, vd_error *err)
{
    if (context_length < 2)
        return vd_error_set(err, VD_ERR_INVALID, "context length %zu: at least 2", context_length);
    if (len > VD_BPE_TEXT_MAX)
        return vd_error_set(err, VD_ERR_LIMIT, "text of %zu bytes: at most %d", len,
                            VD_BPE_TEXT_MAX);
    if (memchr(text, '\0', len)) return vd_error_set(err, VD_ERR_INVALID, "text holds a NUL byte");
    int bad;
    char *t = normalise(text, len, &bad);
    if (!t)
        return bad ? vd_error_set(err, VD_ERR_INVALID, "text is not valid UTF-8")
                   : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    id_list l = {ids + 1, 0, context_length - 2, 0};
    size_t n = strlen(t), seg = 0;
    int rc = 0;
    for (size_t i = 0; i <= n && rc == 0;) {
        const bpe_added *a = i < n ? added_at(b, t + i, n - i) : NULL;
        if (i < n && !a) {
            i++;
            continue;
        }
        rc = encode_segment(b, t + seg, i - seg, &l);
        if (!a) break;
        emit(&l, a->id);
        i += a->len;
        seg = i;
    }
    free(t);
    if (rc != 0) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    ids[0] = b->start_id;
    ids[1 + l.n] = b->end_id;
    for (size_t i = l.n + 2; i < context_length; i++)
        ids[i] = pad_id;
    if (n_used) *n_used = l.n + 2;
    if (truncated) *truncated = l.truncated;
    return VD_OK;
}
