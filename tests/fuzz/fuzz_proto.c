/* fuzz_proto.c: the model-server wire protocol decoder (infer/proto.h).
 *
 * The input is read as a byte stream of frames, the way the server's and the
 * client's connection readers walk it: a 24-byte header (vd_proto_header_decode
 * with a small payload limit), then `length` payload bytes handed to the
 * decoder for the op (INFER request, name, INFER response). Whatever decodes
 * must re-encode to the same payload bytes (round trip), and the decoded
 * tensor must hold as many values as its shape says (float32, or the int32 /
 * int64 token ids of version 2, whose re-encoded frame must say version 2). The stream stops at the
 * first bad header, as the server closes the connection there. HELLO and
 * AUTH frames go through the handshake's checks (infer/auth.h) on both sides:
 * a HELLO payload as the client's nonce (the server answers a 64-byte
 * challenge, or refuses), as the server's answer (never accepted: the fuzzer
 * cannot forge the proof of our random nonce), an AUTH payload as a proof
 * (never accepted). A request decoded by the decoder that keeps the frame
 * (vd_proto_decode_infer_take, from a buffer placed as the server places it, and
 * misplaced) must give the same model and tensor, and vd_proto_infer_data_offset must say
 * where its data is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "infer/auth.h"
#include "infer/proto.h"

#define FUZZ_MAX_PAYLOAD (1u << 16)

static void check(int cond)
{
    if (!cond) abort();
}

static void roundtrip_infer(const uint8_t *payload, size_t len, const char *model,
                            const vd_tensor *t)
{
    vd_buf out = {0};
    vd_error e;
    check(vd_proto_encode_infer(&out, 7, 0, model, t, &e) == VD_OK);
    check(out.len == VD_PROTO_HEADER_LEN + len);
    check(out.data[4] == (t->dtype == VD_DTYPE_FLOAT32 ? 1 : 2)); /* the lowest version */
    check(memcmp(out.data + VD_PROTO_HEADER_LEN, payload, 2 + strlen(model) - 1) == 0);
    /* the tensor header's two padding bytes are not checked on decode; the rest must match */
    size_t off = 1 + strlen(model);
    check(out.data[VD_PROTO_HEADER_LEN + off] == payload[off]);
    check(out.data[VD_PROTO_HEADER_LEN + off + 1] == payload[off + 1]);
    check(memcmp(out.data + VD_PROTO_HEADER_LEN + off + 4, payload + off + 4, len - off - 4) == 0);
    vd_buf_free(&out);
}

/* The decoder that keeps the frame: the same model and tensor as the copying one, from a
 * buffer placed the way the server places it (data on a 64-byte boundary), or not. */
static void as_request_taken(const vd_proto_header *h, const uint8_t *payload, const char *model,
                             const vd_tensor *want)
{
    size_t off = vd_proto_infer_data_offset(payload, h->length);
    check(off == h->length - vd_tensor_bytes(want)); /* where the data is */
    for (int placed = 0; placed < 2; placed++) {
        uint8_t *block = malloc(h->length + 64);
        check(block != NULL);
        size_t pad = placed ? (64 - ((uintptr_t)block + off) % 64) % 64 : 1;
        if (h->length) memcpy(block + pad, payload, h->length);
        char name[VD_MODEL_NAME_MAX];
        vd_tensor t;
        vd_error e;
        uint8_t *b = block;
        check(vd_proto_decode_infer_take(&b, block + pad, h->length, name, &t, &e) == VD_OK);
        check(strcmp(name, model) == 0 && t.rank == want->rank && t.dtype == want->dtype);
        check(memcmp(t.shape, want->shape, sizeof t.shape) == 0);
        check(memcmp(t.raw, want->raw, vd_tensor_bytes(want)) == 0);
        /* aligned for its dtype: kept (placed, always), else copied and the buffer stays ours */
        int aligned = (uintptr_t)(block + pad + off) % vd_dtype_size(t.dtype) == 0;
        check(aligned ? (b == NULL && t.block == block) : (b == block && t.block == NULL));
        check(!placed || b == NULL);
        vd_tensor_free(&t);
        free(b);
    }
}

static void as_request(const vd_proto_header *h, const uint8_t *payload)
{
    vd_error e;
    char model[VD_MODEL_NAME_MAX];
    vd_tensor t;
    if (vd_proto_decode_infer(payload, h->length, model, &t, &e) == VD_OK) {
        as_request_taken(h, payload, model, &t);
        check(strlen(model) >= 1 && strlen(model) < VD_MODEL_NAME_MAX);
        check(t.rank <= VD_TENSOR_MAX_RANK && t.raw);
        check(t.dtype == VD_DTYPE_FLOAT32 || t.dtype == VD_DTYPE_INT32 ||
              t.dtype == VD_DTYPE_INT64);
        check(vd_tensor_bytes(&t) <= h->length);
        roundtrip_infer(payload, h->length, model, &t);
        vd_tensor_free(&t);
    } else {
        check(t.data == NULL);
    }
}

static void as_name(const vd_proto_header *h, const uint8_t *payload)
{
    vd_error e;
    char model[VD_MODEL_NAME_MAX];
    if (vd_proto_decode_name(payload, h->length, model, &e) == VD_OK) {
        check(strlen(model) + 1 == h->length);
        vd_buf out = {0};
        check(vd_proto_encode_name(&out, VD_OP_LOAD, 1, 0, model, &e) == VD_OK);
        check(out.len == VD_PROTO_HEADER_LEN + h->length);
        check(memcmp(out.data + VD_PROTO_HEADER_LEN, payload, h->length) == 0);
        vd_buf_free(&out);
    }
}

static void as_response(const vd_proto_header *h, const uint8_t *payload)
{
    vd_error e;
    vd_infer_result res;
    if (vd_proto_decode_outputs(payload, h->length, &res, &e) == VD_OK) {
        check(res.noutputs <= VD_MODEL_MAX_OUTPUT);
        const char *names[VD_MODEL_MAX_OUTPUT];
        const vd_tensor *ts[VD_MODEL_MAX_OUTPUT];
        for (size_t i = 0; i < res.noutputs; i++) {
            names[i] = res.names[i];
            ts[i] = &res.outputs[i];
        }
        vd_buf out = {0};
        check(vd_proto_encode_outputs(&out, h->id, res.noutputs, names, ts, &e) == VD_OK);
        check(out.len == VD_PROTO_HEADER_LEN + h->length);
        vd_infer_result again;
        check(vd_proto_decode_outputs(out.data + VD_PROTO_HEADER_LEN, h->length, &again, &e) ==
              VD_OK);
        check(again.noutputs == res.noutputs);
        for (size_t i = 0; i < res.noutputs; i++) {
            check(strcmp(again.names[i], res.names[i]) == 0);
            check(again.outputs[i].rank == res.outputs[i].rank);
            size_t n = vd_tensor_count(&res.outputs[i]);
            check(n == vd_tensor_count(&again.outputs[i]));
            check(memcmp(again.outputs[i].data, res.outputs[i].data, n * 4) == 0);
        }
        vd_infer_result_free(&again);
        vd_infer_result_free(&res);
        vd_buf_free(&out);
    } else {
        check(res.noutputs == 0);
    }
}

static void as_error(const vd_proto_header *h, const uint8_t *payload)
{
    /* an error response echoes op and id, carries a non-OK status and the message */
    vd_error e;
    vd_buf out = {0};
    vd_status st = (vd_status)(h->aux % (VD_ERR__COUNT + 2));
    char msg[64];
    size_t n = h->length < sizeof msg - 1 ? h->length : sizeof msg - 1;
    memcpy(msg, payload, n);
    msg[n] = 0;
    check(vd_proto_encode_error(&out, h->op, h->id, st, msg, &e) == VD_OK);
    vd_proto_header back;
    check(vd_proto_header_decode(out.data, FUZZ_MAX_PAYLOAD, &back, &e) == VD_OK);
    check(back.id == h->id && back.op == h->op && back.aux != VD_OK);
    check(back.length <= VD_ERROR_MSG_MAX);
    vd_buf_free(&out);
}

static void as_handshake(const vd_proto_header *h, const uint8_t *payload)
{
    static const vd_auth_secret secret = {.key = "fuzz_proto's shared secret", .len = 26};
    uint8_t sn[VD_AUTH_NONCE_LEN], cn[VD_AUTH_NONCE_LEN];
    vd_error e;
    vd_buf out = {0};
    if (h->op == VD_OP_HELLO) {
        vd_status st =
            vd_auth_server_challenge(&secret, h->id, payload, h->length, sn, cn, &out, &e);
        check(st == VD_OK ? out.len == VD_PROTO_HEADER_LEN + 64 : st == VD_ERR_PROTOCOL);
        vd_buf_free(&out);
        memset(cn, 7, sizeof cn);
        st = vd_auth_client_answer(&secret, cn, h, payload, &out, &e);
        check(st != VD_OK && out.len == 0);
    } else {
        memset(sn, 1, sizeof sn);
        memset(cn, 2, sizeof cn);
        check(vd_auth_server_verify(&secret, sn, cn, payload, h->length, &e) != VD_OK);
    }
    vd_buf_free(&out);
}

/* A shared-memory frame: whatever the decoders accept re-encodes to a frame that decodes to
 * the same (the reserved bytes aside), and the size reported is what the shape needs. */
static void as_shm(const vd_proto_header *h, const uint8_t *payload)
{
    vd_error e;
    vd_buf out = {0};
    if (h->op == VD_OP_ATTACH) {
        uint64_t size, again;
        if (vd_proto_decode_attach(payload, h->length, &size, &e) != VD_OK) return;
        check(vd_proto_encode_attach(&out, h->id, size, &e) == VD_OK);
        check(vd_proto_decode_attach(out.data + VD_PROTO_HEADER_LEN, out.len - VD_PROTO_HEADER_LEN,
                                     &again, &e) == VD_OK &&
              again == size);
        vd_buf_free(&out);
        return;
    }
    char model[VD_MODEL_NAME_MAX], model2[VD_MODEL_NAME_MAX];
    vd_tensor t, t2;
    uint64_t off, bytes, off2, bytes2;
    vd_status st = vd_proto_decode_infer_ref(payload, h->length, model, &t, &off, &bytes, &e);
    check(st == VD_OK || st == VD_ERR_PROTOCOL || st == VD_ERR_UNSUPPORTED);
    if (st != VD_OK) return;
    check(t.raw == NULL && bytes == (uint64_t)vd_dtype_size(t.dtype) * vd_tensor_count(&t));
    t.raw = (void *)(uintptr_t)payload; /* any data: the encoder writes only the shape */
    check(vd_proto_encode_infer_ref(&out, h->id, h->aux, model, &t, off, &e) == VD_OK);
    check(vd_proto_decode_infer_ref(out.data + VD_PROTO_HEADER_LEN, out.len - VD_PROTO_HEADER_LEN,
                                    model2, &t2, &off2, &bytes2, &e) == VD_OK);
    check(strcmp(model, model2) == 0 && off == off2 && bytes == bytes2 && t.rank == t2.rank &&
          t.dtype == t2.dtype && memcmp(t.shape, t2.shape, sizeof t.shape) == 0);
    vd_buf_free(&out);
}

static void one_frame(const vd_proto_header *h, const uint8_t *payload)
{
    switch (h->op) {
    case VD_OP_HELLO:
    case VD_OP_AUTH:
        as_handshake(h, payload);
        break;
    case VD_OP_INFER: /* a request from a client, a response from the server */
        as_request(h, payload);
        as_response(h, payload);
        break;
    case VD_OP_LOAD:
    case VD_OP_UNLOAD:
        as_name(h, payload);
        break;
    case VD_OP_ATTACH:
    case VD_OP_INFER_SHM:
        as_shm(h, payload);
        break;
    default:
        as_error(h, payload);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (size - off >= VD_PROTO_HEADER_LEN) {
        vd_proto_header h;
        vd_error e;
        vd_status rc = vd_proto_header_decode(data + off, FUZZ_MAX_PAYLOAD, &h, &e);
        off += VD_PROTO_HEADER_LEN;
        if (rc != VD_OK) {
            check(rc == VD_ERR_PROTOCOL || rc == VD_ERR_LIMIT);
            break;
        }
        check(h.length <= FUZZ_MAX_PAYLOAD);
        if (h.length > size - off) break; /* the peer would still be sending */
        /* an exact-size copy, so that ASan catches any read past the payload */
        uint8_t *payload = malloc(h.length ? h.length : 1);
        if (!payload) abort();
        memcpy(payload, data + off, h.length);
        one_frame(&h, payload);
        free(payload);
        off += h.length;
    }
    return 0;
}
