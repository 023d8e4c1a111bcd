/* fuzz_hostport.c: the HOST:PORT parser (core/hostport.h) against arbitrary
 * text.
 *
 * The input's first byte picks the flags (bit 0: VD_HOSTPORT_ANY_PORT); the
 * rest, up to a NUL (addresses arrive as C strings), is the address. What is
 * accepted has a non-empty host and a port in range, formats back to text
 * that parses to the same host and port (round trip), and goes through
 * vd_hostport_sockaddr either as a numeric address of the right family or
 * VD_ERR_INVALID. What is refused is VD_ERR_INVALID with a message naming the
 * setting. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/hostport.h"

static void check(int cond)
{
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1024) return 0;
    unsigned flags = data[0] & 1;
    char text[1024];
    size_t n = strnlen((const char *)data + 1, size - 1);
    memcpy(text, data + 1, n);
    text[n] = '\0';

    vd_hostport hp;
    vd_error err;
    vd_status st = vd_hostport_parse(text, flags, "fuzz address", &hp, &err);
    if (st != VD_OK) {
        check(st == VD_ERR_INVALID);
        check(strncmp(err.msg, "fuzz address", 12) == 0);
        return 0;
    }
    check(hp.host[0] != '\0');
    check(hp.port >= (flags ? 0 : 1) && hp.port <= 65535);

    char again[VD_HOSTPORT_HOST_MAX + 16];
    vd_hostport_format(hp.host, hp.port, again, sizeof again);
    vd_hostport hp2;
    check(vd_hostport_parse(again, flags, "fuzz address", &hp2, &err) == VD_OK);
    check(strcmp(hp.host, hp2.host) == 0 && hp.port == hp2.port);

    struct sockaddr_storage ss;
    socklen_t len = 0;
    int lo = -1;
    st = vd_hostport_sockaddr(&hp, "fuzz address", text, &ss, &len, &lo, &err);
    if (st == VD_OK)
        check((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) && len > 0 &&
              (lo == 0 || lo == 1));
    else
        check(st == VD_ERR_INVALID);
    return 0;
}
