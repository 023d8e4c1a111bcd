/* server_conn.c: the model server's connections, on the I/O thread: the listening sockets,
 * accepting, reading frames (each complete one goes to vd_srv_handle_frame in server.c),
 * writing responses, and delivering the responses the model threads post (vd_srv_post).
 * A connection's state is private to this file: srv_conn belongs to the I/O thread, srv_wire
 * (the part a model thread may use to answer on its own thread) to whoever holds its mutex. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "core/hostport.h"
#include "core/log.h"
#include "core/util.h"
#include "infer/server_impl.h"

#define MAX_INFLIGHT_PER_CONN  64
#define MAX_OUT_BYTES_PER_CONN (256u << 20)
#define FRAMES_PER_WAKEUP      32
#define ACCEPT_PAUSE_US        100000
#define PLACE_MIN              65536 /* payloads placed for the tensor to keep (payload_buffer) */

/* A response frame on its way from a model thread to a connection. */
struct srv_out {
    struct srv_out *next;
    uint32_t conn_slot, conn_gen;
    vd_buf frame;
    size_t off; /* bytes already sent */
};

/* What a model thread needs to answer a connection itself (vd_srv_post): its socket, while
 * nothing is queued for it. One per slot, beside srv_conn; fd, gen and queued under mu.
 * Invariant: a frame goes straight to the socket only while queued is 0, so frames never
 * interleave and an answer never overtakes one queued before it. */
struct srv_wire {
    pthread_mutex_t mu;
    int fd;          /* the connection's socket; -1 while the slot is free */
    uint32_t gen;    /* the connection's generation (srv_conn.gen) */
    unsigned queued; /* frames for it in the outbox or its queue, not yet sent whole */
    /* requests handed to a model and not answered yet (may dip below 0 for a moment: a model
     * can answer before the I/O thread counted the request) */
    atomic_int inflight;
    /* the I/O thread stopped reading because inflight reached its limit: an answer sent
     * on a model thread must wake it to read again */
    atomic_int paused;
};

/* One client connection (slot + generation name it; see server_impl.h). */
struct srv_conn {
    int fd;
    int used;
    uint32_t gen;
    uint8_t hdr[VD_PROTO_HEADER_LEN];
    size_t hdr_got;
    int have_hdr;
    vd_proto_header h;
    uint8_t *block;   /* owned: the frame's buffer while it is read */
    uint8_t *payload; /* inside block: where the payload goes (see payload_buffer) */
    size_t pay_got;
    srv_out *out_head, *out_tail;
    size_t out_bytes;
    int close_after_flush;
    uint32_t events;
    /* the handshake (infer/auth.h), when the server has a secret */
    enum { AUTH_WAIT_HELLO = 0, AUTH_WAIT_PROOF, AUTH_DONE } auth;
    uint8_t snonce[VD_AUTH_NONCE_LEN], cnonce[VD_AUTH_NONCE_LEN];
    char peer[64]; /* the client's address, for the log */
    /* shared memory (VD_OP_ATTACH): the last descriptor that came with the frames, kept until
     * an ATTACH takes it (at most one: a newer one closes it), and the attached region */
    int rx_fd, has_rx_fd;
    srv_shm *shm; /* one reference, or NULL */
};

static void conn_close(vd_server *s, uint32_t slot);
static void auth_refused(vd_server *s, const srv_conn *c, const char *why);

/* ---- sockets ---- */

static vd_status listen_unix(vd_server *s, vd_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(s->socket_path) >= sizeof sa.sun_path)
        return vd_error_set(err, VD_ERR_INVALID, "socket path %s is longer than %zu bytes",
                            s->socket_path, sizeof sa.sun_path - 1);
    vd_strlcpy(sa.sun_path, s->socket_path, sizeof sa.sun_path);
    struct stat st;
    if (lstat(s->socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return vd_error_set(err, VD_ERR_IO, "%s exists and is not a socket", s->socket_path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(probe);
            return vd_error_set(err, VD_ERR_IO, "another server is listening on %s",
                                s->socket_path);
        }
        if (probe >= 0) close(probe);
        unlink(s->socket_path); /* stale: its server is gone */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return vd_error_set(err, VD_ERR_IO, "socket: %s", strerror(errno));
    /* The protocol has no authentication: the socket's mode is the access
     * control. bind(2) creates it with 0777 & ~umask, so set 0600 (owner only)
     * before listen(2): nobody can connect in between. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(s->socket_path, 0600) < 0 ||
        listen(fd, 256) < 0) {
        int e = errno;
        close(fd);
        return vd_error_set(err, VD_ERR_IO, "cannot listen on %s: %s", s->socket_path, strerror(e));
    }
    s->unix_fd = fd;
    return VD_OK;
}

static vd_status listen_tcp(vd_server *s, vd_error *err)
{
    vd_hostport hp;
    struct sockaddr_storage sa;
    socklen_t salen;
    int loopback;
    vd_status st = vd_hostport_parse(s->tcp_addr, VD_HOSTPORT_ANY_PORT, "tcp address", &hp, err);
    if (st == VD_OK)
        st = vd_hostport_sockaddr(&hp, "tcp address", s->tcp_addr, &sa, &salen, &loopback, err);
    if (st != VD_OK) return st;
    if (!s->cfg.allow_remote && !s->secret && !loopback)
        return vd_error_set(err, VD_ERR_INVALID,
                            "tcp address '%s' is not a loopback address; beyond loopback the "
                            "model server needs a shared secret (--secret-file FILE or "
                            "$VISIOND_MODEL_SECRET_FILE)",
                            s->tcp_addr);
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return vd_error_set(err, VD_ERR_IO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, salen) < 0 || listen(fd, 256) < 0) {
        int e = errno;
        close(fd);
        return vd_error_set(err, VD_ERR_IO, "cannot listen on %s: %s", s->tcp_addr, strerror(e));
    }
    salen = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &salen);
    s->tcp_port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    s->tcp_fd = fd;
    return VD_OK;
}

int vd_srv_ep_add(vd_server *s, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void vd_srv_wake(vd_server *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->evfd, &one, sizeof one);
    (void)w;
}

/* Sends as much of frame as the socket takes now, never waiting. Returns the bytes sent. */
static size_t send_now(int fd, const vd_buf *frame)
{
    size_t off = 0;
    while (off < frame->len) {
        ssize_t w = send(fd, frame->data + off, frame->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* full, or failed: the I/O thread sees why when it sends the rest */
        off += (size_t)w;
    }
    return off;
}

/* SRV_POST_SEND answers on the model thread when it can: the I/O thread's wake-up, its
 * delivery and its send cost a hand-off (a context switch on a busy core) per answer. What
 * the socket does not take at once, or any frame while others wait, goes through the outbox
 * (the I/O thread sends it when the socket is writable). */
void vd_srv_post(vd_server *s, uint32_t slot, uint32_t gen, srv_post_how how, vd_buf *frame)
{
    size_t sent = 0;
    /* allocated first: a frame is sent in part only when its rest can be queued */
    srv_out *o = slot < (uint32_t)s->nconns ? calloc(1, sizeof *o) : NULL;
    if (!o) { /* no such connection, or no memory: the client times out */
        vd_buf_free(frame);
        return;
    }
    srv_wire *w = &s->wires[slot];
    pthread_mutex_lock(&w->mu);
    if (w->fd < 0 || w->gen != gen) { /* its client went away */
        pthread_mutex_unlock(&w->mu);
        vd_buf_free(frame);
        free(o);
        return;
    }
    if (how == SRV_POST_SEND && !w->queued) sent = send_now(w->fd, frame);
    int whole = sent == frame->len;
    if (!whole) w->queued++;
    if (whole) atomic_fetch_sub(&w->inflight, 1); /* (reading pauses at the limit: wake it) */
    pthread_mutex_unlock(&w->mu);
    if (whole) {
        vd_buf_free(frame);
        free(o);
        if (atomic_load(&w->paused)) vd_srv_wake(s);
        return;
    }
    o->conn_slot = slot;
    o->conn_gen = gen;
    o->frame = *frame;
    o->off = sent;
    memset(frame, 0, sizeof *frame);
    pthread_mutex_lock(&s->out_mu);
    if (s->out_tail)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
    pthread_mutex_unlock(&s->out_mu);
    if (how != SRV_POST_LATER) vd_srv_wake(s);
}

/* ---- connections ---- */

/* Whether slot may read more requests. At the in-flight limit it marks the wire paused and
 * looks again (a model thread lowers inflight, then reads paused: one of the two sees the
 * other, so an answer sent meanwhile wakes this thread or is seen here). */
static int conn_may_read(vd_server *s, uint32_t slot)
{
    const srv_conn *c = &s->conns[slot];
    srv_wire *w = &s->wires[slot];
    if (c->close_after_flush || c->out_bytes >= MAX_OUT_BYTES_PER_CONN) return 0;
    if (atomic_load(&w->inflight) < MAX_INFLIGHT_PER_CONN) {
        atomic_store(&w->paused, 0);
        return 1;
    }
    atomic_store(&w->paused, 1);
    return atomic_load(&w->inflight) < MAX_INFLIGHT_PER_CONN;
}

static void conn_update_events(vd_server *s, uint32_t slot)
{
    srv_conn *c = &s->conns[slot];
    uint32_t ev = 0;
    if (conn_may_read(s, slot)) ev |= EPOLLIN;
    if (c->out_head) ev |= EPOLLOUT;
    if (ev == c->events) return;
    struct epoll_event e = {.events = ev, .data.u64 = slot};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void conn_close(vd_server *s, uint32_t slot)
{
    srv_conn *c = &s->conns[slot];
    if (!c->used) return;
    if (s->secret && c->auth == AUTH_WAIT_PROOF && !s->draining)
        auth_refused(s, c,
                     "it hung up during the handshake without its proof: it did not accept "
                     "this server's proof (the secret files differ)");
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    srv_wire *w = &s->wires[slot];
    pthread_mutex_lock(&w->mu); /* no model thread sends on it from here on */
    w->fd = -1;
    w->gen = c->gen + 1;
    w->queued = 0;
    pthread_mutex_unlock(&w->mu);
    close(c->fd);
    vd_srv_accept_resume(s); /* a descriptor is free again */
    free(c->block);
    if (c->has_rx_fd) close(c->rx_fd);
    vd_srv_shm_unref(c->shm);
    for (srv_out *o = c->out_head, *n; o; o = n) {
        n = o->next;
        vd_buf_free(&o->frame);
        free(o);
    }
    uint32_t gen = c->gen;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->gen = gen + 1; /* responses still on their way for the old connection are dropped */
}

/* A queued frame went out whole: once none is left, model threads may send again. */
static void frame_sent(vd_server *s, uint32_t slot)
{
    srv_wire *w = &s->wires[slot];
    pthread_mutex_lock(&w->mu);
    w->queued--;
    pthread_mutex_unlock(&w->mu);
}

/* Sends what it can; closes the connection on a write error. Returns 0 if closed. */
static int conn_flush(vd_server *s, uint32_t slot)
{
    srv_conn *c = &s->conns[slot];
    while (c->out_head) {
        srv_out *o = c->out_head;
        ssize_t w = send(c->fd, o->frame.data + o->off, o->frame.len - o->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_close(s, slot);
            return 0;
        }
        o->off += (size_t)w;
        c->out_bytes -= (size_t)w;
        if (o->off < o->frame.len) continue;
        frame_sent(s, slot);
        c->out_head = o->next;
        if (!c->out_head) c->out_tail = NULL;
        vd_buf_free(&o->frame);
        free(o);
    }
    if (!c->out_head && c->close_after_flush) {
        conn_close(s, slot);
        return 0;
    }
    conn_update_events(s, slot);
    return 1;
}

static void conn_queue(vd_server *s, uint32_t slot, srv_out *o)
{
    srv_conn *c = &s->conns[slot];
    o->next = NULL;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += o->frame.len - o->off;
}

/* Sends a response made on the I/O thread (takes frame). */
static void reply(vd_server *s, uint32_t slot, vd_buf *frame)
{
    srv_out *o = calloc(1, sizeof *o);
    if (!o) {
        vd_buf_free(frame);
        return;
    }
    o->frame = *frame;
    memset(frame, 0, sizeof *frame);
    srv_wire *w = &s->wires[slot];
    pthread_mutex_lock(&w->mu);
    w->queued++;
    pthread_mutex_unlock(&w->mu);
    conn_queue(s, slot, o);
}

void vd_srv_reply_error(vd_server *s, uint32_t slot, uint16_t op, uint64_t id, vd_status st,
                        const char *msg)
{
    vd_buf frame = {0};
    if (vd_proto_encode_error(&frame, op, id, st, msg, NULL) == VD_OK)
        reply(s, slot, &frame);
    else
        vd_buf_free(&frame);
}

void vd_srv_reply_json(vd_server *s, uint32_t slot, uint16_t op, uint64_t id, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    vd_buf frame = {0};
    if (!text || vd_proto_frame(&frame, op, id, VD_OK, text, strlen(text), NULL) != VD_OK) {
        vd_buf_free(&frame);
        vd_srv_reply_error(s, slot, op, id, VD_ERR_NOMEM, "out of memory");
    } else {
        reply(s, slot, &frame);
    }
    free(text);
}

/* Logs a refused handshake: the first at once, then at most one line a
 * minute with the count since, so a client retrying with the wrong secret
 * does not flood the log. */
static void auth_refused(vd_server *s, const srv_conn *c, const char *why)
{
    int64_t now = vd_mono_us();
    if (s->auth_last_log_us && now - s->auth_last_log_us < 60000000) {
        s->auth_refused++; /* told in the next line */
        return;
    }
    char more[96] = "";
    if (s->auth_refused)
        snprintf(more, sizeof more, " (and %lld more refused since the last such line)",
                 (long long)s->auth_refused);
    VD_WARN("refused a client from %s: %s%s", c->peer[0] ? c->peer : "the unix socket", why, more);
    s->auth_refused = 0;
    s->auth_last_log_us = now;
}

/* A frame before the handshake completed (the server has a secret): HELLO,
 * then AUTH; anything else is refused with VD_ERR_AUTH and the connection
 * closed. */
static void conn_auth_frame(vd_server *s, uint32_t slot, const vd_proto_header *h,
                            const uint8_t *payload)
{
    srv_conn *c = &s->conns[slot];
    vd_error e;
    vd_buf frame = {0};
    if (h->op == VD_OP_HELLO && c->auth == AUTH_WAIT_HELLO) {
        if (vd_auth_server_challenge(s->secret, h->id, payload, h->length, c->snonce, c->cnonce,
                                     &frame, &e) == VD_OK) {
            reply(s, slot, &frame);
            c->auth = AUTH_WAIT_PROOF;
        } else {
            vd_buf_free(&frame);
            vd_srv_reply_error(s, slot, h->op, h->id, e.code, e.msg);
            c->close_after_flush = 1;
        }
    } else if (h->op == VD_OP_AUTH && c->auth == AUTH_WAIT_PROOF) {
        vd_status st =
            vd_auth_server_verify(s->secret, c->snonce, c->cnonce, payload, h->length, &e);
        if (st == VD_OK && vd_proto_frame(&frame, VD_OP_AUTH, h->id, VD_OK, NULL, 0, &e) == VD_OK) {
            reply(s, slot, &frame);
            c->auth = AUTH_DONE;
        } else {
            vd_buf_free(&frame);
            if (st == VD_ERR_AUTH) auth_refused(s, c, "wrong secret (its proof does not match)");
            vd_srv_reply_error(s, slot, h->op, h->id, e.code, e.msg);
            c->close_after_flush = 1;
        }
    } else {
        auth_refused(s, c,
                     "no authentication (a request before the handshake: the client has no "
                     "secret)");
        vd_srv_reply_error(s, slot, h->op, h->id, VD_ERR_AUTH,
                           "authentication required: this model server needs the shared secret "
                           "(--secret-file FILE or $VISIOND_MODEL_SECRET_FILE)");
        c->close_after_flush = 1;
    }
}

/* ATTACH: maps the region whose descriptor came with the frame, in place of the one the
 * connection had (requests still running on that one keep it until they end). */
static void conn_attach(vd_server *s, uint32_t slot, const uint8_t *payload)
{
    srv_conn *c = &s->conns[slot];
    int fd = c->has_rx_fd ? c->rx_fd : -1;
    c->has_rx_fd = 0;
    uint64_t size = 0;
    srv_shm *m = NULL;
    vd_error e;
    vd_status st = vd_proto_decode_attach(payload, c->h.length, &size, &e);
    if (st == VD_OK) st = vd_srv_shm_map(fd, size, s->cfg.max_frame, &m, &e);
    if (fd >= 0) close(fd);
    if (st != VD_OK) {
        vd_srv_reply_error(s, slot, c->h.op, c->h.id, st, e.msg);
        return;
    }
    vd_srv_shm_unref(c->shm);
    c->shm = m;
    vd_buf frame = {0};
    if (vd_proto_frame(&frame, VD_OP_ATTACH, c->h.id, VD_OK, NULL, 0, NULL) != VD_OK) {
        vd_buf_free(&frame);
        vd_srv_reply_error(s, slot, c->h.op, c->h.id, VD_ERR_NOMEM, "out of memory");
        return;
    }
    reply(s, slot, &frame);
}

/* One complete frame: the handshake while it is due, else the request itself. Takes block
 * (payload lies inside it). */
static void conn_frame(vd_server *s, uint32_t slot, uint8_t *block, uint8_t *payload)
{
    srv_conn *c = &s->conns[slot];
    if (s->secret && c->auth != AUTH_DONE) {
        conn_auth_frame(s, slot, &c->h, payload);
        free(block);
    } else if (c->h.op == VD_OP_HELLO || c->h.op == VD_OP_AUTH) {
        free(block);
        vd_srv_reply_error(s, slot, c->h.op, c->h.id, VD_ERR_UNSUPPORTED,
                           s->secret ? "already authenticated"
                                     : "this model server has no secret (it was started without "
                                       "--secret-file)");
    } else if (c->h.op == VD_OP_ATTACH) {
        conn_attach(s, slot, payload);
        free(block);
    } else if (vd_srv_handle_frame(s, slot, c->gen, c->shm, c->h, block, payload)) {
        atomic_fetch_add(&s->wires[slot].inflight, 1);
    }
}

/* Allocates the buffer for the payload of the frame whose header c just read. A large INFER
 * request's payload is placed so that its tensor data starts on a 64-byte boundary (its
 * first bytes, name and shape, are peeked at), so the request can keep the buffer as its
 * input tensor instead of a copy (vd_proto_decode_infer_take); when they have not arrived
 * yet, it goes at the start and the tensor is copied out as before. 0: out of memory. */
static int payload_buffer(srv_conn *c)
{
    size_t len = c->h.length, pad = 0;
    if (c->h.op == VD_OP_INFER && len >= PLACE_MIN) {
        uint8_t lead[VD_PROTO_INFER_LEAD_MAX];
        ssize_t r = recv(c->fd, lead, len < sizeof lead ? len : sizeof lead, MSG_PEEK);
        pad = r > 0 ? vd_proto_infer_data_offset(lead, (size_t)r) : 0;
    }
    c->block = malloc(len + (pad ? 64 : 1));
    if (!c->block) return 0;
    c->payload = c->block;
    if (pad) c->payload += (64 - ((uintptr_t)c->block + pad) % 64) % 64;
    return 1;
}

/* Reads up to n bytes of a frame's header, and the descriptors that came with them (an
 * ATTACH frame's region; a client sends its frame and descriptor in one write, so they come
 * with the frame's first bytes): the last one is kept for the ATTACH to take, any other is
 * closed. The payload's reads take no descriptors, so the kernel closes any sent there. */
static ssize_t recv_head(srv_conn *c, size_t n)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec iov = {c->hdr + c->hdr_got, n};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t r = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0) return r;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof fd, sizeof fd);
            if (c->has_rx_fd) close(c->rx_fd);
            c->rx_fd = fd;
            c->has_rx_fd = 1;
        }
    }
    return r;
}

/* Reads what is there; handles complete frames. Returns 0 if the connection closed. */
static int conn_read(vd_server *s, uint32_t slot)
{
    srv_conn *c = &s->conns[slot];
    int frames = 0;
    while (c->used && frames < FRAMES_PER_WAKEUP && conn_may_read(s, slot)) {
        if (!c->have_hdr) {
            ssize_t r = recv_head(c, VD_PROTO_HEADER_LEN - c->hdr_got);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (r <= 0) { /* the peer closed or failed: drop the connection */
                conn_close(s, slot);
                return 0;
            }
            c->hdr_got += (size_t)r;
            if (c->hdr_got < VD_PROTO_HEADER_LEN) continue;
            vd_error e;
            vd_status rc = vd_proto_header_decode(c->hdr, s->cfg.max_frame, &c->h, &e);
            if (rc != VD_OK) {
                /* the stream cannot be trusted past a bad header: answer, then close */
                VD_WARN("connection %u: %s", slot, e.msg);
                vd_srv_reply_error(s, slot, c->h.op, c->h.id, rc, e.msg);
                c->close_after_flush = 1;
                break;
            }
            c->have_hdr = 1;
            c->pay_got = 0;
            if (!payload_buffer(c)) {
                vd_srv_reply_error(s, slot, c->h.op, c->h.id, VD_ERR_NOMEM, "out of memory");
                c->close_after_flush = 1;
                break;
            }
        } else {
            ssize_t r = recv(c->fd, c->payload + c->pay_got, c->h.length - c->pay_got, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (r <= 0) { /* closed mid-frame: the partial request is dropped */
                conn_close(s, slot);
                return 0;
            }
            c->pay_got += (size_t)r;
        }
        if (c->have_hdr && c->pay_got == c->h.length) {
            uint8_t *block = c->block, *payload = c->payload;
            c->block = c->payload = NULL;
            c->have_hdr = 0;
            c->hdr_got = 0;
            c->pay_got = 0;
            conn_frame(s, slot, block, payload);
            frames++;
        }
    }
    if (!c->used) return 0;
    return conn_flush(s, slot);
}

/* Watches (on = 1) or stops watching the listening sockets. */
static void listen_watch(vd_server *s, int on)
{
    struct epoll_event ev = {.events = on ? EPOLLIN : 0};
    if (s->unix_fd >= 0) {
        ev.data.u64 = SRV_TAG_UNIX;
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->unix_fd, &ev);
    }
    if (s->tcp_fd >= 0) {
        ev.data.u64 = SRV_TAG_TCP;
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->tcp_fd, &ev);
    }
}

void vd_srv_accept_resume(vd_server *s)
{
    if (!s->accept_paused_until_us) return;
    s->accept_paused_until_us = 0;
    listen_watch(s, 1);
}

/* "ADDRESS:PORT" of a TCP peer, for the log. */
static void peer_name(int fd, char *buf, size_t n)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    buf[0] = 0;
    if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0) return;
    if (sa.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(buf, n, "%s:%d", host, port);
}

void vd_srv_accept_all(vd_server *s, int lfd, int is_tcp)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* The pending connection stays in the backlog, so the socket
                 * stays readable: watching it now would spin. Pause accepting
                 * until a connection closes or ACCEPT_PAUSE_US pass; log at
                 * most once a second. */
                s->accept_paused_until_us = vd_mono_us() + ACCEPT_PAUSE_US;
                listen_watch(s, 0);
            }
            s->accept_failures++;
            if (vd_mono_us() - s->accept_last_log_us >= 1000000) {
                VD_WARN("accept: %s (%lld failures); new connections wait until descriptors are "
                        "free",
                        strerror(e), (long long)s->accept_failures);
                s->accept_failures = 0;
                s->accept_last_log_us = vd_mono_us();
            }
            return;
        }
        int slot = -1;
        for (int i = 0; i < s->nconns; i++)
            if (!s->conns[i].used) {
                slot = i;
                break;
            }
        if (slot < 0) {
            vd_buf frame = {0};
            if (!vd_proto_encode_error(&frame, 0, 0, VD_ERR_BUSY,
                                       "too many connections to the model server", NULL)) {
                ssize_t w = send(fd, frame.data, frame.len, MSG_NOSIGNAL);
                (void)w;
            }
            vd_buf_free(&frame);
            close(fd);
            VD_WARN("refused a connection: %d connections already", s->nconns);
            continue;
        }
        if (is_tcp) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        srv_conn *c = &s->conns[slot];
        c->fd = fd;
        c->used = 1;
        srv_wire *w = &s->wires[slot];
        pthread_mutex_lock(&w->mu);
        w->fd = fd;
        w->gen = c->gen;
        w->queued = 0;
        atomic_store(&w->inflight, 0);
        atomic_store(&w->paused, 0);
        pthread_mutex_unlock(&w->mu);
        if (is_tcp) peer_name(fd, c->peer, sizeof c->peer);
        c->events = EPOLLIN;
        if (vd_srv_ep_add(s, fd, EPOLLIN, (uint64_t)slot) < 0) {
            VD_WARN("epoll add: %s", strerror(errno));
            pthread_mutex_lock(&w->mu);
            w->fd = -1;
            pthread_mutex_unlock(&w->mu);
            c->used = 0;
            close(fd);
            c->fd = -1;
        }
    }
}

/* Moves responses from the model threads to their connections. */
void vd_srv_deliver(vd_server *s)
{
    pthread_mutex_lock(&s->out_mu);
    srv_out *list = s->out_head;
    s->out_head = s->out_tail = NULL;
    pthread_mutex_unlock(&s->out_mu);
    for (srv_out *o = list, *next; o; o = next) {
        next = o->next;
        srv_conn *c = o->conn_slot < (uint32_t)s->nconns ? &s->conns[o->conn_slot] : NULL;
        if (!c || !c->used || c->gen != o->conn_gen) { /* its client went away */
            vd_buf_free(&o->frame);
            free(o);
            continue;
        }
        atomic_fetch_sub(&s->wires[o->conn_slot].inflight, 1); /* the outbox holds answers */
        conn_queue(s, o->conn_slot, o);
    }
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i].used && (s->conns[i].out_head || s->conns[i].events != EPOLLIN))
            conn_flush(s, (uint32_t)i);
}

vd_status vd_srv_listen(vd_server *s, vd_error *err)
{
    vd_status rc = VD_OK;
    if (s->socket_path) rc = listen_unix(s, err);
    if (rc == VD_OK && s->tcp_addr) rc = listen_tcp(s, err);
    if (rc == VD_OK && s->unix_fd >= 0 && vd_srv_ep_add(s, s->unix_fd, EPOLLIN, SRV_TAG_UNIX) < 0)
        rc = vd_error_set(err, VD_ERR_IO, "epoll: %s", strerror(errno));
    if (rc == VD_OK && s->tcp_fd >= 0 && vd_srv_ep_add(s, s->tcp_fd, EPOLLIN, SRV_TAG_TCP) < 0)
        rc = vd_error_set(err, VD_ERR_IO, "epoll: %s", strerror(errno));
    return rc;
}

vd_status vd_srv_conns_init(vd_server *s, vd_error *err)
{
    s->conns = calloc((size_t)s->cfg.max_conns, sizeof *s->conns);
    s->wires = calloc((size_t)s->cfg.max_conns, sizeof *s->wires);
    if (!s->conns || !s->wires) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    s->nconns = s->cfg.max_conns;
    for (int i = 0; i < s->nconns; i++) {
        s->conns[i].fd = -1;
        s->wires[i].fd = -1;
        pthread_mutex_init(&s->wires[i].mu, NULL);
    }
    return VD_OK;
}

void vd_srv_conns_free(vd_server *s)
{
    for (int i = 0; s->conns && i < s->nconns; i++)
        conn_close(s, (uint32_t)i);
    for (srv_out *o = s->out_head, *n; o; o = n) {
        n = o->next;
        vd_buf_free(&o->frame);
        free(o);
    }
    s->out_head = s->out_tail = NULL;
    for (int i = 0; s->wires && i < s->nconns; i++)
        pthread_mutex_destroy(&s->wires[i].mu);
    free(s->conns);
    free(s->wires);
    s->conns = NULL;
    s->wires = NULL;
}

int vd_srv_conns_open(const vd_server *s)
{
    int n = 0;
    for (int i = 0; i < s->nconns; i++)
        n += s->conns[i].used;
    return n;
}

int vd_srv_output_pending(vd_server *s)
{
    pthread_mutex_lock(&s->out_mu);
    int pending = s->out_head != NULL;
    pthread_mutex_unlock(&s->out_mu);
    if (pending) return 1;
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i].used && s->conns[i].out_head) return 1;
    return 0;
}

void vd_srv_conn_ready(vd_server *s, uint32_t slot, uint32_t events)
{
    if (!s->conns[slot].used) return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!conn_read(s, slot)) return;
    }
    if (events & EPOLLOUT) conn_flush(s, slot);
}
