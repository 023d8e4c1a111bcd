/* server.c: the model server's I/O thread: its life cycle (new, run, stop, free), the model
 * registry, each request frame (vd_srv_handle_frame) and the answers that need no model
 * (health, models). The connections are in server_conn.c. See server.h for the contract
 * and server_impl.h for the hand-off. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <jansson.h>

#include "core/log.h"
#include "core/procstat.h"
#include "core/util.h"
#include "infer/model_folder.h"
#include "infer/server_impl.h"

#define RESCAN_US 1000000

/* A file of the models directory that is not a usable model, and why (the MODELS op). */
struct srv_invalid {
    char file[512];
    char error[VD_ERROR_MSG_MAX];
};

void vd_srv_req_free(srv_req *r)
{
    if (!r) return;
    if (r->shm) /* the data is the client's region's, not the tensor's */
        vd_srv_shm_unref(r->shm);
    else
        vd_tensor_free(&r->input);
    free(r);
}

void vd_srv_alloc_event(vd_server *s, int wake)
{
    atomic_fetch_add(&s->alloc_events, 1);
    if (wake) vd_srv_wake(s);
}

void vd_srv_answer_error(vd_server *s, srv_req *r, uint16_t op, vd_status st, const char *msg,
                         srv_post_how how)
{
    if (r->conn_slot != SRV_NO_CONN) {
        vd_buf frame = {0};
        if (vd_proto_encode_error(&frame, op, r->id, st, msg, NULL) == VD_OK)
            vd_srv_post(s, r->conn_slot, r->conn_gen, how, &frame);
        else
            vd_buf_free(&frame);
    }
    vd_srv_req_free(r);
}

void vd_server_stop(vd_server *s)
{
    atomic_store(&s->stop_requested, 1);
    vd_srv_wake(s);
}

int vd_server_tcp_port(const vd_server *s)
{
    return s->tcp_port;
}

size_t vd_server_nmodels(const vd_server *s)
{
    return s->nmodels;
}

/* ---- the registry ---- */

static srv_model *find_model(vd_server *s, const char *name)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i]->meta.name, name) == 0) return s->models[i];
    return NULL;
}

static int is_json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static int is_subdir(const struct dirent *d)
{
    return d->d_name[0] != '.' &&
           (d->d_type == DT_DIR || d->d_type == DT_UNKNOWN || d->d_type == DT_LNK);
}

static void add_invalid(vd_server *s, const char *path, const char *msg)
{
    srv_invalid *inv = realloc(s->invalid, (s->ninvalid + 1) * sizeof *inv);
    if (inv) {
        s->invalid = inv;
        vd_strlcpy(inv[s->ninvalid].file, path, sizeof inv[0].file);
        vd_strlcpy(inv[s->ninvalid].error, msg, sizeof inv[0].error);
        s->ninvalid++;
    }
    VD_WARN("models: skipping %s", msg);
}

/* Adds the model whose metadata is at path (a NAME.json, or a tower of a model
 * folder) unless known; a bad one goes to the invalid list. VD_OK unless the
 * server itself failed (no memory, no thread). */
static vd_status add_model(vd_server *s, const char *path, vd_error *err)
{
    for (size_t k = 0; k < s->nmodels; k++)
        if (strcmp(s->models[k]->meta_path, path) == 0) return VD_OK;
    srv_model *m = calloc(1, sizeof *m);
    if (!m) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_error e;
    vd_error_clear(&e);
    vd_status mrc = vd_model_meta_load(path, &m->meta, &e);
    if (mrc == VD_OK && s->cfg.check_meta) mrc = s->cfg.check_meta(&m->meta, &e);
    srv_model *dup = mrc != VD_OK ? NULL : find_model(s, m->meta.name);
    if (dup)
        mrc = vd_error_set(&e, VD_ERR_INVALID, "%s: model name '%s' is already used by %s", path,
                           m->meta.name, dup->meta_path);
    if (mrc != VD_OK) {
        add_invalid(s, path, e.msg);
        free(m);
        return VD_OK;
    }
    vd_strlcpy(m->meta_path, path, sizeof m->meta_path);
    m->pinned = m->meta.preload;
    if (s->nmodels == s->cap_models) {
        size_t cap = s->cap_models ? s->cap_models * 2 : 8;
        srv_model **mm = realloc(s->models, cap * sizeof *mm);
        if (!mm) {
            free(m);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
        s->models = mm;
        s->cap_models = cap;
    }
    vd_status rc = vd_srv_model_start(s, m, err);
    if (rc != VD_OK) {
        free(m);
        return rc;
    }
    s->models[s->nmodels++] = m;
    VD_INFO("models: %s (%s, %s)", m->meta.name, vd_model_task_name(m->meta.task),
            m->meta.onnx_path);
    return VD_OK;
}

/* The model folders in dir (docs/models.md), and at depth < 1 those one level down. */
static vd_status scan_folders(vd_server *s, const char *dir, int depth, vd_error *err)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_subdir, alphasort);
    if (n < 0) return VD_OK;
    vd_status rc = VD_OK;
    for (int i = 0; i < n; i++) {
        char sub[4096], towers[VD_FOLDER_MAX_TOWERS][4096];
        int fits = (size_t)snprintf(sub, sizeof sub, "%s/%s", dir, names[i]->d_name) < sizeof sub;
        free(names[i]);
        struct stat sb;
        if (rc != VD_OK || !fits || stat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        size_t nt = vd_model_folder_towers(sub, towers, VD_FOLDER_MAX_TOWERS);
        for (size_t t = 0; t < nt && rc == VD_OK; t++)
            rc = add_model(s, towers[t], err);
        if (nt == 0 && depth < 1) rc = scan_folders(s, sub, depth + 1, err);
    }
    free(names);
    return rc;
}

/* Reads the models directory: adds models not yet known (NAME.json files, then
 * model folders), refreshes the list of invalid files. Existing models are left alone. */
static vd_status scan_models(vd_server *s, vd_error *err)
{
    struct dirent **names = NULL;
    int n = scandir(s->models_dir, &names, is_json_file, alphasort);
    s->last_scan_us = vd_mono_us();
    if (n < 0)
        return vd_error_set(err, errno == ENOENT ? VD_ERR_NOT_FOUND : VD_ERR_IO,
                            "models directory %s: %s", s->models_dir, strerror(errno));
    free(s->invalid);
    s->invalid = NULL;
    s->ninvalid = 0;
    vd_status rc = VD_OK;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->models_dir, names[i]->d_name);
        free(names[i]);
        if (rc == VD_OK) rc = add_model(s, path, err);
    }
    free(names);
    if (rc == VD_OK) rc = scan_folders(s, s->models_dir, 0, err);
    return rc;
}

vd_status vd_server_new(const vd_server_config *cfg, vd_server **out, vd_error *err)
{
    *out = NULL;
    if (!cfg->models_dir)
        return vd_error_set(err, VD_ERR_INVALID, "a models directory is required");
    if (!cfg->socket_path && !cfg->tcp_addr)
        return vd_error_set(err, VD_ERR_INVALID, "give a socket path, a TCP address, or both");
    vd_server *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    s->cfg = *cfg;
    if (!s->cfg.queue_max_items) s->cfg.queue_max_items = 256;
    if (!s->cfg.max_frame) s->cfg.max_frame = VD_PROTO_MAX_FRAME_DEF;
    if (s->cfg.max_conns <= 0) s->cfg.max_conns = 1024;
    if (s->cfg.drain_ms <= 0) s->cfg.drain_ms = 5000;
    s->cfg.preload = NULL;
    s->cfg.npreload = 0;
    s->epfd = s->evfd = s->unix_fd = s->tcp_fd = -1;
    s->started_us = vd_mono_us();
    pthread_mutex_init(&s->out_mu, NULL);
    pthread_mutex_init(&s->load_mu, NULL);
    s->models_dir = vd_strdup(cfg->models_dir);
    s->socket_path = vd_strdup(cfg->socket_path);
    s->tcp_addr = vd_strdup(cfg->tcp_addr);
    s->cfg.models_dir = s->models_dir;
    s->cfg.socket_path = s->socket_path;
    s->cfg.tcp_addr = s->tcp_addr;
    s->cfg.secret = NULL;
    if (cfg->secret && cfg->secret->len && (s->secret = malloc(sizeof *s->secret)))
        *s->secret = *cfg->secret;
    vd_status rc = VD_OK;
    if (cfg->secret && cfg->secret->len && !s->secret)
        rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (!s->models_dir || (cfg->socket_path && !s->socket_path) || (cfg->tcp_addr && !s->tcp_addr))
        rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (rc == VD_OK) rc = vd_srv_conns_init(s, err);

    if (rc == VD_OK) {
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->epfd < 0 || s->evfd < 0 || vd_srv_ep_add(s, s->evfd, EPOLLIN, SRV_TAG_EVENT) < 0)
            rc = vd_error_set(err, VD_ERR_IO, "epoll/eventfd: %s", strerror(errno));
    }
    if (rc == VD_OK && cfg->stop_fd >= 0 &&
        vd_srv_ep_add(s, cfg->stop_fd, EPOLLIN, SRV_TAG_STOP) < 0)
        rc = vd_error_set(err, VD_ERR_IO, "epoll on the stop fd: %s", strerror(errno));
    if (rc == VD_OK) rc = vd_ort_env_new(cfg->intra_threads, &s->env, err);
    if (rc == VD_OK) rc = scan_models(s, err);
    /* preloads: the metadata's "preload": true, plus the configured names */
    for (size_t i = 0; rc == VD_OK && i < cfg->npreload; i++) {
        srv_model *m = find_model(s, cfg->preload[i]);
        if (!m)
            rc = vd_error_set(err, VD_ERR_NOT_FOUND, "preload: no model named '%s' in %s",
                              cfg->preload[i], s->models_dir);
        else {
            pthread_mutex_lock(&m->mu);
            m->pinned = 1;
            pthread_mutex_unlock(&m->mu);
        }
    }
    for (size_t i = 0; rc == VD_OK && i < s->nmodels; i++) {
        srv_model *m = s->models[i];
        if (!m->pinned) continue;
        srv_req *r = calloc(1, sizeof *r);
        if (!r) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            break;
        }
        r->kind = SRV_REQ_LOAD;
        r->conn_slot = SRV_NO_CONN;
        r->received_us = vd_mono_us();
        rc = vd_srv_model_enqueue(m, r, err);
    }
    for (size_t i = 0; rc == VD_OK && i < s->nmodels; i++) {
        srv_model *m = s->models[i];
        if (!m->pinned) continue;
        pthread_mutex_lock(&m->mu);
        while (m->state != SRV_READY && m->state != SRV_FAILED)
            pthread_cond_wait(&m->cv, &m->mu);
        if (m->state == SRV_FAILED) rc = vd_error_set(err, VD_ERR_MODEL, "preload: %s", m->error);
        pthread_mutex_unlock(&m->mu);
    }
    if (rc == VD_OK) rc = vd_srv_listen(s, err);
    if (rc != VD_OK) {
        vd_server_free(s);
        return rc;
    }
    *out = s;
    return VD_OK;
}

static srv_model *lookup(vd_server *s, const char *name)
{
    srv_model *m = find_model(s, name);
    if (!m && vd_mono_us() - s->last_scan_us > RESCAN_US) {
        vd_error e;
        if (scan_models(s, &e) != VD_OK) VD_WARN("models: rescan failed: %s", e.msg);
        m = find_model(s, name);
    }
    return m;
}

static json_t *models_json(vd_server *s)
{
    json_t *j = json_object(), *arr = json_array(), *inv = json_array();
    for (size_t i = 0; i < s->nmodels; i++)
        json_array_append_new(arr, vd_srv_model_json(s->models[i]));
    for (size_t i = 0; i < s->ninvalid; i++)
        json_array_append_new(
            inv, json_pack("{s:s, s:s}", "file", s->invalid[i].file, "error", s->invalid[i].error));
    json_object_set_new(j, "models", arr);
    json_object_set_new(j, "invalid", inv);
    return j;
}

static int models_idle(vd_server *s)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (!vd_srv_model_idle(s->models[i])) return 0;
    return 1;
}

/* The idle trim (I/O thread, every loop): notes allocator activity; once there
 * has been none for cfg.trim_idle_ms and no model is busy, gives glibc's free
 * heap memory back to the kernel. Returns the epoll timeout to use (the
 * caller's, or shorter so as to wake when the trim falls due). */
static int idle_trim(vd_server *s, int timeout_ms)
{
    if (s->cfg.trim_idle_ms <= 0) return timeout_ms;
    uint64_t v = atomic_load(&s->alloc_events);
    int64_t now = vd_mono_us(), idle_us = s->cfg.trim_idle_ms * 1000;
    if (v != s->trim_seen) {
        s->trim_seen = v;
        s->trim_since_us = now;
        s->trim_due = 1;
    }
    if (!s->trim_due) return timeout_ms;
    if (now - s->trim_since_us >= idle_us) {
        if (models_idle(s)) {
#ifdef __GLIBC__
            vd_procstat a, b;
            vd_procstat_read(&a);
            malloc_trim(0);
            vd_procstat_read(&b);
            s->trim_freed = a.rss_bytes > b.rss_bytes ? a.rss_bytes - b.rss_bytes : 0;
            s->trim_freed_sum += s->trim_freed;
            VD_DEBUG("allocator: idle %lld ms, malloc_trim gave back %.1f MiB (RSS %.1f MiB)",
                     (long long)((now - s->trim_since_us) / 1000), s->trim_freed / 1048576.0,
                     b.rss_bytes / 1048576.0);
#endif
            s->trims++;
            s->trim_due = 0;
            return timeout_ms;
        }
        s->trim_since_us = now; /* a long batch is still running: look again later */
    }
    int64_t left = (s->trim_since_us + idle_us - now) / 1000 + 1;
    return timeout_ms < 0 || left < timeout_ms ? (int)left : timeout_ms;
}

static json_t *health_json(vd_server *s)
{
    size_t loaded = 0, failed = 0;
    int conns = vd_srv_conns_open(s);
    json_t *layouts = json_object(); /* per model that was loaded: how it runs */
    for (size_t i = 0; i < s->nmodels; i++) {
        srv_model *m = s->models[i];
        pthread_mutex_lock(&m->mu);
        loaded += m->state == SRV_READY;
        failed += m->state == SRV_FAILED;
        pthread_mutex_unlock(&m->mu);
        json_t *l = vd_srv_model_layout_json(m);
        if (l) json_object_set_new(layouts, m->meta.name, l);
    }
    vd_procstat ps;
    vd_procstat_read(&ps);
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:i, s:{s:I, s:I, s:I, s:I, s:I}}", "status",
        s->draining ? "stopping" : "ok", "version", VISIOND_VERSION, "onnxruntime",
        vd_ort_version(), "uptime_ms", (json_int_t)((vd_mono_us() - s->started_us) / 1000),
        "models", (json_int_t)s->nmodels, "loaded", (json_int_t)loaded, "failed",
        (json_int_t)failed, "connections", conns, "pid", (int)getpid(), "process", "rss_bytes",
        (json_int_t)ps.rss_bytes, "open_fds", (json_int_t)ps.open_fds, "threads",
        (json_int_t)ps.threads, "malloc_in_use_bytes", (json_int_t)ps.malloc_in_use,
        "malloc_held_bytes", (json_int_t)ps.malloc_held);
    if (j)
        json_object_set_new(j, "allocator",
                            json_pack("{s:I, s:I, s:I, s:I}", "trim_idle_ms",
                                      (json_int_t)s->cfg.trim_idle_ms, "trims",
                                      (json_int_t)s->trims, "last_trim_freed_bytes",
                                      (json_int_t)s->trim_freed, "trim_freed_bytes",
                                      (json_int_t)s->trim_freed_sum));
    if (j) json_object_set_new(j, "protocol", json_integer(VD_PROTO_VERSION_MAX));
    if (j)
        json_object_set_new(j, "layouts", layouts);
    else
        json_decref(layouts);
    return j;
}

/* Checks an INFER request's tensor against the model: [n, item...], n >= 1, of
 * the model's kind (float32 pixels; int32 or int64 token ids for text). Sets r->n. */
static vd_status check_input(const vd_model_meta *mt, srv_req *r, vd_error *err)
{
    int64_t want[4];
    vd_dtype dt;
    size_t rank = vd_model_meta_input_shape(mt, -1, want, &dt);
    const vd_tensor *t = &r->input;
    int text = mt->task == VD_TASK_TEXT_EMBEDDING;
    int ok = t->rank == rank && t->shape[0] >= 1 &&
             (text ? t->dtype != VD_DTYPE_FLOAT32 : t->dtype == VD_DTYPE_FLOAT32);
    for (size_t k = 1; ok && k < rank; k++)
        ok = t->shape[k] == want[k];
    r->n = ok ? (size_t)t->shape[0] : 0;
    if (ok) return VD_OK;
    char got[128] = "";
    size_t used = 0;
    for (size_t k = 0; k < t->rank && used < sizeof got; k++)
        used += (size_t)snprintf(got + used, sizeof got - used, "%s%lld", k ? "," : "",
                                 (long long)t->shape[k]);
    if (text)
        return vd_error_set(err, VD_ERR_INVALID,
                            "input %s [%s] does not fit text model '%s': want [n,%lld] int32 or "
                            "int64 token ids, n >= 1",
                            vd_dtype_name(t->dtype), got, mt->name, (long long)want[1]);
    return vd_error_set(err, VD_ERR_INVALID,
                        "input %s [%s] does not fit model '%s': want [n,%lld,%lld,%lld] float32 "
                        "(%s), n >= 1",
                        vd_dtype_name(t->dtype), got, mt->name, (long long)want[1],
                        (long long)want[2], (long long)want[3],
                        mt->layout == VD_LAYOUT_NCHW ? "NCHW" : "NHWC");
}

/* Decodes a model request's payload into r (and the model's name). */
static vd_status decode_request(srv_shm *shm, vd_proto_header h, uint8_t **block,
                                const uint8_t *payload, char *name, srv_req *r, vd_error *e)
{
    if (h.op == VD_OP_INFER)
        return vd_proto_decode_infer_take(block, payload, h.length, name, &r->input, e);
    if (h.op != VD_OP_INFER_SHM) return vd_proto_decode_name(payload, h.length, name, e);
    uint64_t off, bytes;
    vd_status rc = vd_proto_decode_infer_ref(payload, h.length, name, &r->input, &off, &bytes, e);
    if (rc == VD_OK) rc = vd_srv_shm_view(shm, off, bytes, &r->input, e);
    if (rc == VD_OK)
        r->shm = vd_srv_shm_ref(shm);
    else
        memset(&r->input, 0, sizeof r->input); /* it owns nothing */
    return rc;
}

int vd_srv_handle_frame(vd_server *s, uint32_t slot, uint32_t gen, srv_shm *shm, vd_proto_header h,
                        uint8_t *block, const uint8_t *payload)
{
    int inflight = 0;
    vd_error e;
    vd_error_clear(&e);
    char name[VD_MODEL_NAME_MAX];

    switch (h.op) {
    case VD_OP_HEALTH:
        vd_srv_reply_json(s, slot, h.op, h.id, health_json(s));
        break;
    case VD_OP_MODELS:
        if (vd_mono_us() - s->last_scan_us > RESCAN_US && scan_models(s, &e) != VD_OK)
            VD_WARN("models: rescan failed: %s", e.msg);
        vd_srv_reply_json(s, slot, h.op, h.id, models_json(s));
        break;
    case VD_OP_INFER:
    case VD_OP_INFER_SHM:
    case VD_OP_LOAD:
    case VD_OP_UNLOAD: {
        srv_req *r = calloc(1, sizeof *r);
        if (!r) {
            vd_srv_reply_error(s, slot, h.op, h.id, VD_ERR_NOMEM, "out of memory");
            break;
        }
        r->conn_slot = slot;
        r->conn_gen = gen;
        r->id = h.id;
        r->received_us = vd_mono_us();
        r->deadline_us = h.aux ? r->received_us + (int64_t)h.aux * 1000 : 0;
        r->kind = h.op == VD_OP_LOAD     ? SRV_REQ_LOAD
                  : h.op == VD_OP_UNLOAD ? SRV_REQ_UNLOAD
                                         : SRV_REQ_INFER;
        vd_status rc = decode_request(shm, h, &block, payload, name, r, &e);
        srv_model *m = NULL;
        if (rc == VD_OK && s->draining)
            rc = vd_error_set(&e, VD_ERR_CONN, "the model server is shutting down; retry");
        if (rc == VD_OK && !(m = lookup(s, name)))
            rc =
                vd_error_set(&e, VD_ERR_NOT_FOUND, "no model named '%s' (see the MODELS op)", name);
        if (rc == VD_OK && r->kind == SRV_REQ_INFER) rc = check_input(&m->meta, r, &e);
        if (rc == VD_OK) rc = vd_srv_model_enqueue(m, r, &e);
        if (rc != VD_OK) {
            if (m && rc != VD_ERR_BUSY && rc != VD_ERR_LIMIT && rc != VD_ERR_CONN) {
                pthread_mutex_lock(&m->mu);
                m->errors++;
                pthread_mutex_unlock(&m->mu);
            }
            vd_srv_reply_error(s, slot, h.op, h.id, rc, e.msg);
            vd_srv_req_free(r);
        } else {
            inflight = 1;
        }
        break;
    }
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown op %u", h.op);
        vd_srv_reply_error(s, slot, h.op, h.id, VD_ERR_UNSUPPORTED, msg);
    }
    }
    free(block);
    return inflight;
}

static int all_idle(vd_server *s)
{
    return models_idle(s) && !vd_srv_output_pending(s);
}

static void begin_drain(vd_server *s)
{
    s->draining = 1;
    if (s->unix_fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->unix_fd, NULL);
        close(s->unix_fd);
        s->unix_fd = -1;
        if (s->socket_path) unlink(s->socket_path);
    }
    if (s->tcp_fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->tcp_fd, NULL);
        close(s->tcp_fd);
        s->tcp_fd = -1;
    }
    VD_INFO("stopping: finishing queued requests");
}

vd_status vd_server_run(vd_server *s, vd_error *err)
{
    (void)err;
    VD_INFO("model server ready: %zu models%s%s%s", s->nmodels, s->socket_path ? ", socket " : "",
            s->socket_path ? s->socket_path : "", s->tcp_fd >= 0 ? ", tcp" : "");
    int64_t drain_until = 0;
    struct epoll_event evs[64];
    for (;;) {
        if (!s->draining && atomic_load(&s->stop_requested)) {
            begin_drain(s);
            drain_until = vd_mono_us() + s->cfg.drain_ms * 1000;
        }
        if (s->draining && (all_idle(s) || vd_mono_us() > drain_until)) break;
        int timeout_ms = s->draining ? 20 : -1;
        if (s->accept_paused_until_us) {
            int64_t left = (s->accept_paused_until_us - vd_mono_us()) / 1000 + 1;
            if (timeout_ms < 0 || left < timeout_ms) timeout_ms = left < 1 ? 1 : (int)left;
        }
        if (!s->draining) timeout_ms = idle_trim(s, timeout_ms);
        int n = epoll_wait(s->epfd, evs, 64, timeout_ms);
        if (s->accept_paused_until_us && vd_mono_us() >= s->accept_paused_until_us)
            vd_srv_accept_resume(s);
        if (n < 0) {
            if (errno == EINTR) continue;
            return vd_error_set(err, VD_ERR_IO, "epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == SRV_TAG_EVENT) {
                uint64_t v;
                ssize_t r = read(s->evfd, &v, sizeof v);
                (void)r;
                vd_srv_deliver(s);
            } else if (tag == SRV_TAG_STOP) {
                atomic_store(&s->stop_requested, 1);
                epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->cfg.stop_fd, NULL);
            } else if (tag == SRV_TAG_UNIX) {
                vd_srv_accept_all(s, s->unix_fd, 0);
            } else if (tag == SRV_TAG_TCP) {
                vd_srv_accept_all(s, s->tcp_fd, 1);
            } else if (tag < (uint64_t)s->nconns) {
                vd_srv_conn_ready(s, (uint32_t)tag, evs[i].events);
            }
        }
    }
    vd_srv_deliver(s);
    VD_INFO("stopped");
    return VD_OK;
}

void vd_server_free(vd_server *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nmodels; i++)
        vd_srv_model_stop(s->models[i], 1);
    vd_srv_conns_free(s);
    for (size_t i = 0; i < s->nmodels; i++)
        vd_srv_model_free(s->models[i]);
    free(s->models);
    free(s->invalid);
    if (s->unix_fd >= 0) {
        close(s->unix_fd);
        if (s->socket_path) unlink(s->socket_path);
    }
    if (s->tcp_fd >= 0) close(s->tcp_fd);
    if (s->evfd >= 0) close(s->evfd);
    if (s->epfd >= 0) close(s->epfd);
    vd_ort_env_free(s->env);
    pthread_mutex_destroy(&s->out_mu);
    pthread_mutex_destroy(&s->load_mu);
    free(s->models_dir);
    free(s->socket_path);
    free(s->tcp_addr);
    if (s->secret) memset(s->secret, 0, sizeof *s->secret);
    free(s->secret);
    free(s);
}
