/* auth.c: the shared-secret handshake of the model-server protocol. */
#include "infer/auth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

vd_status vd_auth_secret_load(const char *path, vd_auth_secret *out, vd_error *err)
{
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return vd_error_set(err, errno == ENOENT ? VD_ERR_NOT_FOUND : VD_ERR_IO,
                            "secret file %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return vd_error_set(err, VD_ERR_IO, "secret file %s: not a regular file", path);
    }
    if (sb.st_mode & 077) {
        close(fd);
        return vd_error_set(err, VD_ERR_AUTH,
                            "secret file %s: group or others may access it (mode %04o); "
                            "refusing it: chmod 600 %s",
                            path, (unsigned)(sb.st_mode & 07777), path);
    }
    size_t n = 0;
    for (;;) {
        if (n == sizeof out->key) {
            close(fd);
            return vd_error_set(err, VD_ERR_LIMIT, "secret file %s: longer than %d bytes", path,
                                VD_AUTH_SECRET_MAX - 1);
        }
        ssize_t r = read(fd, out->key + n, sizeof out->key - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return vd_error_set(err, VD_ERR_IO, "secret file %s: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && isspace(out->key[n - 1]))
        n--;
    if (n < VD_AUTH_SECRET_MIN) {
        memset(out->key, 0, sizeof out->key);
        return vd_error_set(err, VD_ERR_INVALID,
                            "secret file %s: %zu bytes; a secret needs %d at least (e.g. head -c "
                            "32 /dev/urandom | base64)",
                            path, n, VD_AUTH_SECRET_MIN);
    }
    out->len = n;
    return VD_OK;
}

vd_status vd_auth_secret_from_env(vd_auth_secret *out, vd_error *err)
{
    out->len = 0;
    const char *path = getenv(VD_AUTH_SECRET_ENV);
    if (!path || !*path) return VD_OK;
    return vd_auth_secret_load(path, out, err);
}

vd_status vd_auth_random(uint8_t *buf, size_t n, vd_error *err)
{
    while (n > 0) {
        ssize_t r = getrandom(buf, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return vd_error_set(err, VD_ERR_IO, "getrandom: %s", strerror(errno));
        buf += r;
        n -= (size_t)r;
    }
    return VD_OK;
}

void vd_auth_proof(const vd_auth_secret *s, const uint8_t snonce[VD_AUTH_NONCE_LEN],
                   const uint8_t cnonce[VD_AUTH_NONCE_LEN], const char *context,
                   uint8_t proof[VD_AUTH_PROOF_LEN])
{
    uint8_t msg[2 * VD_AUTH_NONCE_LEN + 64];
    size_t cl = strlen(context);
    if (cl > 64) cl = 64;
    memcpy(msg, snonce, VD_AUTH_NONCE_LEN);
    memcpy(msg + VD_AUTH_NONCE_LEN, cnonce, VD_AUTH_NONCE_LEN);
    memcpy(msg + 2 * VD_AUTH_NONCE_LEN, context, cl);
    vd_hmac_sha256(s->key, s->len, msg, 2 * VD_AUTH_NONCE_LEN + cl, proof);
}

vd_status vd_auth_client_hello(uint8_t cnonce[VD_AUTH_NONCE_LEN], vd_buf *frame, vd_error *err)
{
    vd_status st = vd_auth_random(cnonce, VD_AUTH_NONCE_LEN, err);
    if (st != VD_OK) return st;
    return vd_proto_frame(frame, VD_OP_HELLO, 0, 0, cnonce, VD_AUTH_NONCE_LEN, err);
}

vd_status vd_auth_server_challenge(const vd_auth_secret *s, uint64_t id, const uint8_t *p, size_t n,
                                   uint8_t snonce[VD_AUTH_NONCE_LEN],
                                   uint8_t cnonce[VD_AUTH_NONCE_LEN], vd_buf *frame, vd_error *err)
{
    if (n != VD_AUTH_NONCE_LEN)
        return vd_error_set(err, VD_ERR_PROTOCOL, "HELLO: a %d-byte nonce expected, got %zu bytes",
                            VD_AUTH_NONCE_LEN, n);
    memcpy(cnonce, p, VD_AUTH_NONCE_LEN);
    vd_status st = vd_auth_random(snonce, VD_AUTH_NONCE_LEN, err);
    if (st != VD_OK) return st;
    uint8_t out[VD_AUTH_NONCE_LEN + VD_AUTH_PROOF_LEN];
    memcpy(out, snonce, VD_AUTH_NONCE_LEN);
    vd_auth_proof(s, snonce, cnonce, VD_AUTH_CONTEXT_SERVER, out + VD_AUTH_NONCE_LEN);
    return vd_proto_frame(frame, VD_OP_HELLO, id, VD_OK, out, sizeof out, err);
}

vd_status vd_auth_client_answer(const vd_auth_secret *s, const uint8_t cnonce[VD_AUTH_NONCE_LEN],
                                const vd_proto_header *h, const uint8_t *p, vd_buf *frame,
                                vd_error *err)
{
    if (h->op != VD_OP_HELLO)
        return vd_error_set(err, VD_ERR_PROTOCOL, "HELLO answered with op %u", (unsigned)h->op);
    if (h->aux != VD_OK) {
        int n = h->length > 200 ? 200 : (int)h->length;
        return vd_error_set(err, VD_ERR_AUTH,
                            "the model server does not authenticate (%.*s); a client with a "
                            "secret refuses it: give the server the same --secret-file",
                            n, (const char *)p);
    }
    if (h->length != VD_AUTH_NONCE_LEN + VD_AUTH_PROOF_LEN)
        return vd_error_set(err, VD_ERR_PROTOCOL, "HELLO answer of %u bytes, %d expected",
                            h->length, VD_AUTH_NONCE_LEN + VD_AUTH_PROOF_LEN);
    const uint8_t *snonce = p;
    uint8_t want[VD_AUTH_PROOF_LEN], mine[VD_AUTH_PROOF_LEN];
    vd_auth_proof(s, snonce, cnonce, VD_AUTH_CONTEXT_SERVER, want);
    if (!vd_consttime_equal(want, p + VD_AUTH_NONCE_LEN, VD_AUTH_PROOF_LEN))
        return vd_error_set(err, VD_ERR_AUTH,
                            "the model server's proof does not match our secret: the secret "
                            "files differ (or this is not our server)");
    vd_auth_proof(s, snonce, cnonce, VD_AUTH_CONTEXT_CLIENT, mine);
    return vd_proto_frame(frame, VD_OP_AUTH, 0, 0, mine, sizeof mine, err);
}

vd_status vd_auth_server_verify(const vd_auth_secret *s, const uint8_t snonce[VD_AUTH_NONCE_LEN],
                                const uint8_t cnonce[VD_AUTH_NONCE_LEN], const uint8_t *p, size_t n,
                                vd_error *err)
{
    if (n != VD_AUTH_PROOF_LEN)
        return vd_error_set(err, VD_ERR_PROTOCOL, "AUTH: a %d-byte proof expected, got %zu bytes",
                            VD_AUTH_PROOF_LEN, n);
    uint8_t want[VD_AUTH_PROOF_LEN];
    vd_auth_proof(s, snonce, cnonce, VD_AUTH_CONTEXT_CLIENT, want);
    if (!vd_consttime_equal(want, p, VD_AUTH_PROOF_LEN))
        return vd_error_set(err, VD_ERR_AUTH, "wrong secret: the client's proof does not match");
    return VD_OK;
}
