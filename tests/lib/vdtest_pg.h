/* vdtest_pg.h: a fresh PostgreSQL database per test, for C tests (header only).
 *
 * $VISIOND_TEST_PG names a server and a role with CREATEDB (scripts/test.sh sets it, e.g.
 * postgres://visiond:visiond@127.0.0.1:PORT/visiond). vd_test_pg_fresh creates a new
 * database through it and writes its URL (libpq's keyword form) into buf; the databases a
 * process created are dropped when it exits. Without $VISIOND_TEST_PG it returns 0 and says
 * why (the test skips). */
#ifndef VDTEST_PG_H
#define VDTEST_PG_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VD_TEST_PG_MAXDB 256

static struct {
    pid_t owner;
    int n;
    char names[VD_TEST_PG_MAXDB][64];
} vd_test_pg_dbs;

static void vd_test_pg_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *vd_test_pg_admin(char *why, size_t whyn)
{
    const char *url = getenv("VISIOND_TEST_PG");
    if (!url || !*url) {
        snprintf(why, whyn, "VISIOND_TEST_PG is not set");
        return NULL;
    }
    PGconn *c = PQconnectdb(url);
    PQsetNoticeProcessor(c, vd_test_pg_quiet, NULL);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(why, whyn, "cannot connect to $VISIOND_TEST_PG: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs sql on c; returns 1 on success (else the message goes into why). */
static int vd_test_pg_exec(PGconn *c, const char *sql, char *why, size_t whyn)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && why) snprintf(why, whyn, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static void vd_test_pg_drop_all(void)
{
    if (vd_test_pg_dbs.owner != getpid() || vd_test_pg_dbs.n == 0) return;
    char why[256];
    PGconn *c = vd_test_pg_admin(why, sizeof why);
    if (!c) return;
    for (int i = 0; i < vd_test_pg_dbs.n; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                 vd_test_pg_dbs.names[i]);
        vd_test_pg_exec(c, sql, NULL, 0);
    }
    PQfinish(c);
}

/* Appends key='value' (quoted for libpq) to buf. */
static void vd_test_pg_kv(char *buf, size_t n, const char *key, const char *val)
{
    size_t k = strlen(buf);
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%s='", k ? " " : "", key);
    for (const char *p = val; *p && k + 3 < n; p++) {
        if (*p == '\'' || *p == '\\') buf[k++] = '\\';
        buf[k++] = *p;
    }
    if (k + 2 < n) {
        buf[k++] = '\'';
        buf[k] = '\0';
    }
}

/* The connection string of $VISIOND_TEST_PG with dbname replaced. */
static int vd_test_pg_url_for(const char *dbname, char *buf, size_t n, char *why, size_t whyn)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(getenv("VISIOND_TEST_PG"), &perr);
    if (!opts) {
        snprintf(why, whyn, "cannot parse $VISIOND_TEST_PG: %s", perr ? perr : "?");
        PQfreemem(perr);
        return 0;
    }
    buf[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && *o->val && strcmp(o->keyword, "dbname") != 0)
            vd_test_pg_kv(buf, n, o->keyword, o->val);
    vd_test_pg_kv(buf, n, "dbname", dbname);
    PQconninfoFree(opts);
    return 1;
}

static int vd_test_pg_fresh(char *buf, size_t n, char *why, size_t whyn)
{
    static int seq;
    static pid_t registered;
    if (vd_test_pg_dbs.owner != getpid()) {
        vd_test_pg_dbs.owner = getpid();
        vd_test_pg_dbs.n = 0;
    }
    if (vd_test_pg_dbs.n >= VD_TEST_PG_MAXDB) {
        snprintf(why, whyn, "too many test databases");
        return 0;
    }
    PGconn *c = vd_test_pg_admin(why, whyn);
    if (!c) return 0;
    /* registered after libpq's first connect, so that it runs before the exit handlers
     * libpq's TLS library registered then (a connect after those crashes) */
    if (registered != getpid()) {
        registered = getpid();
        atexit(vd_test_pg_drop_all);
    }
    char *name = vd_test_pg_dbs.names[vd_test_pg_dbs.n];
    snprintf(name, 64, "vdtest_%d_%d", (int)getpid(), ++seq);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    int ok = vd_test_pg_exec(c, sql, why, whyn);
    PQfinish(c);
    if (!ok) return 0;
    vd_test_pg_dbs.n++;
    return vd_test_pg_url_for(name, buf, n, why, whyn);
}

#endif
