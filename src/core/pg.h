/* pg.h: connecting to PostgreSQL through libpq, shared by the store and the
 * queue backends (store/, queue/). One home for: which URLs are PostgreSQL
 * ones, how a URL is shown in messages (never its password), how a connect
 * waits for a server that is down, and how a result becomes a vd_status.
 *
 * URL forms (whatever libpq's PQconnectdb takes):
 *   postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?param=value...]
 *   postgresql://...                       the same
 *   host=/run/pg dbname=visiond user=vd    libpq's keyword form
 *   service=visiond                        a pg_service.conf entry
 * A password may also come from ~/.pgpass ($PGPASSFILE) or $PGPASSWORD, as
 * libpq reads them; visiond itself never puts one on a command line. */
#ifndef VD_PG_H
#define VD_PG_H

#include "core/pq.h"
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Returns 1 when url names a PostgreSQL database (one of the forms above:
 * a postgres:// or postgresql:// URL, or a keyword form that sets host=,
 * hostaddr=, dbname= or service=), 0 otherwise. */
int vd_pg_url_is(const char *url);

/* Writes url into buf (n bytes) with any password replaced by "***", in
 * both the URL form (USER:***@HOST) and the keyword form (password=***).
 * Returns buf. Every message that names a database uses this. */
char *vd_pg_url_shown(const char *url, char *buf, size_t n);

/* Connects to url. While the server cannot be reached (refused, no socket,
 * starting up, shutting down, too many clients), it retries with backoff
 * (100 ms doubling to 2 s), logging one WARN line per attempt, for up to
 * wait_ms in all (0: one attempt). A refusal that waiting cannot fix fails at
 * once: VD_ERR_AUTH for a wrong password, user or pg_hba rule,
 * VD_ERR_NOT_FOUND for a database that does not exist, VD_ERR_INVALID for a
 * URL libpq cannot parse; VD_ERR_CONN when still unreachable after wait_ms.
 * Messages name the URL through vd_pg_url_shown. The connection uses
 * client_encoding UTF8 and application_name "visiond". *out is owned by the
 * caller (PQfinish). libpq is loaded first (core/pq.h): VD_ERR_UNSUPPORTED
 * when it is not installed. */
vd_status vd_pg_connect(const char *url, int64_t wait_ms, PGconn **out, vd_error *err);

/* Turns a result into a status, filling err with "WHAT: <server message>"
 * when it is not a success: VD_OK for PGRES_COMMAND_OK and PGRES_TUPLES_OK;
 * VD_ERR_CONN when the connection is gone (the caller may reconnect and,
 * for an idempotent statement, retry); VD_ERR_NOSPACE for SQLSTATE class 53
 * (disk full, out of memory); VD_ERR_BUSY for a serialization failure or
 * deadlock (40001, 40P01: retry the transaction); VD_ERR_STATE for a
 * unique or foreign-key violation (23505, 23503); VD_ERR_DB otherwise.
 * r may be NULL (libpq failed to send). Does not PQclear r. */
vd_status vd_pg_status(PGconn *c, const PGresult *r, const char *what, vd_error *err);

/* Runs sql (no parameters, no rows wanted) and returns vd_pg_status of it. */
vd_status vd_pg_exec(PGconn *c, const char *sql, const char *what, vd_error *err);

/* Takes the session-level advisory lock key (pg_advisory_lock), waiting for
 * another process that holds it: used to run schema migrations once when
 * several processes start together. vd_pg_unlock releases it. */
vd_status vd_pg_lock(PGconn *c, int64_t key, vd_error *err);
vd_status vd_pg_unlock(PGconn *c, int64_t key, vd_error *err);

#endif
