/* client.c: the blocking model-server client with reconnect and resend. */
#include "infer/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/datadir.h"
#include "core/hostport.h"
#include "core/log.h"
#include "core/util.h"
#include "infer/auth.h"

/* Backoff of a server that failed (could not be reached, dropped the
 * connection, was shutting down): it is not tried again before it passes;
 * it doubles from BACKOFF_MIN_MS up to BACKOFF_MAX_MS while the server keeps
 * failing and resets once a connection is made. A server that refused the
 * handshake waits AUTH_BACKOFF_MS. With several servers, one connect waits at
 * most CONNECT_MAX_MS so an unreachable host does not hold a request that
 * another server could answer. */
#define BACKOFF_MIN_MS  10
#define BACKOFF_MAX_MS  500
#define AUTH_BACKOFF_MS 30000
#define CONNECT_MAX_MS  2000

/* Shared memory (docs/protocol.md, "Shared memory"): over a Unix socket, an input of at
 * least SHM_MIN bytes goes in the handle's region (written there by the caller through
 * vd_infer_client_input, or copied there by the call) and the request names it by offset, so
 * that neither side's kernel copies it through the socket. The region grows in steps of
 * SHM_STEP bytes to the largest input sent. */
#define SHM_MIN  65536
#define SHM_STEP (1u << 20)

typedef struct {
    int is_unix;
    char path[108];
    char host[VD_HOSTPORT_HOST_MAX];
    char port[16];
    int fd;
    int64_t down_until; /* vd_mono_ms(); 0 = healthy */
    int64_t backoff;
    int auth_failed; /* resting because the handshake was refused (auth_err says why) */
    vd_error auth_err;
    int attached; /* this connection has the handle's region (ATTACH answered ok) */
    char address[200];
} endpoint;

/* The handle's shared-memory region: a memfd sealed against shrinking, mapped here. One
 * request at a time uses it (a handle makes one call at a time), from offset 0. */
typedef struct {
    int fd; /* -1: none yet */
    uint8_t *base;
    size_t size;
    int off; /* 1: not used ($VISIOND_INFER_SHM=0, or a server refused it) */
} shm_region;

struct vd_infer_client {
    endpoint ep[VD_INFER_MAX_SERVERS];
    int nep;
    int next; /* round robin: the endpoint the next request tries first */
    vd_auth_secret secret;
    uint64_t next_id;
    uint64_t connects, resends;
    shm_region shm;
    char address[400];
};

const char *vd_infer_default_address(char *buf, size_t n)
{
    const char *a = getenv("VISIOND_MODEL_SERVER");
    if (a && *a) {
        snprintf(buf, n, "%s", a);
        return buf;
    }
    snprintf(buf, n, "unix:%s/model.sock", vd_data_dir());
    return buf;
}

/* Parses one address into e. */
static vd_status endpoint_parse(const char *a, endpoint *e, vd_error *err)
{
    memset(e, 0, sizeof *e);
    e->fd = -1;
    if (!*a) return vd_error_set(err, VD_ERR_INVALID, "empty model-server address");
    if (strlen(a) >= sizeof e->address)
        return vd_error_set(err, VD_ERR_INVALID, "model-server address '%.40s...' is too long", a);
    vd_strlcpy(e->address, a, sizeof e->address);
    if (strncmp(a, "unix:", 5) == 0 || (strchr(a, '/') && strncmp(a, "tcp:", 4) != 0)) {
        if (strncmp(a, "unix:", 5) == 0) a += 5;
        if (!*a || strlen(a) >= sizeof e->path)
            return vd_error_set(err, VD_ERR_INVALID, "socket path '%s' is empty or too long", a);
        e->is_unix = 1;
        vd_strlcpy(e->path, a, sizeof e->path);
        return VD_OK;
    }
    if (strncmp(a, "tcp:", 4) == 0) a += 4;
    vd_hostport hp;
    vd_status st = vd_hostport_parse(a, 0, "model-server address", &hp, err);
    if (st != VD_OK) return st;
    vd_strlcpy(e->host, hp.host, sizeof e->host);
    snprintf(e->port, sizeof e->port, "%d", hp.port);
    return VD_OK;
}

vd_status vd_infer_client_new(const char *address, vd_infer_client **out, vd_error *err)
{
    *out = NULL;
    if (!address || !*address)
        return vd_error_set(err, VD_ERR_INVALID, "empty model-server address");
    vd_infer_client *c = calloc(1, sizeof *c);
    if (!c) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    c->next_id = 1;
    c->shm.fd = -1;
    const char *no_shm = getenv("VISIOND_INFER_SHM");
    c->shm.off = no_shm && strcmp(no_shm, "0") == 0;
    vd_strlcpy(c->address, address, sizeof c->address);
    vd_status st = VD_OK;
    const char *p = address;
    while (st == VD_OK) {
        size_t n = strcspn(p, ",");
        char one[sizeof c->ep[0].address];
        if (c->nep == VD_INFER_MAX_SERVERS)
            st = vd_error_set(err, VD_ERR_INVALID, "more than %d model-server addresses",
                              VD_INFER_MAX_SERVERS);
        else if (n >= sizeof one)
            st =
                vd_error_set(err, VD_ERR_INVALID, "model-server address '%.40s...' is too long", p);
        else {
            memcpy(one, p, n);
            one[n] = 0;
            st = endpoint_parse(one, &c->ep[c->nep++], err);
        }
        if (!p[n]) break;
        p += n + 1;
    }
    if (st == VD_OK) st = vd_auth_secret_from_env(&c->secret, err);
    if (st != VD_OK) {
        free(c);
        return st;
    }
    *out = c;
    return VD_OK;
}

static void disconnect(endpoint *e)
{
    if (e->fd >= 0) close(e->fd);
    e->fd = -1;
    e->attached = 0;
}

static void shm_release(shm_region *m)
{
    if (m->base) munmap(m->base, m->size);
    if (m->fd >= 0) close(m->fd);
    m->base = NULL;
    m->size = 0;
    m->fd = -1;
}

/* Makes the region hold at least n bytes: a new, larger memfd when it is smaller (every
 * connection attaches it again). 0 when it cannot (the call then goes through the socket). */
static int shm_reserve(vd_infer_client *c, size_t n)
{
    shm_region *m = &c->shm;
    if (m->size >= n) return 1;
    size_t size = (n + SHM_STEP - 1) / SHM_STEP * SHM_STEP;
    int fd = memfd_create("visiond-infer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)size) == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        VD_WARN("model client: no shared memory (%s); inputs go through the socket",
                strerror(errno));
        if (fd >= 0) close(fd);
        m->off = 1;
        return 0;
    }
    shm_release(m);
    m->fd = fd;
    m->base = p;
    m->size = size;
    for (int i = 0; i < c->nep; i++)
        c->ep[i].attached = 0;
    return 1;
}

/* The endpoint failed: drop its connection and rest it for its backoff. */
static void mark_down(endpoint *e, int64_t ms)
{
    disconnect(e);
    e->auth_failed = 0;
    if (ms <= 0) {
        e->backoff = e->backoff ? e->backoff * 2 : BACKOFF_MIN_MS;
        if (e->backoff > BACKOFF_MAX_MS) e->backoff = BACKOFF_MAX_MS;
        ms = e->backoff;
    }
    e->down_until = vd_mono_ms() + ms;
}

void vd_infer_client_free(vd_infer_client *c)
{
    if (!c) return;
    for (int i = 0; i < c->nep; i++)
        disconnect(&c->ep[i]);
    shm_release(&c->shm);
    memset(&c->secret, 0, sizeof c->secret);
    free(c);
}

static int endpoint_connected(endpoint *e)
{
    if (e->fd < 0) return 0;
    struct pollfd pf = {e->fd, POLLIN | POLLRDHUP, 0};
    int n = poll(&pf, 1, 0);
    if (n == 0) return 1; /* nothing to read, no hang-up: open */
    if (n > 0 && !(pf.revents & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP))) {
        char b;
        ssize_t r = recv(e->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) return 1;
    } else if (n < 0 && errno == EINTR) {
        return 1; /* unknown: the next call finds out */
    }
    disconnect(e);
    return 0;
}

int vd_infer_client_connected(vd_infer_client *c)
{
    int any = 0;
    for (int i = 0; i < c->nep; i++)
        any |= endpoint_connected(&c->ep[i]);
    return any;
}

uint64_t vd_infer_client_connects(const vd_infer_client *c)
{
    return c->connects;
}

uint64_t vd_infer_client_resends(const vd_infer_client *c)
{
    return c->resends;
}

#define CLIENT_UNIX_SNDBUF (4 << 20)

static int remaining_ms(int64_t deadline)
{
    int64_t r = deadline - vd_mono_ms();
    return r < 0 ? 0 : r > 1000000 ? 1000000 : (int)r;
}

/* A non-blocking connect to one resolved TCP address, waiting until deadline.
 * Returns the descriptor, or -1 with errno set. */
static int connect_tcp(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd pf = {fd, POLLOUT, 0};
        int t = remaining_ms(deadline);
        if (t > 0 && poll(&pf, 1, t) == 1) {
            int e = 0;
            socklen_t len = sizeof e;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
            r = e ? -1 : 0;
            errno = e;
        } else {
            errno = ETIMEDOUT;
        }
    }
    if (r == 0) {
        fcntl(fd, F_SETFL, fl);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* One connection attempt. Returns 0, or an errno. */
static int try_connect(endpoint *ep, int64_t deadline)
{
    int fd = -1;
    if (ep->is_unix) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        vd_strlcpy(sa.sun_path, ep->path, sizeof sa.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            int e = errno;
            close(fd);
            return e;
        }
        /* a request (150-800 KB for an image model) in one send: with the default
         * 208 KiB the sender blocks and the server's I/O thread wakes several times
         * per request (docs/model-server.md, "Per-request cost"); the kernel caps
         * this at net.core.wmem_max and charges only what is queued */
        int sndbuf = CLIENT_UNIX_SNDBUF;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int g = getaddrinfo(ep->host, ep->port, &hints, &res);
        if (g) return g == EAI_SYSTEM ? errno : EHOSTUNREACH;
        int e = ECONNREFUSED;
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
            if ((fd = connect_tcp(ai, deadline)) < 0) e = errno;
        freeaddrinfo(res);
        if (fd < 0) return e;
    }
    ep->fd = fd;
    return 0;
}

typedef enum { IO_OK, IO_BROKEN, IO_TIMEOUT } io_result;

/* Sends two buffers back to back (the second may be empty), as one gathering write where
 * the socket takes it: a request's tensor goes out from where it lies, not from a copy. */
static io_result send_two(int fd, const uint8_t *p, size_t n, const uint8_t *q, size_t m,
                          int64_t deadline)
{
    while (n || m) {
        struct iovec iov[2];
        size_t k = 0;
        if (n) iov[k++] = (struct iovec){(void *)(uintptr_t)p, n};
        if (m) iov[k++] = (struct iovec){(void *)(uintptr_t)q, m};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = k};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            size_t a = (size_t)w < n ? (size_t)w : n, b = (size_t)w - a; /* from each */
            p += a;
            n -= a;
            if (b) {
                q += b;
                m -= b;
            }
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {fd, POLLOUT, 0};
            int t = remaining_ms(deadline);
            if (t == 0) return IO_TIMEOUT;
            if (poll(&pf, 1, t) == 0) return IO_TIMEOUT;
            continue;
        }
        return IO_BROKEN;
    }
    return IO_OK;
}

static io_result send_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
    return send_two(fd, p, n, NULL, 0, deadline);
}

static io_result recv_all(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    while (n) {
        struct pollfd pf = {fd, POLLIN, 0};
        int t = remaining_ms(deadline);
        int pr = t == 0 ? 0 : poll(&pf, 1, t);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) return IO_TIMEOUT;
        ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        return IO_BROKEN; /* 0 = the server closed; <0 = reset */
    }
    return IO_OK;
}

/* Reads one answer frame: its header into *h, a payload of at most 1 KiB into p. */
static io_result recv_small(int fd, vd_proto_header *h, uint8_t p[1024], int64_t deadline)
{
    uint8_t hb[VD_PROTO_HEADER_LEN];
    io_result io = recv_all(fd, hb, sizeof hb, deadline);
    if (io != IO_OK) return io;
    if (vd_proto_header_decode(hb, 1024, h, NULL) != VD_OK) return IO_BROKEN;
    return recv_all(fd, p, h->length, deadline);
}

/* Sends frame and reads one answer frame (as recv_small). For the handshake. */
static io_result exchange(int fd, const vd_buf *frame, vd_proto_header *h, uint8_t p[1024],
                          int64_t deadline)
{
    io_result io = send_all(fd, frame->data, frame->len, deadline);
    return io == IO_OK ? recv_small(fd, h, p, deadline) : io;
}

/* Sends frame with the descriptor pass beside its first bytes (SCM_RIGHTS). */
static io_result send_with_fd(int fd, const vd_buf *frame, int pass, int64_t deadline)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {frame->data, frame->len};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &pass, sizeof pass);
    ssize_t w;
    do
        w = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) return IO_BROKEN;
    return send_all(fd, frame->data + w, frame->len - (size_t)w, deadline);
}

/* Attaches the handle's region to ep's connection, once per connection. Returns 1 when it
 * is attached; 0 when this call's input goes through the socket: a server that refuses it
 * (one older than ATTACH answers "unknown op") turns shared memory off for the handle, and a
 * broken connection is found by the send that follows. */
static int shm_attach(vd_infer_client *c, endpoint *ep, int64_t deadline)
{
    if (ep->attached) return 1;
    vd_buf f = {0};
    vd_proto_header h;
    uint8_t p[1024];
    if (vd_proto_encode_attach(&f, c->next_id++, c->shm.size, NULL) != VD_OK) {
        vd_buf_free(&f);
        return 0;
    }
    io_result io = send_with_fd(ep->fd, &f, c->shm.fd, deadline);
    if (io == IO_OK) io = recv_small(ep->fd, &h, p, deadline);
    vd_buf_free(&f);
    if (io != IO_OK) {
        mark_down(ep, 0);
        return 0;
    }
    if (h.aux == VD_OK) return ep->attached = 1;
    VD_WARN("model server %s refused shared memory (%.*s); inputs go through the socket",
            ep->address, h.length > 300 ? 300 : (int)h.length, (const char *)p);
    c->shm.off = 1;
    return 0;
}

/* The handshake of infer/auth.h on ep's fresh connection. VD_ERR_AUTH when
 * either side refuses; VD_ERR_CONN when the connection failed meanwhile. */
static vd_status handshake(vd_infer_client *c, endpoint *ep, int64_t deadline, vd_error *err)
{
    uint8_t cnonce[VD_AUTH_NONCE_LEN], p[1024];
    vd_proto_header h;
    vd_buf f = {0};
    vd_status st = vd_auth_client_hello(cnonce, &f, err);
    io_result io = st == VD_OK ? exchange(ep->fd, &f, &h, p, deadline) : IO_OK;
    vd_buf_free(&f);
    if (st == VD_OK && io == IO_OK) {
        st = vd_auth_client_answer(&c->secret, cnonce, &h, p, &f, err);
        if (st == VD_OK) io = exchange(ep->fd, &f, &h, p, deadline);
        vd_buf_free(&f);
    }
    if (st != VD_OK) return st;
    if (io != IO_OK) return vd_error_set(err, VD_ERR_CONN, "connection lost during the handshake");
    if (h.op != VD_OP_AUTH || h.aux != VD_OK) {
        int n = h.length > 300 ? 300 : (int)h.length;
        return vd_error_set(err, VD_ERR_AUTH, "the model server refused our secret: %.*s", n,
                            (const char *)p);
    }
    return VD_OK;
}

/* Logs a refused handshake once per process (callers retry: one line is enough). */
static void log_auth_once(const endpoint *ep, const vd_error *e)
{
    static atomic_int logged;
    if (atomic_exchange(&logged, 1) == 0)
        VD_ERROR("model server %s: %s (further refusals are not logged)", ep->address, e->msg);
}

/* The server refused us (wrong or no secret): it rests AUTH_BACKOFF_MS, and
 * calls fail at once with err while every server does (no retry can help). */
static vd_status auth_down(endpoint *ep, const vd_error *e, vd_error *err)
{
    log_auth_once(ep, e);
    mark_down(ep, AUTH_BACKOFF_MS);
    ep->auth_failed = 1;
    vd_error_set(&ep->auth_err, VD_ERR_AUTH, "model server %s: %.300s", ep->address, e->msg);
    *err = ep->auth_err;
    return VD_ERR_AUTH;
}

/* Picks the endpoint for the next try: the next healthy one in round-robin
 * order, else (all resting) the one that rests least, after sleeping until
 * then (within the deadline). Returns NULL when the deadline passed, or (with
 * *auth set) when every server refused our secret. */
static endpoint *pick(vd_infer_client *c, int64_t deadline, endpoint **auth)
{
    int64_t now = vd_mono_ms();
    endpoint *best = NULL;
    *auth = NULL;
    for (int k = 0; k < c->nep; k++) {
        endpoint *e = &c->ep[(c->next + k) % c->nep];
        if (e->down_until <= now) {
            c->next = (int)((e - c->ep) + 1) % c->nep;
            return e;
        }
        if (e->auth_failed)
            *auth = e;
        else if (!best || e->down_until < best->down_until)
            best = e;
    }
    if (!best) return NULL; /* all refused us */
    *auth = NULL;
    int64_t wait = best->down_until - now;
    if (wait >= remaining_ms(deadline)) return NULL;
    vd_sleep_ms(wait);
    return best;
}

/* Connects ep (and authenticates when there is a secret). VD_OK, or the
 * reason in why; VD_ERR_AUTH is returned at once (in err). */
static vd_status ensure_connected(vd_infer_client *c, endpoint *ep, int64_t deadline, char *why,
                                  size_t whyn, vd_error *err)
{
    if (ep->fd >= 0) return VD_OK;
    int64_t cd = deadline;
    if (c->nep > 1 && cd - vd_mono_ms() > CONNECT_MAX_MS) cd = vd_mono_ms() + CONNECT_MAX_MS;
    int e = try_connect(ep, cd);
    if (e) {
        snprintf(why, whyn, "%s: connect: %s", ep->address, strerror(e));
        mark_down(ep, 0);
        return VD_ERR_CONN;
    }
    c->connects++;
    if (!c->secret.len) {
        ep->backoff = 0;
        return VD_OK;
    }
    vd_error he;
    vd_status st = handshake(c, ep, deadline, &he);
    if (st == VD_OK) {
        ep->backoff = 0;
        return VD_OK;
    }
    snprintf(why, whyn, "%s: %.200s", ep->address, he.msg);
    if (st == VD_ERR_AUTH) return auth_down(ep, &he, err);
    mark_down(ep, 0);
    return VD_ERR_CONN;
}

/* Reads answers on ep until the one with id (older ones, from calls that
 * timed out, are skipped). */
static io_result read_answer(endpoint *ep, uint64_t id, int64_t deadline, vd_proto_header *h,
                             uint8_t **payload, vd_status *st, vd_error *err)
{
    *st = VD_OK;
    for (;;) {
        uint8_t hb[VD_PROTO_HEADER_LEN];
        io_result io = recv_all(ep->fd, hb, sizeof hb, deadline);
        if (io != IO_OK) return io;
        vd_error he;
        if (vd_proto_header_decode(hb, UINT32_MAX, h, &he) != VD_OK) {
            *st = vd_error_set(err, VD_ERR_PROTOCOL, "model server %s: %s", ep->address, he.msg);
            return IO_OK;
        }
        uint8_t *p = malloc(h->length ? h->length : 1);
        if (!p) {
            *st =
                vd_error_set(err, VD_ERR_NOMEM, "out of memory for a %u-byte response", h->length);
            return IO_OK;
        }
        io = recv_all(ep->fd, p, h->length, deadline);
        if (io != IO_OK || h->id != id) {
            free(p);
            if (io != IO_OK) return io;
            continue;
        }
        *payload = p;
        return IO_OK;
    }
}

/* A request: its frame, followed by the tail bytes (the rest of its payload, or none); and,
 * for an input in the region, the same request by reference (INFER_SHM), used instead on a
 * connection that has the region. */
typedef struct {
    vd_buf *frame;
    const void *tail;
    size_t tail_len;
    vd_buf *by_ref; /* or NULL */
} request;

/* Sends req (whose id and timeout it patches) to a server and waits for the response with
 * the same id, resending to another server (or the same, after its backoff) when a
 * connection fails, until the deadline. On success *h and *payload (owned) hold it. */
static vd_status call(vd_infer_client *c, const request *rq, int64_t timeout_ms, vd_proto_header *h,
                      uint8_t **payload, vd_error *err)
{
    *payload = NULL;
    if (timeout_ms <= 0) timeout_ms = VD_INFER_DEFAULT_TIMEOUT_MS;
    int64_t deadline = vd_mono_ms() + timeout_ms;
    int attempts = 0, last_connect_failed = 0;
    char why[512] = "";
    endpoint *ep, *refused = NULL;
    while ((ep = pick(c, deadline, &refused)) != NULL) {
        vd_status st = ensure_connected(c, ep, deadline, why, sizeof why, err);
        last_connect_failed = st != VD_OK;
        if (st == VD_ERR_AUTH) return st;
        if (st != VD_OK) continue;
        if (attempts++ > 0) c->resends++;
        vd_buf *req = rq->frame;
        const void *tail = rq->tail;
        size_t tail_len = rq->tail_len;
        if (rq->by_ref && ep->is_unix && !c->shm.off && shm_attach(c, ep, deadline)) {
            req = rq->by_ref;
            tail_len = 0;
        }
        if (ep->fd < 0) continue; /* the attach found it broken: connect again */
        uint64_t id = c->next_id++;
        /* patch the id and the time left into the header */
        vd_proto_header rh;
        vd_proto_header_decode(req->data, UINT32_MAX, &rh, NULL);
        rh.id = id;
        int64_t left = deadline - vd_mono_ms();
        if (left <= 0) break;
        rh.aux = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        vd_proto_header_encode(&rh, req->data);

        io_result io = send_two(ep->fd, req->data, req->len, tail, tail_len, deadline);
        if (io == IO_OK) io = read_answer(ep, id, deadline, h, payload, &st, err);
        if (io == IO_OK && st != VD_OK) {
            disconnect(ep);
            return st;
        }
        if (io == IO_TIMEOUT) {
            disconnect(ep); /* a half-sent frame, or an answer still to come: start clean */
            return vd_error_set(err, VD_ERR_TIMEOUT,
                                "no answer from the model server %s within %lld ms", ep->address,
                                (long long)timeout_ms);
        }
        if (io == IO_BROKEN) {
            snprintf(why, sizeof why, "%s: connection lost", ep->address);
            mark_down(ep, 0);
            continue;
        }
        if (h->aux == VD_ERR_AUTH) { /* we have no secret; it wants one */
            vd_error e;
            int n = h->length > 300 ? 300 : (int)h->length;
            vd_error_set(&e, VD_ERR_AUTH, "%.*s", n, (const char *)*payload);
            free(*payload);
            *payload = NULL;
            return auth_down(ep, &e, err);
        }
        if (h->aux == VD_ERR_CONN) { /* the server is stopping: retry on a fresh connection */
            snprintf(why, sizeof why, "%s: the server was shutting down", ep->address);
            free(*payload);
            *payload = NULL;
            mark_down(ep, 0);
            continue;
        }
        return VD_OK;
    }
    if (refused) {
        *err = refused->auth_err;
        return VD_ERR_AUTH;
    }
    return vd_error_set(err, last_connect_failed ? VD_ERR_CONN : VD_ERR_TIMEOUT,
                        "model server %s: %s; gave up after %lld ms", c->address,
                        why[0] ? why : "deadline passed", (long long)timeout_ms);
}

/* Turns an error response into a vd_error. */
static vd_status server_error(const vd_proto_header *h, const uint8_t *p, vd_error *err)
{
    vd_status st = h->aux < VD_ERR__COUNT ? (vd_status)h->aux : VD_ERR_INTERNAL;
    int n = h->length > VD_ERROR_MSG_MAX - 1 ? VD_ERROR_MSG_MAX - 1 : (int)h->length;
    return vd_error_set(err, st, "%.*s", n, (const char *)p);
}

/* Whether an input of n bytes goes through the region: a large one, with a Unix socket among
 * the servers, and shared memory on; then the region holds at least n bytes. */
static int shm_wanted(vd_infer_client *c, size_t n)
{
    int any_unix = 0;
    for (int i = 0; i < c->nep; i++)
        any_unix |= c->ep[i].is_unix;
    return !c->shm.off && any_unix && n >= SHM_MIN && shm_reserve(c, n);
}

vd_status vd_infer_client_input(vd_infer_client *c, const int64_t *shape, size_t rank, vd_tensor *t,
                                vd_error *err)
{
    memset(t, 0, sizeof *t);
    size_t n = sizeof(float);
    for (size_t i = 0; i < rank && rank <= VD_TENSOR_MAX_RANK; i++) {
        if (shape[i] < 0 || (shape[i] && n > SIZE_MAX / (size_t)shape[i])) n = 0;
        n *= (size_t)(shape[i] < 0 ? 0 : shape[i]);
    }
    if (rank > VD_TENSOR_MAX_RANK || !n || !shm_wanted(c, n))
        return vd_tensor_alloc_uninit(t, VD_DTYPE_FLOAT32, shape, rank, err); /* its checks */
    t->raw = c->shm.base;
    t->borrowed = 1;
    memcpy(t->shape, shape, rank * sizeof *shape);
    t->rank = rank;
    return VD_OK;
}

/* Whether input goes by reference when a connection can take it (shm_wanted); then it is
 * copied into the region, unless it is the region already (vd_infer_client_input), and
 * by_ref is encoded. */
static int shm_prepare(vd_infer_client *c, const char *model, const vd_tensor *input,
                       vd_buf *by_ref)
{
    size_t n = vd_tensor_bytes(input);
    if (!shm_wanted(c, n)) return 0;
    if (vd_proto_encode_infer_ref(by_ref, 0, 0, model, input, 0, NULL) != VD_OK) return 0;
    if (input->raw != c->shm.base) memcpy(c->shm.base, input->raw, n);
    return 1;
}

vd_status vd_infer_client_infer(vd_infer_client *c, const char *model, const vd_tensor *input,
                                int64_t timeout_ms, vd_infer_result *res, vd_error *err)
{
    memset(res, 0, sizeof *res);
    vd_buf req = {0}, by_ref = {0};
    request rq = {&req, NULL, 0, NULL};
    vd_status rc =
        vd_proto_encode_infer_split(&req, 0, 0, model, input, &rq.tail, &rq.tail_len, err);
    if (rc != VD_OK) {
        vd_buf_free(&req);
        return rc;
    }
    if (shm_prepare(c, model, input, &by_ref)) rq.by_ref = &by_ref;
    vd_proto_header h;
    uint8_t *p = NULL;
    rc = call(c, &rq, timeout_ms, &h, &p, err);
    vd_buf_free(&req);
    vd_buf_free(&by_ref);
    if (rc != VD_OK) return rc;
    if (h.aux != VD_OK)
        rc = server_error(&h, p, err);
    else
        rc = vd_proto_decode_outputs(p, h.length, res, err);
    free(p);
    return rc;
}

static vd_status json_call(vd_infer_client *c, vd_buf *req, int64_t timeout_ms, char **json,
                           vd_error *err)
{
    if (json) *json = NULL;
    vd_proto_header h;
    uint8_t *p = NULL;
    request rq = {req, NULL, 0, NULL};
    vd_status rc = call(c, &rq, timeout_ms, &h, &p, err);
    vd_buf_free(req);
    if (rc != VD_OK) return rc;
    if (h.aux != VD_OK) {
        rc = server_error(&h, p, err);
        free(p);
        return rc;
    }
    if (json) {
        char *s = malloc((size_t)h.length + 1);
        if (!s) {
            free(p);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
        memcpy(s, p, h.length);
        s[h.length] = 0;
        *json = s;
    }
    free(p);
    return VD_OK;
}

vd_status vd_infer_client_models(vd_infer_client *c, int64_t timeout_ms, char **json, vd_error *err)
{
    vd_buf req = {0};
    vd_status st = vd_proto_frame(&req, VD_OP_MODELS, 0, 0, NULL, 0, err);
    if (st != VD_OK) return st;
    return json_call(c, &req, timeout_ms, json, err);
}

vd_status vd_infer_client_health(vd_infer_client *c, int64_t timeout_ms, char **json, vd_error *err)
{
    vd_buf req = {0};
    vd_status st = vd_proto_frame(&req, VD_OP_HEALTH, 0, 0, NULL, 0, err);
    if (st != VD_OK) return st;
    return json_call(c, &req, timeout_ms, json, err);
}

static vd_status name_call(vd_infer_client *c, uint16_t op, const char *model, int64_t timeout_ms,
                           char **json, vd_error *err)
{
    vd_buf req = {0};
    vd_status rc = vd_proto_encode_name(&req, op, 0, 0, model, err);
    if (rc != VD_OK) {
        vd_buf_free(&req);
        return rc;
    }
    return json_call(c, &req, timeout_ms, json, err);
}

vd_status vd_infer_client_load(vd_infer_client *c, const char *model, int64_t timeout_ms,
                               char **json, vd_error *err)
{
    return name_call(c, VD_OP_LOAD, model, timeout_ms, json, err);
}

vd_status vd_infer_client_unload(vd_infer_client *c, const char *model, int64_t timeout_ms,
                                 char **json, vd_error *err)
{
    return name_call(c, VD_OP_UNLOAD, model, timeout_ms, json, err);
}
