/* test_store_pg.c: what only the PostgreSQL store does (the contract itself
 * is test_store.c, on every backend): reconnecting after the server dropped
 * the connection (pg_terminate_backend through $VISIOND_TEST_PG_ADMIN), what
 * is retried and what is reported, and the errors at open (wrong password,
 * no such database, no server) that name the URL without its password.
 * Skipped (77) when $VISIOND_TEST_PG is unset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pg.h"
#include "store/sessions.h"
#include "store/store.h"
#include "storetest.h"
#include "vdtest.h"

static char url[512];

/* Ends every connection of the store's database, as a server restart would. */
static int drop_connections(void)
{
    char sql[700];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
             strrchr(url, '/') + 1);
    return storetest_admin(sql);
}

static int count_sessions(vd_store *s)
{
    vd_session *list;
    size_t n = 0;
    vd_error err;
    if (vd_store_session_list(s, 0, &list, &n, &err) != VD_OK) return -1;
    vd_session_list_free(list, n);
    return (int)n;
}

VD_TEST(a_read_after_the_connection_dropped_reconnects_and_succeeds)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "r", .model = "m"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    CHECK(drop_connections());
    /* A read is VD_DB_RETRY: run again on a new connection, no error seen. */
    vd_session got;
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    vd_session_clear(&got);
    /* An idempotent write too. */
    CHECK(drop_connections());
    CHECK_OK(vd_store_session_set_progress(s, id, 1, 2, &err));
    vd_store_close(s);
}

VD_TEST(a_write_that_may_not_run_twice_is_reported_then_the_handle_works)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "w", .model = "m"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    CHECK(drop_connections());
    /* Appending an error is not idempotent: reported, not run twice. */
    CHECK_EQ_INT(vd_store_session_add_error(s, id, "/a.jpg", "x", &err), VD_ERR_CONN);
    CHECK_OK(vd_store_session_add_error(s, id, "/b.jpg", "y", &err));
    vd_session got;
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    CHECK(strstr(got.errors_json, "/b.jpg") != NULL);
    CHECK(strstr(got.errors_json, "/a.jpg") == NULL);
    vd_session_clear(&got);
    vd_store_close(s);
}

VD_TEST(a_transaction_cut_by_the_drop_is_reported_and_leaves_nothing)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    int before = count_sessions(s);
    CHECK_OK(vd_store_begin(s, &err));
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "t", .model = "m"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    CHECK(drop_connections());
    vd_example ex = {.path = "/t.jpg", .label = "t"};
    /* Inside a transaction nothing is retried: the server rolled it back. */
    CHECK_EQ_INT(vd_store_examples_add(s, id, &ex, 1, &err), VD_ERR_CONN);
    CHECK_EQ_INT(vd_store_commit(s, &err), VD_ERR_CONN);
    vd_store_rollback(s);
    CHECK_EQ_INT(count_sessions(s), before);
    /* The handle is usable again, and what it commits stays. */
    CHECK_OK(vd_store_begin(s, &err));
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    CHECK_OK(vd_store_examples_add(s, id, &ex, 1, &err));
    CHECK_OK(vd_store_commit(s, &err));
    CHECK(drop_connections());
    CHECK_EQ_INT(count_sessions(s), before + 1);
    vd_store_close(s);
}

VD_TEST(open_errors_name_the_url_without_its_password)
{
    vd_error err;
    vd_store *s = NULL;
    char bad[600];
    /* postgres://visiond:visiond@HOST:PORT/DB -> a wrong password */
    const char *at = strchr(url, '@');
    snprintf(bad, sizeof bad, "postgres://visiond:Secr3tWrong%s", at);
    CHECK_EQ_INT(vd_store_open(bad, NULL, &s, &err), VD_ERR_AUTH);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "Secr3tWrong") == NULL);
    CHECK(strstr(err.msg, "***") != NULL);
    /* A database that does not exist. */
    storetest_pg_url("no_such_db_here", bad, sizeof bad);
    CHECK_EQ_INT(vd_store_open(bad, NULL, &s, &err), VD_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "no_such_db_here") != NULL);
    CHECK(strstr(err.msg, ":visiond@") == NULL);
    /* No server at all: waits conn_wait_ms, then VD_ERR_CONN. */
    vd_store_opts o = {.conn_wait_ms = 300};
    CHECK_EQ_INT(vd_store_open("postgres://visiond:pw@127.0.0.1:1/x", &o, &s, &err), VD_ERR_CONN);
    CHECK(strstr(err.msg, ":pw@") == NULL);
}

int main(void)
{
    char why[256];
    if (!storetest_fresh_pg(url, sizeof url, why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 77;
    }
    return vd_test_run_all();
}
