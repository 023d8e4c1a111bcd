/* test_auth.c: HMAC-SHA-256 (RFC 4231 vectors), the constant-time compare,
 * the secret file rules and the model-server handshake (infer/auth.h), step
 * by step, with right and wrong secrets on either side. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sha256.h"
#include "infer/auth.h"
#include "vdtest.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static int hmac_is(const void *key, size_t kl, const void *msg, size_t ml, const char *want)
{
    uint8_t d[VD_SHA256_LEN];
    char h[2 * VD_SHA256_LEN + 1];
    vd_hmac_sha256(key, kl, msg, ml, d);
    hex(d, sizeof d, h);
    if (strcmp(h, want) != 0) fprintf(stderr, "got  %s\nwant %s\n", h, want);
    return strcmp(h, want) == 0;
}

VD_TEST(hmac_rfc4231_vectors)
{
    uint8_t k[131];
    memset(k, 0x0b, 20);
    CHECK(hmac_is(k, 20, "Hi There", 8,
                  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
    CHECK(hmac_is("Jefe", 4, "what do ya want for nothing?", 28,
                  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    uint8_t m[50];
    memset(k, 0xaa, 20);
    memset(m, 0xdd, 50);
    CHECK(
        hmac_is(k, 20, m, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"));
    for (int i = 0; i < 25; i++)
        k[i] = (uint8_t)(i + 1);
    memset(m, 0xcd, 50);
    CHECK(
        hmac_is(k, 25, m, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"));
    /* test case 6 and 7: a key longer than the block */
    memset(k, 0xaa, 131);
    const char *t6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    CHECK(hmac_is(k, 131, t6, strlen(t6),
                  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    const char *t7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the "
                     "HMAC algorithm.";
    CHECK(hmac_is(k, 131, t7, strlen(t7),
                  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"));
}

VD_TEST(consttime_equal)
{
    CHECK(vd_consttime_equal("abcd", "abcd", 4));
    CHECK(!vd_consttime_equal("abcd", "abce", 4));
    CHECK(!vd_consttime_equal("xbcd", "abcd", 4));
    CHECK(vd_consttime_equal("a", "b", 0));
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", vd_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

VD_TEST(secret_file_rules)
{
    vd_auth_secret s;
    vd_error err;
    const char *p = write_file("ok", "0123456789abcdef0123\n\n", 0600);
    CHECK_OK(vd_auth_secret_load(p, &s, &err));
    CHECK_EQ_INT(s.len, 20); /* the trailing newlines are not part of it */
    CHECK(memcmp(s.key, "0123456789abcdef0123", 20) == 0);
    p = write_file("loose", "0123456789abcdef0123\n", 0640);
    CHECK_EQ_INT(vd_auth_secret_load(p, &s, &err), VD_ERR_AUTH);
    CHECK(strstr(err.msg, "group or others") && strstr(err.msg, "0640") &&
          strstr(err.msg, "chmod 600"));
    p = write_file("short", "tooshort\n", 0400);
    CHECK_EQ_INT(vd_auth_secret_load(p, &s, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_auth_secret_load("/nonexistent/secret", &s, &err), VD_ERR_NOT_FOUND);
}

static void secret(vd_auth_secret *s, const char *text)
{
    memset(s, 0, sizeof *s);
    s->len = strlen(text);
    memcpy(s->key, text, s->len);
}

/* Runs the four steps between a client holding cs and a server holding ss;
 * returns the status of the step that failed (or VD_OK) and which in *step. */
static vd_status handshake(const vd_auth_secret *cs, const vd_auth_secret *ss, int *step,
                           vd_error *err)
{
    uint8_t cn[32], sn[32], scn[32];
    vd_buf f1 = {0}, f2 = {0}, f3 = {0};
    vd_proto_header h;
    vd_status st;
    *step = 1;
    if ((st = vd_auth_client_hello(cn, &f1, err)) != VD_OK) goto out;
    vd_proto_header_decode(f1.data, UINT32_MAX, &h, NULL);
    *step = 2;
    if ((st = vd_auth_server_challenge(ss, h.id, f1.data + 24, h.length, sn, scn, &f2, err)) !=
        VD_OK)
        goto out;
    vd_proto_header_decode(f2.data, UINT32_MAX, &h, NULL);
    *step = 3;
    if ((st = vd_auth_client_answer(cs, cn, &h, f2.data + 24, &f3, err)) != VD_OK) goto out;
    vd_proto_header_decode(f3.data, UINT32_MAX, &h, NULL);
    *step = 4;
    st = vd_auth_server_verify(ss, sn, scn, f3.data + 24, h.length, err);
out:
    vd_buf_free(&f1);
    vd_buf_free(&f2);
    vd_buf_free(&f3);
    return st;
}

VD_TEST(handshake_right_and_wrong_secrets)
{
    vd_auth_secret a, b;
    vd_error err;
    int step;
    secret(&a, "the shared secret of the cluster");
    secret(&b, "another secret, not the cluster's");
    CHECK_OK(handshake(&a, &a, &step, &err));
    CHECK_EQ_INT(step, 4);
    /* the client checks the server first: a server with another secret fails at step 3 */
    CHECK_EQ_INT(handshake(&b, &a, &step, &err), VD_ERR_AUTH);
    CHECK_EQ_INT(step, 3);
    CHECK(strstr(err.msg, "secret files differ"));
}

VD_TEST(server_refuses_a_wrong_proof)
{
    vd_auth_secret a, b;
    vd_error err;
    secret(&a, "the shared secret of the cluster");
    secret(&b, "another secret, not the cluster's");
    uint8_t sn[32], cn[32], proof[32];
    memset(sn, 1, 32);
    memset(cn, 2, 32);
    vd_auth_proof(&a, sn, cn, VD_AUTH_CONTEXT_CLIENT, proof);
    CHECK_OK(vd_auth_server_verify(&a, sn, cn, proof, 32, &err));
    CHECK_EQ_INT(vd_auth_server_verify(&b, sn, cn, proof, 32, &err), VD_ERR_AUTH);
    CHECK(strstr(err.msg, "wrong secret"));
    /* the server's own proof is not accepted back from a client (reflection) */
    vd_auth_proof(&a, sn, cn, VD_AUTH_CONTEXT_SERVER, proof);
    CHECK_EQ_INT(vd_auth_server_verify(&a, sn, cn, proof, 32, &err), VD_ERR_AUTH);
    CHECK_EQ_INT(vd_auth_server_verify(&a, sn, cn, proof, 31, &err), VD_ERR_PROTOCOL);
    vd_buf f = {0};
    uint8_t sn2[32], cn2[32];
    CHECK_EQ_INT(vd_auth_server_challenge(&a, 0, cn, 31, sn2, cn2, &f, &err), VD_ERR_PROTOCOL);
    vd_buf_free(&f);
}

/* the example values of docs/protocol.md, "Authentication" */
VD_TEST(documented_example_proofs)
{
    vd_auth_secret s;
    secret(&s, "0123456789abcdef0123456789abcdef");
    uint8_t sn[32], cn[32], proof[32];
    char h[65];
    for (int i = 0; i < 32; i++)
        sn[i] = (uint8_t)i, cn[i] = (uint8_t)(0x20 + i);
    vd_auth_proof(&s, sn, cn, VD_AUTH_CONTEXT_SERVER, proof);
    hex(proof, 32, h);
    printf("server proof %s\n", h);
    CHECK_EQ_STR(h, "27b49a20fbd94a8306ec8a9293ab9f42143f45042efc43891e984318398f2d0c");
    vd_auth_proof(&s, sn, cn, VD_AUTH_CONTEXT_CLIENT, proof);
    hex(proof, 32, h);
    printf("client proof %s\n", h);
    CHECK_EQ_STR(h, "0344c8a93bf815f1f47c788c2f0e87aa506bd276324876992e07b25df1de85c1");
}

/* the step-1 frame of docs/protocol.md, "Authentication" */
VD_TEST(documented_hello_frame)
{
    vd_error err;
    uint8_t cn[32];
    for (int i = 0; i < 32; i++)
        cn[i] = (uint8_t)(0x20 + i);
    vd_buf b = {0};
    CHECK_OK(vd_proto_frame(&b, VD_OP_HELLO, 0, 0, cn, 32, &err));
    static const uint8_t hdr[24] = {0x56, 0x44, 0x4d, 0x53, 1, 0, 6, 0, 0x20, 0, 0, 0,
                                    0,    0,    0,    0,    0, 0, 0, 0, 0,    0, 0, 0};
    CHECK_EQ_INT(b.len, 56);
    CHECK(memcmp(b.data, hdr, 24) == 0 && memcmp(b.data + 24, cn, 32) == 0);
    vd_buf_free(&b);
}

VD_TEST(a_server_without_secret_is_refused_by_the_client)
{
    vd_auth_secret a;
    vd_error err;
    secret(&a, "the shared secret of the cluster");
    const char *msg = "this model server has no secret";
    vd_proto_header h = {VD_PROTO_VERSION, VD_OP_HELLO, (uint32_t)strlen(msg), VD_ERR_UNSUPPORTED,
                         0};
    uint8_t cn[32] = {0};
    vd_buf f = {0};
    CHECK_EQ_INT(vd_auth_client_answer(&a, cn, &h, (const uint8_t *)msg, &f, &err), VD_ERR_AUTH);
    CHECK(strstr(err.msg, "does not authenticate"));
    vd_buf_free(&f);
}

int main(void)
{
    return vd_test_run_all();
}
