/* test_model_server_wire.c: how answers reach a connection (docs/model-server.md, "Answers
 * sent by the model thread"), against the real `visiond model-server` process ($VISIOND). A
 * model thread sends an answer itself while nothing is queued for its connection, else the
 * I/O thread does: whichever sends, every frame arrives whole and none is lost, when the
 * client reads slowly (the socket fills and answers queue) and when one connection pipelines
 * more requests than the server keeps in flight for it (reading pauses, and answers sent
 * by model threads must resume it). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/client.h"
#include "infer/proto.h"
#include "srvtest.h"
#include "vdtest.h"

#define NREQ    150 /* more than the server keeps in flight per connection (64) */
#define NINPUTS 3

/* ---- fixtures ---- */

/* NINPUTS pairs of BlazeFace images and their answers through the client library (a call at a
 * time). Each answer is 70 KB: more than one buffer of a Unix socket (36 KB at most), so a
 * send of one can stop part-way, as over TCP, and a few fill the socket. */
typedef struct {
    vd_tensor in[NINPUTS];
    vd_infer_result want[NINPUTS];
    vd_buf frame[NINPUTS]; /* the INFER request for each, id 0 (patched per request) */
} cases;

static int cases_make(cases *k, const server *s)
{
    memset(k, 0, sizeof *k);
    vd_infer_client *c = NULL;
    vd_error err;
    if (vd_infer_client_new(s->addr, &c, &err) != VD_OK) return 0;
    int ok = 1;
    for (int i = 0; ok && i < NINPUTS; i++) {
        int64_t shape[4] = {2, 128, 128, 3};
        ok = vd_tensor_alloc(&k->in[i], shape, 4, NULL) == VD_OK;
        if (ok) fill_item(k->in[i].data, 2 * BF_IN, 7u + (unsigned)i);
        ok = ok && vd_infer_client_infer(c, "blazeface_front", &k->in[i], 30000, &k->want[i],
                                         &err) == VD_OK;
        ok = ok && vd_proto_encode_infer(&k->frame[i], 0, 60000, "blazeface_front", &k->in[i],
                                         NULL) == VD_OK;
    }
    vd_infer_client_free(c);
    return ok;
}

static void cases_free(cases *k)
{
    for (int i = 0; i < NINPUTS; i++) {
        vd_tensor_free(&k->in[i]);
        vd_infer_result_free(&k->want[i]);
        vd_buf_free(&k->frame[i]);
    }
}

/* Writes request id (1..NREQ) on fd: input (id % NINPUTS). */
static int send_request(int fd, cases *k, uint64_t id)
{
    vd_buf *f = &k->frame[id % NINPUTS];
    vd_proto_header h;
    if (vd_proto_header_decode(f->data, UINT32_MAX, &h, NULL) != VD_OK) return 0;
    h.id = id;
    uint8_t hb[VD_PROTO_HEADER_LEN];
    vd_proto_header_encode(&h, hb);
    size_t n = f->len - VD_PROTO_HEADER_LEN;
    return write(fd, hb, sizeof hb) == (ssize_t)sizeof hb &&
           write(fd, f->data + VD_PROTO_HEADER_LEN, n) == (ssize_t)n;
}

/* Reads n bytes from fd; slow: 4 KB at a time, 200 us apart. A slow reader keeps its socket
 * nearly full, where the I/O thread waits to be told it is writable (a quarter free) while a
 * send would still take a few KB: a model thread sending then, with part of a frame still
 * queued, would interleave the two. */
static int read_in(int fd, uint8_t *p, size_t n, int slow)
{
    if (!slow) return read_full(fd, p, n);
    while (n) {
        size_t k = n < 4096 ? n : 4096;
        if (!read_full(fd, p, k)) return 0;
        p += k;
        n -= k;
        usleep(200);
    }
    return 1;
}

/* Reads NREQ answers from fd (slowly, see read_in). Returns how many were whole, ok, answered
 * a request not answered before and equal to that request's input's answer. */
static int read_answers(int fd, const cases *k, int slow)
{
    static uint8_t seen[NREQ + 1];
    memset(seen, 0, sizeof seen);
    int good = 0;
    for (int i = 0; i < NREQ; i++) {
        uint8_t hb[VD_PROTO_HEADER_LEN];
        vd_proto_header h;
        if (!read_in(fd, hb, sizeof hb, slow) || vd_proto_header_decode(hb, UINT32_MAX, &h, NULL))
            break;
        uint8_t *p = malloc(h.length ? h.length : 1);
        vd_infer_result r = {0};
        int ok = p && read_in(fd, p, h.length, slow) && h.aux == VD_OK && h.id >= 1 &&
                 h.id <= NREQ && !seen[h.id] &&
                 vd_proto_decode_outputs(p, h.length, &r, NULL) == VD_OK &&
                 same_outputs(&r, &k->want[h.id % NINPUTS]);
        if (!ok)
            printf("    answer %d (id %llu, status %u) is wrong\n", i, (unsigned long long)h.id,
                   h.aux);
        if (ok) seen[h.id] = 1;
        good += ok;
        vd_infer_result_free(&r);
        free(p);
    }
    return good;
}

typedef struct {
    int fd;
    cases *k;
    int sent;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    for (uint64_t id = 1; id <= NREQ && send_request(a->fd, a->k, id); id++)
        a->sent++;
    return NULL;
}

/* A raw connection to s: its Unix socket, or its TCP port on 127.0.0.1. */
static int connect_to(const server *s, int tcp)
{
    if (!tcp) return raw_connect(s->sock);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->tcp_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 16384; /* a small window: the server's sends stop part-way through frames */
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Starts a server (listening on 127.0.0.1 too), pipelines NREQ requests on one connection
 * from a thread while this one reads the answers (slowly or not); checks that every request
 * was sent and every answer came whole and right. */
static void pipeline(const char *dir, int tcp, int slow)
{
    server s;
    const char *args[] = {"--tcp", "127.0.0.1:0", NULL};
    CHECK(server_start(&s, dir, args));
    cases k;
    CHECK(cases_make(&k, &s));
    int fd = connect_to(&s, tcp);
    CHECK(fd >= 0);
    writer_arg a = {fd, &k, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, writer, &a) == 0);
    int good = read_answers(fd, &k, slow);
    shutdown(fd, SHUT_RDWR); /* a writer stuck on a stalled server returns */
    pthread_join(t, NULL);
    CHECK_EQ_INT(a.sent, NREQ);
    CHECK_EQ_INT(good, NREQ);
    close(fd);
    cases_free(&k);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

/* ---- tests ---- */

/* One connection pipelines 150 requests and reads its answers slowly (read_in): its socket
 * stays nearly full, answers queue on the I/O thread, and model threads go on answering all
 * along. No frame may go out while part of another is queued: every answer arrives whole and
 * right. */
VD_TEST(a_client_that_reads_slowly_gets_every_answer_whole)
{
    const char *dir = srv_test_dir();
    if (!dir) return;
    pipeline(dir, 1, 1);
    pipeline(dir, 0, 1);
}

/* One connection pipelines 150 requests while it reads every answer at once: the server stops
 * reading at 64 in flight, and the answers its model thread sends itself (the socket is
 * never full) must wake the I/O thread to read on. Without that wake-up this stalls until
 * the reader's 60 s timeout and fails. */
VD_TEST(pipelining_past_the_in_flight_limit_is_answered_in_full)
{
    const char *dir = srv_test_dir();
    if (!dir) return;
    pipeline(dir, 0, 0);
    pipeline(dir, 1, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_live_servers);
    return vd_test_run_all();
}
