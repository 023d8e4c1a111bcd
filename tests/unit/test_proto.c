/* test_proto.c: the model-server wire format (docs/protocol.md): exact bytes,
 * round trips, and every way a frame can be truncated or malformed. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "infer/proto.h"
#include "vdtest.h"

static void fill(vd_tensor *t, float base)
{
    for (size_t i = 0; i < vd_tensor_count(t); i++)
        t->data[i] = base + (float)i * 0.25f;
}

VD_TEST(header_bytes_are_as_documented)
{
    vd_proto_header h = {VD_PROTO_VERSION, VD_OP_INFER, 0x01020304, 1500, 0x1122334455667788ull};
    uint8_t b[VD_PROTO_HEADER_LEN];
    vd_proto_header_encode(&h, b);
    static const uint8_t want[24] = {'V',  'D',  'M',  'S',  1,    0,    1,    0,
                                     4,    3,    2,    1,    0xdc, 0x05, 0,    0,
                                     0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    CHECK(memcmp(b, want, sizeof want) == 0);
    vd_proto_header back;
    vd_error err;
    CHECK_OK(vd_proto_header_decode(b, UINT32_MAX, &back, &err));
    CHECK_EQ_INT(back.op, VD_OP_INFER);
    CHECK_EQ_INT(back.length, 0x01020304);
    CHECK_EQ_INT(back.aux, 1500);
    CHECK(back.id == 0x1122334455667788ull);
}

/* the byte-by-byte example in docs/protocol.md */
VD_TEST(documented_example_frame)
{
    vd_error err;
    vd_tensor t;
    int64_t shape[4] = {1, 1, 1, 1};
    CHECK_OK(vd_tensor_alloc(&t, shape, 4, &err));
    t.data[0] = 1.0f;
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_infer(&b, 7, 500, "m", &t, &err));
    static const uint8_t want[] = {0x56, 0x44, 0x4d, 0x53, 0x01, 0x00, 0x01, 0x00, 0x1a, 0x00,
                                   0x00, 0x00, 0xf4, 0x01, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x01, 0x6d, 0x01, 0x04, 0x00, 0x00,
                                   0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
                                   0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f};
    CHECK_EQ_INT(b.len, sizeof want);
    CHECK(memcmp(b.data, want, sizeof want) == 0);
    vd_buf_free(&b);
    vd_tensor_free(&t);
}

VD_TEST(bad_headers_are_named)
{
    vd_proto_header h = {VD_PROTO_VERSION, VD_OP_HEALTH, 100, 0, 42}, back;
    uint8_t b[VD_PROTO_HEADER_LEN];
    vd_error err;
    vd_proto_header_encode(&h, b);
    CHECK_EQ_INT(vd_proto_header_decode(b, 99, &back, &err), VD_ERR_LIMIT);
    CHECK(back.id == 42); /* so that the error can echo it */
    CHECK(strstr(err.msg, "100") && strstr(err.msg, "99"));
    b[0] = 'G'; /* "GET / HTTP/1.1" at a model server */
    CHECK_EQ_INT(vd_proto_header_decode(b, 1000, &back, &err), VD_ERR_PROTOCOL);
    CHECK(strstr(err.msg, "magic") != NULL);
    vd_proto_header_encode(&h, b);
    b[4] = 9;
    CHECK_EQ_INT(vd_proto_header_decode(b, 1000, &back, &err), VD_ERR_PROTOCOL);
    CHECK(strstr(err.msg, "version 9") != NULL);
}

VD_TEST(infer_request_round_trips_exactly)
{
    vd_error err;
    vd_tensor t, back;
    int64_t shape[4] = {2, 3, 4, 3};
    CHECK_OK(vd_tensor_alloc(&t, shape, 4, &err));
    fill(&t, -7.5f);
    t.data[5] = -0.0f;
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_infer(&b, 77, 250, "mobilenet_v2", &t, &err));
    size_t payload = 1 + 12 + 4 + 4 * 4 + 72 * 4;
    CHECK_EQ_INT(b.len, VD_PROTO_HEADER_LEN + payload);
    vd_proto_header h;
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK_EQ_INT(h.length, payload);
    CHECK_EQ_INT(h.aux, 250);
    CHECK(h.id == 77);
    /* payload: name length, name, dtype, rank, reserved, dims */
    const uint8_t *p = b.data + VD_PROTO_HEADER_LEN;
    CHECK_EQ_INT(p[0], 12);
    CHECK(memcmp(p + 1, "mobilenet_v2", 12) == 0);
    CHECK_EQ_INT(p[13], VD_PROTO_DTYPE_FLOAT32);
    CHECK_EQ_INT(p[14], 4);
    CHECK(p[17] == 2 && p[18] == 0 && p[21] == 3 && p[25] == 4);
    char name[VD_MODEL_NAME_MAX];
    CHECK_OK(vd_proto_decode_infer(p, h.length, name, &back, &err));
    CHECK_EQ_STR(name, "mobilenet_v2");
    CHECK_EQ_INT(back.rank, 4);
    for (int i = 0; i < 4; i++)
        CHECK(back.shape[i] == shape[i]);
    CHECK(memcmp(back.data, t.data, 72 * sizeof(float)) == 0);
    vd_tensor_free(&back);

    /* every truncation fails cleanly, never a partial tensor */
    for (size_t n = 0; n < h.length; n++) {
        vd_status rc = vd_proto_decode_infer(p, n, name, &back, &err);
        if (rc != VD_ERR_PROTOCOL || back.data) {
            vd_test_fail_at(__FILE__, __LINE__, "truncated to %zu bytes: rc %d", n, rc);
            return;
        }
    }
    /* trailing garbage */
    uint8_t *longer = malloc(h.length + 3);
    memcpy(longer, p, h.length);
    CHECK_EQ_INT(vd_proto_decode_infer(longer, h.length + 3, name, &back, &err), VD_ERR_PROTOCOL);
    CHECK(strstr(err.msg, "unexpected") != NULL);
    /* other dtypes are refused by name */
    longer[13] = 2;
    CHECK_EQ_INT(vd_proto_decode_infer(longer, h.length, name, &back, &err), VD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "dtype 2") != NULL);
    longer[13] = 1;
    longer[14] = 9; /* rank 9 */
    CHECK_EQ_INT(vd_proto_decode_infer(longer, h.length, name, &back, &err), VD_ERR_PROTOCOL);
    longer[14] = 4;
    /* dims whose product overflows must not allocate or wrap */
    memset(longer + 17, 0xff, 16);
    CHECK_EQ_INT(vd_proto_decode_infer(longer, h.length, name, &back, &err), VD_ERR_PROTOCOL);
    CHECK(back.data == NULL);
    /* a NUL inside the name */
    memcpy(longer, p, h.length);
    longer[3] = 0;
    CHECK_EQ_INT(vd_proto_decode_infer(longer, h.length, name, &back, &err), VD_ERR_PROTOCOL);
    free(longer);
    vd_buf_free(&b);
    vd_tensor_free(&t);
}

/* Version 2: integer token ids (text towers). A frame says the lowest version it needs. */
VD_TEST(token_ids_travel_in_version_2_frames)
{
    vd_error err;
    vd_tensor t, back;
    int64_t shape[2] = {2, 5};
    CHECK_OK(vd_tensor_alloc_dtype(&t, VD_DTYPE_INT32, shape, 2, &err));
    for (int i = 0; i < 10; i++)
        t.i32[i] = 49406 + i - (i > 4 ? 100000 : 0);
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_infer(&b, 5, 0, "clip.textual", &t, &err));
    CHECK_EQ_INT(b.data[4], 2); /* version 2: an integer tensor */
    vd_proto_header h;
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK_EQ_INT(h.version, 2);
    const uint8_t *p = b.data + VD_PROTO_HEADER_LEN;
    CHECK_EQ_INT(h.length, 1 + 12 + 4 + 2 * 4 + 10 * 4);
    CHECK_EQ_INT(p[13], VD_PROTO_DTYPE_INT32);
    CHECK(p[25] == 0xfe && p[26] == 0xc0); /* 49406 little-endian */
    char name[VD_MODEL_NAME_MAX];
    CHECK_OK(vd_proto_decode_infer(p, h.length, name, &back, &err));
    CHECK_EQ_INT(back.dtype, VD_DTYPE_INT32);
    CHECK(memcmp(back.i32, t.i32, 10 * 4) == 0);
    vd_tensor_free(&back);
    for (size_t n = 0; n < h.length; n++)
        CHECK_EQ_INT(vd_proto_decode_infer(p, n, name, &back, &err), VD_ERR_PROTOCOL);
    vd_tensor_free(&t);

    /* int64: 8 bytes a value */
    int64_t s1[2] = {1, 3};
    CHECK_OK(vd_tensor_alloc_dtype(&t, VD_DTYPE_INT64, s1, 2, &err));
    t.i64[0] = 1;
    t.i64[1] = (int64_t)1 << 40;
    t.i64[2] = -7;
    b.len = 0;
    CHECK_OK(vd_proto_encode_infer(&b, 6, 0, "m", &t, &err));
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK_EQ_INT(h.length, 2 + 4 + 8 + 3 * 8);
    CHECK_OK(vd_proto_decode_infer(b.data + VD_PROTO_HEADER_LEN, h.length, name, &back, &err));
    CHECK(back.dtype == VD_DTYPE_INT64 && back.i64[1] == (int64_t)1 << 40 && back.i64[2] == -7);
    vd_tensor_free(&back);
    vd_tensor_free(&t);

    /* float32 requests stay version 1 (readable by version-1 servers); 3 is refused */
    int64_t s2[1] = {2};
    CHECK_OK(vd_tensor_alloc(&t, s2, 1, &err));
    b.len = 0;
    CHECK_OK(vd_proto_encode_infer(&b, 7, 0, "m", &t, &err));
    CHECK_EQ_INT(b.data[4], 1);
    b.data[4] = 3;
    CHECK_EQ_INT(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err), VD_ERR_PROTOCOL);
    CHECK(strstr(err.msg, "version 3") != NULL);
    vd_tensor_free(&t);
    vd_buf_free(&b);
}

VD_TEST(names_are_checked_on_encode)
{
    vd_error err;
    vd_tensor t;
    int64_t shape[1] = {1};
    CHECK_OK(vd_tensor_alloc(&t, shape, 1, &err));
    vd_buf b = {0};
    CHECK_EQ_INT(vd_proto_encode_infer(&b, 1, 0, "", &t, &err), VD_ERR_INVALID);
    char longname[80];
    memset(longname, 'a', sizeof longname - 1);
    longname[79] = 0;
    CHECK_EQ_INT(vd_proto_encode_infer(&b, 1, 0, longname, &t, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(b.len, 0); /* nothing half-written */
    CHECK_OK(vd_proto_encode_name(&b, VD_OP_LOAD, 5, 0, "faceres", &err));
    char name[VD_MODEL_NAME_MAX];
    CHECK_OK(vd_proto_decode_name(b.data + VD_PROTO_HEADER_LEN, b.len - VD_PROTO_HEADER_LEN, name,
                                  &err));
    CHECK_EQ_STR(name, "faceres");
    CHECK_EQ_INT(vd_proto_decode_name(b.data + VD_PROTO_HEADER_LEN, 3, name, &err),
                 VD_ERR_PROTOCOL);
    vd_buf_free(&b);
    vd_tensor_free(&t);
}

VD_TEST(outputs_round_trip_and_truncations_fail)
{
    vd_error err;
    vd_tensor a, c;
    int64_t sa[2] = {3, 5}, sc[3] = {3, 2, 2};
    CHECK_OK(vd_tensor_alloc(&a, sa, 2, &err));
    CHECK_OK(vd_tensor_alloc(&c, sc, 3, &err));
    fill(&a, 1.0f);
    fill(&c, -2.0f);
    const char *names[2] = {"Identity:0", "global_pooling/Mean"};
    const vd_tensor *ts[2] = {&a, &c};
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_outputs(&b, 9, 2, names, ts, &err));
    vd_proto_header h;
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK_EQ_INT(h.aux, VD_OK);
    vd_infer_result r;
    const uint8_t *p = b.data + VD_PROTO_HEADER_LEN;
    CHECK_OK(vd_proto_decode_outputs(p, h.length, &r, &err));
    CHECK_EQ_INT(r.noutputs, 2);
    CHECK_EQ_STR(r.names[0], "Identity:0");
    CHECK_EQ_STR(r.names[1], "global_pooling/Mean");
    CHECK_EQ_INT(r.outputs[1].rank, 3);
    CHECK(memcmp(r.outputs[0].data, a.data, 15 * sizeof(float)) == 0);
    CHECK(memcmp(r.outputs[1].data, c.data, 12 * sizeof(float)) == 0);
    vd_infer_result_free(&r);
    for (size_t n = 0; n < h.length; n++) {
        vd_status rc = vd_proto_decode_outputs(p, n, &r, &err);
        if (rc != VD_ERR_PROTOCOL || r.outputs[0].data) {
            vd_test_fail_at(__FILE__, __LINE__, "truncated to %zu bytes: rc %d", n, rc);
            return;
        }
    }
    vd_buf_free(&b);
    vd_tensor_free(&a);
    vd_tensor_free(&c);
}

VD_TEST(error_frames_carry_status_and_message)
{
    vd_error err;
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_error(&b, VD_OP_INFER, 3, VD_ERR_BUSY, "queue full", &err));
    vd_proto_header h;
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK_EQ_INT(h.aux, VD_ERR_BUSY);
    CHECK_EQ_INT(h.length, 10);
    CHECK(memcmp(b.data + VD_PROTO_HEADER_LEN, "queue full", 10) == 0);
    vd_buf_free(&b);
    /* an "error" with status ok would read as success: it becomes internal */
    CHECK_OK(vd_proto_encode_error(&b, VD_OP_INFER, 3, VD_OK, NULL, &err));
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK_EQ_INT(h.aux, VD_ERR_INTERNAL);
    vd_buf_free(&b);
}

/* The split encoder sends the tensor from where it lies: head + data = the whole frame. */
VD_TEST(split_request_is_the_same_bytes_as_the_whole_one)
{
    vd_error err;
    vd_tensor t;
    int64_t shape[4] = {2, 3, 5, 7};
    CHECK_OK(vd_tensor_alloc(&t, shape, 4, &err));
    fill(&t, 1.5f);
    vd_buf whole = {0}, head = {0};
    const void *data;
    size_t n;
    CHECK_OK(vd_proto_encode_infer(&whole, 9, 250, "faceres", &t, &err));
    CHECK_OK(vd_proto_encode_infer_split(&head, 9, 250, "faceres", &t, &data, &n, &err));
    CHECK(data == t.raw); /* not a copy */
    CHECK_EQ_INT(n, vd_tensor_bytes(&t));
    CHECK_EQ_INT(head.len + n, whole.len);
    CHECK(memcmp(head.data, whole.data, head.len) == 0); /* the header counts the data */
    CHECK(memcmp(whole.data + head.len, data, n) == 0);
    vd_buf_free(&whole);
    vd_buf_free(&head);
    vd_tensor_free(&t);
}

/* Decoding from a buffer the caller owns: an aligned tensor keeps the buffer (no copy), a
 * misaligned one is copied and the buffer stays the caller's; both read the same values. */
VD_TEST(decoded_request_keeps_its_buffer_when_aligned)
{
    vd_error err;
    vd_tensor t;
    int64_t shape[4] = {1, 4, 4, 3};
    CHECK_OK(vd_tensor_alloc(&t, shape, 4, &err));
    fill(&t, -2.0f);
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_infer(&b, 1, 0, "m0", &t, &err));
    const uint8_t *payload = b.data + VD_PROTO_HEADER_LEN;
    size_t len = b.len - VD_PROTO_HEADER_LEN, off = vd_proto_infer_data_offset(payload, len);
    CHECK_EQ_INT(off, 1 + 2 + 4 + 4 * 4);
    CHECK_EQ_INT(off, len - vd_tensor_bytes(&t));
    CHECK_EQ_INT(vd_proto_infer_data_offset(payload, 4), 0); /* the shape's rank not there yet */
    for (size_t pad = 0; pad < 4; pad++) {
        uint8_t *block = malloc(len + 64);
        CHECK(block != NULL);
        size_t at = (64 - ((uintptr_t)block + off) % 64) % 64 + pad; /* pad 0: data at 64 */
        memcpy(block + at, payload, len);
        uint8_t *mine = block;
        char model[VD_MODEL_NAME_MAX];
        vd_tensor in;
        CHECK_OK(vd_proto_decode_infer_take(&mine, block + at, len, model, &in, &err));
        CHECK(strcmp(model, "m0") == 0);
        CHECK(memcmp(in.shape, t.shape, sizeof t.shape) == 0);
        CHECK(memcmp(in.data, t.data, vd_tensor_bytes(&t)) == 0);
        if (pad == 0) {
            CHECK(mine == NULL && in.block == block);
            CHECK((uint8_t *)in.raw == block + at + off);
        } else {
            CHECK(mine == block && in.block == NULL);
        }
        vd_tensor_free(&in); /* frees the buffer when the tensor took it */
        free(mine);
    }
    /* a bad payload takes nothing */
    uint8_t *block = malloc(len), *mine = block;
    memcpy(block, payload, len);
    char model[VD_MODEL_NAME_MAX];
    vd_tensor in;
    CHECK_EQ_INT(vd_proto_decode_infer_take(&mine, block, len - 1, model, &in, &err),
                 VD_ERR_PROTOCOL);
    CHECK(mine == block && in.raw == NULL);
    free(block);
    vd_buf_free(&b);
    vd_tensor_free(&t);
}

/* INFER_SHM is an INFER request's head (name, dtype, shape) and the data's offset: it decodes
 * to the same shape and the size the region must hold; a payload that does not end with
 * exactly the 8 offset bytes is refused, and a shape of more than 2^63 bytes too. ATTACH
 * carries only the region's size. */
VD_TEST(shared_memory_frames_round_trip_and_truncations_fail)
{
    vd_error err;
    vd_tensor t;
    int64_t shape[4] = {3, 4, 5, 6};
    CHECK_OK(vd_tensor_alloc(&t, shape, 4, &err));
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_infer_ref(&b, 7, 100, "mobilenet_v2", &t, 4096, &err));
    vd_proto_header h;
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK_EQ_INT(h.op, VD_OP_INFER_SHM);
    CHECK_EQ_INT(h.length, 1 + 12 + 4 + 4 * 4 + 8);
    char model[VD_MODEL_NAME_MAX];
    vd_tensor in;
    uint64_t off, bytes;
    const uint8_t *p = b.data + VD_PROTO_HEADER_LEN;
    CHECK_OK(vd_proto_decode_infer_ref(p, h.length, model, &in, &off, &bytes, &err));
    CHECK(strcmp(model, "mobilenet_v2") == 0);
    CHECK(memcmp(in.shape, t.shape, sizeof t.shape) == 0 && in.rank == 4 && in.raw == NULL);
    CHECK(off == 4096 && bytes == vd_tensor_bytes(&t));
    for (size_t cut = 0; cut < h.length; cut++)
        CHECK(vd_proto_decode_infer_ref(p, cut, model, &in, &off, &bytes, &err) != VD_OK);
    uint8_t longer[64];
    memcpy(longer, p, h.length);
    longer[h.length] = 0;
    CHECK_EQ_INT(vd_proto_decode_infer_ref(longer, h.length + 1, model, &in, &off, &bytes, &err),
                 VD_ERR_PROTOCOL);
    CHECK(strstr(err.msg, "8-byte offset") != NULL);
    memset(longer + 1 + 12 + 4, 0xff, 4 * 4); /* four dims of 2^32 - 1 */
    CHECK_EQ_INT(vd_proto_decode_infer_ref(longer, h.length, model, &in, &off, &bytes, &err),
                 VD_ERR_PROTOCOL);
    vd_buf_free(&b);

    uint64_t size;
    CHECK_OK(vd_proto_encode_attach(&b, 8, 3u << 20, &err));
    CHECK_OK(vd_proto_header_decode(b.data, UINT32_MAX, &h, &err));
    CHECK(h.op == VD_OP_ATTACH && h.length == 8 && h.id == 8);
    CHECK_OK(vd_proto_decode_attach(b.data + VD_PROTO_HEADER_LEN, 8, &size, &err));
    CHECK(size == 3u << 20);
    CHECK_EQ_INT(vd_proto_decode_attach(b.data + VD_PROTO_HEADER_LEN, 7, &size, &err),
                 VD_ERR_PROTOCOL);
    vd_buf_free(&b);
    vd_tensor_free(&t);
}

int main(void)
{
    return vd_test_run_all();
}
