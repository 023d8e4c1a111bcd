/* pb.h: a minimal protocol-buffers writer (the wire format only: varints,
 * fixed32, length-delimited fields), enough to emit ONNX messages.
 *
 * A vd_pb_buf grows as fields are appended. Allocation failures do not abort:
 * the buffer remembers them in `oom` and ignores further writes, so a caller
 * checks once, at the end. Nested messages are built in their own buffer and
 * appended with vd_pb_message. */
#ifndef VD_PB_H
#define VD_PB_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data; /* owned */
    size_t len, cap;
    int oom; /* 1 once an allocation failed; the content is then incomplete */
} vd_pb_buf;

/* Makes *b an empty buffer. */
void vd_pb_init(vd_pb_buf *b);

/* Frees b's data and empties it. */
void vd_pb_free(vd_pb_buf *b);

/* Appends a varint field (wire type 0): int32, int64, enum, bool. Negative
 * values are written as 10-byte two's complement, as protobuf does for int64. */
void vd_pb_varint(vd_pb_buf *b, int field, int64_t v);

/* Appends a float field (wire type 5). */
void vd_pb_float(vd_pb_buf *b, int field, float v);

/* Appends a length-delimited field holding n bytes. */
void vd_pb_bytes(vd_pb_buf *b, int field, const void *data, size_t n);

/* Appends a string field (its bytes, without the NUL). */
void vd_pb_string(vd_pb_buf *b, int field, const char *s);

/* Appends sub's content as an embedded message field; marks b oom if sub is. */
void vd_pb_message(vd_pb_buf *b, int field, const vd_pb_buf *sub);

#endif
