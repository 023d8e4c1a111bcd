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
    if (!listen || !*listen) return vd_error_set(err, VD_ERR_INVALID, "empty listen address");
    char host[128];
    const char *colon;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return vd_error_set(err, VD_ERR_INVALID, "listen address '%s': expected [IPv6]:PORT",
                                listen);
        size_t n = (size_t)(close - listen - 1);
        if (n >= sizeof host)
            return vd_error_set(err, VD_ERR_INVALID, "listen address '%s' is too long", listen);
        memcpy(host, listen + 1, n);
        host[n] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return vd_error_set(err, VD_ERR_INVALID, "listen address '%s': expected HOST:PORT",
                                listen);
        size_t n = (size_t)(colon - listen);
        if (n == 0 || n >= sizeof host)
            return vd_error_set(err, VD_ERR_INVALID, "listen address '%s': bad host", listen);
        memcpy(host, listen, n);
        host[n] = '\0';
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || port < 0 || port > 65535)
        return vd_error_set(err, VD_ERR_INVALID, "listen address '%s': bad port", listen);
    if (strcmp(host, "localhost") == 0) vd_strlcpy(host, "127.0.0.1", sizeof host);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *is_loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        return VD_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        const unsigned char *b = v6->sin6_addr.s6_addr;
        *is_loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) ||
                       (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && b[12] == 127);
        return VD_OK;
    }
    return vd_error_set(err, VD_ERR_INVALID,
                        "listen address '%s': host must be a numeric IP address or localhost",
                        listen);
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
