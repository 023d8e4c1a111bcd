/* people.c: the people use cases (service/people.h). */
#include "service/people.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "faces/faces.h"
#include "image/crop.h"
#include "image/decode.h"
#include "pipeline/people.h"
#include "store/blobs.h"
#include "store/library.h"
#include "store/people.h"

static vd_status refused(const char **why, const char *reason, vd_status st)
{
    if (why) *why = reason;
    return st;
}

/* ---- incremental ------------------------------------------------------------------------- */

/* Places one new face (see vd_people_assign_new). */
static vd_status assign_one(vd_store *s, const vd_vindex *ix, const vd_cluster_params *p,
                            int64_t id, vd_people_assign_stats *stats, vd_error *err)
{
    vd_library_face f;
    memset(&f, 0, sizeof f);
    vd_status st = vd_store_library_face_get(s, id, &f, err);
    if (st == VD_ERR_NOT_FOUND) return VD_OK; /* removed meanwhile */
    if (st != VD_OK) return st;
    vd_vindex_hit hits[VD_PEOPLE_NEIGHBOURS];
    vd_cluster_neighbour nb[VD_PEOPLE_NEIGHBOURS];
    int64_t ids[VD_PEOPLE_NEIGHBOURS], person[VD_PEOPLE_NEIGHBOURS],
        assign[VD_PEOPLE_NEIGHBOURS + 1];
    size_t n = 0, n_assign = 0;
    if (f.person_id != 0 || f.assigned_by != VD_ASSIGN_NONE || !f.vector ||
        f.dim != vd_vindex_dim(ix))
        goto done; /* placed already, the user's, or nothing to place it by */
    stats->seen++;
    st = vd_vindex_search(ix, f.vector, VD_PEOPLE_NEIGHBOURS, NULL, NULL, hits, &n, err);
    for (size_t i = 0; st == VD_OK && i < n; i++)
        ids[i] = hits[i].id;
    if (st == VD_OK) st = vd_store_faces_people(s, ids, n, person, NULL, err);
    for (size_t i = 0; st == VD_OK && i < n; i++)
        nb[i] = (vd_cluster_neighbour){hits[i].id, hits[i].score, person[i]};
    if (st != VD_OK) goto done;
    int64_t who = 0;
    int changed = 0;
    switch (vd_cluster_decide(p, id, nb, n, &who, assign, &n_assign)) {
    case VD_CLUSTER_JOIN:
        st = vd_store_face_claim(s, id, who, &changed, err);
        stats->joined += (size_t)changed;
        stats->conflict += (size_t)!changed;
        break;
    case VD_CLUSTER_FOUND:
        st = vd_store_person_found(s, assign, n_assign, &who, NULL, err);
        stats->founded += who != 0;
        stats->conflict += who == 0;
        break;
    default:
        stats->waiting++;
    }
done:
    free(f.vector);
    return st;
}

vd_status vd_people_assign_new(vd_store *s, const vd_vindex *ix, const vd_cluster_params *p,
                               const int64_t *ids, size_t n, vd_people_assign_stats *stats,
                               vd_error *err)
{
    memset(stats, 0, sizeof *stats);
    vd_status st = vd_cluster_params_check(p, err);
    for (size_t i = 0; st == VD_OK && i < n; i++)
        st = assign_one(s, ix, p, ids[i], stats, err);
    return st;
}

struct vd_people_clusterer {
    char *store_url;
    vd_store *store; /* opened on first use, on the owner's thread */
    vd_cluster_params p;
};

vd_status vd_people_clusterer_new(const char *store_url, const vd_cluster_params *p,
                                  vd_people_clusterer **out, vd_error *err)
{
    *out = NULL;
    vd_people_clusterer *c = calloc(1, sizeof *c);
    if (!c || !(c->store_url = vd_strdup(store_url))) {
        free(c);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    if (p)
        c->p = *p;
    else
        vd_cluster_params_default(&c->p);
    vd_status st = vd_cluster_params_check(&c->p, err);
    if (st != VD_OK) {
        vd_people_clusterer_free(c);
        return st;
    }
    *out = c;
    return VD_OK;
}

void vd_people_clusterer_free(vd_people_clusterer *c)
{
    if (!c) return;
    vd_store_close(c->store);
    free(c->store_url);
    free(c);
}

void vd_people_faces_hook(void *ud, vd_vindex *face_index, const char *face_model,
                          const int64_t *new_face_ids, size_t n)
{
    vd_people_clusterer *c = ud;
    vd_error err;
    vd_status st = c->store ? VD_OK : vd_store_open(c->store_url, NULL, &c->store, &err);
    vd_people_assign_stats stats = {0};
    if (st == VD_OK)
        st = vd_people_assign_new(c->store, face_index, &c->p, new_face_ids, n, &stats, &err);
    if (st != VD_OK) {
        VD_WARN("people: placing %zu new faces of %s: %s", n, face_model, vd_error_text(&err));
        if (st == VD_ERR_CONN || st == VD_ERR_DB || st == VD_ERR_IO) {
            vd_store_close(c->store); /* a fresh handle next time */
            c->store = NULL;
        }
        return;
    }
    VD_DEBUG("people: %zu new faces of %s: %zu joined, %zu founded, %zu waiting, %zu taken "
             "by others",
             stats.seen, face_model, stats.joined, stats.founded, stats.waiting, stats.conflict);
}

/* ---- the user's decisions ---------------------------------------------------------------- */

vd_status vd_people_merge(vd_store *s, int64_t into, const int64_t *from, size_t n,
                          const char **why, vd_error *err)
{
    if (n == 0 || n > VD_PEOPLE_MERGE_MAX)
        return refused(why, "invalid_parameters",
                       vd_error_set(err, VD_ERR_INVALID, "\"from\" must list 1..%d people",
                                    VD_PEOPLE_MERGE_MAX));
    for (size_t i = 0; i < n; i++)
        if (from[i] == into)
            return refused(why, "merge_into_itself",
                           vd_error_set(err, VD_ERR_INVALID,
                                        "person %lld cannot be merged into itself",
                                        (long long)into));
    vd_status st = vd_store_begin(s, err);
    if (st != VD_OK) return refused(why, "store", st);
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= from[j] == from[i];
        if (!dup) st = vd_store_person_merge(s, into, from[i], VD_ASSIGN_USER, err);
    }
    if (st == VD_OK) st = vd_store_commit(s, err);
    if (st != VD_OK) {
        vd_store_rollback(s);
        return refused(why, st == VD_ERR_NOT_FOUND ? "person_not_found" : "store", st);
    }
    return VD_OK;
}

vd_status vd_people_move_face(vd_store *s, int64_t face, int64_t person, const char **why,
                              vd_error *err)
{
    if (person < 0)
        return refused(why, "invalid_parameters",
                       vd_error_set(err, VD_ERR_INVALID, "person_id must be >= 0"));
    vd_library_face f;
    memset(&f, 0, sizeof f);
    vd_status st = vd_store_library_face_get(s, face, &f, err);
    free(f.vector);
    if (st == VD_ERR_NOT_FOUND) return refused(why, "face_not_found", st);
    if (st == VD_OK && person > 0) {
        vd_person p;
        memset(&p, 0, sizeof p);
        st = vd_store_person_get(s, person, &p, err);
        vd_person_clear(&p);
        if (st == VD_ERR_NOT_FOUND) return refused(why, "person_not_found", st);
    }
    if (st == VD_OK)
        st = vd_store_face_set_person(s, face, person, VD_ASSIGN_USER, err); /* 0: taken out */
    if (st == VD_ERR_NOT_FOUND) return refused(why, "face_not_found", st);
    return st == VD_OK ? VD_OK : refused(why, "store", st);
}

/* ---- the re-cluster job ------------------------------------------------------------------ */

vd_status vd_people_params(double max_distance, int min_faces, vd_cluster_params *out,
                           const char **why, vd_error *err)
{
    vd_cluster_params_default(out);
    if (max_distance != 0.0) out->max_distance = (float)max_distance;
    if (min_faces != 0) out->min_faces = min_faces;
    vd_status st = vd_cluster_params_check(out, err);
    return st == VD_OK ? VD_OK : refused(why, "invalid_parameters", st);
}

vd_status vd_people_recluster_enqueue(vd_queue *q, const char *model, const vd_cluster_params *p,
                                      char job_id[VD_ID_LEN + 1], vd_error *err)
{
    char payload[256];
    snprintf(payload, sizeof payload,
             "{\"model\": \"%s\", \"max_distance\": %.6g, \"min_faces\": %d}",
             model ? model : VD_FACES_EMBEDDER, (double)p->max_distance, p->min_faces);
    vd_enqueue_opts o = {.type = "recluster_people", .payload = payload, .max_retries = 2};
    return vd_queue_enqueue(q, &o, job_id, err);
}

/* ---- face crops -------------------------------------------------------------------------- */

/* The bytes of an asset's image: a media path under the roots, or an upload's blob. */
static vd_status asset_bytes(vd_store *s, const vd_media_roots *roots, const char *path,
                             uint8_t **data, size_t *len, vd_error *err)
{
    char sha[VD_SHA256_HEX_LEN + 1];
    if (vd_blob_ref_parse(path, sha)) return vd_store_blob_get(s, sha, 0, data, len, err);
    vd_path_problem prob = VD_PATH_OK;
    return vd_media_read(roots, path, NULL, data, len, &prob, err);
}

vd_status vd_people_face_crop(vd_store *s, const vd_media_roots *roots, int64_t id, int size,
                              uint8_t **jpeg, size_t *len, const char **why, vd_error *err)
{
    *jpeg = NULL;
    *len = 0;
    if (size < 1 || size > VD_PEOPLE_CROP_MAX)
        return refused(why, "invalid_parameters",
                       vd_error_set(err, VD_ERR_INVALID, "size must be 1..%d", VD_PEOPLE_CROP_MAX));
    if (why) *why = NULL;
    vd_library_face f;
    vd_asset a;
    memset(&f, 0, sizeof f);
    memset(&a, 0, sizeof a);
    uint8_t *data = NULL;
    size_t n = 0;
    vd_image img;
    memset(&img, 0, sizeof img);
    vd_status st = vd_store_library_face_get(s, id, &f, err);
    if (st == VD_OK) st = vd_store_asset_get(s, f.asset_id, 0, &a, err);
    if (st == VD_ERR_NOT_FOUND) {
        refused(why, "face_not_found", st);
        goto done;
    }
    if (st == VD_OK) st = asset_bytes(s, roots, a.path, &data, &n, err);
    if (st == VD_OK) st = vd_image_decode_buffer(data, n, NULL, &img, err);
    if (st == VD_OK) st = vd_image_crop_jpeg(&img, f.box, 0.5f, size, jpeg, len, err);
    if (st != VD_OK && why && !*why) *why = st == VD_ERR_NOT_FOUND ? "image_not_found" : "image";
done:
    vd_image_free(&img);
    free(data);
    free(f.vector);
    vd_asset_clear(&a);
    return st;
}

/* ---- people as training labels ----------------------------------------------------------- */

/* 1 when face f is the largest face (by box area) of its asset for its model. */
static vd_status largest_of_asset(vd_store *s, const vd_library_face *f, int *largest,
                                  vd_error *err)
{
    vd_library_face *all = NULL;
    size_t n = 0;
    vd_status st = vd_store_asset_faces(s, f->asset_id, NULL, 0, &all, &n, err);
    *largest = st == VD_OK;
    for (size_t i = 0; st == VD_OK && i < n; i++)
        if (all[i].id != f->id && all[i].box[2] * all[i].box[3] > f->box[2] * f->box[3])
            *largest = 0;
    vd_library_face_list_free(all, n);
    return st;
}

/* Adds the examples of one named person. */
static vd_status person_examples(vd_store *s, const vd_person *p, vd_svc_examples *ex,
                                 const char **why, vd_error *err)
{
    int64_t after = 0;
    vd_status st = VD_OK;
    for (;;) {
        vd_library_face *f = NULL;
        size_t n = 0;
        st = vd_store_person_faces(s, p->id, after, 0, 0, &f, &n, err);
        for (size_t i = 0; st == VD_OK && i < n; i++) {
            int largest = 0;
            vd_asset a;
            memset(&a, 0, sizeof a);
            st = largest_of_asset(s, &f[i], &largest, err);
            if (st == VD_OK && largest) st = vd_store_asset_get(s, f[i].asset_id, 0, &a, err);
            if (st == VD_ERR_NOT_FOUND) st = VD_OK; /* deleted meanwhile */
            char where[64];
            snprintf(where, sizeof where, "face %lld", (long long)f[i].id);
            if (st == VD_OK && largest && a.path) {
                char *path = vd_strdup(a.path);
                st = path ? vd_svc_examples_add(ex, path, p->name, where, why, err)
                          : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            }
            vd_asset_clear(&a);
        }
        if (n) after = f[n - 1].id;
        vd_library_face_list_free(f, n);
        if (st != VD_OK || n == 0) return st;
    }
}

vd_status vd_people_examples(vd_store *s, vd_session_kind kind, const int64_t *ids, size_t n,
                             vd_svc_examples *ex, const char **why, vd_error *err)
{
    if (kind != VD_SESSION_FACE)
        return refused(why, "people_need_face_kind",
                       vd_error_set(err, VD_ERR_INVALID,
                                    "\"people\" makes a face session: give \"kind\": \"face\""));
    if (n == 0 || n > VD_PEOPLE_MERGE_MAX)
        return refused(why, "invalid_parameters",
                       vd_error_set(err, VD_ERR_INVALID, "\"people\" must list 1..%d people",
                                    VD_PEOPLE_MERGE_MAX));
    vd_status st = VD_OK;
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        vd_person p;
        memset(&p, 0, sizeof p);
        st = vd_store_person_get(s, ids[i], &p, err);
        if (st == VD_ERR_NOT_FOUND)
            refused(why, "person_not_found", st);
        else if (st != VD_OK)
            refused(why, "store", st);
        else if (!p.name || !*p.name)
            st = refused(why, "unnamed_person",
                         vd_error_set(err, VD_ERR_INVALID,
                                      "person %lld has no name: name it first (PATCH /people/%lld)",
                                      (long long)p.id, (long long)p.id));
        else {
            const char *w = NULL;
            st = person_examples(s, &p, ex, &w, err);
            if (st != VD_OK) refused(why, w ? w : "store", st);
        }
        vd_person_clear(&p);
    }
    return st;
}
