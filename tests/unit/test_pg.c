/* test_pg.c: core/pg.h, the one home for PostgreSQL connections: which URLs
 * are PostgreSQL ones, passwords never shown, connect errors classified (a
 * wrong password or database fails at once, a server that is down is waited
 * for), and results as vd_status. The connect cases need $VISIOND_TEST_PG
 * (postgres://USER:PASSWORD@HOST:PORT/DB, as scripts/test.sh provides). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pg.h"
#include "core/util.h"
#include "vdtest.h"

VD_TEST(recognises_postgres_urls)
{
    CHECK(vd_pg_url_is("postgres://u@h/db"));
    CHECK(vd_pg_url_is("postgresql://h:5433/db?sslmode=disable"));
    CHECK(vd_pg_url_is("host=/run/pg dbname=vd"));
    CHECK(vd_pg_url_is("service=visiond"));
    CHECK(vd_pg_url_is("user=vd hostaddr=127.0.0.1"));
    CHECK(!vd_pg_url_is("redis://h:6379/0"));
    CHECK(!vd_pg_url_is("sqlite:/tmp/q.db"));
    CHECK(!vd_pg_url_is("/var/lib/visiond/store.db"));
    CHECK(!vd_pg_url_is("data/my=odd.db"));
    CHECK(!vd_pg_url_is(NULL));
}

VD_TEST(never_shows_a_password)
{
    char b[256];
    CHECK_EQ_STR(vd_pg_url_shown("postgres://vd:s3cret@db:5432/x", b, sizeof b),
                 "postgres://vd:***@db:5432/x");
    CHECK_EQ_STR(vd_pg_url_shown("postgres://vd@db/x?password=s3cret&sslmode=require", b, sizeof b),
                 "postgres://vd@db/x?password=***&sslmode=require");
    CHECK_EQ_STR(vd_pg_url_shown("host=db password=s3cret dbname=x", b, sizeof b),
                 "host=db password=*** dbname=x");
    CHECK_EQ_STR(vd_pg_url_shown("password = 'a b\\' c' host=db", b, sizeof b),
                 "password=*** host=db");
    CHECK_EQ_STR(vd_pg_url_shown("service=vd", b, sizeof b), "service=vd");
    CHECK(strstr(vd_pg_url_shown("postgres://vd:s3cret@db/x", b, 12), "s3cret") == NULL);
}

static const char *test_url(void)
{
    const char *u = getenv("VISIOND_TEST_PG");
    if (!u || !*u) vd_test_skip("VISIOND_TEST_PG is not set");
    return u && *u ? u : NULL;
}

/* Writes url with its password replaced by pw, or its database by db. */
static void url_with(const char *url, const char *pw, const char *db, char *out, size_t n)
{
    const char *at = strrchr(url, '@'), *slash = strrchr(url, '/');
    const char *colon = memchr(url + 11, ':', (size_t)(at - url - 11));
    if (pw)
        snprintf(out, n, "%.*s:%s%s", (int)(colon - url), url, pw, at);
    else
        snprintf(out, n, "%.*s/%s", (int)(slash - url), url, db);
}

VD_TEST(connects_and_maps_results)
{
    const char *u = test_url();
    if (!u) return;
    PGconn *c = NULL;
    vd_error err;
    CHECK_OK(vd_pg_connect(u, 0, &c, &err));
    CHECK_OK(vd_pg_exec(c, "CREATE TEMP TABLE t (k int PRIMARY KEY)", "create", &err));
    CHECK_OK(vd_pg_exec(c, "INSERT INTO t VALUES (1)", "insert", &err));
    CHECK_EQ_INT(vd_pg_exec(c, "INSERT INTO t VALUES (1)", "insert again", &err), VD_ERR_STATE);
    CHECK(strstr(err.msg, "insert again: ") == err.msg);
    CHECK_EQ_INT(vd_pg_exec(c, "SELEC 1", "typo", &err), VD_ERR_DB);
    CHECK_OK(vd_pg_lock(c, 42, &err));
    CHECK_OK(vd_pg_unlock(c, 42, &err));
    PQfinish(c);
}

VD_TEST(wrong_password_or_database_fails_at_once_without_the_password)
{
    const char *u = test_url();
    if (!u) return;
    char bad[512];
    PGconn *c = NULL;
    vd_error err;
    url_with(u, "not-the-password", NULL, bad, sizeof bad);
    int64_t t0 = vd_now_ms();
    CHECK_EQ_INT(vd_pg_connect(bad, 60000, &c, &err), VD_ERR_AUTH);
    CHECK(vd_now_ms() - t0 < 30000); /* not waited for: no retry would help */
    CHECK(c == NULL);
    CHECK(strstr(err.msg, "not-the-password") == NULL);
    CHECK(strstr(err.msg, ":***@") != NULL);
    url_with(u, NULL, "no_such_database_vd", bad, sizeof bad);
    CHECK_EQ_INT(vd_pg_connect(bad, 60000, &c, &err), VD_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "no_such_database_vd") != NULL);
    CHECK_EQ_INT(vd_pg_connect("host=/tmp port=1 dbname=x nosuchoption=1", 0, &c, &err),
                 VD_ERR_INVALID);
}

VD_TEST(a_server_that_is_down_is_retried_then_reported)
{
    PGconn *c = NULL;
    vd_error err;
    /* port 1 on loopback: refused at once; three attempts fit in 400 ms */
    CHECK_EQ_INT(vd_pg_connect("postgres://vd:pw@127.0.0.1:1/x", 400, &c, &err), VD_ERR_CONN);
    CHECK(strstr(err.msg, "attempt(s)") != NULL);
    CHECK(strstr(err.msg, "pw@") == NULL);
}

int main(void)
{
    return vd_test_run_all();
}
