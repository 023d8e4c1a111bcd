/* cluster.h: faces grouped into people, by DBSCAN over cosine distance. Pure: no store, no
 * index; the caller hands in neighbours (found with a vector index) and current assignments,
 * and applies the answer. docs/people.md explains the rules and the calibration.
 *
 * Two faces are neighbours when their cosine distance (1 - similarity of unit vectors) is at
 * most max_distance. A face is a core when it has at least min_faces neighbours, itself
 * counted (Immich's minFaces), or when the user put it in its person.
 *
 * Incremental (vd_cluster_decide), for each face as it arrives: it JOINs the person that most
 * of its assigned neighbours belong to; else it FOUNDs a new person, with its unassigned
 * neighbours, when it is a core; else it WAITs unassigned (a later face may found a person
 * with it).
 *
 * Full re-cluster (vd_cluster_full): DBSCAN over all faces; then every cluster is given a
 * person, keeping every user decision: a face the user assigned ('user') never moves and
 * anchors its person (it is a core, and votes); a cluster goes to the person most of its
 * assigned faces (user or automatic) belong to now, so an existing person is never split and
 * a merge the user made (its faces all carry one person now) stays whole; a cluster with no
 * assigned face founds a new person; a cluster holding user faces of several people is split
 * by the nearest anchor (breadth-first over the neighbour graph, equal hops to the anchor with
 * the smaller face id). Automatic faces may move; faces in no cluster become unassigned; a
 * face the user took out of every person (user, no person) stays out and takes no part. */
#ifndef VD_FACES_CLUSTER_H
#define VD_FACES_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Calibrated for faceres (1024-d) on the measurement in docs/people.md (bench/people). */
#define VD_CLUSTER_MAX_DISTANCE_DEFAULT 0.30f
#define VD_CLUSTER_MIN_FACES_DEFAULT    3
#define VD_CLUSTER_MIN_FACES_MAX        1000

typedef struct {
    float max_distance; /* cosine distance at most this: neighbours; in (0, 2) */
    int min_faces; /* neighbours (self included) that make a core; 1..VD_CLUSTER_MIN_FACES_MAX */
} vd_cluster_params;

/* Fills p with the defaults above. */
void vd_cluster_params_default(vd_cluster_params *p);

/* Returns VD_OK when p is usable, VD_ERR_INVALID (naming the field) when not. */
vd_status vd_cluster_params_check(const vd_cluster_params *p, vd_error *err);

/* The similarity at or above which two faces are neighbours: 1 - max_distance. */
float vd_cluster_min_score(const vd_cluster_params *p);

/* ---- incremental ------------------------------------------------------------------------- */

typedef struct {
    int64_t face_id;
    float score;       /* cosine similarity to the new face */
    int64_t person_id; /* 0 = unassigned */
} vd_cluster_neighbour;

typedef enum { VD_CLUSTER_WAIT = 0, VD_CLUSTER_JOIN, VD_CLUSTER_FOUND } vd_cluster_action;

/* Decides where the new face face_id goes, from its nearest faces nb[0..n) (any order; the
 * face itself and faces farther than max_distance are ignored). JOIN: *person gets the
 * person most of the assigned neighbours belong to (ties: the larger summed similarity, then
 * the smaller id), and assign[0] = face_id (*n_assign = 1). FOUND: *person = 0 (the caller
 * creates one) and assign[] holds face_id and its unassigned neighbours. WAIT: nothing to
 * assign. assign must hold n + 1 ids. */
vd_cluster_action vd_cluster_decide(const vd_cluster_params *p, int64_t face_id,
                                    const vd_cluster_neighbour *nb, size_t n, int64_t *person,
                                    int64_t *assign, size_t *n_assign);

/* ---- full re-cluster --------------------------------------------------------------------- */

typedef struct {
    int64_t id;        /* face id; faces[] sorted by id, ascending, no repeats */
    int64_t person_id; /* current person, 0 = unassigned */
    int user;          /* assigned by the user: stays where it is and anchors its person */
} vd_cluster_face;

/* Neighbours of every face, by index into faces[]: those of face i are
 * nbr[start[i] .. start[i+1]) with similarities sim[...]; self excluded. The relation need
 * not be symmetric (an approximate index): it is made so. Owned by its builder. */
typedef struct {
    size_t n;
    size_t *start; /* n + 1 */
    size_t *nbr;
    float *sim;
} vd_cluster_graph;

/* Looks up the nearest faces of face i: fills ids[0..*n) (at most cap) and their
 * similarities. Faces not in faces[] and the face itself are dropped by the builder. */
typedef vd_status (*vd_cluster_near_fn)(void *ud, size_t i, size_t cap, int64_t *ids, float *scores,
                                        size_t *n, vd_error *err);

/* Builds *g (free with vd_cluster_graph_free) for faces[0..n), asking near(ud, i, cap, ...)
 * for each face and keeping those within max_distance. VD_ERR_INVALID when faces[] is not
 * sorted by id. */
vd_status vd_cluster_graph_build(const vd_cluster_params *p, const vd_cluster_face *faces, size_t n,
                                 size_t cap, vd_cluster_near_fn near, void *ud, vd_cluster_graph *g,
                                 vd_error *err);

/* Frees what vd_cluster_graph_build allocated (not g itself); g may be zeroed. */
void vd_cluster_graph_free(vd_cluster_graph *g);

/* Re-clusters faces[0..g->n) over g. person[i] gets: the face's person (> 0), a new person
 * -k (k = 1..*new_people, one per new cluster) or 0 (unassigned). User faces keep theirs. */
vd_status vd_cluster_full(const vd_cluster_params *p, const vd_cluster_face *faces,
                          const vd_cluster_graph *g, int64_t *person, size_t *new_people,
                          vd_error *err);

#endif
