/* hostport.h: the one parser of HOST:PORT addresses (the api's --listen, the
 * model server's --tcp, the model-server client's tcp:HOST:PORT, the host and port
 * of a redis:// queue URL).
 *
 *   127.0.0.1:8080             IPv4
 *   [::1]:8080                 IPv6, always in brackets: an unbracketed host
 *                              with a ':' ("::1:80") is refused as ambiguous
 *   localhost:8080, gpu1:9000  a name (listeners take only "localhost")
 *
 * A port is decimal digits, 1-65535; listeners also accept 0 ("any free
 * port") with VD_HOSTPORT_ANY_PORT. Errors are VD_ERR_INVALID with a message
 * "WHAT 'TEXT': what is wrong", WHAT naming the setting ("listen address"). */
#ifndef VD_HOSTPORT_H
#define VD_HOSTPORT_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/err.h"

#define VD_HOSTPORT_HOST_MAX 256

typedef struct {
    char host[VD_HOSTPORT_HOST_MAX]; /* without the brackets of an IPv6 address */
    int port;                        /* 0..65535 (0 only with VD_HOSTPORT_ANY_PORT) */
} vd_hostport;

/* Flags of vd_hostport_parse. */
enum {
    VD_HOSTPORT_ANY_PORT = 1 /* accept port 0 (a listener picks a free port) */
};

/* Parses text ("HOST:PORT" or "[IPV6]:PORT") into *out. The host is not
 * resolved or checked beyond its syntax (vd_hostport_sockaddr does that for
 * listeners; a client resolves names with getaddrinfo). */
vd_status vd_hostport_parse(const char *text, unsigned flags, const char *what, vd_hostport *out,
                            vd_error *err);

/* Fills *ss and *len with hp's address for bind(2), without a name lookup:
 * the host must be a numeric IPv4 or IPv6 address, or "localhost"
 * (127.0.0.1). *is_loopback (may be NULL) tells whether it is a loopback
 * address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). VD_ERR_INVALID for
 * any other host; what and text name the setting in the message. */
vd_status vd_hostport_sockaddr(const vd_hostport *hp, const char *what, const char *text,
                               struct sockaddr_storage *ss, socklen_t *len, int *is_loopback,
                               vd_error *err);

/* Writes "HOST:PORT" into buf (n bytes, truncated), with an IPv6 host in
 * brackets ("[::1]:8080"). Returns buf. */
const char *vd_hostport_format(const char *host, int port, char *buf, size_t n);

#endif
