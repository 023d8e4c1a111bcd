/* test_hostport.c: the one HOST:PORT parser (core/hostport.h) and its users:
 * the api's listen address, the model server's TCP listener and the
 * model-server client, over IPv4 and IPv6. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hostport.h"
#include "infer/client.h"
#include "vdtest.h"

VD_TEST(parses_ipv4_ipv6_and_names)
{
    vd_hostport hp;
    vd_error err;
    CHECK_OK(vd_hostport_parse("127.0.0.1:8080", 0, "addr", &hp, &err));
    CHECK_EQ_STR(hp.host, "127.0.0.1");
    CHECK_EQ_INT(hp.port, 8080);
    CHECK_OK(vd_hostport_parse("[::1]:1", 0, "addr", &hp, &err));
    CHECK_EQ_STR(hp.host, "::1");
    CHECK_EQ_INT(hp.port, 1);
    CHECK_OK(vd_hostport_parse("[fe80::1%lo]:65535", 0, "addr", &hp, &err));
    CHECK_EQ_STR(hp.host, "fe80::1%lo");
    CHECK_EQ_INT(hp.port, 65535);
    CHECK_OK(vd_hostport_parse("models.example.org:9000", 0, "addr", &hp, &err));
    CHECK_EQ_STR(hp.host, "models.example.org");
    CHECK_OK(vd_hostport_parse("localhost:0", VD_HOSTPORT_ANY_PORT, "addr", &hp, &err));
    CHECK_EQ_INT(hp.port, 0);
    CHECK_OK(vd_hostport_parse("[::]:0", VD_HOSTPORT_ANY_PORT, "addr", &hp, &err));
    CHECK_EQ_STR(hp.host, "::");
}

VD_TEST(refuses_bad_addresses_with_clear_messages)
{
    static const struct {
        const char *text;
        unsigned flags;
        const char *says;
    } bad[] = {
        {"", 0, "empty address"},
        {"127.0.0.1", 0, "expected HOST:PORT"},
        {"127.0.0.1:", 0, "bad port '' (want 1-65535)"},
        {"127.0.0.1:0", 0, "bad port '0' (want 1-65535)"},
        {"127.0.0.1:65536", VD_HOSTPORT_ANY_PORT, "bad port '65536' (want 0-65535)"},
        {"127.0.0.1:123456", 0, "bad port"},
        {"127.0.0.1:8o", 0, "bad port '8o'"},
        {"127.0.0.1:-1", 0, "bad port"},
        {"127.0.0.1: 80", 0, "bad port"},
        {":80", 0, "empty host"},
        {"[]:80", 0, "empty host"},
        {"::1:80", 0, "put an IPv6 address in brackets, as in [::1]:8080"},
        {"[::1]80", 0, "expected [IPV6]:PORT"},
        {"[::1]", 0, "expected [IPV6]:PORT"},
        {"[::1:80", 0, "unclosed '['"},
        {"[localhost]:80", 0, "brackets are for IPv6 addresses only"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_hostport hp;
        vd_error err;
        vd_status st = vd_hostport_parse(bad[i].text, bad[i].flags, "tcp address", &hp, &err);
        if (st != VD_ERR_INVALID || !strstr(err.msg, bad[i].says) ||
            strncmp(err.msg, "tcp address", 11) != 0) {
            vd_test_fail_at(__FILE__, __LINE__, "'%s': %s: %s", bad[i].text, vd_status_name(st),
                            err.msg);
            return;
        }
    }
    char long_host[300];
    memset(long_host, 'a', sizeof long_host);
    memcpy(long_host + 290, ":80", 4);
    vd_hostport hp;
    vd_error err;
    CHECK_EQ_INT(vd_hostport_parse(long_host, 0, "addr", &hp, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "host too long") != NULL);
    CHECK_EQ_INT(vd_hostport_parse(NULL, 0, "addr", &hp, NULL), VD_ERR_INVALID);
}

VD_TEST(listener_addresses_are_numeric_and_loopback_is_known)
{
    static const struct {
        const char *text;
        int family, loopback;
    } ok[] = {
        {"127.0.0.1:80", AF_INET, 1},      {"127.9.9.9:80", AF_INET, 1},
        {"localhost:80", AF_INET, 1},      {"0.0.0.0:80", AF_INET, 0},
        {"10.0.0.1:80", AF_INET, 0},       {"[::1]:80", AF_INET6, 1},
        {"[::]:80", AF_INET6, 0},          {"[::ffff:127.0.0.1]:80", AF_INET6, 1},
        {"[2001:db8::1]:80", AF_INET6, 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        vd_hostport hp;
        vd_error err;
        struct sockaddr_storage ss;
        socklen_t len;
        int lo = -1;
        CHECK_OK(vd_hostport_parse(ok[i].text, 0, "addr", &hp, &err));
        CHECK_OK(vd_hostport_sockaddr(&hp, "addr", ok[i].text, &ss, &len, &lo, &err));
        CHECK_EQ_INT(ss.ss_family, ok[i].family);
        CHECK_EQ_INT(lo, ok[i].loopback);
        CHECK_EQ_INT(len, ok[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                  : sizeof(struct sockaddr_in6));
        int port = ok[i].family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                           : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        CHECK_EQ_INT(port, 80);
    }
    vd_hostport hp;
    vd_error err;
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_OK(vd_hostport_parse("example.com:80", 0, "listen address", &hp, &err));
    CHECK_EQ_INT(
        vd_hostport_sockaddr(&hp, "listen address", "example.com:80", &ss, &len, NULL, &err),
        VD_ERR_INVALID);
    CHECK_EQ_STR(err.msg, "listen address 'example.com:80': host must be a numeric IP address or "
                          "localhost");
}

VD_TEST(format_brackets_ipv6)
{
    char buf[64];
    CHECK_EQ_STR(vd_hostport_format("127.0.0.1", 8080, buf, sizeof buf), "127.0.0.1:8080");
    CHECK_EQ_STR(vd_hostport_format("::1", 80, buf, sizeof buf), "[::1]:80");
    CHECK_EQ_STR(vd_hostport_format("localhost", 0, buf, sizeof buf), "localhost:0");
}

VD_TEST(client_takes_ipv6_and_refuses_bad_ports)
{
    vd_infer_client *c = NULL;
    vd_error err;
    CHECK_OK(vd_infer_client_new("tcp:[::1]:8080", &c, &err));
    vd_infer_client_free(c);
    CHECK_OK(vd_infer_client_new("localhost:8080", &c, &err));
    vd_infer_client_free(c);
    const char *bad[] = {"tcp:127.0.0.1:0", "tcp:127.0.0.1:99999", "tcp:::1:80", "tcp:[::1]",
                         "nohost"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (vd_infer_client_new(bad[i], &c, &err) != VD_ERR_INVALID) {
            vd_test_fail_at(__FILE__, __LINE__, "'%s' was accepted", bad[i]);
            vd_infer_client_free(c);
            return;
        }
        CHECK(c == NULL);
        CHECK(strstr(err.msg, "model-server address") != NULL);
    }
}

int main(void)
{
    return vd_test_run_all();
}
