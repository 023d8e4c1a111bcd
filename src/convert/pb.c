/* pb.c: protocol-buffers wire format writer. */
#include "convert/pb.h"

#include <stdlib.h>
#include <string.h>

void vd_pb_init(vd_pb_buf *b)
{
    memset(b, 0, sizeof *b);
}

void vd_pb_free(vd_pb_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int reserve(vd_pb_buf *b, size_t extra)
{
    if (b->oom) return 0;
    if (b->len + extra <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

static void raw_varint(vd_pb_buf *b, uint64_t v)
{
    if (!reserve(b, 10)) return;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        if (v) byte |= 0x80;
        b->data[b->len++] = byte;
    } while (v);
}

static void tag(vd_pb_buf *b, int field, int wire)
{
    raw_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

void vd_pb_varint(vd_pb_buf *b, int field, int64_t v)
{
    tag(b, field, 0);
    raw_varint(b, (uint64_t)v);
}

void vd_pb_float(vd_pb_buf *b, int field, float v)
{
    tag(b, field, 5);
    uint32_t u;
    memcpy(&u, &v, 4);
    if (!reserve(b, 4)) return;
    for (int i = 0; i < 4; i++)
        b->data[b->len++] = (uint8_t)(u >> (8 * i));
}

void vd_pb_bytes(vd_pb_buf *b, int field, const void *data, size_t n)
{
    tag(b, field, 2);
    raw_varint(b, n);
    if (!reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
}

void vd_pb_string(vd_pb_buf *b, int field, const char *s)
{
    vd_pb_bytes(b, field, s, strlen(s));
}

void vd_pb_message(vd_pb_buf *b, int field, const vd_pb_buf *sub)
{
    if (sub->oom) b->oom = 1;
    vd_pb_bytes(b, field, sub->data, sub->len);
}
