/* auth.h: the model server's shared-secret handshake (docs/protocol.md,
 * "Authentication"), as pure functions over bytes: no I/O, so the server (on
 * its I/O thread), the client and the tests drive the same code.
 *
 * Mutual: the client proves it holds the secret to the server, and the
 * server proves it to the client (a client with a secret refuses a server
 * that cannot). Nothing secret is sent: each side sends a fresh random
 * 32-byte nonce, and the proofs are HMAC-SHA-256(secret, server_nonce ||
 * client_nonce || context), the context naming the side ("client" or
 * "server") so that one side's proof can never be replayed as the other's.
 * Proofs are compared in constant time.
 *
 *   client -> server  HELLO (op 6)  payload: client nonce (32)
 *   server -> client  HELLO status 0, payload: server nonce (32) || server proof (32)
 *   client -> server  AUTH  (op 7)  payload: client proof (32)
 *   server -> client  AUTH  status 0, empty payload; or status auth (18) + message, then closed */
#ifndef VD_INFER_AUTH_H
#define VD_INFER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/sha256.h"
#include "infer/proto.h"

#define VD_AUTH_NONCE_LEN      32
#define VD_AUTH_PROOF_LEN      VD_SHA256_LEN
#define VD_AUTH_SECRET_MIN     16   /* bytes, after trailing whitespace is removed */
#define VD_AUTH_SECRET_MAX     4096 /* bytes of the file */
#define VD_AUTH_CONTEXT_CLIENT "visiond model-server auth v1 client"
#define VD_AUTH_CONTEXT_SERVER "visiond model-server auth v1 server"
#define VD_AUTH_SECRET_ENV     "VISIOND_MODEL_SECRET_FILE"

typedef struct {
    uint8_t key[VD_AUTH_SECRET_MAX];
    size_t len; /* 0 = no secret */
} vd_auth_secret;

/* Reads the secret from path: the file's bytes without trailing whitespace
 * (so `echo` and editors' final newlines do not matter), VD_AUTH_SECRET_MIN
 * bytes at least. Refuses (VD_ERR_AUTH, naming the file and its mode) a file
 * that group or others may access: `chmod 600` it. VD_ERR_NOT_FOUND / VD_ERR_IO
 * when it cannot be read. */
vd_status vd_auth_secret_load(const char *path, vd_auth_secret *out, vd_error *err);

/* The secret named by $VISIOND_MODEL_SECRET_FILE, or none (out->len 0) when
 * the variable is unset or empty. Errors as vd_auth_secret_load. */
vd_status vd_auth_secret_from_env(vd_auth_secret *out, vd_error *err);

/* Fills buf with n random bytes (getrandom(2)). VD_ERR_IO when it fails. */
vd_status vd_auth_random(uint8_t *buf, size_t n, vd_error *err);

/* proof = HMAC-SHA-256(secret, snonce || cnonce || context). */
void vd_auth_proof(const vd_auth_secret *s, const uint8_t snonce[VD_AUTH_NONCE_LEN],
                   const uint8_t cnonce[VD_AUTH_NONCE_LEN], const char *context,
                   uint8_t proof[VD_AUTH_PROOF_LEN]);

/* Client, step 1: a fresh nonce into cnonce and the HELLO frame into frame. */
vd_status vd_auth_client_hello(uint8_t cnonce[VD_AUTH_NONCE_LEN], vd_buf *frame, vd_error *err);

/* Server, step 2: answers the HELLO payload p[0..n): a fresh nonce into
 * snonce, the client's nonce into cnonce, and the answer frame (id echoed)
 * into frame. VD_ERR_PROTOCOL for a payload that is not one nonce. */
vd_status vd_auth_server_challenge(const vd_auth_secret *s, uint64_t id, const uint8_t *p, size_t n,
                                   uint8_t snonce[VD_AUTH_NONCE_LEN],
                                   uint8_t cnonce[VD_AUTH_NONCE_LEN], vd_buf *frame, vd_error *err);

/* Client, step 3: checks the server's HELLO answer (header h, payload p):
 * its status, its length and the server's proof; then the AUTH frame into
 * frame. VD_ERR_AUTH when the server does not authenticate or its proof is
 * wrong (the secrets differ); the message says which. */
vd_status vd_auth_client_answer(const vd_auth_secret *s, const uint8_t cnonce[VD_AUTH_NONCE_LEN],
                                const vd_proto_header *h, const uint8_t *p, vd_buf *frame,
                                vd_error *err);

/* Server, step 4: checks the client's AUTH payload p[0..n). VD_ERR_AUTH when
 * the proof is wrong, VD_ERR_PROTOCOL when it is not one proof. */
vd_status vd_auth_server_verify(const vd_auth_secret *s, const uint8_t snonce[VD_AUTH_NONCE_LEN],
                                const uint8_t cnonce[VD_AUTH_NONCE_LEN], const uint8_t *p, size_t n,
                                vd_error *err);

#endif
