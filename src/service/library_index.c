/* library_index.c: the index owner (service/library_index.h, docs/search.md). */
#include "service/library_index.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "store/library.h"

#define PAGE VD_LIBRARY_LIST_MAX

typedef struct {
    vd_libindex_stats st; /* model, space, counters (st.count/dim/kind/seq filled on read) */
    vd_vindex *ix;        /* NULL while the store had no vector of the model */
    int64_t seq;          /* the store position ix reflects */
    int dirty;            /* changed since its last save */
} slot;

struct vd_libindex {
    pthread_rwlock_t lock; /* slots' ix and seq: searches read, catch-up writes */
    pthread_mutex_t step;  /* one catch-up (or build, or save) at a time; guards store */
    vd_store *store;       /* under step; reopened after a failure */
    char *store_url;
    char *dir;
    slot slots[VD_LIBINDEX_MAX_MODELS];
    size_t nslots; /* grows under the write lock; slots never move */
    int poll_ms, persist_ms;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake;
    int poked, stopping, thread_on;
    pthread_t thread;
    vd_libindex_config cfg;        /* the models to track (the caller's strings) */
    vd_libindex_faces_cb faces_cb; /* under step */
    void *faces_ud;
};

static const char *space_name(vd_libindex_space s)
{
    return s == VD_LIBINDEX_FACE ? "face" : "image";
}

static int model_name_ok(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    if (n == 0 || n > VD_LIBINDEX_MAX_MODEL_LEN || m[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = m[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '+' || c == '-'))
            return 0;
    }
    return 1;
}

vd_status vd_libindex_file(const char *dir, vd_libindex_space space, const char *model, char *buf,
                           size_t n, vd_error *err)
{
    if (!model_name_ok(model))
        return vd_error_set(err, VD_ERR_INVALID, "model name '%.80s' is not [A-Za-z0-9_.+-]{1,%d}",
                            model ? model : "", VD_LIBINDEX_MAX_MODEL_LEN);
    if (snprintf(buf, n, "%s/%s-%s%s", dir, space_name(space), model, VD_LIBINDEX_FILE_SUFFIX) >=
        (int)n)
        return vd_error_set(err, VD_ERR_INVALID, "index directory name too long");
    return VD_OK;
}

/* ---- the store ---- */

static vd_status store_ready(vd_libindex *li, vd_error *err)
{
    if (li->store && vd_store_moved(li->store)) { /* the file was replaced: follow the path */
        vd_store_close(li->store);
        li->store = NULL;
    }
    if (li->store) return VD_OK;
    return vd_store_open(li->store_url, NULL, &li->store, err);
}

/* After a failed store call: a broken handle is closed (reopened next time). */
static void store_failed(vd_libindex *li, vd_status st)
{
    if (st == VD_ERR_DB || st == VD_ERR_CONN || st == VD_ERR_IO) {
        vd_store_close(li->store);
        li->store = NULL;
    }
}

/* One change read from the store: a vector to add (vec, borrowed from the
 * page) or an id to remove (vec NULL). */
typedef struct {
    int64_t seq, id;
    const float *vec;
    int dim;
} change;

/* A page of what came after one slot's seq, merged in seq order. */
typedef struct {
    vd_asset_vector *av;
    vd_library_face *fv;
    size_t nv;
    vd_library_removal *rm;
    size_t nrm;
    change *ch;
    size_t nch;
    int64_t upper; /* everything <= upper is in ch */
} page;

static void page_free(page *p)
{
    if (p->av) vd_asset_vector_list_free(p->av, p->nv);
    if (p->fv) vd_library_face_list_free(p->fv, p->nv);
    free(p->rm);
    free(p->ch);
    memset(p, 0, sizeof *p);
}

static int64_t vec_seq(const page *p, size_t i)
{
    return p->av ? p->av[i].seq : p->fv[i].seq;
}

/* Merges vectors and removals with seq <= upper into p->ch, in seq order. */
static vd_status page_merge(page *p, vd_libindex_space space, vd_error *err)
{
    p->ch = calloc(p->nv + p->nrm + 1, sizeof *p->ch);
    if (!p->ch) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_removed_kind want = space == VD_LIBINDEX_FACE ? VD_REMOVED_FACE : VD_REMOVED_ASSET;
    size_t i = 0, j = 0;
    for (;;) {
        int64_t sv = i < p->nv ? vec_seq(p, i) : INT64_MAX;
        int64_t sr = j < p->nrm ? p->rm[j].seq : INT64_MAX;
        int64_t s = sv < sr ? sv : sr;
        if (s == INT64_MAX || s > p->upper) break;
        change *c = &p->ch[p->nch];
        c->seq = s;
        if (sv <= sr) {
            c->id = p->av ? p->av[i].asset_id : p->fv[i].id;
            c->vec = p->av ? p->av[i].vector : p->fv[i].vector;
            c->dim = p->av ? p->av[i].dim : p->fv[i].dim;
            i++;
            if (c->vec && c->dim > 0) p->nch++;
        } else {
            c->id = p->rm[j].id;
            p->nch += p->rm[j].kind == want;
            j++;
        }
    }
    return VD_OK;
}

/* Reads one page of what came after seq for s (max_seq: the store's highest,
 * read before). */
static vd_status page_read(vd_libindex *li, const slot *s, int64_t after, int64_t max_seq, page *p,
                           vd_error *err)
{
    memset(p, 0, sizeof *p);
    vd_status st;
    if (s->st.space == VD_LIBINDEX_FACE)
        st = vd_store_library_faces_since(li->store, s->st.model, after, PAGE, &p->fv, &p->nv, err);
    else
        st = vd_store_asset_vectors_since(li->store, s->st.model, after, PAGE, &p->av, &p->nv, err);
    if (st == VD_OK)
        st = vd_store_library_removed_since(li->store, after, PAGE, &p->rm, &p->nrm, err);
    if (st != VD_OK) return st;
    p->upper = max_seq;
    if (p->nv == PAGE && vec_seq(p, p->nv - 1) < p->upper) p->upper = vec_seq(p, p->nv - 1);
    if (p->nrm == PAGE && p->rm[p->nrm - 1].seq < p->upper) p->upper = p->rm[p->nrm - 1].seq;
    return page_merge(p, s->st.space, err);
}

/* ---- applying changes (write lock held) ---- */

/* Adds the pending run of adds [from, to) of p->ch to *ix (made on the first
 * vector). A vector of another dimension than the index is skipped (logged). */
static size_t add_run(slot *s, vd_vindex **ix, const change *ch, size_t n)
{
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        vd_error err;
        if (!*ix && vd_vindex_new(ch[i].dim, VD_VINDEX_EXACT, ix, &err) != VD_OK) {
            VD_WARN("library index %s %s: %s", space_name(s->st.space), s->st.model, err.msg);
            return added;
        }
        if (vd_vindex_add(*ix, 1, &ch[i].id, ch[i].vec, &err) != VD_OK) {
            VD_WARN("library index %s %s: id %lld skipped: %s", space_name(s->st.space),
                    s->st.model, (long long)ch[i].id, err.msg);
            continue;
        }
        added++;
    }
    return added;
}

/* Applies p to s under the write lock; new face ids are appended to *ids. */
static size_t page_apply(vd_libindex *li, slot *s, const page *p, int64_t **ids, size_t *nids)
{
    size_t added = 0;
    pthread_rwlock_wrlock(&li->lock);
    for (size_t i = 0; i < p->nch; i++) {
        const change *c = &p->ch[i];
        if (c->vec) {
            size_t a = add_run(s, &s->ix, c, 1);
            added += a;
            if (a && ids) {
                int64_t *g = realloc(*ids, (*nids + 1) * sizeof **ids);
                if (g) {
                    *ids = g;
                    g[(*nids)++] = c->id;
                }
            }
        } else if (s->ix && vd_vindex_contains(s->ix, c->id)) {
            vd_vindex_remove(s->ix, c->id, NULL);
            s->st.removed++;
        }
    }
    s->st.caught_up += added;
    if (p->upper > s->seq) {
        s->seq = p->upper;
        s->dirty = 1;
    }
    pthread_rwlock_unlock(&li->lock);
    return added;
}

/* Rebuilds s into the kind the policy wants for its size, when that differs:
 * a new index from the store (outside the lock), swapped in. */
static vd_status slot_build(vd_libindex *li, slot *s, vd_vindex_kind kind, int64_t max_seq,
                            vd_vindex **out, int64_t *seq, vd_error *err);

static vd_status slot_rekind(vd_libindex *li, slot *s, int64_t max_seq, vd_error *err)
{
    if (!s->ix) return VD_OK;
    vd_vindex_kind want = vd_vindex_kind_for(vd_vindex_count(s->ix), vd_vindex_dim(s->ix));
    if (want == vd_vindex_kind_of(s->ix)) return VD_OK;
    vd_vindex *ix = NULL;
    int64_t seq = 0;
    vd_status st = slot_build(li, s, want, max_seq, &ix, &seq, err);
    if (st != VD_OK) return st;
    pthread_rwlock_wrlock(&li->lock);
    vd_vindex *old = s->ix;
    s->ix = ix;
    s->seq = seq;
    s->dirty = 1;
    s->st.rebuilds++;
    pthread_rwlock_unlock(&li->lock);
    vd_vindex_free(old);
    VD_INFO("library index %s %s: rebuilt as %s (%zu vectors)", space_name(s->st.space),
            s->st.model, want == VD_VINDEX_APPROX ? "approximate" : "exact", vd_vindex_count(ix));
    return VD_OK;
}

/* Catches s up to max_seq (step held). */
static vd_status slot_catch_up(vd_libindex *li, slot *s, int64_t max_seq, size_t *added,
                               vd_error *err)
{
    int64_t *ids = NULL;
    size_t nids = 0;
    vd_status st = VD_OK;
    int want_ids = s->st.space == VD_LIBINDEX_FACE && li->faces_cb;
    while (st == VD_OK && s->seq < max_seq) {
        page p;
        st = page_read(li, s, s->seq, max_seq, &p, err);
        if (st == VD_OK) *added += page_apply(li, s, &p, want_ids ? &ids : NULL, &nids);
        page_free(&p);
    }
    if (st == VD_OK) st = slot_rekind(li, s, max_seq, err);
    if (nids && li->faces_cb) {
        pthread_rwlock_rdlock(&li->lock);
        vd_vindex *ix = s->ix;
        pthread_rwlock_unlock(&li->lock);
        if (ix) li->faces_cb(li->faces_ud, ix, s->st.model, ids, nids);
    }
    free(ids);
    return st;
}

/* Builds a new index of kind for s's model from the store up to max_seq
 * (no lock: the result is private until swapped in). */
static vd_status slot_build(vd_libindex *li, slot *s, vd_vindex_kind kind, int64_t max_seq,
                            vd_vindex **out, int64_t *seq, vd_error *err)
{
    slot tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.st = s->st;
    vd_status st = VD_OK;
    /* staged exact (the store's changes applied in seq order, cheap), then
     * converted once: the graph built from all of them with every core */
    if (s->ix && (st = vd_vindex_new(vd_vindex_dim(s->ix), VD_VINDEX_EXACT, &tmp.ix, err)) != VD_OK)
        return st;
    while (st == VD_OK && tmp.seq < max_seq) {
        page p;
        st = page_read(li, &tmp, tmp.seq, max_seq, &p, err);
        if (st == VD_OK) {
            for (size_t i = 0; i < p.nch; i++) {
                if (p.ch[i].vec)
                    add_run(&tmp, &tmp.ix, &p.ch[i], 1);
                else if (tmp.ix)
                    vd_vindex_remove(tmp.ix, p.ch[i].id, NULL);
            }
            tmp.seq = p.upper;
        }
        page_free(&p);
    }
    if (st == VD_OK && tmp.ix && kind != VD_VINDEX_EXACT) {
        vd_vindex *staged = tmp.ix;
        vd_vindex_set_threads(staged, 0); /* one per core; joined before convert returns */
        st = vd_vindex_convert(staged, kind, &tmp.ix, err);
        vd_vindex_free(staged);
    }
    if (st != VD_OK) {
        vd_vindex_free(tmp.ix);
        return st;
    }
    *out = tmp.ix;
    *seq = tmp.seq;
    return VD_OK;
}

/* ---- slots ---- */

static slot *slot_find(vd_libindex *li, vd_libindex_space space, const char *model)
{
    for (size_t i = 0; i < li->nslots; i++)
        if (li->slots[i].st.space == space && strcmp(li->slots[i].st.model, model) == 0)
            return &li->slots[i];
    return NULL;
}

/* Loads s's file when it is intact and not ahead of the store (max_seq). */
static void slot_load(vd_libindex *li, slot *s, int64_t max_seq)
{
    char path[4096];
    vd_error err;
    uint64_t seq = 0;
    vd_vindex *ix = NULL;
    if (vd_libindex_file(li->dir, s->st.space, s->st.model, path, sizeof path, &err) != VD_OK)
        return;
    vd_status st = vd_vindex_load(path, &ix, &seq, &err);
    if (st == VD_ERR_NOT_FOUND) return;
    if (st != VD_OK) {
        VD_WARN("library index %s: %s: rebuilding from the store", path, err.msg);
        return;
    }
    if ((int64_t)seq > max_seq) { /* another store's file (the store was replaced) */
        VD_WARN("library index %s is at seq %llu, the store at %lld: rebuilding from the store",
                path, (unsigned long long)seq, (long long)max_seq);
        vd_vindex_free(ix);
        return;
    }
    vd_vindex_set_threads(ix, 0); /* a compaction of its graph uses every core */
    s->ix = ix;
    s->seq = (int64_t)seq;
    s->st.loaded_from_file = vd_vindex_count(ix);
}

/* Adds a slot for (space, model) (step held), loading its file. NULL when full. */
static slot *slot_add(vd_libindex *li, vd_libindex_space space, const char *model, int64_t max_seq)
{
    slot *s = slot_find(li, space, model);
    if (s) return s;
    if (li->nslots == VD_LIBINDEX_MAX_MODELS || !model_name_ok(model)) return NULL;
    slot fresh;
    memset(&fresh, 0, sizeof fresh);
    snprintf(fresh.st.model, sizeof fresh.st.model, "%s", model);
    fresh.st.space = space;
    slot_load(li, &fresh, max_seq);
    pthread_rwlock_wrlock(&li->lock);
    li->slots[li->nslots] = fresh;
    s = &li->slots[li->nslots++];
    pthread_rwlock_unlock(&li->lock);
    return s;
}

/* Tracks the models whose files lie in dir. */
static void slots_from_dir(vd_libindex *li, int64_t max_seq)
{
    DIR *d = opendir(li->dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char model[VD_LIBINDEX_MAX_MODEL_LEN + 8];
        size_t n = strlen(e->d_name), sl = strlen(VD_LIBINDEX_FILE_SUFFIX);
        vd_libindex_space sp =
            strncmp(e->d_name, "face-", 5) == 0 ? VD_LIBINDEX_FACE : VD_LIBINDEX_IMAGE;
        size_t pre = sp == VD_LIBINDEX_FACE ? 5 : 6;
        if (n <= pre + sl || strcmp(e->d_name + n - sl, VD_LIBINDEX_FILE_SUFFIX) != 0) continue;
        if (sp == VD_LIBINDEX_IMAGE && strncmp(e->d_name, "image-", 6) != 0) continue;
        if (n - pre - sl >= sizeof model) continue;
        memcpy(model, e->d_name + pre, n - pre - sl);
        model[n - pre - sl] = '\0';
        slot_add(li, sp, model, max_seq);
    }
    closedir(d);
}

/* ---- catch-up, save ---- */

static vd_status catch_up_locked(vd_libindex *li, size_t *added, vd_error *err)
{
    int64_t max_seq = 0;
    vd_status st = store_ready(li, err);
    if (st == VD_OK) st = vd_store_library_max_seq(li->store, &max_seq, err);
    for (size_t i = 0; st == VD_OK && i < li->nslots; i++)
        if (li->slots[i].seq < max_seq) st = slot_catch_up(li, &li->slots[i], max_seq, added, err);
    if (st != VD_OK) store_failed(li, st);
    return st;
}

vd_status vd_libindex_catch_up(vd_libindex *li, size_t *added, vd_error *err)
{
    size_t a = 0;
    pthread_mutex_lock(&li->step);
    vd_status st = catch_up_locked(li, &a, err);
    pthread_mutex_unlock(&li->step);
    if (added) *added = a;
    return st;
}

static vd_status persist_locked(vd_libindex *li, vd_error *err)
{
    vd_status first = VD_OK;
    if (li->cfg.read_only) return VD_OK;
    for (size_t i = 0; i < li->nslots; i++) {
        slot *s = &li->slots[i];
        char path[4096];
        if (!s->dirty || !s->ix) continue;
        vd_status st = vd_libindex_file(li->dir, s->st.space, s->st.model, path, sizeof path, err);
        pthread_rwlock_rdlock(&li->lock); /* searches go on while it is written */
        if (st == VD_OK) st = vd_vindex_save(s->ix, path, (uint64_t)s->seq, err);
        pthread_rwlock_unlock(&li->lock);
        if (st == VD_OK) {
            s->dirty = 0;
            s->st.saves++;
        } else if (first == VD_OK) {
            first = st;
        }
    }
    return first;
}

vd_status vd_libindex_persist(vd_libindex *li, vd_error *err)
{
    pthread_mutex_lock(&li->step);
    vd_status st = persist_locked(li, err);
    pthread_mutex_unlock(&li->step);
    return st;
}

static vd_status owner_fill(vd_libindex *li, vd_error *err);

static void *owner_thread(void *arg)
{
    vd_libindex *li = arg;
    int64_t last_save = vd_now_ms();
    int filled = 0;
    pthread_mutex_lock(&li->wake_mu);
    li->poked = 1; /* the first step at once */
    while (!li->stopping) {
        if (!li->poked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)(li->poll_ms % 1000) * 1000000L;
            ts.tv_sec += li->poll_ms / 1000 + ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&li->wake, &li->wake_mu, &ts);
        }
        if (li->stopping) break;
        li->poked = 0;
        pthread_mutex_unlock(&li->wake_mu);
        vd_error err;
        if (!filled) {
            pthread_mutex_lock(&li->step);
            vd_status st = owner_fill(li, &err);
            pthread_mutex_unlock(&li->step);
            if (st != VD_OK) VD_WARN("library index: cannot start (retried): %s", err.msg);
            filled = st == VD_OK;
        } else if (vd_libindex_catch_up(li, NULL, &err) != VD_OK) {
            VD_WARN("library index: catch-up failed (retried): %s", err.msg);
        }
        if (vd_now_ms() - last_save >= li->persist_ms) {
            if (vd_libindex_persist(li, &err) != VD_OK)
                VD_WARN("library index: save failed (retried): %s", err.msg);
            last_save = vd_now_ms();
        }
        pthread_mutex_lock(&li->wake_mu);
    }
    pthread_mutex_unlock(&li->wake_mu);
    return NULL;
}

void vd_libindex_poke(vd_libindex *li)
{
    if (!li) return;
    pthread_mutex_lock(&li->wake_mu);
    li->poked = 1;
    pthread_cond_signal(&li->wake);
    pthread_mutex_unlock(&li->wake_mu);
}

/* ---- start, stop ---- */

static vd_status make_dir(const char *dir, vd_error *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return vd_error_set(err, VD_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    return VD_OK;
}

static void log_slots(vd_libindex *li)
{
    for (size_t i = 0; i < li->nslots; i++) {
        const slot *s = &li->slots[i];
        VD_INFO("library index %s %s: %llu vectors loaded from its file, %llu caught up from the "
                "store, %llu removed (seq %lld, %zu vectors)",
                space_name(s->st.space), s->st.model, (unsigned long long)s->st.loaded_from_file,
                (unsigned long long)s->st.caught_up, (unsigned long long)s->st.removed,
                (long long)s->seq, s->ix ? vd_vindex_count(s->ix) : (size_t)0);
    }
}

/* Tracks the configured models and those with files, loads their files,
 * then catches up once (step held). */
static vd_status owner_fill(vd_libindex *li, vd_error *err)
{
    const vd_libindex_config *cfg = &li->cfg;
    int64_t max_seq = 0;
    vd_status st = store_ready(li, err);
    if (st == VD_OK) st = vd_store_library_max_seq(li->store, &max_seq, err);
    if (st != VD_OK) return st;
    for (size_t i = 0; i < cfg->n_image_models; i++)
        slot_add(li, VD_LIBINDEX_IMAGE, cfg->image_models[i], max_seq);
    for (size_t i = 0; i < cfg->n_face_models; i++)
        slot_add(li, VD_LIBINDEX_FACE, cfg->face_models[i], max_seq);
    slots_from_dir(li, max_seq);
    size_t added = 0;
    st = catch_up_locked(li, &added, err);
    if (st == VD_OK) log_slots(li);
    return st;
}

vd_status vd_libindex_start(const vd_libindex_config *cfg, vd_libindex **out, vd_error *err)
{
    *out = NULL;
    vd_libindex *li = calloc(1, sizeof *li);
    if (!li) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    pthread_rwlock_init(&li->lock, NULL);
    pthread_mutex_init(&li->step, NULL);
    pthread_mutex_init(&li->wake_mu, NULL);
    pthread_cond_init(&li->wake, NULL);
    li->poll_ms = cfg->poll_ms ? cfg->poll_ms : VD_LIBINDEX_POLL_MS;
    li->persist_ms = cfg->persist_ms > 0 ? cfg->persist_ms : VD_LIBINDEX_PERSIST_MS;
    li->store_url = vd_strdup(cfg->store_url);
    li->dir = vd_strdup(cfg->dir);
    vd_status st = li->store_url && li->dir ? make_dir(li->dir, err)
                                            : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    li->cfg = *cfg; /* the model names are the caller's, kept while li lives */
    if (st == VD_OK && li->poll_ms < 0) st = owner_fill(li, err); /* no thread: now */
    if (st == VD_OK && li->poll_ms > 0) {
        if (pthread_create(&li->thread, NULL, owner_thread, li) != 0)
            st = vd_error_set(err, VD_ERR_NOMEM, "cannot start the index thread");
        else
            li->thread_on = 1;
    }
    if (st != VD_OK) {
        vd_libindex_stop(li);
        return st;
    }
    *out = li;
    return VD_OK;
}

void vd_libindex_stop(vd_libindex *li)
{
    if (!li) return;
    if (li->thread_on) {
        pthread_mutex_lock(&li->wake_mu);
        li->stopping = 1;
        pthread_cond_signal(&li->wake);
        pthread_mutex_unlock(&li->wake_mu);
        pthread_join(li->thread, NULL);
    }
    vd_error err;
    if (li->cfg.read_only) {
        /* nothing saved */
    } else if (li->store &&
               vd_libindex_catch_up(li, NULL, &err) != VD_OK) /* the last changes too */
        VD_WARN("library index: catch-up at stop failed: %s", err.msg);
    if (li->dir && vd_libindex_persist(li, &err) != VD_OK)
        VD_WARN("library index: save at stop failed: %s", err.msg);
    for (size_t i = 0; i < li->nslots; i++)
        vd_vindex_free(li->slots[i].ix);
    vd_store_close(li->store);
    pthread_cond_destroy(&li->wake);
    pthread_mutex_destroy(&li->wake_mu);
    pthread_mutex_destroy(&li->step);
    pthread_rwlock_destroy(&li->lock);
    free(li->store_url);
    free(li->dir);
    free(li);
}

void vd_libindex_set_faces_cb(vd_libindex *li, vd_libindex_faces_cb cb, void *ud)
{
    pthread_mutex_lock(&li->step);
    li->faces_cb = cb;
    li->faces_ud = ud;
    pthread_mutex_unlock(&li->step);
}

/* ---- reading ---- */

/* Whether the store has any vector of (space, model): a model is tracked on
 * demand only then, so that names asked at random take no slot. */
static vd_status store_has(vd_libindex *li, vd_libindex_space space, const char *model, int *any,
                           vd_error *err)
{
    size_t n = 0;
    vd_status st;
    if (space == VD_LIBINDEX_FACE) {
        vd_library_face *f = NULL;
        st = vd_store_library_faces_since(li->store, model, 0, 1, &f, &n, err);
        if (f) vd_library_face_list_free(f, n);
    } else {
        vd_asset_vector *v = NULL;
        st = vd_store_asset_vectors_since(li->store, model, 0, 1, &v, &n, err);
        if (v) vd_asset_vector_list_free(v, n);
    }
    *any = n > 0;
    return st;
}

/* Finds the slot of (space, model) with an index, read-locked (unlock after
 * use); tracks the model first when the store has vectors of it. */
static vd_status slot_for_read(vd_libindex *li, vd_libindex_space space, const char *model,
                               slot **out, vd_error *err)
{
    pthread_rwlock_rdlock(&li->lock);
    slot *s = slot_find(li, space, model);
    if (s && s->ix) {
        *out = s;
        return VD_OK;
    }
    pthread_rwlock_unlock(&li->lock);
    if (!model_name_ok(model))
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no %s index for model '%.80s'",
                            space_name(space), model ? model : "");
    pthread_mutex_lock(&li->step); /* not tracked yet, or empty: build it now */
    int64_t max_seq = 0;
    size_t added = 0;
    vd_status st = store_ready(li, err);
    if (st == VD_OK) st = vd_store_library_max_seq(li->store, &max_seq, err);
    int any = 1;
    if (st == VD_OK && !slot_find(li, space, model)) st = store_has(li, space, model, &any, err);
    if (st == VD_OK && any && (s = slot_add(li, space, model, max_seq)) != NULL && s->seq < max_seq)
        st = slot_catch_up(li, s, max_seq, &added, err);
    if (st != VD_OK) store_failed(li, st);
    pthread_mutex_unlock(&li->step);
    if (st != VD_OK) return st;
    pthread_rwlock_rdlock(&li->lock);
    s = slot_find(li, space, model);
    if (s && s->ix && vd_vindex_count(s->ix) > 0) {
        *out = s;
        return VD_OK;
    }
    pthread_rwlock_unlock(&li->lock);
    return vd_error_set(err, VD_ERR_NOT_FOUND,
                        "no %s index for model '%s' yet: the library has "
                        "no vector of it",
                        space_name(space), model);
}

vd_status vd_libindex_search(vd_libindex *li, vd_libindex_space space, const char *model,
                             const float *query, size_t k, int (*keep)(void *ud, int64_t id),
                             void *ud, vd_vindex_hit *hits, size_t *n, vd_error *err)
{
    *n = 0;
    slot *s = NULL;
    vd_status st = slot_for_read(li, space, model, &s, err);
    if (st != VD_OK) return st;
    st = vd_vindex_search(s->ix, query, k, keep, ud, hits, n, err);
    pthread_rwlock_unlock(&li->lock);
    return st;
}

vd_status vd_libindex_dim(vd_libindex *li, vd_libindex_space space, const char *model, int *dim,
                          vd_error *err)
{
    slot *s = NULL;
    vd_status st = slot_for_read(li, space, model, &s, err);
    if (st != VD_OK) return st;
    *dim = vd_vindex_dim(s->ix);
    pthread_rwlock_unlock(&li->lock);
    return VD_OK;
}

vd_status vd_libindex_pairs(vd_libindex *li, vd_libindex_space space, const char *model,
                            float min_score, size_t per_vector, vd_vindex_pair **pairs, size_t *n,
                            vd_error *err)
{
    *pairs = NULL;
    *n = 0;
    slot *s = NULL;
    vd_status st = slot_for_read(li, space, model, &s, err);
    if (st != VD_OK) return st;
    st = vd_vindex_pairs(s->ix, min_score, per_vector, pairs, n, err);
    pthread_rwlock_unlock(&li->lock);
    return st;
}

size_t vd_libindex_stats_get(vd_libindex *li, vd_libindex_stats *out, size_t max)
{
    pthread_rwlock_rdlock(&li->lock);
    size_t n = li->nslots;
    for (size_t i = 0; i < n && i < max; i++) {
        const slot *s = &li->slots[i];
        out[i] = s->st;
        out[i].dim = s->ix ? vd_vindex_dim(s->ix) : 0;
        out[i].kind = s->ix ? vd_vindex_kind_of(s->ix) : VD_VINDEX_EXACT;
        out[i].count = s->ix ? vd_vindex_count(s->ix) : 0;
        out[i].seq = s->seq;
    }
    pthread_rwlock_unlock(&li->lock);
    return n;
}

void vd_libindex_write_prometheus(vd_libindex *li, FILE *f)
{
    static const struct {
        const char *name, *type, *help;
    } series[] = {
        {"visiond_library_index_vectors", "gauge", "Vectors in the library index."},
        {"visiond_library_index_seq", "gauge", "The store position the index reflects."},
        {"visiond_library_index_loaded_from_file", "gauge", "Vectors read from its file at start."},
        {"visiond_library_index_caught_up_total", "counter", "Vectors added from the store."},
        {"visiond_library_index_removed_total", "counter", "Removals applied."},
        {"visiond_library_index_saves_total", "counter", "Index files written."},
        {"visiond_library_index_rebuilds_total", "counter", "Rebuilds into another kind."},
    };
    vd_libindex_stats st[VD_LIBINDEX_MAX_MODELS];
    size_t n = vd_libindex_stats_get(li, st, VD_LIBINDEX_MAX_MODELS);
    if (n > VD_LIBINDEX_MAX_MODELS) n = VD_LIBINDEX_MAX_MODELS;
    for (size_t k = 0; k < sizeof series / sizeof series[0]; k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", series[k].name, series[k].help, series[k].name,
                series[k].type);
        for (size_t i = 0; i < n; i++) {
            unsigned long long v[] = {st[i].count,
                                      (unsigned long long)st[i].seq,
                                      st[i].loaded_from_file,
                                      st[i].caught_up,
                                      st[i].removed,
                                      st[i].saves,
                                      st[i].rebuilds};
            fprintf(f, "%s{space=\"%s\",model=\"%s\"} %llu\n", series[k].name,
                    space_name(st[i].space), st[i].model, v[k]);
        }
    }
}
