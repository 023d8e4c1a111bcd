/* client.c: the blocking model-server client with reconnect and resend. */
#include "infer/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/datadir.h"
#include "core/util.h"

struct vd_infer_client {
    int is_unix;
    char path[108];
    char host[256];
    char port[16];
    int fd;
    uint64_t next_id;
    uint64_t connects, resends;
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

vd_status vd_infer_client_new(const char *address, vd_infer_client **out, vd_error *err)
{
    *out = NULL;
    if (!address || !*address)
        return vd_error_set(err, VD_ERR_INVALID, "empty model-server address");
    vd_infer_client *c = calloc(1, sizeof *c);
    if (!c) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    c->fd = -1;
    c->next_id = 1;
    vd_strlcpy(c->address, address, sizeof c->address);
    const char *a = address;
    if (strncmp(a, "unix:", 5) == 0 || (strchr(a, '/') && strncmp(a, "tcp:", 4) != 0)) {
        if (strncmp(a, "unix:", 5) == 0) a += 5;
        if (!*a || strlen(a) >= sizeof c->path) {
            free(c);
            return vd_error_set(err, VD_ERR_INVALID, "socket path '%s' is empty or too long", a);
        }
        c->is_unix = 1;
        vd_strlcpy(c->path, a, sizeof c->path);
    } else {
        if (strncmp(a, "tcp:", 4) == 0) a += 4;
        const char *colon = strrchr(a, ':');
        if (!colon || colon == a || !colon[1] || (size_t)(colon - a) >= sizeof c->host ||
            strlen(colon + 1) >= sizeof c->port ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
            free(c);
            return vd_error_set(err, VD_ERR_INVALID,
                                "model-server address '%s' is not unix:PATH or HOST:PORT", address);
        }
        memcpy(c->host, a, (size_t)(colon - a));
        c->host[colon - a] = 0;
        vd_strlcpy(c->port, colon + 1, sizeof c->port);
    }
    *out = c;
    return VD_OK;
}

static void disconnect(vd_infer_client *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

void vd_infer_client_free(vd_infer_client *c)
{
    if (!c) return;
    disconnect(c);
    free(c);
}

int vd_infer_client_connected(vd_infer_client *c)
{
    if (c->fd < 0) return 0;
    struct pollfd pf = {c->fd, POLLIN | POLLRDHUP, 0};
    int n = poll(&pf, 1, 0);
    if (n == 0) return 1; /* nothing to read, no hang-up: open */
    if (n > 0 && !(pf.revents & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP))) {
        char b;
        ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) return 1;
    } else if (n < 0 && errno == EINTR) {
        return 1; /* unknown: the next call finds out */
    }
    disconnect(c);
    return 0;
}

uint64_t vd_infer_client_connects(const vd_infer_client *c)
{
    return c->connects;
}

uint64_t vd_infer_client_resends(const vd_infer_client *c)
{
    return c->resends;
}

static int remaining_ms(int64_t deadline)
{
    int64_t r = deadline - vd_mono_ms();
    return r < 0 ? 0 : r > 1000000 ? 1000000 : (int)r;
}

/* One connection attempt. Returns 0, or an errno. */
static int try_connect(vd_infer_client *c, int64_t deadline)
{
    int fd = -1;
    if (c->is_unix) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        vd_strlcpy(sa.sun_path, c->path, sizeof sa.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            int e = errno;
            close(fd);
            return e;
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int g = getaddrinfo(c->host, c->port, &hints, &res);
        if (g) return g == EAI_SYSTEM ? errno : EHOSTUNREACH;
        int e = ECONNREFUSED;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) {
                e = errno;
                continue;
            }
            /* non-blocking connect, so that an unreachable host cannot outlast the deadline */
            int fl = fcntl(fd, F_GETFL);
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
            if (r < 0 && errno == EINPROGRESS) {
                struct pollfd pf = {fd, POLLOUT, 0};
                int t = remaining_ms(deadline);
                if (t > 0 && poll(&pf, 1, t) == 1) {
                    socklen_t len = sizeof e;
                    e = 0;
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
                    r = e ? -1 : 0;
                    errno = e;
                } else {
                    errno = ETIMEDOUT;
                }
            }
            if (r == 0) {
                fcntl(fd, F_SETFL, fl);
                break;
            }
            e = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0) return e;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->fd = fd;
    c->connects++;
    return 0;
}

typedef enum { IO_OK, IO_BROKEN, IO_TIMEOUT } io_result;

static io_result send_all(vd_infer_client *c, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {c->fd, POLLOUT, 0};
            int t = remaining_ms(deadline);
            if (t == 0) return IO_TIMEOUT;
            if (poll(&pf, 1, t) == 0) return IO_TIMEOUT;
            continue;
        }
        return IO_BROKEN;
    }
    return IO_OK;
}

static io_result recv_all(vd_infer_client *c, uint8_t *p, size_t n, int64_t deadline)
{
    while (n) {
        struct pollfd pf = {c->fd, POLLIN, 0};
        int t = remaining_ms(deadline);
        int pr = t == 0 ? 0 : poll(&pf, 1, t);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) return IO_TIMEOUT;
        ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);
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

/* Sends the frame in req (whose id and timeout it patches) and waits for the
 * response with the same id. On success *h and *payload (owned) hold it. */
static vd_status call(vd_infer_client *c, vd_buf *req, int64_t timeout_ms, vd_proto_header *h,
                      uint8_t **payload, vd_error *err)
{
    *payload = NULL;
    if (timeout_ms <= 0) timeout_ms = VD_INFER_DEFAULT_TIMEOUT_MS;
    int64_t deadline = vd_mono_ms() + timeout_ms;
    int64_t backoff = 10;
    int attempts = 0, last_connect_failed = 0;
    char why[200] = "";
    for (;;) {
        if (attempts++ > 0) {
            int left = remaining_ms(deadline);
            if (left == 0) break;
            vd_sleep_ms(backoff < left ? backoff : left);
            backoff = backoff * 2 > 500 ? 500 : backoff * 2;
            if (remaining_ms(deadline) == 0) break;
        }
        if (c->fd < 0) {
            int e = try_connect(c, deadline);
            last_connect_failed = e != 0;
            if (e) {
                snprintf(why, sizeof why, "connect: %s", strerror(e));
                continue;
            }
        }
        if (attempts > 1) c->resends++;
        uint64_t id = c->next_id++;
        /* patch the id and the time left into the header */
        vd_proto_header rh;
        vd_proto_header_decode(req->data, UINT32_MAX, &rh, NULL);
        rh.id = id;
        int64_t left = deadline - vd_mono_ms();
        if (left <= 0) break;
        rh.aux = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        vd_proto_header_encode(&rh, req->data);

        io_result io = send_all(c, req->data, req->len, deadline);
        if (io == IO_TIMEOUT) {
            disconnect(c); /* a half-sent frame leaves the stream unusable */
            return vd_error_set(err, VD_ERR_TIMEOUT, "timed out sending to the model server %s",
                                c->address);
        }
        if (io == IO_BROKEN) {
            snprintf(why, sizeof why, "connection lost while sending");
            disconnect(c);
            continue;
        }
        /* read responses until ours (older ones, from calls that timed out, are skipped) */
        for (;;) {
            uint8_t hb[VD_PROTO_HEADER_LEN];
            io = recv_all(c, hb, sizeof hb, deadline);
            if (io != IO_OK) break;
            vd_error he;
            if (vd_proto_header_decode(hb, UINT32_MAX, h, &he)) {
                disconnect(c);
                return vd_error_set(err, VD_ERR_PROTOCOL, "model server %s: %s", c->address,
                                    he.msg);
            }
            uint8_t *p = malloc(h->length ? h->length : 1);
            if (!p) {
                disconnect(c);
                return vd_error_set(err, VD_ERR_NOMEM, "out of memory for a %u-byte response",
                                    h->length);
            }
            io = recv_all(c, p, h->length, deadline);
            if (io != IO_OK) {
                free(p);
                break;
            }
            if (h->id != id) {
                free(p);
                continue;
            }
            *payload = p;
            break;
        }
        if (io == IO_TIMEOUT) {
            disconnect(c); /* its answer may still come: start clean next time */
            return vd_error_set(err, VD_ERR_TIMEOUT,
                                "no answer from the model server %s within %lld ms", c->address,
                                (long long)timeout_ms);
        }
        if (io == IO_BROKEN) {
            snprintf(why, sizeof why, "connection lost while waiting for the answer");
            disconnect(c);
            continue;
        }
        if (h->aux == VD_ERR_CONN) { /* the server is stopping: retry on a fresh connection */
            snprintf(why, sizeof why, "the server was shutting down");
            free(*payload);
            *payload = NULL;
            disconnect(c);
            continue;
        }
        return VD_OK;
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

vd_status vd_infer_client_infer(vd_infer_client *c, const char *model, const vd_tensor *input,
                                int64_t timeout_ms, vd_infer_result *res, vd_error *err)
{
    memset(res, 0, sizeof *res);
    vd_buf req = {0};
    vd_status rc = vd_proto_encode_infer(&req, 0, 0, model, input, err);
    if (rc) {
        vd_buf_free(&req);
        return rc;
    }
    vd_proto_header h;
    uint8_t *p = NULL;
    rc = call(c, &req, timeout_ms, &h, &p, err);
    vd_buf_free(&req);
    if (rc) return rc;
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
    vd_status rc = call(c, req, timeout_ms, &h, &p, err);
    vd_buf_free(req);
    if (rc) return rc;
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
    if (vd_proto_frame(&req, VD_OP_MODELS, 0, 0, NULL, 0, err)) return VD_ERR_NOMEM;
    return json_call(c, &req, timeout_ms, json, err);
}

vd_status vd_infer_client_health(vd_infer_client *c, int64_t timeout_ms, char **json, vd_error *err)
{
    vd_buf req = {0};
    if (vd_proto_frame(&req, VD_OP_HEALTH, 0, 0, NULL, 0, err)) return VD_ERR_NOMEM;
    return json_call(c, &req, timeout_ms, json, err);
}

static vd_status name_call(vd_infer_client *c, uint16_t op, const char *model, int64_t timeout_ms,
                           char **json, vd_error *err)
{
    vd_buf req = {0};
    vd_status rc = vd_proto_encode_name(&req, op, 0, 0, model, err);
    if (rc) {
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
