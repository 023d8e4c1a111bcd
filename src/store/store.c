/* store.c: opening the store on its backend, migrations and transactions. */
#include "store/store_impl.h"

#include <stdlib.h>
#include <string.h>

#include "core/datadir.h"
#include "core/pg.h"
#include "core/util.h"

const char *vd_store_default_path(char *buf, size_t n)
{
    return vd_data_path(buf, n, "store.db");
}

const char *vd_store_default_url(char *buf, size_t n)
{
    const char *env = getenv("VISIOND_STORE");
    if (env && *env) {
        vd_strlcpy(buf, env, n);
        return buf;
    }
    return vd_store_default_path(buf, n);
}

/* Applies every migration newer than the database's version, once: under
 * the backend's migration lock, the version is read again, so that of
 * several processes opening a new database at once one migrates and the
 * others find it done. */
static vd_status migrate(vd_store *s, vd_error *err)
{
    int v;
    vd_status rc = vd_db_schema_read(s->db, &v, err);
    if (rc == VD_OK && v == VD_STORE_SCHEMA_VERSION) {
        s->version = v;
        return VD_OK;
    }
    if (rc != VD_OK || (rc = vd_db_migrate_begin(s->db, err)) != VD_OK) return rc;
    rc = vd_db_schema_read(s->db, &v, err);
    if (rc == VD_OK && v > VD_STORE_SCHEMA_VERSION)
        rc = vd_error_set(err, VD_ERR_UNSUPPORTED,
                          "store: %s has schema version %d, newer than this build's %d",
                          vd_db_shown(s->db), v, VD_STORE_SCHEMA_VERSION);
    int pg = vd_db_kind_of(s->db) == VD_DB_PG;
    for (; rc == VD_OK && v < VD_STORE_SCHEMA_VERSION; v++) {
        const vd_store_migration *m = &vd_store_migrations[v];
        const char *sql = pg ? m->pg : m->sqlite;
        if (sql) rc = vd_db_exec(s->db, sql, err);
        if (rc == VD_OK) rc = vd_db_schema_write(s->db, v + 1, err);
    }
    vd_status end = vd_db_migrate_end(s->db, rc == VD_OK, rc == VD_OK ? err : NULL);
    if (rc == VD_OK) rc = end;
    if (rc == VD_OK) s->version = v;
    return rc;
}

/* A read-only handle migrates nothing: it reads this build's version only. */
static vd_status check_version(vd_store *s, vd_error *err)
{
    int v;
    vd_status rc = vd_db_schema_read(s->db, &v, err);
    if (rc != VD_OK) return rc;
    if (v != VD_STORE_SCHEMA_VERSION)
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "store: %s has schema version %d, this build reads %d",
                            vd_db_shown(s->db), v, VD_STORE_SCHEMA_VERSION);
    s->version = v;
    return VD_OK;
}

vd_status vd_store_open(const char *url, const vd_store_opts *opts, vd_store **out, vd_error *err)
{
    *out = NULL;
    if (!url || !*url) return vd_error_set(err, VD_ERR_INVALID, "store: empty path");
    vd_db_opts o = {0};
    if (opts) {
        o.busy_timeout_ms = opts->busy_timeout_ms;
        o.read_only = opts->read_only;
        o.conn_wait_ms = opts->conn_wait_ms;
    }
    vd_store *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    vd_status rc;
    if (strncmp(url, "sqlite:", 7) != 0 && vd_pg_url_is(url)) {
        rc = vd_db_open_pg(url, &o, &s->db, err);
    } else {
        const char *path = strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url;
        rc = *path ? vd_db_open_sqlite(path, &o, &s->db, err)
                   : vd_error_set(err, VD_ERR_INVALID, "store: empty path in %s", url);
    }
    if (rc == VD_OK) rc = o.read_only ? check_version(s, err) : migrate(s, err);
    if (rc != VD_OK) {
        vd_store_close(s);
        return rc;
    }
    *out = s;
    return VD_OK;
}

void vd_store_close(vd_store *s)
{
    if (!s) return;
    vd_db_close(s->db);
    free(s);
}

int vd_store_moved(vd_store *s)
{
    return vd_db_moved(s->db);
}

int vd_store_schema_version(const vd_store *s)
{
    return s->version;
}

vd_status vd_store_begin(vd_store *s, vd_error *err)
{
    return vd_db_begin(s->db, err);
}

vd_status vd_store_commit(vd_store *s, vd_error *err)
{
    return vd_db_commit(s->db, err);
}

void vd_store_rollback(vd_store *s)
{
    vd_db_rollback(s->db);
}

vd_status vd_store_txn_begin(vd_store *s, int *owned, vd_error *err)
{
    *owned = 0;
    if (vd_db_in_txn(s->db)) return VD_OK;
    vd_status rc = vd_db_begin(s->db, err);
    if (rc == VD_OK) *owned = 1;
    return rc;
}

vd_status vd_store_txn_end(vd_store *s, int owned, vd_status st, vd_error *err)
{
    if (!owned) return st;
    if (st == VD_OK) return vd_db_commit(s->db, err);
    vd_db_rollback(s->db);
    return st;
}
