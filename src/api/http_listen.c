/* http_listen.c: the listen address of the HTTP server (parsing, the
 * loopback-or-token rule, binding) and the token comparison (see http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http.h"
#include "core/hostport.h"
#include "core/util.h"

int vd_http_token_equal(const char *a, const char *b)
{
    if (!a || !b) return 0;
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < lb; i++)
        d |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
    return d == 0;
}

vd_status vd_http_parse_listen(const char *listen, void *out, int *is_loopback, vd_error *err)
{
    struct sockaddr_storage *ss = out;
    memset(ss, 0, sizeof *ss);
    *is_loopback = 0;
    vd_hostport hp;
    socklen_t len;
    vd_status st = vd_hostport_parse(listen, VD_HOSTPORT_ANY_PORT, "listen address", &hp, err);
    if (st != VD_OK) return st;
    return vd_hostport_sockaddr(&hp, "listen address", listen, ss, &len, is_loopback, err);
}

vd_status vd_http_check_listen(const char *listen, int has_token, vd_error *err)
{
    struct sockaddr_storage ss;
    int loopback = 0;
    vd_status st = vd_http_parse_listen(listen, &ss, &loopback, err);
    if (st != VD_OK) return st;
    if (!loopback && !has_token)
        return vd_error_set(err, VD_ERR_INVALID,
                            "refusing to listen on non-loopback address %s without a token "
                            "(give --token, --token-file or VISIOND_TOKEN)",
                            listen);
    return VD_OK;
}

vd_status vd_http_bind(const char *listen_addr, int *out, vd_error *err)
{
    struct sockaddr_storage storage, *ss = &storage;
    int loopback = 0;
    *out = -1;
    vd_status st = vd_http_parse_listen(listen_addr, ss, &loopback, err);
    if (st != VD_OK) return st;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return vd_error_set(err, VD_ERR_IO, "cannot listen on %s: socket: %s", listen_addr,
                            strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    socklen_t len = ss->ss_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                              : (socklen_t)sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return vd_error_set(err, VD_ERR_IO, "cannot listen on %s: %s", listen_addr, strerror(e));
    }
    *out = fd;
    return VD_OK;
}
