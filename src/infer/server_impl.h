/* server_impl.h: the model server's internals, shared by server.c (the I/O
 * thread: sockets, frames, the model registry) and server_model.c (one
 * inference thread per model: loading, batching, running, statistics).
 *
 * Hand-off: the I/O thread appends requests to a model's queue under the
 * model's mutex and signals its condvar; the model thread answers each request
 * with an encoded response frame (vd_srv_post): the one answer of a run it
 * sends itself when the connection's socket takes it whole and nothing is
 * queued for it; otherwise it pushes the frame onto the server's outbox (under
 * out_mu) and pokes an eventfd (once per batch), and the I/O thread delivers
 * it to the connection if that connection (slot + generation) still exists. */
#ifndef VD_SERVER_IMPL_H
#define VD_SERVER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "infer/model_meta.h"
#include "infer/ort_session.h"
#include "infer/proto.h"
#include "infer/server.h"
#include "infer/server_layout.h"

struct json_t; /* jansson's */

#define SRV_NO_CONN  UINT32_MAX /* a request made by the server itself (preload): no reply */
#define SRV_LAT_RING 2048       /* latencies kept for p50/p99 */

/* epoll tags of the I/O thread (a connection's tag is its slot) */
#define SRV_TAG_EVENT (1ull << 32)
#define SRV_TAG_UNIX  (2ull << 32)
#define SRV_TAG_TCP   (3ull << 32)
#define SRV_TAG_STOP  (4ull << 32)

typedef enum { SRV_REQ_INFER, SRV_REQ_LOAD, SRV_REQ_UNLOAD } srv_req_kind;

/* A client's shared-memory region (VD_OP_ATTACH, server_shm.c), mapped privately by the I/O
 * thread. Its connection holds one reference, and so does every request whose input lies in
 * it; the last one to let go unmaps it (any thread). */
typedef struct srv_shm {
    atomic_int refs;
    uint8_t *base;
    size_t size;
} srv_shm;

/* Maps the region of size bytes that fd holds into a new srv_shm (one reference). The fd is
 * the caller's still. VD_ERR_INVALID unless fd is a memfd sealed against shrinking (so that
 * the client cannot cut the mapping short under a run) of at least size bytes; VD_ERR_LIMIT
 * for a size of 0 or over max. */
vd_status vd_srv_shm_map(int fd, uint64_t size, uint64_t max, srv_shm **out, vd_error *err);
srv_shm *vd_srv_shm_ref(srv_shm *m);
/* Drops a reference (NULL is fine). */
void vd_srv_shm_unref(srv_shm *m);
/* Points input's data (its shape already set) at bytes of m from offset, checking that they
 * lie inside and that offset is 64-byte aligned. VD_ERR_STATE when m is NULL (no ATTACH). */
vd_status vd_srv_shm_view(srv_shm *m, uint64_t offset, uint64_t bytes, vd_tensor *input,
                          vd_error *err);

typedef struct srv_req {
    struct srv_req *next;
    srv_req_kind kind;
    uint32_t conn_slot, conn_gen;
    uint64_t id;
    int64_t received_us, deadline_us; /* deadline 0 = none */
    vd_tensor input;                  /* [n, item...], owned unless shm is set */
    srv_shm *shm; /* a reference when input's data lies in a client's region (INFER_SHM) */
    size_t n;
} srv_req;

/* Private to server_conn.c: a response on its way to a connection; a connection. */
typedef struct srv_out srv_out;
typedef struct srv_conn srv_conn;
typedef struct srv_wire srv_wire;
/* Private to server.c: a file of the models directory that is not a model. */
typedef struct srv_invalid srv_invalid;

typedef enum { SRV_UNLOADED = 0, SRV_LOADING, SRV_READY, SRV_FAILED } srv_state;

typedef struct srv_model {
    vd_server *srv;
    vd_model_meta meta;
    char meta_path[4096];
    int pinned; /* preloaded: never unloaded on idle */

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* work arrived, stop, or (broadcast) the load state changed */

    /* under mu */
    srv_req *head, *tail;
    size_t q_items, q_reqs;
    int stop, abort;
    int running; /* runs in progress (the model thread's and its helpers') */
    srv_state state;
    vd_status error_code;
    char error[VD_ERROR_MSG_MAX];
    int64_t failed_us, last_used_us, loaded_us;
    int dynamic_batch;
    int graph_dim; /* the embedding dim: declared, from the graph, or from the first run; 0 = not
                      yet */
    double load_ms;
    uint64_t requests, items, ok, errors, timeouts, busy_rejects, batches, batch_items, loads,
        unloads, load_failures;
    /* the layout, chosen at load (server_layout.h); its runs - 1 helper
     * threads run batches beside the model thread while the model is loaded */
    srv_layout layout;
    int calibrated;        /* the layout was measured (else: the static one) */
    double calib_ms;       /* how long the calibration took */
    double calib_start_ms; /* when it started, since the server did */
    srv_calib_row calib[2];
    size_t ncalib;
    srv_coalesce coalesce; /* whether the coalescing wait pays (server_layout.h) */
    int helpers_quit, nhelpers;
    pthread_t helpers[SRV_LAYOUT_MAX_RUNS];
    uint32_t lat_us[SRV_LAT_RING];
    size_t lat_n; /* total recorded; the ring holds the last SRV_LAT_RING */

    /* set by the model thread while no helper runs (load, unload); read by the
     * helpers while the model is loaded */
    vd_ort_session *sess;
    /* with a parallel layout (sess single-threaded): the shared pool's session,
     * kept for a run that starts while nothing else runs or waits; else NULL */
    vd_ort_session *sess_alone;
    size_t nout;
    const char *out_names[VD_MODEL_MAX_OUTPUT];
} srv_model;

struct vd_server {
    vd_server_config cfg;
    char *models_dir, *socket_path, *tcp_addr;
    vd_auth_secret *secret; /* owned; NULL = no handshake */
    /* handshakes refused since the last log line, and when that was (the I/O thread) */
    int64_t auth_refused, auth_last_log_us;
    vd_ort_env *env;
    int64_t started_us;

    /* the registry: only the I/O thread (and new/free) change it */
    srv_model **models;
    size_t nmodels, cap_models;
    srv_invalid *invalid;
    size_t ninvalid;
    int64_t last_scan_us;

    int epfd, evfd, unix_fd, tcp_fd, tcp_port;
    /* accept(2) failed for want of descriptors or memory: the listening sockets
     * are not watched until this time (or until a connection closes) */
    int64_t accept_paused_until_us;
    int64_t accept_failures, accept_last_log_us; /* failures since the last log line */
    srv_conn *conns;
    srv_wire *wires; /* one per conns slot (server_conn.c) */
    int nconns;
    atomic_int stop_requested;
    int draining;

    pthread_mutex_t out_mu;
    srv_out *out_head, *out_tail;

    /* allocator activity (batches started, loads, unloads), counted by the
     * model threads; the I/O thread trims the heap once it stops changing */
    atomic_uint_fast64_t alloc_events;
    /* only the I/O thread: the idle trim (cfg.trim_idle_ms) */
    uint64_t trim_seen;     /* alloc_events when last looked at */
    int64_t trim_since_us;  /* when it last changed */
    int trim_due;           /* changed since the last trim */
    int64_t trims;          /* malloc_trim calls */
    int64_t trim_freed;     /* RSS bytes the last trim gave back */
    int64_t trim_freed_sum; /* ... and all of them */

    /* held while a session is created (ORT's session creation is documented as
     * thread-safe, but ThreadSanitizer flags concurrent creations inside the
     * uninstrumented library; loads are rare, so they are serialised) and while
     * a model calibrates its layout (so that no other load or calibration runs
     * on the cores being measured) */
    pthread_mutex_t load_mu;
};

/* server_model.c */
vd_status vd_srv_model_start(vd_server *s, srv_model *m, vd_error *err);
/* Adds a request to m's queue or answers why not (busy, limit). Takes r. */
vd_status vd_srv_model_enqueue(srv_model *m, srv_req *r, vd_error *err);
/* Stops the thread (abort: drop queued requests unanswered), joins, unloads. */
void vd_srv_model_stop(srv_model *m, int abort);
void vd_srv_model_free(srv_model *m);
/* Returns 1 when m has nothing queued and no batch running. */
int vd_srv_model_idle(srv_model *m);
/* Returns a new JSON object describing m: metadata, state and statistics
 * (locks m->mu). The caller owns the reference (a jansson json_t *). */
void *vd_srv_model_json(srv_model *m);
/* Returns a new JSON object describing m's layout (locks m->mu); NULL before a load. */
void *vd_srv_model_layout_json(srv_model *m);
/* Returns the state name: "unloaded", "loading", "ready", "failed". */
const char *vd_srv_state_name(srv_state st);

/* server.c */
/* Handles one complete request frame from connection slot (generation gen), whose attached
 * region is shm (or NULL); takes block, the buffer payload lies in (an INFER request's input
 * tensor may keep it). Returns 1 when the request went to a model (the connection has one
 * more in flight). */
int vd_srv_handle_frame(vd_server *s, uint32_t slot, uint32_t gen, srv_shm *shm, vd_proto_header h,
                        uint8_t *block, const uint8_t *payload);
/* How a model thread's answer goes out (vd_srv_post). */
typedef enum {
    SRV_POST_QUEUE, /* through the outbox, waking the I/O thread */
    /* on the calling thread, when its socket takes it whole now and nothing is queued for
     * the connection (else as SRV_POST_QUEUE): saves the I/O thread's wake-up, for the one
     * answer of a run; the answers of a batch go out together from the I/O thread instead,
     * in parallel with the next run */
    SRV_POST_SEND,
    SRV_POST_LATER, /* through the outbox without waking: the caller calls vd_srv_wake after
                     * its last answer */
} srv_post_how;

/* Encodes and posts an error response for r (no-op for SRV_NO_CONN), then frees r. */
void vd_srv_answer_error(vd_server *s, srv_req *r, uint16_t op, vd_status st, const char *msg,
                         srv_post_how how);
/* Frees a request. */
void vd_srv_req_free(srv_req *r);
/* Counts allocator activity (a batch about to run, a load, an unload); the
 * I/O thread trims the heap once this stays unchanged for cfg.trim_idle_ms.
 * wake: also wake the I/O thread (a load, an unload); a batch passes 0, as
 * the answers it posts wake it anyway: waking it at the start of every batch
 * cost an extra context switch per request on cores busy with runs. Any thread. */
void vd_srv_alloc_event(vd_server *s, int wake);

/* server_conn.c (the I/O thread, but vd_srv_post) */
/* Sends the answer to a request of connection (slot, gen), as how says; dropped when the
 * connection is gone. Model threads only. Takes frame. */
void vd_srv_post(vd_server *s, uint32_t slot, uint32_t gen, srv_post_how how, vd_buf *frame);
/* Wakes the I/O thread (its eventfd): it delivers what the outbox holds (SRV_POST_LATER's
 * answers) and looks at the stop flag and the allocator's activity. Any thread. */
void vd_srv_wake(vd_server *s);
/* Allocates the connection slots (cfg.max_conns); closes them and frees what is queued. */
vd_status vd_srv_conns_init(vd_server *s, vd_error *err);
void vd_srv_conns_free(vd_server *s);
/* Opens the Unix socket and/or the TCP port and watches them. */
vd_status vd_srv_listen(vd_server *s, vd_error *err);
int vd_srv_ep_add(vd_server *s, int fd, uint32_t events, uint64_t tag);
/* Accepts what waits on listening socket lfd; resumes accepting after a pause for want of
 * descriptors. */
void vd_srv_accept_all(vd_server *s, int lfd, int is_tcp);
void vd_srv_accept_resume(vd_server *s);
/* Reads and/or writes connection slot after epoll reported events. */
void vd_srv_conn_ready(vd_server *s, uint32_t slot, uint32_t events);
/* Moves responses from the model threads to their connections. */
void vd_srv_deliver(vd_server *s);
/* Responses made on the I/O thread: an error; a JSON document (takes j). */
void vd_srv_reply_error(vd_server *s, uint32_t slot, uint16_t op, uint64_t id, vd_status st,
                        const char *msg);
void vd_srv_reply_json(vd_server *s, uint32_t slot, uint16_t op, uint64_t id, struct json_t *j);
/* The number of open connections; 1 when a response is still queued or unsent. */
int vd_srv_conns_open(const vd_server *s);
int vd_srv_output_pending(vd_server *s);

#endif
