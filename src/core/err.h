/* err.h: status codes and error details, in the style of curl's CURLcode.
 *
 * Every fallible function returns a vd_status and, when given a non-NULL
 * vd_error, fills it with the code and a human-readable message. Libraries
 * never print: the caller decides what to log or send to a client.
 *
 * The rules that keep a status true on its way up:
 *  - A function that can fail returns its vd_status; what it produces goes
 *    through an out-parameter (`vd_status vd_x_open(..., vd_x **out, vd_error
 *    *err)`), never as a pointer whose NULL the caller has to explain. The
 *    caller returns the status it got, so err may be NULL at every level:
 *    never `return err ? err->code : VD_ERR_DB` (a caller without err would
 *    see DB where the store said BUSY or NOSPACE).
 *  - Statuses are compared with VD_OK by name: `if (st != VD_OK)`,
 *    `if ((st = f(...)) != VD_OK) goto fail;`, `st == VD_OK ? ... : ...`;
 *    not `if (st)`, `if (!st)` or `if (st != 0)`. A specific outcome is
 *    compared by name too (`st == VD_ERR_NOT_FOUND`). */
#ifndef VD_ERR_H
#define VD_ERR_H

#include <stddef.h>

typedef enum {
    VD_OK = 0,
    VD_ERR_NOMEM,       /* allocation failed */
    VD_ERR_INVALID,     /* bad argument or malformed input (JSON, payload, name) */
    VD_ERR_NOT_FOUND,   /* no such job, model, session, file */
    VD_ERR_STATE,       /* operation not allowed in the object's current state */
    VD_ERR_IO,          /* file or socket error */
    VD_ERR_DB,          /* the store (SQLite or Redis) failed */
    VD_ERR_CONN,        /* could not reach a server (Redis, model server) */
    VD_ERR_BUSY,        /* back-pressure: a bounded queue is full, try later */
    VD_ERR_TIMEOUT,     /* a deadline passed */
    VD_ERR_PROTOCOL,    /* malformed frame or message on a wire */
    VD_ERR_UNSUPPORTED, /* valid but not supported (an op, a format, a dtype) */
    VD_ERR_IMAGE,       /* an image could not be decoded */
    VD_ERR_LIMIT,       /* a size, pixel or count limit was exceeded */
    VD_ERR_MODEL,       /* the inference engine failed */
    VD_ERR_LEASE_LOST,  /* the job's lease belongs to someone else now */
    VD_ERR_CANCELED,    /* the job was canceled */
    VD_ERR_EMPTY,       /* nothing to take (no job ready) */
    VD_ERR_AUTH,        /* missing or wrong credentials */
    VD_ERR_INTERNAL,    /* a bug: an invariant did not hold */
    VD_ERR_NOSPACE,     /* the store's disk (or Redis's memory) is full */
    VD_ERR__COUNT
} vd_status;

#define VD_ERROR_MSG_MAX 512

typedef struct {
    vd_status code;
    char msg[VD_ERROR_MSG_MAX];
} vd_error;

/* Returns a static, stable, snake_case name for a status ("not_found"). */
const char *vd_status_name(vd_status s);

/* Returns a static one-line description of a status ("no such object"). */
const char *vd_strerror(vd_status s);

/* Fills *err (when non-NULL) with code and a printf-formatted message, and
 * returns code so that callers can write `return vd_error_set(err, ...);`. */
vd_status vd_error_set(vd_error *err, vd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets *err (when non-NULL) to VD_OK with an empty message. */
void vd_error_clear(vd_error *err);

/* Returns err's message, or the status description when the message is empty. */
const char *vd_error_text(const vd_error *err);

#endif
