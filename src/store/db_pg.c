/* db_pg.c: the store's database interface (store_db.h) over PostgreSQL,
 * through libpq; core/pg.h connects (with backoff), hides passwords and maps
 * results to vd_status. Statements are prepared once per connection
 * (PQprepare) and run with PQexecPrepared: text parameters (blobs in
 * binary), binary results read by column type. */
#include "store/db_impl.h"

#include <endian.h>
#include "core/pq.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/pg.h"
#include "core/util.h"

/* The advisory lock that serialises the store's migrations ('vdST'). */
#define STORE_MIGRATION_LOCK 0x76645354

/* Type OIDs (server/catalog/pg_type_d.h). */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701
};

/* Statements prepared on the connection (PQprepare), found by their text:
 * the store has a few dozen, each run many times. */
enum { PREPARED_MAX = 64 };

typedef struct {
    vd_db base;
    PGconn *c;
    char *url;
    int64_t wait_ms;
    char *prepared[PREPARED_MAX]; /* SQL text of statement "s<i>" on c */
    int nprepared;
} pg_db;

typedef struct {
    vd_db_stmt base;
    char *sql; /* with $n placeholders */
    int flags;
    int nparams;
    char **vals; /* owned copies; NULL = SQL NULL */
    int *lens;
    int *fmts;
    PGresult *res; /* NULL until run */
    int cur;       /* current row */
    int64_t changes;
} pg_stmt;

static PGconn *C(vd_db *db)
{
    return ((pg_db *)db)->c;
}

/* Forgets the statements prepared on a connection that is gone. */
static void forget_prepared(pg_db *d)
{
    for (int i = 0; i < d->nprepared; i++)
        free(d->prepared[i]);
    d->nprepared = 0;
}

/* Makes sure db has a live connection: one that broke is replaced (with
 * vd_pg_connect's backoff), unless a transaction was open on it, which the
 * server has rolled back: that is VD_ERR_CONN. */
static vd_status ensure_conn(pg_db *d, vd_error *err)
{
    if (d->c && PQstatus(d->c) == CONNECTION_OK) return VD_OK;
    if (d->base.in_txn)
        return vd_error_set(err, VD_ERR_CONN,
                            "store: the connection to %s was lost inside a transaction",
                            d->base.shown);
    if (d->c) PQfinish(d->c);
    d->c = NULL;
    forget_prepared(d);
    vd_status rc = vd_pg_connect(d->url, d->wait_ms, &d->c, err);
    if (rc == VD_OK) VD_INFO("store: reconnected to %s", d->base.shown);
    return rc;
}

static void pg_close(vd_db *db)
{
    pg_db *d = (pg_db *)db;
    if (d->c) {
        if (db->in_txn) PQclear(PQexec(d->c, "ROLLBACK"));
        PQfinish(d->c);
    }
    forget_prepared(d);
    free(d->url);
    free(d);
}

/* Runs sql with no parameters; a CONN failure outside a transaction is
 * retried once on a new connection when retry is set. */
static vd_status run_plain(pg_db *d, const char *sql, const char *what, int retry, vd_error *err)
{
    for (int attempt = 0;; attempt++) {
        vd_status rc = ensure_conn(d, err);
        if (rc != VD_OK) return rc;
        rc = vd_pg_exec(d->c, sql, what, err);
        if (rc != VD_ERR_CONN || !retry || attempt > 0 || d->base.in_txn) return rc;
    }
}

static vd_status pg_exec(vd_db *db, const char *sql, vd_error *err)
{
    return run_plain((pg_db *)db, sql, "store", 0, err);
}

static vd_status pg_begin(vd_db *db, vd_error *err)
{
    vd_status rc = run_plain((pg_db *)db, "BEGIN", "store: begin", 1, err);
    if (rc == VD_OK) db->in_txn = 1;
    return rc;
}

static vd_status pg_commit(vd_db *db, vd_error *err)
{
    PGresult *r = PQexec(C(db), "COMMIT");
    vd_status rc = vd_pg_status(C(db), r, "store: commit", err);
    /* COMMIT of a transaction that failed answers ROLLBACK: nothing was written. */
    if (rc == VD_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        rc = vd_error_set(err, VD_ERR_DB, "store: commit: the transaction was rolled back");
    PQclear(r);
    if (rc != VD_OK && PQstatus(C(db)) == CONNECTION_OK &&
        PQtransactionStatus(C(db)) != PQTRANS_IDLE)
        PQclear(PQexec(C(db), "ROLLBACK"));
    db->in_txn = 0;
    return rc;
}

static void pg_rollback(vd_db *db)
{
    if (PQstatus(C(db)) == CONNECTION_OK) PQclear(PQexec(C(db), "ROLLBACK"));
    db->in_txn = 0;
}

/* Each statement sees what was committed before it (READ COMMITTED): there
 * is no snapshot to take for a batch of reads. */
static void pg_read_begin(vd_db *db, int *owned)
{
    (void)db;
    *owned = 0;
}

static void pg_read_end(vd_db *db, int owned)
{
    (void)db;
    (void)owned;
}

/* Copies sql with each ? outside a '...' literal turned into $1, $2...;
 * *n counts them. NULL when out of memory. */
static char *number_params(const char *sql, int *n)
{
    size_t len = strlen(sql), q = 0;
    for (const char *p = sql; *p; p++)
        q += *p == '?';
    char *out = malloc(len + q * 11 + 1);
    if (!out) return NULL;
    char *o = out;
    int quoted = 0;
    *n = 0;
    for (const char *p = sql; *p; p++) {
        if (*p == '\'') quoted = !quoted;
        if (*p == '?' && !quoted)
            o += sprintf(o, "$%d", ++*n);
        else
            *o++ = *p;
    }
    *o = 0;
    return out;
}

static void clear_result(pg_stmt *s)
{
    PQclear(s->res);
    s->res = NULL;
    s->cur = -1;
}

static void pg_finalize(vd_db_stmt *st)
{
    pg_stmt *s = (pg_stmt *)st;
    clear_result(s);
    for (int i = 0; i < s->nparams; i++)
        free(s->vals[i]);
    free(s->vals);
    free(s->lens);
    free(s->fmts);
    free(s->sql);
    free(s);
}

static vd_status pg_prepare(vd_db *db, const char *sql, int flags, vd_db_stmt **out, vd_error *err)
{
    *out = NULL;
    pg_stmt *s = calloc(1, sizeof *s);
    if (!s || !(s->sql = number_params(sql, &s->nparams))) {
        free(s);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    int n = s->nparams ? s->nparams : 1;
    s->vals = calloc((size_t)n, sizeof *s->vals);
    s->lens = calloc((size_t)n, sizeof *s->lens);
    s->fmts = calloc((size_t)n, sizeof *s->fmts);
    s->base.db = db;
    s->flags = flags;
    s->cur = -1;
    if (!s->vals || !s->lens || !s->fmts) {
        pg_finalize(&s->base);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    *out = &s->base;
    return VD_OK;
}

/* Stores a copy of len bytes of data as parameter i (format: 0 text, 1 binary). */
static vd_status bind_bytes(vd_db_stmt *st, int i, const void *data, size_t len, int fmt)
{
    pg_stmt *s = (pg_stmt *)st;
    if (i < 1 || i > s->nparams) return VD_ERR_INVALID;
    char *copy = NULL;
    if (data) {
        if (len > INT32_MAX) return VD_ERR_LIMIT;
        if (!(copy = malloc(len + 1))) return VD_ERR_NOMEM;
        memcpy(copy, data, len);
        copy[len] = 0;
    }
    free(s->vals[i - 1]);
    s->vals[i - 1] = copy;
    s->lens[i - 1] = (int)len;
    s->fmts[i - 1] = fmt;
    return VD_OK;
}

static vd_status pg_bind_text(vd_db_stmt *st, int i, const char *text)
{
    return bind_bytes(st, i, text, text ? strlen(text) : 0, 0);
}

static vd_status pg_bind_int64(vd_db_stmt *st, int i, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    return bind_bytes(st, i, buf, (size_t)n, 0);
}

static vd_status pg_bind_double(vd_db_stmt *st, int i, double v)
{
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    return bind_bytes(st, i, buf, (size_t)n, 0);
}

static vd_status pg_bind_blob(vd_db_stmt *st, int i, const void *data, size_t len)
{
    if (!data || len == 0) return bind_bytes(st, i, NULL, 0, 0);
    return bind_bytes(st, i, data, len, 1);
}

static vd_status pg_bind_null(vd_db_stmt *st, int i)
{
    return bind_bytes(st, i, NULL, 0, 0);
}

/* The name of s's statement prepared on d's connection (preparing it the
 * first time) in name, or "" when the cache is full (run unprepared). */
static vd_status prepared_name(pg_db *d, pg_stmt *s, char name[16], const char *what, vd_error *err)
{
    for (int i = 0; i < d->nprepared; i++)
        if (strcmp(d->prepared[i], s->sql) == 0) {
            snprintf(name, 16, "s%d", i);
            return VD_OK;
        }
    name[0] = 0;
    if (d->nprepared == PREPARED_MAX) return VD_OK;
    char *copy = vd_strdup(s->sql);
    if (!copy) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    snprintf(name, 16, "s%d", d->nprepared);
    PGresult *r = PQprepare(d->c, name, s->sql, s->nparams, NULL);
    vd_status rc = vd_pg_status(d->c, r, what, err);
    PQclear(r);
    if (rc != VD_OK) {
        free(copy);
        return rc;
    }
    d->prepared[d->nprepared++] = copy;
    return VD_OK;
}

/* Runs the statement (retrying once on a new connection when it may). */
static vd_status execute(pg_stmt *s, const char *what, vd_error *err)
{
    pg_db *d = (pg_db *)s->base.db;
    for (int attempt = 0;; attempt++) {
        vd_status rc = ensure_conn(d, err);
        if (rc != VD_OK) return rc;
        clear_result(s);
        char msg[256], name[16];
        snprintf(msg, sizeof msg, "store: %s", what);
        if ((rc = prepared_name(d, s, name, msg, err)) == VD_OK) {
            s->res = name[0] ? PQexecPrepared(d->c, name, s->nparams, (const char *const *)s->vals,
                                              s->lens, s->fmts, 1)
                             : PQexecParams(d->c, s->sql, s->nparams, NULL,
                                            (const char *const *)s->vals, s->lens, s->fmts, 1);
            rc = vd_pg_status(d->c, s->res, msg, err);
        }
        if (rc == VD_OK) {
            const char *t = PQcmdTuples(s->res);
            s->changes = t && *t ? strtoll(t, NULL, 10) : 0;
            return VD_OK;
        }
        clear_result(s);
        int retry = rc == VD_ERR_CONN && (s->flags & VD_DB_RETRY) && !d->base.in_txn;
        if (!retry || attempt > 0) return rc;
        VD_WARN("store: %s: connection to %s lost, reconnecting to run it again", what,
                d->base.shown);
    }
}

static vd_status pg_step(vd_db_stmt *st, int *row, const char *what, vd_error *err)
{
    pg_stmt *s = (pg_stmt *)st;
    *row = 0;
    if (!s->res) {
        vd_status rc = execute(s, what, err);
        if (rc != VD_OK) return rc;
    }
    s->cur++;
    *row = s->cur < PQntuples(s->res);
    return VD_OK;
}

static int64_t pg_changes(vd_db_stmt *st)
{
    return ((pg_stmt *)st)->changes;
}

static void pg_reset(vd_db_stmt *st)
{
    clear_result((pg_stmt *)st);
}

static int pg_col_null(vd_db_stmt *st, int i)
{
    pg_stmt *s = (pg_stmt *)st;
    return PQgetisnull(s->res, s->cur, i);
}

static uint64_t be_bits(const char *p, int len)
{
    uint64_t v = 0;
    for (int k = 0; k < len; k++)
        v = (v << 8) | (unsigned char)p[k];
    return v;
}

static int64_t pg_col_int64(vd_db_stmt *st, int i)
{
    pg_stmt *s = (pg_stmt *)st;
    if (PQgetisnull(s->res, s->cur, i)) return 0;
    const char *p = PQgetvalue(s->res, s->cur, i);
    switch (PQftype(s->res, i)) {
    case OID_INT8:
        return (int64_t)be_bits(p, 8);
    case OID_INT4:
        return (int32_t)(uint32_t)be_bits(p, 4);
    case OID_INT2:
        return (int16_t)(uint16_t)be_bits(p, 2);
    case OID_BOOL:
        return p[0] != 0;
    default:
        return 0;
    }
}

static double pg_col_double(vd_db_stmt *st, int i)
{
    pg_stmt *s = (pg_stmt *)st;
    if (PQgetisnull(s->res, s->cur, i)) return 0;
    const char *p = PQgetvalue(s->res, s->cur, i);
    switch (PQftype(s->res, i)) {
    case OID_FLOAT8: {
        uint64_t u = be_bits(p, 8);
        double v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    case OID_FLOAT4: {
        uint32_t u = (uint32_t)be_bits(p, 4);
        float v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    default:
        return (double)pg_col_int64(st, i);
    }
}

/* text, varchar and the like are their bytes in binary format (libpq adds the NUL). */
static const char *pg_col_text(vd_db_stmt *st, int i)
{
    pg_stmt *s = (pg_stmt *)st;
    if (PQgetisnull(s->res, s->cur, i)) return NULL;
    return PQgetvalue(s->res, s->cur, i);
}

static const void *pg_col_blob(vd_db_stmt *st, int i, size_t *len)
{
    pg_stmt *s = (pg_stmt *)st;
    *len = 0;
    if (PQgetisnull(s->res, s->cur, i)) return NULL;
    *len = (size_t)PQgetlength(s->res, s->cur, i);
    return PQgetvalue(s->res, s->cur, i);
}

/* The schema version lives in the one row of visiond_store_schema (absent: 0). */
static vd_status pg_schema_read(vd_db *db, int *version, vd_error *err)
{
    *version = 0;
    vd_db_stmt *st;
    vd_status rc = pg_prepare(
        db, "SELECT CASE WHEN to_regclass('visiond_store_schema') IS NULL THEN 0 ELSE 1 END",
        VD_DB_RETRY, &st, err);
    int row = 0;
    if (rc == VD_OK) rc = pg_step(st, &row, "read the schema version", err);
    int exists = rc == VD_OK && row && pg_col_int64(st, 0);
    if (st) pg_finalize(st);
    if (rc != VD_OK || !exists) return rc;
    rc = pg_prepare(db, "SELECT max(version) FROM visiond_store_schema", VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    rc = pg_step(st, &row, "read the schema version", err);
    if (rc == VD_OK && row) *version = (int)pg_col_int64(st, 0);
    pg_finalize(st);
    return rc;
}

static vd_status pg_schema_write(vd_db *db, int version, vd_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS visiond_store_schema (version INTEGER NOT NULL);"
             "DELETE FROM visiond_store_schema;"
             "INSERT INTO visiond_store_schema (version) VALUES (%d)",
             version);
    return pg_exec(db, sql, err);
}

static vd_status pg_migrate_begin(vd_db *db, vd_error *err)
{
    pg_db *d = (pg_db *)db;
    vd_status rc = ensure_conn(d, err);
    if (rc == VD_OK) rc = vd_pg_lock(d->c, STORE_MIGRATION_LOCK, err);
    if (rc != VD_OK) return rc;
    if ((rc = pg_begin(db, err)) != VD_OK) vd_pg_unlock(d->c, STORE_MIGRATION_LOCK, NULL);
    return rc;
}

static vd_status pg_migrate_end(vd_db *db, int ok, vd_error *err)
{
    vd_status rc = VD_OK;
    if (ok)
        rc = pg_commit(db, err);
    else
        pg_rollback(db);
    if (PQstatus(C(db)) == CONNECTION_OK) vd_pg_unlock(C(db), STORE_MIGRATION_LOCK, NULL);
    return rc;
}

static int pg_moved(vd_db *db)
{
    (void)db;
    return 0;
}

static const vd_db_ops pg_ops = {
    pg_close,         pg_exec,        pg_begin,    pg_commit,    pg_rollback,    pg_read_begin,
    pg_read_end,      pg_prepare,     pg_finalize, pg_bind_text, pg_bind_int64,  pg_bind_double,
    pg_bind_blob,     pg_bind_null,   pg_step,     pg_changes,   pg_reset,       pg_col_null,
    pg_col_int64,     pg_col_double,  pg_col_text, pg_col_blob,  pg_schema_read, pg_schema_write,
    pg_migrate_begin, pg_migrate_end, pg_moved,
};

vd_status vd_db_open_pg(const char *url, const vd_db_opts *o, vd_db **out, vd_error *err)
{
    *out = NULL;
    pg_db *d = calloc(1, sizeof *d);
    if (!d || !(d->url = vd_strdup(url))) {
        free(d);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    d->base.ops = &pg_ops;
    d->base.kind = VD_DB_PG;
    vd_pg_url_shown(url, d->base.shown, sizeof d->base.shown);
    d->wait_ms = o && o->conn_wait_ms > 0 ? o->conn_wait_ms : 10000;
    vd_status rc = vd_pg_connect(url, d->wait_ms, &d->c, err);
    if (rc != VD_OK) {
        pg_close(&d->base);
        return rc;
    }
    *out = &d->base;
    return VD_OK;
}
