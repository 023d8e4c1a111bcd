/* test_status_paths.c: a status from below reaches the caller as such when
 * the caller passes err = NULL (core/err.h: statuses are returned, never
 * rebuilt from the optional error). The real path: the store under a write
 * lock another connection holds, with a 1 ms busy timeout, answers BUSY, not
 * DB, at every level; with an err it says so in the message too. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/sha256.h"
#include "core/util.h"
#include "store/sessions.h"
#include "store/store.h"
#include "store/vectors.h"
#include "vdtest.h"

/* Opens the store at path for the test (1 ms busy timeout) with one session. */
static vd_store *open_store(const char *path, char id[VD_ID_LEN + 1])
{
    vd_store *s = NULL;
    vd_store_opts o = {.busy_timeout_ms = 1};
    if (vd_store_open(path, &o, &s, NULL) != VD_OK) return NULL;
    vd_session_new in = {.name = "n", .kind = VD_SESSION_IMAGE, .model = "m"};
    if (vd_store_session_create(s, &in, id, NULL) != VD_OK) {
        vd_store_close(s);
        return NULL;
    }
    return s;
}

VD_TEST(busy_store_answers_busy_with_and_without_err)
{
    char path[600];
    snprintf(path, sizeof path, "%s/store.db", vd_test_tmpdir());
    char id[VD_ID_LEN + 1];
    vd_store *s = open_store(path, id);
    CHECK(s != NULL);

    /* Another connection takes the write lock and keeps it. */
    sqlite3 *holder = NULL;
    CHECK_EQ_INT(sqlite3_open(path, &holder), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    vd_session_new in = {.name = "n2", .kind = VD_SESSION_IMAGE, .model = "m"};
    char id2[VD_ID_LEN + 1];
    char hex[VD_SHA256_HEX_LEN + 1];
    memset(hex, 'a', VD_SHA256_HEX_LEN);
    hex[VD_SHA256_HEX_LEN] = '\0';
    float v[2] = {1, 0};
    vd_example ex = {.path = "/x.png", .label = "cat"};
    for (int with_err = 0; with_err < 2; with_err++) {
        vd_error e;
        vd_error *err = with_err ? &e : NULL;
        CHECK_EQ_INT(vd_store_session_create(s, &in, id2, err), VD_ERR_BUSY);
        CHECK_EQ_INT(vd_store_session_set_progress(s, id, 1, 2, err), VD_ERR_BUSY);
        CHECK_EQ_INT(vd_store_session_add_error(s, id, "/x.png", "bad", err), VD_ERR_BUSY);
        CHECK_EQ_INT(vd_store_examples_add(s, id, &ex, 1, err), VD_ERR_BUSY);
        CHECK_EQ_INT(vd_store_embedding_put(s, hex, "m", v, 2, err), VD_ERR_BUSY);
        CHECK_EQ_INT(vd_store_begin(s, err), VD_ERR_BUSY);
        if (with_err) {
            CHECK_EQ_INT(e.code, VD_ERR_BUSY);
            CHECK(strstr(e.msg, "locked") != NULL);
        }
    }
    /* Reads still work under the lock (WAL), and writes once it is gone. */
    vd_session got = {0};
    CHECK_EQ_INT(vd_store_session_get(s, id, &got, NULL), VD_OK);
    vd_session_clear(&got);
    sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(holder);
    CHECK_EQ_INT(vd_store_session_set_progress(s, id, 1, 2, NULL), VD_OK);
    CHECK_EQ_INT(vd_store_embedding_put(s, hex, "m", v, 2, NULL), VD_OK);
    vd_store_close(s);
}

int main(void)
{
    return vd_test_run_all();
}
