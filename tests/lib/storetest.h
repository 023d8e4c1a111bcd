/* storetest.h: running the store's contract tests (tests/unit/test_store*.c)
 * against every backend, each time on a fresh, empty store:
 *   - sqlite: a new file under the test's temporary directory (always);
 *   - pg:     a new database on $VISIOND_TEST_PG's cluster, created through
 *             $VISIOND_TEST_PG_ADMIN (both set by scripts/test.sh); not run,
 *             and said so, when they are unset.
 * STEST(name) { ... url ... } defines a test whose body runs once per backend. */
#ifndef VD_STORETEST_H
#define VD_STORETEST_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdtest.h"

static inline int storetest_fresh_sqlite(char *url, size_t n, char *why, size_t whyn)
{
    (void)why, (void)whyn;
    snprintf(url, n, "%s/data/store.db", vd_test_tmpdir());
    return 1;
}

/* The URL of $VISIOND_TEST_PG with its database replaced by db. */
static inline void storetest_pg_url(const char *db, char *url, size_t n)
{
    const char *base = getenv("VISIOND_TEST_PG");
    const char *slash = strrchr(base, '/');
    snprintf(url, n, "%.*s/%s", (int)(slash - base), base, db);
}

/* Creates an empty database (dropping one of that name) and writes its URL. */
static inline int storetest_fresh_pg(char *url, size_t n, char *why, size_t whyn)
{
    static int seq;
    const char *pg = getenv("VISIOND_TEST_PG"), *admin = getenv("VISIOND_TEST_PG_ADMIN");
    if (!pg || !*pg || !admin || !*admin) {
        snprintf(why, whyn, "VISIOND_TEST_PG or VISIOND_TEST_PG_ADMIN is not set");
        return 0;
    }
    char db[64], sql[256];
    snprintf(db, sizeof db, "store_%d_%d", (int)getpid(), ++seq);
    PGconn *c = PQconnectdb(admin);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) PQclear(PQexec(c, "SET client_min_messages = warning"));
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    PGresult *r = ok ? PQexec(c, sql) : NULL;
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s OWNER visiond", db);
    r = ok ? PQexec(c, sql) : NULL;
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) snprintf(why, whyn, "cannot create database %s: %s", db, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (ok) storetest_pg_url(db, url, n);
    return ok;
}

/* Runs sql as the admin (for tests that kill backends); 1 when it worked. */
static inline int storetest_admin(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("VISIOND_TEST_PG_ADMIN"));
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK);
    if (!ok) printf("    admin: %s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok;
}

typedef int (*storetest_fresh_fn)(char *url, size_t n, char *why, size_t whyn);

static const struct {
    const char *name;
    storetest_fresh_fn fresh;
} storetest_backends[] = {
    {"sqlite", storetest_fresh_sqlite},
    {"pg", storetest_fresh_pg},
};

static inline void storetest_each(void (*fn)(const char *url))
{
    for (size_t i = 0; i < sizeof storetest_backends / sizeof storetest_backends[0]; i++) {
        char url[512], why[256] = "";
        if (!storetest_backends[i].fresh(url, sizeof url, why, sizeof why)) {
            printf("    [%s] not run: %s\n", storetest_backends[i].name, why);
            continue;
        }
        printf("    [%s] %s\n", storetest_backends[i].name, url);
        fn(url);
        if (vd_test_failed()) return;
    }
}

#define STEST(name)                                                                                \
    static void name##_body(const char *url);                                                      \
    VD_TEST(name)                                                                                  \
    {                                                                                              \
        storetest_each(name##_body);                                                               \
    }                                                                                              \
    static void name##_body(const char *url)

#endif
