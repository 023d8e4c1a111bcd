/* procsup.h: supervision of child processes, for `visiond up`.
 *
 * A vd_procsup keeps a list of named children (an argv each), starts them,
 * reaps them, logs one line saying which child ended and how, and restarts
 * it after a backoff that doubles (from 500 ms up to a cap) while the child
 * keeps dying young, and resets once it has run for 30 s. Children run in
 * their own process groups, so a terminal's Ctrl-C reaches only the
 * supervisor, which then stops them in order. A supervisor that dies, even by
 * SIGKILL, takes its children with it: each gets SIGTERM (PR_SET_PDEATHSIG)
 * and stops as it would on a normal stop. Not thread-safe; one per process,
 * used from the thread that lives as long as the process (the main thread). */
#ifndef VD_PROCSUP_H
#define VD_PROCSUP_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

typedef struct vd_procsup vd_procsup;

/* Returns a new, empty supervisor (NULL when out of memory); free with vd_procsup_free. */
vd_procsup *vd_procsup_new(int64_t backoff_max_ms);

/* Adds a child. argv is NULL-terminated and copied; argv[0] is a path to exec.
 * Children with a lower stop_order are stopped first. */
vd_status vd_procsup_add(vd_procsup *s, const char *name, char *const argv[], int stop_order,
                         vd_error *err);

/* Starts every child not running. VD_ERR_IO when fork fails. */
vd_status vd_procsup_start_all(vd_procsup *s, vd_error *err);

/* Children that exit with this status (0 = none, the default) are not
 * restarted: it says "restarting cannot help" (`visiond up` uses 2, the
 * configuration-error status of its children: a refused listen address, a
 * missing media root). */
void vd_procsup_set_fatal_exit(vd_procsup *s, int status);

/* Supervises until *stop is non-zero, or until a child exits with the fatal
 * status (vd_procsup_gave_up then names it): reaps, logs and restarts
 * children. Returns how many restarts it made. */
int vd_procsup_run(vd_procsup *s, volatile sig_atomic_t *stop);

/* Stops the children in stop_order groups: SIGTERM to each child of a group,
 * up to grace_ms for them to exit, then SIGKILL to their whole process
 * groups; then the next group. Whatever a stopped child left in its process
 * group is killed too, so nothing is orphaned. */
void vd_procsup_stop(vd_procsup *s, int64_t grace_ms);

/* Returns the name of the first child that exited with the fatal status, or NULL. */
const char *vd_procsup_gave_up(const vd_procsup *s);

/* Returns the pid of the named child (0 while not running, -1 when unknown). */
pid_t vd_procsup_pid(const vd_procsup *s, const char *name);

/* Returns how many times the named child has been restarted (-1 when unknown). */
int vd_procsup_restarts(const vd_procsup *s, const char *name);

/* Frees the supervisor (it does not stop children: call vd_procsup_stop first). */
void vd_procsup_free(vd_procsup *s);

#endif
