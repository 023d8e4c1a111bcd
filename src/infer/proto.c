/* proto.c: frames, tensors and names on the model server's wire. */
#include "infer/proto.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define VD_BIG_ENDIAN 1
#else
#define VD_BIG_ENDIAN 0
#endif

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

vd_status vd_buf_reserve(vd_buf *b, size_t n)
{
    if (b->cap - b->len >= n) return VD_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) return VD_ERR_NOMEM;
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) return VD_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
    return VD_OK;
}

vd_status vd_buf_put(vd_buf *b, const void *p, size_t n)
{
    if (vd_buf_reserve(b, n) != VD_OK) return VD_ERR_NOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return VD_OK;
}

void vd_buf_free(vd_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void vd_infer_result_free(vd_infer_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < VD_MODEL_MAX_OUTPUT; i++)
        vd_tensor_free(&r->outputs[i]);
    memset(r, 0, sizeof *r);
}

void vd_proto_header_encode(const vd_proto_header *h, uint8_t *out)
{
    put_u32(out, VD_PROTO_MAGIC);
    put_u16(out + 4, h->version ? h->version : VD_PROTO_VERSION);
    put_u16(out + 6, h->op);
    put_u32(out + 8, h->length);
    put_u32(out + 12, h->aux);
    put_u64(out + 16, h->id);
}

vd_status vd_proto_header_decode(const uint8_t *in, uint32_t max_payload, vd_proto_header *h,
                                 vd_error *err)
{
    memset(h, 0, sizeof *h);
    uint32_t magic = get_u32(in);
    h->version = get_u16(in + 4);
    h->op = get_u16(in + 6);
    h->length = get_u32(in + 8);
    h->aux = get_u32(in + 12);
    h->id = get_u64(in + 16);
    if (magic != VD_PROTO_MAGIC)
        return vd_error_set(err, VD_ERR_PROTOCOL,
                            "bad frame magic 0x%08x (want \"VDMS\"): not a visiond model-server "
                            "client",
                            magic);
    if (h->version < VD_PROTO_VERSION || h->version > VD_PROTO_VERSION_MAX)
        return vd_error_set(err, VD_ERR_PROTOCOL,
                            "protocol version %u is not supported (this side speaks %d to %d)",
                            h->version, VD_PROTO_VERSION, VD_PROTO_VERSION_MAX);
    if (h->length > max_payload)
        return vd_error_set(err, VD_ERR_LIMIT, "frame payload of %u bytes exceeds the limit of %u",
                            h->length, max_payload);
    return VD_OK;
}

/* Appends a header with a length to be patched by end_frame. */
static vd_status begin_frame(vd_buf *out, uint16_t op, uint64_t id, uint32_t aux, size_t *start)
{
    *start = out->len;
    vd_proto_header h = {VD_PROTO_VERSION, op, 0, aux, id};
    if (vd_buf_reserve(out, VD_PROTO_HEADER_LEN) != VD_OK) return VD_ERR_NOMEM;
    vd_proto_header_encode(&h, out->data + out->len);
    out->len += VD_PROTO_HEADER_LEN;
    return VD_OK;
}

/* Patches the payload length: what out holds past the header, plus `more` bytes the caller
 * sends after it (a tensor's data, written from where it lies). */
static vd_status end_frame_plus(vd_buf *out, size_t start, size_t more, vd_error *err)
{
    size_t n = out->len - start - VD_PROTO_HEADER_LEN;
    if (more > UINT32_MAX || n > UINT32_MAX - more) {
        out->len = start;
        return vd_error_set(err, VD_ERR_LIMIT, "frame payload of %zu bytes is too large",
                            more > UINT32_MAX ? more : n + more);
    }
    put_u32(out->data + start + 8, (uint32_t)(n + more));
    return VD_OK;
}

static vd_status end_frame(vd_buf *out, size_t start, vd_error *err)
{
    size_t n = out->len - start - VD_PROTO_HEADER_LEN;
    if (n > UINT32_MAX) {
        out->len = start;
        return vd_error_set(err, VD_ERR_LIMIT, "frame payload of %zu bytes is too large", n);
    }
    put_u32(out->data + start + 8, (uint32_t)n);
    return VD_OK;
}

vd_status vd_proto_frame(vd_buf *out, uint16_t op, uint64_t id, uint32_t aux, const void *payload,
                         size_t n, vd_error *err)
{
    size_t start;
    if (begin_frame(out, op, id, aux, &start) != VD_OK || vd_buf_put(out, payload, n) != VD_OK) {
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    return end_frame(out, start, err);
}

static vd_status put_name(vd_buf *out, const char *name, size_t max, vd_error *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > max)
        return vd_error_set(err, VD_ERR_INVALID, "name must be 1-%zu bytes, got %zu", max, n);
    uint8_t len = (uint8_t)n;
    if (vd_buf_put(out, &len, 1) != VD_OK || vd_buf_put(out, name, n) != VD_OK)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    return VD_OK;
}

static uint8_t wire_dtype(vd_dtype d)
{
    return d == VD_DTYPE_INT32   ? VD_PROTO_DTYPE_INT32
           : d == VD_DTYPE_INT64 ? VD_PROTO_DTYPE_INT64
                                 : VD_PROTO_DTYPE_FLOAT32;
}

/* Appends a tensor; with data_len, only its header and shape: *data_len is then the size of
 * its data, to be sent from t itself (little-endian hosts only: the wire is little-endian). */
static vd_status put_tensor_head(vd_buf *out, const vd_tensor *t, size_t *data_len, vd_error *err)
{
    if (t->rank > VD_TENSOR_MAX_RANK)
        return vd_error_set(err, VD_ERR_INVALID, "tensor rank %zu exceeds %d", t->rank,
                            VD_TENSOR_MAX_RANK);
    uint8_t hdr[4] = {wire_dtype(t->dtype), (uint8_t)t->rank, 0, 0};
    if (vd_buf_put(out, hdr, 4) != VD_OK) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < t->rank; i++) {
        if (t->shape[i] < 0 || t->shape[i] > UINT32_MAX)
            return vd_error_set(err, VD_ERR_INVALID, "tensor dim %zu (%lld) does not fit the wire",
                                i, (long long)t->shape[i]);
        uint8_t d[4];
        put_u32(d, (uint32_t)t->shape[i]);
        if (vd_buf_put(out, d, 4) != VD_OK) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    size_t n = vd_tensor_count(t), esz = vd_dtype_size(t->dtype);
    if (n && !t->raw) return vd_error_set(err, VD_ERR_INVALID, "tensor has no data");
    if (n > SIZE_MAX / esz) return vd_error_set(err, VD_ERR_LIMIT, "tensor too large");
    if (data_len) {
        *data_len = n * esz;
        return VD_OK;
    }
    if (n > (SIZE_MAX - out->len) / esz || vd_buf_reserve(out, n * esz) != VD_OK)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
#if VD_BIG_ENDIAN
    for (size_t i = 0; i < n; i++) {
        if (esz == 8) {
            put_u64(out->data + out->len + 8 * i, (uint64_t)t->i64[i]);
        } else {
            uint32_t v;
            memcpy(&v, (const uint8_t *)t->raw + 4 * i, 4);
            put_u32(out->data + out->len + 4 * i, v);
        }
    }
#else
    if (n) memcpy(out->data + out->len, t->raw, n * esz);
#endif
    out->len += n * esz;
    return VD_OK;
}

static vd_status put_tensor(vd_buf *out, const vd_tensor *t, vd_error *err)
{
    return put_tensor_head(out, t, NULL, err);
}

/* A bounded reader over a payload. */
typedef struct {
    const uint8_t *p;
    size_t len, off;
} reader;

static int rd_need(reader *r, size_t n)
{
    return r->len - r->off >= n;
}

static vd_status get_name(reader *r, char *dst, size_t dstsz, const char *what, vd_error *err)
{
    if (!rd_need(r, 1)) return vd_error_set(err, VD_ERR_PROTOCOL, "truncated payload: no %s", what);
    size_t n = r->p[r->off++];
    if (n == 0 || n >= dstsz)
        return vd_error_set(err, VD_ERR_PROTOCOL, "%s length %zu is out of range 1-%zu", what, n,
                            dstsz - 1);
    if (!rd_need(r, n))
        return vd_error_set(err, VD_ERR_PROTOCOL, "truncated payload inside the %s", what);
    memcpy(dst, r->p + r->off, n);
    dst[n] = 0;
    r->off += n;
    if (strlen(dst) != n) return vd_error_set(err, VD_ERR_PROTOCOL, "%s contains a NUL byte", what);
    return VD_OK;
}

/* Reads a tensor's header and shape into *v (no data: raw stays NULL). */
static vd_status get_tensor_head(reader *r, vd_tensor *v, vd_error *err)
{
    memset(v, 0, sizeof *v);
    if (!rd_need(r, 4))
        return vd_error_set(err, VD_ERR_PROTOCOL, "truncated payload: no tensor header");
    uint8_t dtype = r->p[r->off], rank = r->p[r->off + 1];
    r->off += 4;
    vd_dtype dt = dtype == VD_PROTO_DTYPE_INT32   ? VD_DTYPE_INT32
                  : dtype == VD_PROTO_DTYPE_INT64 ? VD_DTYPE_INT64
                                                  : VD_DTYPE_FLOAT32;
    if (dtype != VD_PROTO_DTYPE_FLOAT32 && dtype != VD_PROTO_DTYPE_INT32 &&
        dtype != VD_PROTO_DTYPE_INT64)
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "tensor dtype %u is not supported (1 = float32, 6 = int32, 7 = int64)",
                            dtype);
    if (rank > VD_TENSOR_MAX_RANK)
        return vd_error_set(err, VD_ERR_PROTOCOL, "tensor rank %u exceeds %d", rank,
                            VD_TENSOR_MAX_RANK);
    if (!rd_need(r, (size_t)rank * 4))
        return vd_error_set(err, VD_ERR_PROTOCOL, "truncated payload inside the tensor shape");
    for (size_t i = 0; i < rank; i++) {
        v->shape[i] = get_u32(r->p + r->off);
        r->off += 4;
    }
    v->rank = rank;
    v->dtype = dt;
    return VD_OK;
}

/* Reads a tensor's header and locates its data without copying it: *v's raw points into the
 * payload (not owned) and r is moved past the data. */
static vd_status get_tensor_view(reader *r, vd_tensor *v, vd_error *err)
{
    vd_status rc = get_tensor_head(r, v, err);
    if (rc != VD_OK) return rc;
    size_t rank = v->rank, esz = vd_dtype_size(v->dtype);
    size_t avail = (r->len - r->off) / esz, count = 1;
    int zero = 0, too_big = 0;
    for (size_t i = 0; i < rank; i++) {
        if (v->shape[i] == 0)
            zero = 1;
        else if (count > avail / (size_t)v->shape[i])
            too_big = 1;
        else
            count *= (size_t)v->shape[i];
    }
    if (zero)
        count = 0;
    else if (too_big || count > avail)
        return vd_error_set(err, VD_ERR_PROTOCOL,
                            "tensor data truncated: the shape needs more values than the %zu "
                            "bytes left in the frame",
                            r->len - r->off);
    v->raw = (void *)(uintptr_t)(r->p + r->off);
    r->off += count * esz;
    return VD_OK;
}

/* Copies a view's data (wire order) into a tensor of its own. */
static vd_status own_copy(const vd_tensor *v, vd_tensor *t, vd_error *err)
{
    vd_status rc = vd_tensor_alloc_uninit(t, v->dtype, v->shape, v->rank, err);
    if (rc != VD_OK) return rc;
    size_t count = vd_tensor_count(v), esz = vd_dtype_size(v->dtype);
    const uint8_t *src = v->raw;
#if VD_BIG_ENDIAN
    for (size_t i = 0; i < count; i++) {
        if (esz == 8) {
            t->i64[i] = (int64_t)get_u64(src + 8 * i);
        } else {
            uint32_t u = get_u32(src + 4 * i);
            memcpy((uint8_t *)t->raw + 4 * i, &u, 4);
        }
    }
#else
    if (count) memcpy(t->raw, src, count * esz);
#endif
    return VD_OK;
}

static vd_status get_tensor(reader *r, vd_tensor *t, vd_error *err)
{
    vd_tensor v;
    memset(t, 0, sizeof *t);
    vd_status rc = get_tensor_view(r, &v, err);
    return rc == VD_OK ? own_copy(&v, t, err) : rc;
}

/* Both encoders of a request: with data_len, the tensor's data is left out of out. */
static vd_status encode_infer(vd_buf *out, uint64_t id, uint32_t timeout_ms, const char *model,
                              const vd_tensor *input, size_t *data_len, vd_error *err)
{
    size_t start, keep = out->len, more = 0;
    if (begin_frame(out, VD_OP_INFER, id, timeout_ms, &start) != VD_OK)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    /* the lowest version that carries it: float32 requests stay readable by version-1 servers */
    if (input->dtype != VD_DTYPE_FLOAT32) put_u16(out->data + start + 4, 2);
    vd_status rc = put_name(out, model, VD_MODEL_NAME_MAX - 1, err);
    if (rc == VD_OK) rc = put_tensor_head(out, input, data_len ? &more : NULL, err);
    if (rc == VD_OK) rc = end_frame_plus(out, start, more, err);
    if (rc != VD_OK) out->len = keep;
    if (data_len) *data_len = rc == VD_OK ? more : 0;
    return rc;
}

vd_status vd_proto_encode_infer(vd_buf *out, uint64_t id, uint32_t timeout_ms, const char *model,
                                const vd_tensor *input, vd_error *err)
{
    return encode_infer(out, id, timeout_ms, model, input, NULL, err);
}

vd_status vd_proto_encode_infer_split(vd_buf *out, uint64_t id, uint32_t timeout_ms,
                                      const char *model, const vd_tensor *input, const void **data,
                                      size_t *data_len, vd_error *err)
{
    *data = NULL;
    if (VD_BIG_ENDIAN) { /* the data needs its bytes swapped: all of it goes into out */
        *data_len = 0;
        return encode_infer(out, id, timeout_ms, model, input, NULL, err);
    }
    vd_status rc = encode_infer(out, id, timeout_ms, model, input, data_len, err);
    if (rc == VD_OK) *data = input->raw;
    return rc;
}

size_t vd_proto_infer_data_offset(const uint8_t *p, size_t n)
{
    if (n < 1) return 0;
    size_t name = p[0], at = 1 + name; /* the tensor header: dtype, rank, 2 spare */
    if (name == 0 || name >= VD_MODEL_NAME_MAX || n < at + 2) return 0;
    size_t rank = p[at + 1];
    if (rank > VD_TENSOR_MAX_RANK) return 0;
    return at + 4 + 4 * rank;
}

/* The decoder of both: with block, the tensor may take it instead of a copy. */
static vd_status decode_infer(uint8_t **block, const uint8_t *payload, size_t len, char *model,
                              vd_tensor *input, vd_error *err)
{
    reader r = {payload, len, 0};
    vd_tensor v;
    memset(input, 0, sizeof *input);
    vd_status rc = get_name(&r, model, VD_MODEL_NAME_MAX, "model name", err);
    if (rc == VD_OK) rc = get_tensor_view(&r, &v, err);
    if (rc == VD_OK && r.off != r.len)
        rc = vd_error_set(err, VD_ERR_PROTOCOL, "%zu unexpected bytes after the tensor",
                          r.len - r.off);
    if (rc != VD_OK) return rc;
    if (!VD_BIG_ENDIAN && block && *block && (uintptr_t)v.raw % vd_dtype_size(v.dtype) == 0) {
        *input = v;
        input->block = *block; /* the data stays where it was received */
        *block = NULL;
        return VD_OK;
    }
    return own_copy(&v, input, err);
}

vd_status vd_proto_decode_infer(const uint8_t *payload, size_t len, char *model, vd_tensor *input,
                                vd_error *err)
{
    return decode_infer(NULL, payload, len, model, input, err);
}

vd_status vd_proto_decode_infer_take(uint8_t **block, const uint8_t *payload, size_t len,
                                     char *model, vd_tensor *input, vd_error *err)
{
    return decode_infer(block, payload, len, model, input, err);
}

vd_status vd_proto_encode_infer_ref(vd_buf *out, uint64_t id, uint32_t timeout_ms,
                                    const char *model, const vd_tensor *input, uint64_t offset,
                                    vd_error *err)
{
    size_t start, keep = out->len, data_len = 0;
    if (begin_frame(out, VD_OP_INFER_SHM, id, timeout_ms, &start) != VD_OK)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (input->dtype != VD_DTYPE_FLOAT32) put_u16(out->data + start + 4, 2);
    uint8_t off[8];
    put_u64(off, offset);
    vd_status rc = put_name(out, model, VD_MODEL_NAME_MAX - 1, err);
    if (rc == VD_OK) rc = put_tensor_head(out, input, &data_len, err);
    if (rc == VD_OK && vd_buf_put(out, off, sizeof off) != VD_OK)
        rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (rc == VD_OK) rc = end_frame(out, start, err);
    if (rc != VD_OK) out->len = keep;
    return rc;
}

vd_status vd_proto_decode_infer_ref(const uint8_t *payload, size_t len, char *model,
                                    vd_tensor *input, uint64_t *offset, uint64_t *bytes,
                                    vd_error *err)
{
    reader r = {payload, len, 0};
    *offset = *bytes = 0;
    memset(input, 0, sizeof *input);
    vd_status rc = get_name(&r, model, VD_MODEL_NAME_MAX, "model name", err);
    if (rc == VD_OK) rc = get_tensor_head(&r, input, err);
    if (rc != VD_OK) return rc;
    if (r.len - r.off != 8)
        return vd_error_set(
            err, VD_ERR_PROTOCOL,
            "an INFER_SHM payload ends with the data's 8-byte offset, not %zu bytes",
            r.len - r.off);
    *offset = get_u64(r.p + r.off);
    uint64_t n = vd_dtype_size(input->dtype);
    for (size_t i = 0; i < input->rank && n; i++) {
        if ((uint64_t)input->shape[i] > (UINT64_MAX >> 1) / n)
            return vd_error_set(err, VD_ERR_PROTOCOL, "tensor shape of more than 2^63 bytes");
        n *= (uint64_t)input->shape[i];
    }
    *bytes = n;
    return VD_OK;
}

vd_status vd_proto_encode_attach(vd_buf *out, uint64_t id, uint64_t size, vd_error *err)
{
    uint8_t p[8];
    put_u64(p, size);
    return vd_proto_frame(out, VD_OP_ATTACH, id, 0, p, sizeof p, err);
}

vd_status vd_proto_decode_attach(const uint8_t *payload, size_t len, uint64_t *size, vd_error *err)
{
    *size = 0;
    if (len != 8)
        return vd_error_set(err, VD_ERR_PROTOCOL, "an ATTACH payload is its 8-byte size, not %zu",
                            len);
    *size = get_u64(payload);
    return VD_OK;
}

vd_status vd_proto_encode_name(vd_buf *out, uint16_t op, uint64_t id, uint32_t timeout_ms,
                               const char *model, vd_error *err)
{
    size_t start, keep = out->len;
    if (begin_frame(out, op, id, timeout_ms, &start) != VD_OK)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_status rc = put_name(out, model, VD_MODEL_NAME_MAX - 1, err);
    if (rc == VD_OK) rc = end_frame(out, start, err);
    if (rc != VD_OK) out->len = keep;
    return rc;
}

vd_status vd_proto_decode_name(const uint8_t *payload, size_t len, char *model, vd_error *err)
{
    reader r = {payload, len, 0};
    vd_status rc = get_name(&r, model, VD_MODEL_NAME_MAX, "model name", err);
    if (rc == VD_OK && r.off != r.len)
        rc = vd_error_set(err, VD_ERR_PROTOCOL, "%zu unexpected bytes after the model name",
                          r.len - r.off);
    return rc;
}

vd_status vd_proto_encode_outputs(vd_buf *out, uint64_t id, size_t n, const char *const *names,
                                  const vd_tensor *const *tensors, vd_error *err)
{
    if (n > VD_MODEL_MAX_OUTPUT)
        return vd_error_set(err, VD_ERR_LIMIT, "%zu outputs exceed the limit of %d", n,
                            VD_MODEL_MAX_OUTPUT);
    size_t start, keep = out->len;
    if (begin_frame(out, VD_OP_INFER, id, VD_OK, &start) != VD_OK)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    uint8_t hdr[4] = {(uint8_t)n, 0, 0, 0};
    vd_status rc =
        vd_buf_put(out, hdr, 4) ? vd_error_set(err, VD_ERR_NOMEM, "out of memory") : VD_OK;
    for (size_t i = 0; i < n && rc == VD_OK; i++) {
        rc = put_name(out, names[i], VD_PROTO_OUTPUT_NAME_MAX - 1, err);
        if (rc == VD_OK) rc = put_tensor(out, tensors[i], err);
    }
    if (rc == VD_OK) rc = end_frame(out, start, err);
    if (rc != VD_OK) out->len = keep;
    return rc;
}

vd_status vd_proto_decode_outputs(const uint8_t *payload, size_t len, vd_infer_result *res,
                                  vd_error *err)
{
    memset(res, 0, sizeof *res);
    reader r = {payload, len, 0};
    if (!rd_need(&r, 4))
        return vd_error_set(err, VD_ERR_PROTOCOL, "truncated payload: no output count");
    size_t n = r.p[0];
    r.off = 4;
    if (n > VD_MODEL_MAX_OUTPUT)
        return vd_error_set(err, VD_ERR_PROTOCOL, "%zu outputs exceed the limit of %d", n,
                            VD_MODEL_MAX_OUTPUT);
    vd_status rc = VD_OK;
    for (size_t i = 0; i < n && rc == VD_OK; i++) {
        rc = get_name(&r, res->names[i], sizeof res->names[i], "output name", err);
        if (rc == VD_OK) rc = get_tensor(&r, &res->outputs[i], err);
        if (rc == VD_OK) res->noutputs = i + 1;
    }
    if (rc == VD_OK && r.off != r.len)
        rc = vd_error_set(err, VD_ERR_PROTOCOL, "%zu unexpected bytes after the outputs",
                          r.len - r.off);
    if (rc != VD_OK) vd_infer_result_free(res);
    return rc;
}

vd_status vd_proto_encode_error(vd_buf *out, uint16_t op, uint64_t id, vd_status status,
                                const char *msg, vd_error *err)
{
    if (status == VD_OK) status = VD_ERR_INTERNAL;
    const char *m = msg && *msg ? msg : vd_strerror(status);
    size_t n = strlen(m);
    if (n > VD_ERROR_MSG_MAX - 1) n = VD_ERROR_MSG_MAX - 1;
    return vd_proto_frame(out, op, id, (uint32_t)status, m, n, err);
}
