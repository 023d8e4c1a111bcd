/* bpe_load.c: reading a Hugging Face tokenizer.json into a vd_bpe, refusing
 * every pipeline but CLIP's (see bpe.h), and the hash table behind it. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "text/bpe_impl.h"

/* CLIP's split pattern, exactly as tokenizer.json spells it. */
static const char CLIP_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/* ---- the hash table ------------------------------------------------------ */

static uint64_t hash(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

int bpe_map_init(bpe_map *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2 + 2)
        cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    m->cap = m->slots ? cap : 0;
    m->n = 0;
    return m->slots ? 0 : -1;
}

void bpe_map_free(bpe_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static size_t find_slot(const bpe_map *m, const char *key, size_t len)
{
    size_t i = (size_t)hash(key, len) & (m->cap - 1);
    while (m->slots[i].key && !(m->slots[i].len == len && memcmp(m->slots[i].key, key, len) == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

int bpe_map_put(bpe_map *m, const char *key, size_t len, int32_t val)
{
    if ((m->n + 1) * 2 > m->cap) { /* grow: rehash into twice the slots */
        bpe_map bigger;
        if (bpe_map_init(&bigger, m->cap) != 0) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            bpe_slot *s = &m->slots[i];
            if (s->key) bigger.slots[find_slot(&bigger, s->key, s->len)] = *s;
        }
        bigger.n = m->n;
        free(m->slots);
        *m = bigger;
    }
    size_t i = find_slot(m, key, len);
    if (m->slots[i].key) return 0;
    char *k = malloc(len + 1);
    if (!k) return -1;
    memcpy(k, key, len);
    k[len] = '\0';
    m->slots[i] = (bpe_slot){k, (uint32_t)len, val};
    m->n++;
    return 0;
}

int32_t bpe_map_get(const bpe_map *m, const char *key, size_t len)
{
    if (!m->cap) return -1;
    size_t i = find_slot(m, key, len);
    return m->slots[i].key ? m->slots[i].val : -1;
}

/* ---- the byte alphabet -------------------------------------------------- */

static int printable(int c)
{
    return (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
}

void bpe_byte_alphabet(vd_bpe *b)
{
    int next = 256;
    for (int c = 0; c < 256; c++) {
        int cp = printable(c) ? c : next++;
        char *s = b->byte_sym[c];
        if (cp < 0x80) {
            s[0] = (char)cp, s[1] = '\0';
        } else { /* all below 0x800: two bytes */
            s[0] = (char)(0xC0 | (cp >> 6)), s[1] = (char)(0x80 | (cp & 0x3F)), s[2] = '\0';
        }
    }
}

/* ---- checking the pipeline ---------------------------------------------- */

static const char *type_of(json_t *o)
{
    return json_string_value(json_object_get(o, "type"));
}

static int is_type(json_t *o, const char *t)
{
    const char *s = type_of(o);
    return s && strcmp(s, t) == 0;
}

/* Returns the i-th item of a Sequence's list (key "normalizers" or
 * "pretokenizers") when o is a Sequence of exactly n, else NULL. */
static json_t *seq_item(json_t *o, const char *key, size_t n, size_t i)
{
    json_t *list = is_type(o, "Sequence") ? json_object_get(o, key) : NULL;
    return json_is_array(list) && json_array_size(list) == n ? json_array_get(list, i) : NULL;
}

static int regex_is(json_t *pattern, const char *want)
{
    const char *re = json_string_value(json_object_get(pattern, "Regex"));
    return re && strcmp(re, want) == 0;
}

static vd_status check_normalizer(json_t *n, const char *name, vd_error *err)
{
    json_t *nfc = seq_item(n, "normalizers", 3, 0), *rep = seq_item(n, "normalizers", 3, 1),
           *low = seq_item(n, "normalizers", 3, 2);
    const char *content = json_string_value(json_object_get(rep, "content"));
    if (nfc && is_type(nfc, "NFC") && is_type(rep, "Replace") &&
        regex_is(json_object_get(rep, "pattern"), "\\s+") && content && !strcmp(content, " ") &&
        is_type(low, "Lowercase"))
        return VD_OK;
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "%s: normalizer: only CLIP's (NFC, white space to one space, lower case) "
                        "is supported",
                        name);
}

static vd_status check_pre_tokenizer(json_t *p, const char *name, vd_error *err)
{
    json_t *split = seq_item(p, "pretokenizers", 2, 0), *bytes = seq_item(p, "pretokenizers", 2, 1);
    const char *behavior = json_string_value(json_object_get(split, "behavior"));
    if (split && is_type(split, "Split") &&
        regex_is(json_object_get(split, "pattern"), CLIP_PATTERN) && behavior &&
        !strcmp(behavior, "Removed") && json_is_true(json_object_get(split, "invert")) &&
        is_type(bytes, "ByteLevel") && !json_is_true(json_object_get(bytes, "add_prefix_space")) &&
        !json_is_true(json_object_get(bytes, "use_regex")))
        return VD_OK;
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "%s: pre_tokenizer: only CLIP's (its split pattern, then byte level) is "
                        "supported",
                        name);
}

/* ---- reading the model ---------------------------------------------------- */

static vd_status read_vocab(vd_bpe *b, json_t *vocab, const char *name, vd_error *err)
{
    if (!json_is_object(vocab) || json_object_size(vocab) == 0)
        return vd_error_set(err, VD_ERR_INVALID, "%s: model.vocab: missing or empty", name);
    if (bpe_map_init(&b->vocab, json_object_size(vocab)) != 0)
        return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", name);
    const char *tok;
    json_t *id;
    json_object_foreach(vocab, tok, id)
    {
        json_int_t v = json_is_integer(id) ? json_integer_value(id) : -1;
        if (v < 0 || v > INT32_MAX)
            return vd_error_set(err, VD_ERR_INVALID,
                                "%s: model.vocab: token '%.60s' has no valid id", name, tok);
        if (bpe_map_put(&b->vocab, tok, strlen(tok), (int32_t)v) != 0)
            return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", name);
    }
    return VD_OK;
}

/* A merge is "LEFT RIGHT" (older files) or ["LEFT", "RIGHT"] (newer ones). */
static int merge_sides(json_t *m, const char **l, size_t *ll, const char **r, size_t *rl)
{
    const char *s = json_string_value(m);
    if (s) {
        const char *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ')) return -1;
        *l = s, *ll = (size_t)(sp - s), *r = sp + 1, *rl = strlen(sp + 1);
        return 0;
    }
    if (!json_is_array(m) || json_array_size(m) != 2) return -1;
    *l = json_string_value(json_array_get(m, 0)), *r = json_string_value(json_array_get(m, 1));
    if (!*l || !*r) return -1;
    *ll = strlen(*l), *rl = strlen(*r);
    return 0;
}

static vd_status read_merges(vd_bpe *b, json_t *merges, const char *name, vd_error *err)
{
    if (!json_is_array(merges))
        return vd_error_set(err, VD_ERR_INVALID, "%s: model.merges: missing", name);
    if (bpe_map_init(&b->merges, json_array_size(merges)) != 0)
        return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", name);
    char key[512];
    for (size_t i = 0; i < json_array_size(merges); i++) {
        const char *l, *r;
        size_t ll, rl;
        if (merge_sides(json_array_get(merges, i), &l, &ll, &r, &rl) != 0 ||
            ll + rl + 2 > sizeof key)
            return vd_error_set(err, VD_ERR_INVALID, "%s: model.merges[%zu]: not a pair of tokens",
                                name, i);
        if (bpe_map_get(&b->vocab, l, ll) < 0 || bpe_map_get(&b->vocab, r, rl) < 0)
            return vd_error_set(err, VD_ERR_INVALID,
                                "%s: model.merges[%zu]: '%.*s %.*s' names a token outside the "
                                "vocabulary",
                                name, i, (int)ll, l, (int)rl, r);
        memcpy(key, l, ll), key[ll] = ' ', memcpy(key + ll + 1, r, rl);
        if (bpe_map_put(&b->merges, key, ll + 1 + rl, (int32_t)i) != 0)
            return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", name);
    }
    return VD_OK;
}

static vd_status read_model(vd_bpe *b, json_t *model, const char *name, vd_error *err)
{
    if (!json_is_object(model))
        return vd_error_set(err, VD_ERR_INVALID, "%s: no \"model\" object: not a tokenizer.json",
                            name);
    const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    json_t *dropout = json_object_get(model, "dropout");
    if (!is_type(model, "BPE") || (prefix && *prefix) || (dropout && !json_is_null(dropout)))
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "%s: model: only a BPE without dropout or subword prefix is supported",
                            name);
    const char *suffix = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if (!suffix) suffix = "";
    if (strlen(suffix) >= sizeof b->suffix)
        return vd_error_set(err, VD_ERR_UNSUPPORTED, "%s: model.end_of_word_suffix: too long",
                            name);
    vd_strlcpy(b->suffix, suffix, sizeof b->suffix);
    b->suffix_len = strlen(b->suffix);
    vd_status st = read_vocab(b, json_object_get(model, "vocab"), name, err);
    if (st == VD_OK) st = read_merges(b, json_object_get(model, "merges"), name, err);
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    b->unk_id = unk ? bpe_map_get(&b->vocab, unk, strlen(unk)) : -1;
    return st;
}

static int by_length_desc(const void *a, const void *b)
{
    size_t la = ((const bpe_added *)a)->len, lb = ((const bpe_added *)b)->len;
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static vd_status read_added(vd_bpe *b, json_t *added, const char *name, vd_error *err)
{
    size_t n = json_is_array(added) ? json_array_size(added) : 0;
    if (n == 0) return VD_OK;
    if (!(b->added = calloc(n, sizeof *b->added)))
        return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(added, i);
        const char *content = json_string_value(json_object_get(t, "content"));
        json_int_t id = json_integer_value(json_object_get(t, "id"));
        if (!content || !*content || id < 0 || id > INT32_MAX)
            return vd_error_set(err, VD_ERR_INVALID, "%s: added_tokens[%zu]: no content or id",
                                name, i);
        if (!(b->added[b->n_added].content = strdup(content)))
            return vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", name);
        b->added[b->n_added].len = strlen(content);
        b->added[b->n_added++].id = (int32_t)id;
    }
    qsort(b->added, b->n_added, sizeof *b->added, by_length_desc);
    return VD_OK;
}

/* The start and end ids: from the post-processor's cls/sep when it is a
 * RobertaProcessing or BertProcessing, else CLIP's token names. */
static vd_status read_frame(vd_bpe *b, json_t *post, const char *name, vd_error *err)
{
    json_t *cls = json_object_get(post, "cls"), *sep = json_object_get(post, "sep");
    if ((is_type(post, "RobertaProcessing") || is_type(post, "BertProcessing")) &&
        json_is_array(cls) && json_is_array(sep)) {
        b->start_id = (int32_t)json_integer_value(json_array_get(cls, 1));
        b->end_id = (int32_t)json_integer_value(json_array_get(sep, 1));
    } else {
        b->start_id = bpe_map_get(&b->vocab, "<|startoftext|>", 15);
        b->end_id = bpe_map_get(&b->vocab, "<|endoftext|>", 13);
    }
    if (b->start_id < 0 || b->end_id < 0)
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "%s: no start and end tokens (post_processor cls/sep, or "
                            "<|startoftext|> and <|endoftext|> in the vocabulary)",
                            name);
    return VD_OK;
}

vd_status vd_bpe_load_buffer(const char *json, size_t len, const char *name, vd_bpe **out,
                             vd_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root)
        return vd_error_set(err, VD_ERR_INVALID, "%s: not JSON (line %d: %s)", name, je.line,
                            je.text);
    vd_bpe *b = calloc(1, sizeof *b);
    vd_status st = b ? VD_OK : vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", name);
    if (st == VD_OK) st = read_model(b, json_object_get(root, "model"), name, err);
    if (st == VD_OK) st = check_normalizer(json_object_get(root, "normalizer"), name, err);
    if (st == VD_OK) st = check_pre_tokenizer(json_object_get(root, "pre_tokenizer"), name, err);
    if (st == VD_OK) st = read_added(b, json_object_get(root, "added_tokens"), name, err);
    if (st == VD_OK) st = read_frame(b, json_object_get(root, "post_processor"), name, err);
    json_decref(root);
    if (st != VD_OK) {
        vd_bpe_free(b);
        return st;
    }
    bpe_byte_alphabet(b);
    *out = b;
    return VD_OK;
}

/* Reads the whole file (at most 256 MiB) into *buf (caller frees). */
static vd_status read_whole(const char *path, char **buf, size_t *n, vd_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vd_error_set(err, VD_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    vd_status st = VD_OK;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (256 << 20))
        st = vd_error_set(err, VD_ERR_IO, "%s: not a regular file of at most 256 MiB", path);
    else if (!(*buf = malloc((size_t)sb.st_size + 1)))
        st = vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", path);
    else if ((*n = fread(*buf, 1, (size_t)sb.st_size, f)) != (size_t)sb.st_size)
        st = vd_error_set(err, VD_ERR_IO, "%s: short read", path);
    fclose(f);
    return st;
}

vd_status vd_bpe_load(const char *path, vd_bpe **out, vd_error *err)
{
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    vd_status st = read_whole(path, &buf, &n, err);
    if (st == VD_OK) st = vd_bpe_load_buffer(buf, n, path, out, err);
    free(buf);
    return st;
}

void vd_bpe_free(vd_bpe *b)
{
    if (!b) return;
    bpe_map_free(&b->vocab);
    bpe_map_free(&b->merges);
    for (size_t i = 0; i < b->n_added; i++)
        free(b->added[i].content);
    free(b->added);
    free(b);
}

int32_t vd_bpe_token_id(const vd_bpe *b, const char *token)
{
    return bpe_map_get(&b->vocab, token, strlen(token));
}

int32_t vd_bpe_start_id(const vd_bpe *b)
{
    return b->start_id;
}
int32_t vd_bpe_end_id(const vd_bpe *b)
{
    return b->end_id;
}
