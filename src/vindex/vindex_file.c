/* vindex_file.c: the index file (docs/vindex.md, "File format"): a 56-byte
 * header, then ids, live flags, vectors and (approximate kind) the HNSW graph,
 * with a 64-bit checksum over the header and body. Written atomically (temp
 * file, fsync, rename, fsync of the directory); read with mmap and checked
 * field by field before anything is built from it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "vindex/vindex_int.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the vindex file format is little-endian; this host is not"
#endif

#define MAGIC       "VDVINDEX"
#define VERSION     1u
#define HEADER_LEN  56u
#define HASHED_HEAD 48u /* the header bytes the checksum covers (all but itself) */
#define MAX_SLOTS   ((uint64_t)UINT32_MAX - 1)

/* ---- checksum: 64-bit words, rotate-xor-multiply, streamed ---- */

typedef struct {
    uint64_t h;
    unsigned char buf[8];
    size_t nb;
} hasher;

static uint64_t hash_word(uint64_t h, uint64_t w)
{
    h = ((h << 31) | (h >> 33)) ^ w;
    return h * 0x9e3779b97f4a7c15ULL;
}

static void hash_feed(hasher *hs, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0 && hs->nb > 0 && hs->nb < 8) {
        hs->buf[hs->nb++] = *p++;
        n--;
        if (hs->nb == 8) {
            uint64_t w;
            memcpy(&w, hs->buf, 8);
            hs->h = hash_word(hs->h, w);
            hs->nb = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        hs->h = hash_word(hs->h, w);
    }
    while (n-- > 0)
        hs->buf[hs->nb++] = *p++;
}

static uint64_t hash_final(hasher *hs)
{
    uint64_t w = 0;
    memcpy(&w, hs->buf, hs->nb);
    uint64_t h = hash_word(hs->h, w ^ ((uint64_t)hs->nb << 56));
    return h ^ (h >> 29);
}

/* ---- layout ---- */

typedef struct {
    uint32_t kind, dim;
    uint64_t seq, nslots, graph_len;
} header;

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Body length for a header, or 0 with *ok = 0 when it overflows. */
static size_t body_len(const header *h, int *ok)
{
    size_t n = (size_t)h->nslots, d = h->dim;
    *ok = h->nslots <= MAX_SLOTS && h->graph_len <= SIZE_MAX / 2 &&
          n <= (SIZE_MAX / 2 - (size_t)h->graph_len) / (4 * d + 16);
    return *ok ? n * 8 + pad8(n) + n * d * 4 + (size_t)h->graph_len : 0;
}

static void header_bytes(const header *h, unsigned char out[HEADER_LEN])
{
    uint32_t version = VERSION, zero = 0;
    memset(out, 0, HEADER_LEN);
    memcpy(out, MAGIC, 8);
    memcpy(out + 8, &version, 4);
    memcpy(out + 12, &h->kind, 4);
    memcpy(out + 16, &h->dim, 4);
    memcpy(out + 20, &zero, 4);
    memcpy(out + 24, &h->seq, 8);
    memcpy(out + 32, &h->nslots, 8);
    memcpy(out + 40, &h->graph_len, 8);
}

/* ---- writing ---- */

typedef struct {
    int fd;
    hasher hs;
    size_t n;
    int failed;
    unsigned char buf[1 << 16];
} writer;

static void w_flush(writer *w)
{
    size_t off = 0;
    while (!w->failed && off < w->n) {
        ssize_t k = write(w->fd, w->buf + off, w->n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            w->failed = errno ? errno : EIO;
        else
            off += (size_t)k;
    }
    w->n = 0;
}

static void w_put(writer *w, const void *data, size_t len)
{
    const unsigned char *p = data;
    hash_feed(&w->hs, p, len);
    while (len > 0) {
        size_t room = sizeof w->buf - w->n, k = len < room ? len : room;
        memcpy(w->buf + w->n, p, k);
        w->n += k;
        p += k;
        len -= k;
        if (w->n == sizeof w->buf) w_flush(w);
    }
}

/* Writes the body of ix; graph (graph_len bytes) for the approximate kind. */
static void write_body(writer *w, const vd_vindex *ix, const unsigned char *graph, size_t graph_len,
                       size_t nslots)
{
    static const unsigned char zeros[8];
    size_t dim = (size_t)ix->dim;
    if (ix->kind == VD_VINDEX_EXACT) {
        w_put(w, ix->ids, nslots * 8);
        for (size_t i = 0; i < nslots; i++)
            w_put(w, "\1", 1);
        w_put(w, zeros, pad8(nslots) - nslots);
        w_put(w, ix->mat, nslots * dim * 4);
        return;
    }
    int64_t id;
    const float *v;
    for (size_t i = 0; i < nslots; i++) {
        vd_hnsw_slot(ix->hnsw, i, &id, &v);
        w_put(w, &id, 8);
    }
    for (size_t i = 0; i < nslots; i++) {
        unsigned char live = (unsigned char)vd_hnsw_slot(ix->hnsw, i, &id, &v);
        w_put(w, &live, 1);
    }
    w_put(w, zeros, pad8(nslots) - nslots);
    for (size_t i = 0; i < nslots; i++) {
        vd_hnsw_slot(ix->hnsw, i, &id, &v);
        w_put(w, v, dim * 4);
    }
    w_put(w, graph, graph_len);
}

static vd_status fsync_dir_of(const char *path, vd_error *err)
{
    char *copy = vd_strdup(path);
    if (!copy) return vd_error_set(err, VD_ERR_NOMEM, "vindex: out of memory");
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    vd_status st = VD_OK;
    if (fd < 0 || fsync(fd) != 0)
        st = vd_error_set(err, VD_ERR_IO, "vindex: fsync of the directory of %s: %s", path,
                          strerror(errno));
    if (fd >= 0) close(fd);
    free(copy);
    return st;
}

vd_status vd_vindex_save(const vd_vindex *ix, const char *path, uint64_t seq, vd_error *err)
{
    size_t nslots = ix->kind == VD_VINDEX_EXACT ? ix->n : vd_hnsw_slots(ix->hnsw);
    size_t glen = ix->kind == VD_VINDEX_EXACT ? 0 : vd_hnsw_graph_size(ix->hnsw);
    unsigned char *graph = glen ? malloc(glen) : NULL;
    size_t plen = strlen(path) + 16;
    char *tmp = malloc(plen);
    writer *w = malloc(sizeof *w);
    vd_status st = VD_OK;
    if ((glen && !graph) || !tmp || !w) {
        st = vd_error_set(err, VD_ERR_NOMEM, "vindex: save buffers");
        goto out;
    }
    if (graph) vd_hnsw_graph_write(ix->hnsw, graph);
    snprintf(tmp, plen, "%s.tmpXXXXXX", path);
    *w = (writer){.fd = mkostemp(tmp, O_CLOEXEC)};
    if (w->fd < 0) {
        st = vd_error_set(err, VD_ERR_IO, "vindex: create %s: %s", tmp, strerror(errno));
        goto out;
    }
    header h = {(uint32_t)ix->kind, (uint32_t)ix->dim, seq, nslots, glen};
    unsigned char head[HEADER_LEN];
    header_bytes(&h, head);
    hash_feed(&w->hs, head, HASHED_HEAD);
    if (lseek(w->fd, HEADER_LEN, SEEK_SET) < 0) w->failed = errno;
    write_body(w, ix, graph, glen, nslots);
    w_flush(w);
    uint64_t sum = hash_final(&w->hs);
    memcpy(head + HASHED_HEAD, &sum, 8);
    if (!w->failed && pwrite(w->fd, head, HEADER_LEN, 0) != (ssize_t)HEADER_LEN)
        w->failed = errno ? errno : EIO;
    if (!w->failed && fsync(w->fd) != 0) w->failed = errno;
    if (close(w->fd) != 0 && !w->failed) w->failed = errno;
    if (!w->failed && rename(tmp, path) != 0) w->failed = errno;
    if (w->failed) {
        unlink(tmp);
        st = vd_error_set(err, w->failed == ENOSPC ? VD_ERR_NOSPACE : VD_ERR_IO,
                          "vindex: write %s: %s", path, strerror(w->failed));
        goto out;
    }
    st = fsync_dir_of(path, err);
out:
    free(graph);
    free(tmp);
    free(w);
    return st;
}

/* ---- reading ---- */

uint64_t vd_vindex_file_checksum(const void *file, size_t len)
{
    hasher hs = {0};
    if (len < HEADER_LEN) return 0;
    hash_feed(&hs, file, HASHED_HEAD);
    hash_feed(&hs, (const unsigned char *)file + HEADER_LEN, len - HEADER_LEN);
    return hash_final(&hs);
}

static vd_status corrupt(vd_error *err, const char *why)
{
    return vd_error_set(err, VD_ERR_INVALID, "vindex file: %s", why);
}

static vd_status parse_header(const unsigned char *p, size_t len, header *h, vd_error *err)
{
    uint32_t version, reserved;
    uint64_t sum;
    int ok;
    if (len < HEADER_LEN) return corrupt(err, "shorter than its header");
    if (memcmp(p, MAGIC, 8) != 0) return corrupt(err, "not a vindex file (magic)");
    memcpy(&version, p + 8, 4);
    memcpy(&h->kind, p + 12, 4);
    memcpy(&h->dim, p + 16, 4);
    memcpy(&reserved, p + 20, 4);
    memcpy(&h->seq, p + 24, 8);
    memcpy(&h->nslots, p + 32, 8);
    memcpy(&h->graph_len, p + 40, 8);
    memcpy(&sum, p + 48, 8);
    if (version != VERSION)
        return vd_error_set(err, VD_ERR_INVALID, "vindex file: version %u, this build reads %u",
                            version, VERSION);
    if (h->kind > VD_VINDEX_APPROX || reserved != 0) return corrupt(err, "bad kind");
    if (h->dim < 1 || h->dim > VD_VINDEX_MAX_DIM) return corrupt(err, "bad dimension");
    if (h->kind == VD_VINDEX_EXACT && h->graph_len != 0) return corrupt(err, "graph in exact");
    size_t blen = body_len(h, &ok);
    if (!ok || len - HEADER_LEN != blen) return corrupt(err, "truncated, or sizes do not match");
    if (vd_vindex_file_checksum(p, len) != sum) return corrupt(err, "checksum mismatch");
    return VD_OK;
}

static vd_status load_exact(const header *h, const unsigned char *ids, const unsigned char *live,
                            const unsigned char *vecs, vd_vindex *ix, vd_error *err)
{
    size_t dim = h->dim, n = (size_t)h->nslots;
    vd_status st = vd_exact_reserve(ix, n, err);
    float *row = malloc(dim * sizeof(float));
    if (st == VD_OK && !row) st = vd_error_set(err, VD_ERR_NOMEM, "vindex: out of memory");
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        int64_t id;
        memcpy(&id, ids + i * 8, 8);
        memcpy(row, vecs + i * dim * 4, dim * 4);
        if (live[i] != 1 || vd_exact_contains(ix, id))
            st = corrupt(err, "bad row");
        else if (vd_vindex_check(ix, row, dim, NULL) != VD_OK)
            st = corrupt(err, "bad vector");
        else
            st = vd_exact_put(ix, id, row, err);
    }
    free(row);
    return st;
}

static vd_status load_approx(const header *h, const unsigned char *ids, const unsigned char *live,
                             const unsigned char *vecs, vd_vindex *ix, vd_error *err)
{
    size_t dim = h->dim, n = (size_t)h->nslots;
    int64_t *labels = malloc((n ? n : 1) * sizeof(int64_t));
    float *v = malloc((n ? n : 1) * dim * sizeof(float));
    vd_status st = VD_OK;
    if (!labels || !v) st = vd_error_set(err, VD_ERR_NOMEM, "vindex: out of memory");
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        memcpy(&labels[i], ids + i * 8, 8);
        memcpy(v + i * dim, vecs + i * dim * 4, dim * 4);
        if (live[i] > 1)
            st = corrupt(err, "bad live flag");
        else if (vd_vindex_check(ix, v + i * dim, dim, NULL) != VD_OK)
            st = corrupt(err, "bad vector");
    }
    if (st == VD_OK) {
        char msg[256] = "";
        vd_hnsw *g = NULL;
        int rc =
            vd_hnsw_from_graph((int)dim, VD_VINDEX_HNSW_M, VD_VINDEX_HNSW_EFC, ix->ef, n, labels, v,
                               live, vecs + n * dim * 4, (size_t)h->graph_len, &g, msg);
        if (rc == -1)
            st = vd_error_set(err, VD_ERR_NOMEM, "vindex: %s", msg);
        else if (rc != 0)
            st = vd_error_set(err, VD_ERR_INVALID, "vindex file: %s", msg);
        else {
            vd_hnsw_free(ix->hnsw);
            ix->hnsw = g;
        }
    }
    free(labels);
    free(v);
    return st;
}

vd_status vd_vindex_load_buffer(const void *buf, size_t len, vd_vindex **out, uint64_t *seq,
                                vd_error *err)
{
    const unsigned char *p = buf;
    header h = {0};
    *out = NULL;
    vd_status st = parse_header(p, len, &h, err);
    if (st != VD_OK) return st;
    vd_vindex *ix = NULL;
    if ((st = vd_vindex_new((int)h.dim, (vd_vindex_kind)h.kind, &ix, err)) != VD_OK) return st;
    size_t n = (size_t)h.nslots;
    const unsigned char *ids = p + HEADER_LEN, *live = ids + n * 8, *vecs = live + pad8(n);
    st = h.kind == VD_VINDEX_EXACT ? load_exact(&h, ids, live, vecs, ix, err)
                                   : load_approx(&h, ids, live, vecs, ix, err);
    if (st != VD_OK) {
        vd_vindex_free(ix);
        return st;
    }
    if (seq) *seq = h.seq;
    *out = ix;
    return VD_OK;
}

vd_status vd_vindex_load(const char *path, vd_vindex **out, uint64_t *seq, vd_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vd_error_set(err, errno == ENOENT ? VD_ERR_NOT_FOUND : VD_ERR_IO,
                            "vindex: open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return vd_error_set(err, VD_ERR_IO, "vindex: %s is not a readable file", path);
    }
    if (sb.st_size < (off_t)HEADER_LEN) {
        close(fd);
        return corrupt(err, "shorter than its header");
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return vd_error_set(err, VD_ERR_IO, "vindex: map %s: %s", path, strerror(errno));
    vd_status st = vd_vindex_load_buffer(map, (size_t)sb.st_size, out, seq, err);
    munmap(map, (size_t)sb.st_size);
    return st;
}
