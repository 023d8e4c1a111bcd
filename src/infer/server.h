/* server.h: the model server (`visiond model-server`), embeddable.
 *
 * The server owns ONNX Runtime: it reads the models directory (one NAME.json
 * metadata file per model, and model folders as Immich's exporter writes
 * them: infer/model_folder.h, docs/models.md), loads each model once (at start
 * for preloaded ones, else on first use, exactly once however many clients
 * ask at the same moment), and answers the wire protocol (infer/proto.h,
 * docs/protocol.md) on a Unix socket and optionally a TCP port.
 *
 * Threads: one I/O thread (the caller of vd_server_run) multiplexes every
 * connection with epoll; each model has its own inference thread, which
 * coalesces queued requests from all clients into batches of up to
 * max_batch items or max_delay_us of waiting, whichever comes first. Each
 * model's queue is bounded (a full queue answers VD_ERR_BUSY), requests past
 * their deadline are answered VD_ERR_TIMEOUT without being computed, and idle
 * models that were not preloaded are unloaded after idle_ttl_s. The server
 * never forks. */
#ifndef VD_SERVER_H
#define VD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/auth.h"
#include "infer/model_meta.h"

typedef struct vd_server vd_server;

typedef struct {
    const char *models_dir;  /* directory of NAME.json metadata files (required) */
    const char *socket_path; /* Unix socket to listen on (mode 0600); NULL = none */
    const char *tcp_addr;    /* "HOST:PORT" (PORT 0 = any free port); NULL = none */
    int allow_remote;        /* 0: tcp_addr must be a loopback address, unless secret */
    /* The shared secret (copied): every connection must pass the handshake of
     * infer/auth.h before any other request. NULL or len 0 = none (then HELLO
     * and AUTH are answered unsupported, and TCP is loopback only). */
    const vd_auth_secret *secret;
    int intra_threads; /* ONNX Runtime intra-op threads, shared by all models; 0 = ORT's default */
    const char *const *preload; /* extra model names to load at start (besides "preload": true) */
    size_t npreload;
    int64_t idle_ttl_s;     /* unload a non-preloaded model idle this long; 0 = never */
    size_t queue_max_items; /* per-model queue bound in items; 0 = 256 */
    uint32_t max_frame;     /* payload limit in bytes; 0 = VD_PROTO_MAX_FRAME_DEF */
    int max_conns;          /* simultaneous connections; 0 = 1024 */
    int stop_fd;            /* when readable, vd_server_run returns (the sigpipe); -1 = none */
    int64_t drain_ms;       /* on stop, how long queued requests may finish; 0 = 5000 */
    /* Once no batch has run, and no model loaded or unloaded, for this long,
     * and no model is busy, the I/O thread calls malloc_trim(0) once: the free
     * memory glibc keeps in its heaps goes back to the kernel (docs/model-server.md,
     * "Memory"). It matters when the process also raised glibc's mmap and trim
     * thresholds, as `visiond model-server` does. 0 = never. */
    int64_t trim_idle_ms;
    /* At load, how long a model may spend measuring what batches of each size
     * and parallel runs cost on this machine; the server then runs it in the
     * layout with the best throughput under its max_delay_us (infer/server_layout.h,
     * docs/model-server.md). 0 = no calibration: one run at a time, batches of
     * up to the metadata's max_batch. */
    int64_t calibrate_ms;
    /* A fixed layout for every model instead (no calibration): layout_runs
     * concurrent runs (each single-threaded when > 1) of up to layout_batch
     * items (capped by the metadata's max_batch). 0 = not fixed. */
    int layout_runs, layout_batch;
    /* Extra checks of each model found in the models directory, beyond its
     * metadata (the CLI passes the tokenizer check of text models: the server
     * itself does not read tokenizers). A model it refuses is listed as
     * invalid with the message, like a bad metadata file. NULL = none. */
    vd_status (*check_meta)(const vd_model_meta *meta, vd_error *err);
} vd_server_config;

#define VD_SERVER_MAX_RUNS 16 /* layout_runs at most */

#define VD_SERVER_CALIBRATE_MS_DEF 2000 /* `visiond model-server`'s default calibrate_ms */

/* Binds the sockets, reads the models directory, starts the model threads and
 * loads the preloaded models (waiting for them). A preloaded model that fails
 * to load is VD_ERR_MODEL; a socket in use is VD_ERR_IO; a stale socket file
 * (nobody listening) is replaced. Invalid metadata files are skipped and
 * listed by the MODELS op, not fatal. */
vd_status vd_server_new(const vd_server_config *cfg, vd_server **out, vd_error *err);

/* Runs the I/O loop until cfg->stop_fd is readable or vd_server_stop is
 * called; then stops accepting, lets queued requests finish (drain_ms) and
 * returns. */
vd_status vd_server_run(vd_server *s, vd_error *err);

/* Asks vd_server_run to return. Async-signal-safe, callable from any thread. */
void vd_server_stop(vd_server *s);

/* The TCP port actually bound (when tcp_addr asked for port 0), or 0. */
int vd_server_tcp_port(const vd_server *s);

/* Number of models known (valid metadata files). */
size_t vd_server_nmodels(const vd_server *s);

/* Stops the model threads, unloads everything, closes and unlinks the socket. */
void vd_server_free(vd_server *s);

#endif
