/* people.h: the store operations of face clustering (docs/people.md), beside the row
 * operations of store/library.h. Every write here is conditional on what the clusterer saw,
 * so that several API processes and a re-cluster job working on one store never undo each
 * other or a user's decision: an update whose condition no longer holds changes nothing and
 * says so (*changed = 0).
 *
 * Errors: VD_ERR_INVALID for a bad argument, else the store's (store_db.h). */
#ifndef VD_STORE_PEOPLE_H
#define VD_STORE_PEOPLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

/* The people of faces ids[0..n): person[i] = the person of face ids[i], 0 when unassigned
 * or unknown; user[i] (may be NULL) = 1 when the user assigned it (or took it out). */
vd_status vd_store_faces_people(vd_store *s, const int64_t *ids, size_t n, int64_t *person,
                                int *user, vd_error *err);

/* Founds a person for faces ids[0..n) (ids[0] the face that founded it, its cover), in one
 * transaction: each face is taken only while it is still unassigned and untouched by the
 * user; when ids[0] cannot be taken nothing is created (*person = 0). *person gets the new
 * person's id, *taken (may be NULL) the faces taken. */
vd_status vd_store_person_found(vd_store *s, const int64_t *ids, size_t n, int64_t *person,
                                size_t *taken, vd_error *err);

/* Puts face id into person (> 0), assigned 'auto', only while the face is unassigned and
 * untouched by the user. *changed (may be NULL): 1 when it was taken. */
vd_status vd_store_face_claim(vd_store *s, int64_t id, int64_t person, int *changed, vd_error *err);

/* Moves an automatic face from person `from` (0: unassigned) to `to` (0: unassigned;
 * 'auto'), only while it is still in `from` and not the user's. *changed as above. */
vd_status vd_store_face_move_auto(vd_store *s, int64_t id, int64_t from, int64_t to, int *changed,
                                  vd_error *err);

/* Deletes the people left with no face that nobody named (a re-cluster emptied them);
 * *n (may be NULL) counts them. */
vd_status vd_store_people_prune(vd_store *s, size_t *n, vd_error *err);

#endif
