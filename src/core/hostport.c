/* hostport.c: parsing HOST:PORT (see hostport.h). */
#include "core/hostport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Port digits at p (to the end of the string): 1..65535, or 0 when any_port. */
static int parse_port(const char *p, int any_port)
{
    if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p)) return -1;
    int v = 0;
    for (; *p; p++)
        v = v * 10 + (*p - '0');
    return v > 65535 || (v == 0 && !any_port) ? -1 : v;
}

vd_status vd_hostport_parse(const char *text, unsigned flags, const char *what, vd_hostport *out,
                            vd_error *err)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text) return vd_error_set(err, VD_ERR_INVALID, "%s: empty address", what);
    const char *host = text, *colon;
    size_t n;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close) return vd_error_set(err, VD_ERR_INVALID, "%s '%s': unclosed '['", what, text);
        if (close[1] != ':')
            return vd_error_set(err, VD_ERR_INVALID, "%s '%s': expected [IPV6]:PORT", what, text);
        host = text + 1;
        n = (size_t)(close - host);
        colon = close + 1;
        if (n > 0 && memchr(host, ':', n) == NULL)
            return vd_error_set(err, VD_ERR_INVALID,
                                "%s '%s': brackets are for IPv6 addresses only", what, text);
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return vd_error_set(err, VD_ERR_INVALID, "%s '%s': expected HOST:PORT", what, text);
        n = (size_t)(colon - text);
        if (memchr(text, ':', n))
            return vd_error_set(err, VD_ERR_INVALID,
                                "%s '%s': put an IPv6 address in brackets, as in [::1]:8080", what,
                                text);
    }
    if (n == 0) return vd_error_set(err, VD_ERR_INVALID, "%s '%s': empty host", what, text);
    if (n >= sizeof out->host)
        return vd_error_set(err, VD_ERR_INVALID, "%s '%s': host too long", what, text);
    int any = (flags & VD_HOSTPORT_ANY_PORT) != 0;
    int port = parse_port(colon + 1, any);
    if (port < 0)
        return vd_error_set(err, VD_ERR_INVALID, "%s '%s': bad port '%s' (want %s-65535)", what,
                            text, colon + 1, any ? "0" : "1");
    memcpy(out->host, host, n);
    out->host[n] = '\0';
    out->port = port;
    return VD_OK;
}

vd_status vd_hostport_sockaddr(const vd_hostport *hp, const char *what, const char *text,
                               struct sockaddr_storage *ss, socklen_t *len, int *is_loopback,
                               vd_error *err)
{
    memset(ss, 0, sizeof *ss);
    int lo = 0;
    const char *host = strcmp(hp->host, "localhost") == 0 ? "127.0.0.1" : hp->host;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)hp->port);
        *len = sizeof *v4;
        lo = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)hp->port);
        *len = sizeof *v6;
        const unsigned char *b = v6->sin6_addr.s6_addr;
        lo = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) ||
             (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && b[12] == 127);
    } else {
        return vd_error_set(err, VD_ERR_INVALID,
                            "%s '%s': host must be a numeric IP address or localhost", what, text);
    }
    if (is_loopback) *is_loopback = lo;
    return VD_OK;
}

const char *vd_hostport_format(const char *host, int port, char *buf, size_t n)
{
    snprintf(buf, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return buf;
}
