/* people.c: the full re-cluster and the recluster_people job (pipeline/people.h). */
#include "pipeline/people.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "faces/faces.h"
#include "jobspec/jobspec.h"
#include "pipeline/jobs.h"
#include "store/library.h"
#include "store/people.h"
#include "vindex/vindex.h"

/* Every face of a model with a vector, sorted by id. */
typedef struct {
    size_t n, cap;
    int dim;
    vd_cluster_face *f;
    float *v; /* n * dim */
} face_set;

static void face_set_free(face_set *fs)
{
    free(fs->f);
    free(fs->v);
    memset(fs, 0, sizeof *fs);
}

static vd_status face_set_add(face_set *fs, const vd_library_face *lf, vd_error *err)
{
    if (!lf->vector || lf->dim <= 0) return VD_OK;
    if (fs->dim == 0) fs->dim = lf->dim;
    if (lf->dim != fs->dim)
        return vd_error_set(err, VD_ERR_INVALID, "face %lld has %d floats, others %d",
                            (long long)lf->id, lf->dim, fs->dim);
    if (fs->n == fs->cap) {
        size_t nc = fs->cap ? fs->cap * 2 : 1024;
        vd_cluster_face *nf = realloc(fs->f, nc * sizeof *nf);
        if (nf) fs->f = nf;
        float *nv = nf ? realloc(fs->v, nc * (size_t)fs->dim * sizeof *nv) : NULL;
        if (!nv) return vd_error_set(err, VD_ERR_NOMEM, "out of memory (%zu faces)", nc);
        fs->v = nv;
        fs->cap = nc;
    }
    fs->f[fs->n] = (vd_cluster_face){lf->id, lf->person_id, lf->assigned_by == VD_ASSIGN_USER};
    memcpy(fs->v + fs->n * (size_t)fs->dim, lf->vector, (size_t)fs->dim * sizeof(float));
    fs->n++;
    return VD_OK;
}

/* Reads the faces of model page by page (store/library.h's "since" reads, in seq order). */
static vd_status load_faces(vd_store *s, const char *model, vd_job_ctx *ctx, face_set *fs,
                            vd_error *err)
{
    int64_t after = 0;
    for (;;) {
        vd_library_face *list = NULL;
        size_t n = 0;
        vd_status st = vd_store_library_faces_since(s, model, after, 0, &list, &n, err);
        if (st != VD_OK) return st;
        for (size_t i = 0; st == VD_OK && i < n; i++)
            st = face_set_add(fs, &list[i], err);
        if (n) after = list[n - 1].seq;
        vd_library_face_list_free(list, n);
        if (st != VD_OK) return st;
        if (n == 0) return VD_OK;
        if (ctx) vd_job_ctx_progress(ctx, (int64_t)fs->n, 0);
        if (ctx && vd_job_ctx_should_stop(ctx))
            return vd_error_set(err, VD_ERR_CANCELED, "stopped while reading faces");
    }
}

/* faces[] and vectors together, by face id. */
static int by_id(const void *a, const void *b, void *ud)
{
    const face_set *fs = ud;
    int64_t x = fs->f[*(const size_t *)a].id, y = fs->f[*(const size_t *)b].id;
    return (x > y) - (x < y);
}

static vd_status sort_faces(face_set *fs, vd_error *err)
{
    size_t *ord = malloc((fs->n ? fs->n : 1) * sizeof *ord);
    vd_cluster_face *f = malloc((fs->n ? fs->n : 1) * sizeof *f);
    float *v = malloc((fs->n ? fs->n : 1) * (size_t)(fs->dim ? fs->dim : 1) * sizeof *v);
    if (!ord || !f || !v) {
        free(ord);
        free(f);
        free(v);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < fs->n; i++)
        ord[i] = i;
    qsort_r(ord, fs->n, sizeof *ord, by_id, fs);
    for (size_t i = 0; i < fs->n; i++) {
        f[i] = fs->f[ord[i]];
        memcpy(v + i * (size_t)fs->dim, fs->v + ord[i] * (size_t)fs->dim,
               (size_t)fs->dim * sizeof *v);
    }
    free(ord);
    free(fs->f);
    free(fs->v);
    fs->f = f;
    fs->v = v;
    return VD_OK;
}

typedef struct {
    const face_set *fs;
    const vd_vindex *ix;
    vd_vindex_hit *hits;
} near_ctx;

static vd_status near_index(void *ud, size_t i, size_t cap, int64_t *ids, float *scores, size_t *n,
                            vd_error *err)
{
    near_ctx *c = ud;
    size_t m = 0;
    vd_status st = vd_vindex_search(c->ix, c->fs->v + i * (size_t)c->fs->dim, cap, NULL, NULL,
                                    c->hits, &m, err);
    if (st != VD_OK) return st;
    for (size_t k = 0; k < m; k++) {
        ids[k] = c->hits[k].id;
        scores[k] = c->hits[k].score;
    }
    *n = m;
    return VD_OK;
}

/* The neighbour graph of fs from a temporary index of its vectors. */
static vd_status build_graph(const vd_cluster_params *p, const face_set *fs, vd_cluster_graph *g,
                             vd_error *err)
{
    vd_vindex *ix = NULL;
    vd_status st = vd_vindex_new(fs->dim, vd_vindex_kind_for(fs->n, fs->dim), &ix, err);
    int64_t *ids = st == VD_OK ? malloc(fs->n * sizeof *ids) : NULL;
    if (st == VD_OK && !ids) st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == VD_OK && i < fs->n; i++)
        ids[i] = fs->f[i].id;
    if (st == VD_OK) st = vd_vindex_add(ix, fs->n, ids, fs->v, err);
    free(ids);
    vd_vindex_hit hits[VD_PEOPLE_NEIGHBOURS];
    near_ctx c = {fs, ix, hits};
    if (st == VD_OK)
        st = vd_cluster_graph_build(p, fs->f, fs->n, VD_PEOPLE_NEIGHBOURS, near_index, &c, g, err);
    vd_vindex_free(ix);
    return st;
}

/* Founds the new people (label -k: the faces with that label) and moves the automatic faces
 * whose person changed, each write conditional on what was read. */
static vd_status apply(vd_store *s, const face_set *fs, const int64_t *person, size_t fresh,
                       vd_people_recluster_stats *out, vd_error *err)
{
    vd_status st = VD_OK;
    int64_t *ids = malloc((fs->n ? fs->n : 1) * sizeof *ids);
    if (!ids) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t k = 1; st == VD_OK && k <= fresh; k++) {
        size_t m = 0, taken = 0;
        int64_t pid = 0;
        for (size_t i = 0; i < fs->n; i++)
            if (person[i] == -(int64_t)k) ids[m++] = fs->f[i].id;
        st = vd_store_person_found(s, ids, m, &pid, &taken, err);
        out->new_people += pid != 0;
        out->kept += m - taken;
        out->moved += taken;
    }
    for (size_t i = 0; st == VD_OK && i < fs->n; i++) {
        const vd_cluster_face *f = &fs->f[i];
        if (f->user || person[i] < 0 || person[i] == f->person_id) continue;
        int changed = 0;
        st = vd_store_face_move_auto(s, f->id, f->person_id, person[i], &changed, err);
        out->moved += (size_t)changed;
        out->kept += (size_t)!changed;
    }
    for (size_t i = 0; i < fs->n; i++)
        out->unassigned += person[i] == 0;
    free(ids);
    if (st == VD_OK) st = vd_store_people_prune(s, &out->pruned, err);
    return st;
}

vd_status vd_people_recluster(vd_store *s, const char *model, const vd_cluster_params *p,
                              vd_job_ctx *ctx, vd_people_recluster_stats *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_status st = vd_cluster_params_check(p, err);
    if (st != VD_OK) return st;
    face_set fs = {0};
    vd_cluster_graph g = {0};
    int64_t *person = NULL;
    size_t fresh = 0;
    st = load_faces(s, model ? model : VD_FACES_EMBEDDER, ctx, &fs, err);
    if (st == VD_OK) st = sort_faces(&fs, err);
    out->faces = fs.n;
    if (st == VD_OK && fs.n == 0) goto done;
    if (st == VD_OK) st = build_graph(p, &fs, &g, err);
    if (st == VD_OK && !(person = malloc(fs.n * sizeof *person)))
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (st == VD_OK) st = vd_cluster_full(p, fs.f, &g, person, &fresh, err);
    if (st == VD_OK && ctx && vd_job_ctx_should_stop(ctx))
        st = vd_error_set(err, VD_ERR_CANCELED, "stopped before writing");
    if (st == VD_OK) st = apply(s, &fs, person, fresh, out, err);
    if (st == VD_OK && ctx) vd_job_ctx_progress(ctx, (int64_t)fs.n, (int64_t)fs.n);
done:
    free(person);
    vd_cluster_graph_free(&g);
    face_set_free(&fs);
    return st;
}

vd_status vd_people_job(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    const vd_pipeline_config *cfg = vd_job_ctx_userdata(ctx);
    json_t *p;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    vd_recluster_payload rp;
    st = vd_recluster_payload_parse(p, &rp, err); /* the rule vd_job_check applied */
    vd_cluster_params cp;
    vd_cluster_params_default(&cp);
    if (rp.max_distance > 0) cp.max_distance = (float)rp.max_distance;
    if (rp.min_faces > 0) cp.min_faces = rp.min_faces;
    if (st == VD_OK) st = vd_cluster_params_check(&cp, err);
    if (st != VD_OK) {
        vd_job_ctx_set_retryable(ctx, 0);
        json_decref(p);
        return st;
    }
    vd_store *store = NULL;
    vd_people_recluster_stats r;
    const char *model = rp.model ? rp.model : VD_FACES_EMBEDDER;
    st = vd_pipeline_open_store(cfg, &store, err);
    if (st == VD_OK) st = vd_people_recluster(store, model, &cp, ctx, &r, err);
    if (st == VD_OK) {
        json_t *o = json_pack("{s:s, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "model", model,
                              "max_distance", (double)cp.max_distance, "min_faces", cp.min_faces,
                              "faces", (json_int_t)r.faces, "new_people", (json_int_t)r.new_people,
                              "moved", (json_int_t)r.moved, "unassigned", (json_int_t)r.unassigned,
                              "kept", (json_int_t)r.kept, "pruned", (json_int_t)r.pruned);
        *result = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!*result) st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    if (st == VD_ERR_INVALID) vd_job_ctx_set_retryable(ctx, 0);
    vd_store_close(store);
    json_decref(p);
    return st;
}
