/* people.h: the people use cases shared by the API (and any CLI): the incremental clustering
 * of new faces in the API process, merging, moving a face, the re-cluster job, face crops.
 * docs/people.md.
 *
 * Incremental: the index owner (service/library_index.h) calls vd_people_faces_hook after a
 * catch-up step that added face vectors; each new face is placed by faces/cluster.h's
 * vd_cluster_decide from its nearest faces in that index and written with store/people.h's
 * conditional updates, so that several API processes following one store never fight: the
 * first to take a face wins, the others change nothing.
 *
 * Refusals carry a reason (*why, static snake_case) for the API's error code:
 * "merge_into_itself", "person_not_found", "face_not_found", "invalid_parameters",
 * "unnamed_person", "people_need_face_kind", "no_confirmed_faces". */
#ifndef VD_SERVICE_PEOPLE_H
#define VD_SERVICE_PEOPLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/paths.h"
#include "faces/cluster.h"
#include "queue/queue.h"
#include "service/training.h"
#include "store/store.h"
#include "vindex/vindex.h"

#define VD_PEOPLE_MERGE_MAX 100 /* people merged by one request */
#define VD_PEOPLE_CROP_MAX  512 /* largest side of a face crop, pixels */

typedef struct {
    size_t seen;     /* new faces looked at */
    size_t joined;   /* joined an existing person */
    size_t founded;  /* people founded */
    size_t waiting;  /* left unassigned (for now) */
    size_t conflict; /* another process or the user got there first */
} vd_people_assign_stats;

/* Places the new faces ids[0..n) of the face index ix (their vectors and people read from s):
 * join, found or wait (vd_cluster_decide with p). Faces already in a person are left alone. */
vd_status vd_people_assign_new(vd_store *s, const vd_vindex *ix, const vd_cluster_params *p,
                               const int64_t *ids, size_t n, vd_people_assign_stats *stats,
                               vd_error *err);

/* The state of the incremental clusterer of one API process: its own store handle (opened
 * on first use; the hook runs on the index owner's thread) and its parameters. */
typedef struct vd_people_clusterer vd_people_clusterer;

/* store_url is copied; p (NULL: the defaults) is checked. */
vd_status vd_people_clusterer_new(const char *store_url, const vd_cluster_params *p,
                                  vd_people_clusterer **out, vd_error *err);
void vd_people_clusterer_free(vd_people_clusterer *c);

/* The index owner's faces hook (vd_libindex_faces_cb) with ud = a vd_people_clusterer:
 * vd_people_assign_new on the new faces; failures are logged (the next re-cluster or
 * the next faces retry). */
void vd_people_faces_hook(void *ud, vd_vindex *face_index, const char *face_model,
                          const int64_t *new_face_ids, size_t n);

/* Merges people from[0..n) into into, as the user's decision (their faces become the
 * user's: no re-cluster splits them again), in one transaction: nothing is merged when one
 * is refused ("merge_into_itself", "person_not_found"; n must be 1..VD_PEOPLE_MERGE_MAX). */
vd_status vd_people_merge(vd_store *s, int64_t into, const int64_t *from, size_t n,
                          const char **why, vd_error *err);

/* Moves face to person (0: out of every person), as the user's decision. */
vd_status vd_people_move_face(vd_store *s, int64_t face, int64_t person, const char **why,
                              vd_error *err);

/* Parameters of a re-cluster: the defaults with the given overrides (max_distance <= 0 and
 * min_faces <= 0 keep the default), checked ("invalid_parameters"). */
vd_status vd_people_params(double max_distance, int min_faces, vd_cluster_params *out,
                           const char **why, vd_error *err);

/* Enqueues a recluster_people job for model (NULL: the library's face model) with p;
 * job_id gets its id. */
vd_status vd_people_recluster_enqueue(vd_queue *q, const char *model, const vd_cluster_params *p,
                                      char job_id[VD_ID_LEN + 1], vd_error *err);

/* A JPEG of face id's box (enlarged by half its size on each side, squared, within the
 * image), its larger side at most `size` (1..VD_PEOPLE_CROP_MAX) pixels. The image is read
 * confined like every media read (vd_media_read under roots) or, for an upload, from the
 * store's blobs. *jpeg (malloc'd) and *len. "face_not_found" when there is no such face. */
vd_status vd_people_face_crop(vd_store *s, const vd_media_roots *roots, int64_t id, int size,
                              uint8_t **jpeg, size_t *len, const char **why, vd_error *err);

/* Named people as the examples of a face training session (POST /training/sessions
 * {"kind": "face", "people": [ID...]}): every assigned face of people ids[0..n) (1..
 * VD_PEOPLE_MERGE_MAX) that is the largest face of its photo (the train_session job embeds
 * the largest face of each example: docs/training.md) becomes {its asset's path, the
 * person's name}, through vd_svc_examples_add (the session's label rules, its one home).
 * Refusals: person_not_found, unnamed_person (a person without a name has no label),
 * people_need_face_kind (kind is not face), and the rules of vd_svc_examples_add. */
vd_status vd_people_examples(vd_store *s, vd_session_kind kind, const int64_t *ids, size_t n,
                             vd_svc_examples *ex, const char **why, vd_error *err);

#endif
