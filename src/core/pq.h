/* pq.h: libpq, loaded the first time a PostgreSQL database is opened.
 *
 * Why: libpq brings ~20 shared objects with it (Kerberos, LDAP, GnuTLS, SASL
 * ...), ~100 mappings that every process linked with it maps, and that every
 * fork copies and every exit tears down. The light work-horses
 * (docs/worker.md, "Light horses") cost ~30 % less CPU each without them,
 * and a process on SQLite or Redis never needs them. So no visiond binary
 * links libpq; this module opens it with dlopen (libpq.so.5, RTLD_NOW, core/dl.h) on
 * first use and calls it through a table. The Debian package depends on
 * libpq5 by name.
 *
 * Use: include this header (core/pg.h does) instead of <libpq-fe.h>; the
 * PQ* functions below are then macros over the table. vd_pg_connect
 * (core/pg.h) calls vd_pq_load before it connects, so code holding a PGconn
 * may call them freely. PQclear, PQfinish and PQfreemem accept NULL before
 * anything was loaded. A PQ* function not listed here is not available: add
 * it to VD_PQ_FUNCS and give it a macro below. */
#ifndef VD_CORE_PQ_H
#define VD_CORE_PQ_H

#include <libpq-fe.h>

#include "core/err.h"

#define VD_PQ_FUNCS(X)                                                                             \
    X(PQconnectdbParams)                                                                           \
    X(PQfinish)                                                                                    \
    X(PQstatus)                                                                                    \
    X(PQtransactionStatus)                                                                         \
    X(PQerrorMessage)                                                                              \
    X(PQsocket)                                                                                    \
    X(PQconsumeInput)                                                                              \
    X(PQnotifies)                                                                                  \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQprepare)                                                                                   \
    X(PQexecPrepared)                                                                              \
    X(PQresultStatus)                                                                              \
    X(PQresultErrorMessage)                                                                        \
    X(PQresultErrorField)                                                                          \
    X(PQntuples)                                                                                   \
    X(PQftype)                                                                                     \
    X(PQcmdStatus)                                                                                 \
    X(PQcmdTuples)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQgetlength)                                                                                 \
    X(PQgetisnull)                                                                                 \
    X(PQclear)                                                                                     \
    X(PQfreemem)

/* The table: one pointer per function, named with a trailing '_'. */
typedef struct {
#define VD_PQ_MEMBER(name) __typeof__(name) *name##_;
    VD_PQ_FUNCS(VD_PQ_MEMBER)
#undef VD_PQ_MEMBER
} vd_pq_table;

/* Loads libpq once (thread-safe; later calls return the first answer).
 * VD_ERR_UNSUPPORTED, with the loader's message, when libpq.so.5 or one of
 * the functions above is missing. */
vd_status vd_pq_load(vd_error *err);

/* The table, loaded (vd_pq_load) if it was not. A call through it when
 * libpq could not be loaded is a bug (no PGconn can exist then): it aborts
 * with a message. */
const vd_pq_table *vd_pq(void);

static inline void vd_pq_clear(PGresult *r)
{
    if (r) vd_pq()->PQclear_(r);
}

static inline void vd_pq_finish(PGconn *c)
{
    if (c) vd_pq()->PQfinish_(c);
}

static inline void vd_pq_freemem(void *p)
{
    if (p) vd_pq()->PQfreemem_(p);
}

#define PQconnectdbParams(...)    (vd_pq()->PQconnectdbParams_(__VA_ARGS__))
#define PQfinish(c)               vd_pq_finish(c)
#define PQstatus(...)             (vd_pq()->PQstatus_(__VA_ARGS__))
#define PQtransactionStatus(...)  (vd_pq()->PQtransactionStatus_(__VA_ARGS__))
#define PQerrorMessage(...)       (vd_pq()->PQerrorMessage_(__VA_ARGS__))
#define PQsocket(...)             (vd_pq()->PQsocket_(__VA_ARGS__))
#define PQconsumeInput(...)       (vd_pq()->PQconsumeInput_(__VA_ARGS__))
#define PQnotifies(...)           (vd_pq()->PQnotifies_(__VA_ARGS__))
#define PQexec(...)               (vd_pq()->PQexec_(__VA_ARGS__))
#define PQexecParams(...)         (vd_pq()->PQexecParams_(__VA_ARGS__))
#define PQprepare(...)            (vd_pq()->PQprepare_(__VA_ARGS__))
#define PQexecPrepared(...)       (vd_pq()->PQexecPrepared_(__VA_ARGS__))
#define PQresultStatus(...)       (vd_pq()->PQresultStatus_(__VA_ARGS__))
#define PQresultErrorMessage(...) (vd_pq()->PQresultErrorMessage_(__VA_ARGS__))
#define PQresultErrorField(...)   (vd_pq()->PQresultErrorField_(__VA_ARGS__))
#define PQntuples(...)            (vd_pq()->PQntuples_(__VA_ARGS__))
#define PQftype(...)              (vd_pq()->PQftype_(__VA_ARGS__))
#define PQcmdStatus(...)          (vd_pq()->PQcmdStatus_(__VA_ARGS__))
#define PQcmdTuples(...)          (vd_pq()->PQcmdTuples_(__VA_ARGS__))
#define PQgetvalue(...)           (vd_pq()->PQgetvalue_(__VA_ARGS__))
#define PQgetlength(...)          (vd_pq()->PQgetlength_(__VA_ARGS__))
#define PQgetisnull(...)          (vd_pq()->PQgetisnull_(__VA_ARGS__))
#define PQclear(r)                vd_pq_clear(r)
#define PQfreemem(p)              vd_pq_freemem(p)

#endif
