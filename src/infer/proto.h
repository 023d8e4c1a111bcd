/* proto.h: the model server's wire protocol (docs/protocol.md), encode and decode.
 *
 * Every message is a frame: a fixed 24-byte header followed by `length`
 * payload bytes. All integers and floats are little-endian. The header holds
 * a magic ("VDMS"), the protocol version, the op, the payload length, a
 * 32-bit field that is the timeout in ms in a request and the status (a
 * vd_status) in a response, and a 64-bit request id that the response echoes.
 * Tensors on the wire are float32, int32 or int64 (the codes are ONNX's: 1,
 * 6, 7), rank 0..8, with 32-bit dims. Version 2 is version 1 plus integer
 * tensors: a frame says the lowest version whose format it uses (an INFER
 * request holding token ids says 2, every other frame 1), and both are read.
 * These functions only build and check bytes; they do no I/O. */
#ifndef VD_PROTO_H
#define VD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/model_meta.h"
#include "infer/tensor.h"

#define VD_PROTO_MAGIC           0x534D4456u /* the bytes "VDMS" read as a little-endian u32 */
#define VD_PROTO_VERSION         1           /* frames whose tensors are float32 */
#define VD_PROTO_VERSION_MAX     2           /* 2: integer tensors (text towers' token ids) */
#define VD_PROTO_HEADER_LEN      24
#define VD_PROTO_MAX_FRAME_DEF   (64u << 20) /* default payload limit, bytes */
#define VD_PROTO_DTYPE_FLOAT32   1 /* the wire's dtype codes are ONNX's TensorProto ones */
#define VD_PROTO_DTYPE_INT32     6
#define VD_PROTO_DTYPE_INT64     7
#define VD_PROTO_OUTPUT_NAME_MAX 128

typedef enum {
    VD_OP_INFER = 1,    /* model name + input tensor [n, ...] -> output tensors [n, ...] */
    VD_OP_MODELS = 2,   /* -> JSON: every model with its state and statistics */
    VD_OP_HEALTH = 3,   /* -> JSON: {"status": "ok", ...} */
    VD_OP_LOAD = 4,     /* model name -> JSON of the model once loaded */
    VD_OP_UNLOAD = 5,   /* model name -> JSON of the model once unloaded */
    VD_OP_HELLO = 6,    /* client nonce -> server nonce + server proof (infer/auth.h) */
    VD_OP_AUTH = 7,     /* client proof -> empty (ok) or status auth */
    VD_OP_ATTACH = 8,   /* region size + its memfd (SCM_RIGHTS) -> empty (ok) */
    VD_OP_INFER_SHM = 9 /* INFER whose input data lies in the attached region, at an offset */
} vd_proto_op;

typedef struct {
    uint16_t version;
    uint16_t op;
    uint32_t length; /* payload bytes after the header */
    uint32_t aux;    /* request: timeout in ms (0 = none); response: vd_status */
    uint64_t id;     /* chosen by the client, echoed in the response */
} vd_proto_header;

/* A growable byte buffer; zero-initialise, release with vd_buf_free. */
typedef struct {
    uint8_t *data; /* owned */
    size_t len, cap;
} vd_buf;

/* Makes room for n more bytes. VD_ERR_NOMEM on failure. */
vd_status vd_buf_reserve(vd_buf *b, size_t n);
/* Appends n bytes. */
vd_status vd_buf_put(vd_buf *b, const void *p, size_t n);
void vd_buf_free(vd_buf *b);

/* The outputs of one inference: names and tensors, all owned. */
typedef struct {
    size_t noutputs;
    char names[VD_MODEL_MAX_OUTPUT][VD_PROTO_OUTPUT_NAME_MAX];
    vd_tensor outputs[VD_MODEL_MAX_OUTPUT];
} vd_infer_result;

/* Frees every tensor of r and zeroes it. Safe on a zeroed result. */
void vd_infer_result_free(vd_infer_result *r);

/* Writes h (with the magic) into out[VD_PROTO_HEADER_LEN]. */
void vd_proto_header_encode(const vd_proto_header *h, uint8_t *out);

/* Reads a header. VD_ERR_PROTOCOL for a wrong magic or a version outside
 * 1..VD_PROTO_VERSION_MAX (the message
 * says which), VD_ERR_LIMIT when length exceeds max_payload (h is still
 * filled, so that the error can echo the id). */
vd_status vd_proto_header_decode(const uint8_t *in, uint32_t max_payload, vd_proto_header *h,
                                 vd_error *err);

/* Appends a whole frame (header + payload) to out; length is set from n. */
vd_status vd_proto_frame(vd_buf *out, uint16_t op, uint64_t id, uint32_t aux, const void *payload,
                         size_t n, vd_error *err);

/* Appends an INFER request frame: model name and input tensor (of any dtype;
 * an integer one makes it a version-2 frame). VD_ERR_INVALID for a bad name
 * (1-63 bytes) or a tensor with a dim beyond 32 bits. */
vd_status vd_proto_encode_infer(vd_buf *out, uint64_t id, uint32_t timeout_ms, const char *model,
                                const vd_tensor *input, vd_error *err);

/* The same frame in two parts, for one gathering write without copying the tensor: out gets
 * everything up to the tensor's data (its header counts the data), *data and *data_len the
 * data, which is input's own memory and must stay until it is sent. On a big-endian host
 * the whole frame goes into out and *data_len is 0. */
vd_status vd_proto_encode_infer_split(vd_buf *out, uint64_t id, uint32_t timeout_ms,
                                      const char *model, const vd_tensor *input, const void **data,
                                      size_t *data_len, vd_error *err);

/* Decodes an INFER payload: model name into model[VD_MODEL_NAME_MAX] and a
 * freshly allocated tensor (caller frees; float32, int32 or int64).
 * VD_ERR_PROTOCOL for a truncated or inconsistent payload,
 * VD_ERR_UNSUPPORTED for another dtype. */
vd_status vd_proto_decode_infer(const uint8_t *payload, size_t len, char *model, vd_tensor *input,
                                vd_error *err);

/* The same without a copy where it can: payload lies inside *block, a malloc'd buffer the
 * caller owns. On VD_OK, when the tensor data is aligned for its dtype (little-endian hosts),
 * input takes the buffer (input->block; its data points into it) and *block becomes NULL;
 * otherwise the data is copied and *block stays the caller's. Nothing is taken on an error. */
vd_status vd_proto_decode_infer_take(uint8_t **block, const uint8_t *payload, size_t len,
                                     char *model, vd_tensor *input, vd_error *err);

/* The offset of the tensor data in an INFER payload whose first n bytes are p (name, tensor
 * header and shape: at most VD_PROTO_INFER_LEAD_MAX bytes), or 0 when they do not tell (too
 * few, or malformed: the decoder says why). The server places a large request's payload so
 * that its data starts on a 64-byte boundary, then lets the tensor keep it. */
#define VD_PROTO_INFER_LEAD_MAX (1 + 63 + 4 + 4 * 8)
size_t vd_proto_infer_data_offset(const uint8_t *p, size_t n);

/* Shared memory, Unix sockets only (docs/protocol.md, "Shared memory"): a client attaches
 * one region to its connection (ATTACH, whose frame carries the region's memfd as
 * SCM_RIGHTS ancillary data), then sends INFER_SHM requests whose payload is an INFER
 * payload's name, tensor header and shape followed by the u64 offset of the data in the
 * region, instead of the data. */

/* Appends an INFER_SHM request frame for input, whose data lies at offset in the region. */
vd_status vd_proto_encode_infer_ref(vd_buf *out, uint64_t id, uint32_t timeout_ms,
                                    const char *model, const vd_tensor *input, uint64_t offset,
                                    vd_error *err);

/* Decodes an INFER_SHM payload: the model name, input's dtype, rank and shape (its raw stays
 * NULL), the data's offset and its size in bytes (what the region must hold from there).
 * VD_ERR_PROTOCOL for a truncated or inconsistent payload, VD_ERR_UNSUPPORTED for another
 * dtype. */
vd_status vd_proto_decode_infer_ref(const uint8_t *payload, size_t len, char *model,
                                    vd_tensor *input, uint64_t *offset, uint64_t *bytes,
                                    vd_error *err);

/* Appends an ATTACH request frame for a region of size bytes (the descriptor goes beside it). */
vd_status vd_proto_encode_attach(vd_buf *out, uint64_t id, uint64_t size, vd_error *err);
/* Decodes an ATTACH payload. VD_ERR_PROTOCOL unless it is 8 bytes. */
vd_status vd_proto_decode_attach(const uint8_t *payload, size_t len, uint64_t *size, vd_error *err);

/* Appends a LOAD/UNLOAD-style request frame whose payload is a model name. */
vd_status vd_proto_encode_name(vd_buf *out, uint16_t op, uint64_t id, uint32_t timeout_ms,
                               const char *model, vd_error *err);
/* Decodes a name payload into model[VD_MODEL_NAME_MAX]. */
vd_status vd_proto_decode_name(const uint8_t *payload, size_t len, char *model, vd_error *err);

/* Appends an INFER response frame (status ok) holding n named tensors. */
vd_status vd_proto_encode_outputs(vd_buf *out, uint64_t id, size_t n, const char *const *names,
                                  const vd_tensor *const *tensors, vd_error *err);

/* Decodes an INFER response payload into *res (caller frees with
 * vd_infer_result_free). VD_ERR_PROTOCOL when truncated or inconsistent. */
vd_status vd_proto_decode_outputs(const uint8_t *payload, size_t len, vd_infer_result *res,
                                  vd_error *err);

/* Appends an error response: status in the header, the message as payload. */
vd_status vd_proto_encode_error(vd_buf *out, uint16_t op, uint64_t id, vd_status status,
                                const char *msg, vd_error *err);

#endif
