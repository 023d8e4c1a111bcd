/* test_blobs.c: uploaded files kept in the store (store/blobs.h) and the
 * service that keeps a session's uploads there (vd_svc_uploads_keep): blob
 * references, put/get, deduplication, the size limit, the integrity check,
 * garbage collection by reference and grace, concurrent puts from forked
 * processes. Against a real SQLite store, and a PostgreSQL one too when
 * $VISIOND_TEST_PG is set (a database of its own there, dropped at the end). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/pg.h"
#include "core/sha256.h"
#include "service/training.h"
#include "store/blobs.h"
#include "store/sessions.h"
#include "store/store.h"
#include "store/store_impl.h" /* the database itself, to age a row */
#include "vdtest.h"

static int g_pg; /* which backend this pass runs on */

/* Where a case's store is: SQLite in a directory of its own (each call, a
 * new one), or the PostgreSQL database (one for every case). */
static const char *store_url(char *buf, size_t n)
{
    if (g_pg)
        snprintf(buf, n, "%s", getenv("VISIOND_TEST_PG_BLOBS"));
    else
        snprintf(buf, n, "%s/store.db", vd_test_tmpdir());
    return buf;
}

/* Opens the store at path; emptied of sessions and blobs (PostgreSQL) when
 * fresh is set. */
static vd_store *open_store(const char *path, int fresh)
{
    vd_error err;
    vd_store *s = NULL;
    if (vd_store_open(path, NULL, &s, &err) != VD_OK) {
        fprintf(stderr, "open %s: %s\n", path, vd_error_text(&err));
        return NULL;
    }
    if (g_pg && fresh) {
        vd_session *v = NULL;
        size_t k = 0;
        if (vd_store_session_list(s, 0, &v, &k, &err) == VD_OK)
            for (size_t i = 0; i < k; i++)
                vd_store_session_delete(s, v[i].id, NULL);
        vd_session_list_free(v, k);
        vd_store_blobs_gc(s, -1, NULL, NULL);
    }
    return s;
}

static void sha_hex(const void *d, size_t n, char hex[VD_SHA256_HEX_LEN + 1])
{
    uint8_t dig[VD_SHA256_LEN];
    vd_sha256(d, n, dig);
    vd_sha256_hex(dig, hex);
}

VD_TEST(refs)
{
    char sha[VD_SHA256_HEX_LEN + 1], hex[VD_SHA256_HEX_LEN + 1];
    sha_hex("x", 1, hex);
    char *r = vd_blob_ref_new(hex, "cat 1.jpg");
    CHECK(r && strncmp(r, "blob:", 5) == 0 && strstr(r, "/cat 1.jpg"));
    CHECK(vd_blob_ref_parse(r, sha));
    CHECK_EQ_STR(sha, hex);
    free(r);
    r = vd_blob_ref_new(hex, "../../etc/\npasswd");
    CHECK(r && !strstr(r + 5 + VD_SHA256_HEX_LEN + 1, "/") && !strchr(r, '\n'));
    CHECK(vd_blob_ref_parse(r, sha));
    free(r);
    r = vd_blob_ref_new(hex, NULL);
    CHECK(r && strlen(r) == 5 + VD_SHA256_HEX_LEN && vd_blob_ref_parse(r, sha));
    free(r);
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    r = vd_blob_ref_new(hex, long_name);
    CHECK(r && strlen(r) == 5 + VD_SHA256_HEX_LEN + 1 + VD_BLOB_NAME_MAX);
    free(r);
    /* not references: paths, a short or upper-case hash, trailing junk */
    char buf[200];
    CHECK(!vd_blob_ref_parse("/media/blob:x.png", sha));
    CHECK(!vd_blob_ref_parse("blob:abc", sha));
    snprintf(buf, sizeof buf, "blob:%.63s", hex);
    CHECK(!vd_blob_ref_parse(buf, sha));
    snprintf(buf, sizeof buf, "blob:%sx", hex);
    CHECK(!vd_blob_ref_parse(buf, sha));
    snprintf(buf, sizeof buf, "blob:%s", hex);
    buf[7] = 'A';
    CHECK(!vd_blob_ref_parse(buf, sha));
    CHECK(!vd_blob_ref_parse(NULL, sha));
}

VD_TEST(put_get_dedup_limit)
{
    vd_error err;
    char path[512];
    vd_store *s = open_store(store_url(path, sizeof path), 1);
    CHECK(s);
    const char data[] = "\x89PNG\r\n\x1a\n not really a png, with a NUL \0 inside";
    char sha[VD_SHA256_HEX_LEN + 1], hex[VD_SHA256_HEX_LEN + 1];
    int added = -1;
    CHECK_OK(vd_store_blob_put(s, data, sizeof data, sha, &added, &err));
    sha_hex(data, sizeof data, hex);
    CHECK_EQ_STR(sha, hex);
    CHECK_EQ_INT(added, 1);
    CHECK_OK(vd_store_blob_put(s, data, sizeof data, sha, &added, &err));
    CHECK_EQ_INT(added, 0);
    int64_t n = 0, bytes = 0;
    CHECK_OK(vd_store_blobs_count(s, &n, &bytes, &err));
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(bytes, (int64_t)sizeof data);
    uint8_t *got = NULL;
    size_t len = 0;
    CHECK_OK(vd_store_blob_get(s, sha, 0, &got, &len, &err));
    CHECK(len == sizeof data && memcmp(got, data, len) == 0);
    free(got);
    CHECK_EQ_INT(vd_store_blob_get(s, sha, 10, &got, &len, &err), VD_ERR_LIMIT);
    CHECK(!got);
    /* an empty file */
    CHECK_OK(vd_store_blob_put(s, "", 0, sha, &added, &err));
    CHECK_EQ_INT(added, 1);
    CHECK_OK(vd_store_blob_get(s, sha, 0, &got, &len, &err));
    CHECK_EQ_INT(len, 0);
    free(got);
    /* unknown */
    sha_hex("never put", 9, hex);
    CHECK_EQ_INT(vd_store_blob_get(s, hex, 0, &got, &len, &err), VD_ERR_NOT_FOUND);
    CHECK(strstr(vd_error_text(&err), "not in the store"));
    /* over the limit: refused before a byte is read or hashed */
    CHECK_EQ_INT(vd_store_blob_put(s, data, (size_t)VD_BLOB_MAX_BYTES + 1, sha, &added, &err),
                 VD_ERR_LIMIT);
    CHECK_OK(vd_store_blobs_count(s, &n, NULL, &err));
    CHECK_EQ_INT(n, 2);
    vd_store_close(s);
}

/* Bytes altered in the database are an error on reading, not wrong pixels. */
VD_TEST(corrupt_blob_is_refused)
{
    if (g_pg) return; /* altered through sqlite3 itself */
    vd_error err;
    char path[512];
    vd_store *s = open_store(store_url(path, sizeof path), 1);
    CHECK(s);
    char sha[VD_SHA256_HEX_LEN + 1];
    CHECK_OK(vd_store_blob_put(s, "abcdef", 6, sha, NULL, &err));
    vd_store_close(s);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE blobs SET data = X'616263646567'", NULL, NULL, NULL) ==
          SQLITE_OK);
    sqlite3_close(db);
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    uint8_t *got = NULL;
    size_t len = 0;
    CHECK_EQ_INT(vd_store_blob_get(s, sha, 0, &got, &len, &err), VD_ERR_DB);
    CHECK(!got && strstr(vd_error_text(&err), "hash"));
    vd_store_close(s);
}

/* A session with one example whose sha256 is sha (as vd_svc_uploads_keep stores it). */
static void session_with(vd_store *s, const char *sha, char sid[VD_ID_LEN + 1])
{
    vd_error err;
    vd_session_new sn = {.name = "n", .model = "m"};
    if (vd_store_session_create(s, &sn, sid, &err) != VD_OK) abort();
    vd_example ex[2];
    memset(ex, 0, sizeof ex);
    char *ref = vd_blob_ref_new(sha, "a.png");
    ex[0].path = ref, ex[0].label = "a";
    memcpy(ex[0].sha256, sha, VD_SHA256_HEX_LEN + 1);
    ex[1].path = "/media/b.png", ex[1].label = "b"; /* a media file: keeps no upload alive */
    sha_hex("BBBB", 4, ex[1].sha256);
    if (vd_store_examples_add(s, sid, ex, 2, &err) != VD_OK) abort();
    free(ref);
}

VD_TEST(gc_by_reference_and_grace)
{
    vd_error err;
    char path[512];
    vd_store *s = open_store(store_url(path, sizeof path), 1);
    CHECK(s);
    char a[VD_SHA256_HEX_LEN + 1], b[VD_SHA256_HEX_LEN + 1], s1[VD_ID_LEN + 1], s2[VD_ID_LEN + 1];
    CHECK_OK(vd_store_blob_put(s, "AAAA", 4, a, NULL, &err));
    CHECK_OK(vd_store_blob_put(s, "BBBB", 4, b, NULL, &err));
    session_with(s, a, s1);
    session_with(s, a, s2); /* the same upload in two sessions */
    size_t removed = 99;
    /* within the grace nothing goes, referred to or not */
    CHECK_OK(vd_store_blobs_gc(s, VD_BLOB_GC_GRACE_MS, &removed, &err));
    CHECK_EQ_INT(removed, 0);
    CHECK_OK(vd_svc_uploads_gc(s, &removed, &err));
    CHECK_EQ_INT(removed, 0);
    /* past it, only what no example refers to */
    CHECK_OK(vd_store_blobs_gc(s, -1, &removed, &err));
    CHECK_EQ_INT(removed, 1);
    uint8_t *got;
    size_t len;
    CHECK_EQ_INT(vd_store_blob_get(s, b, 0, &got, &len, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_session_delete(s, s1, &err));
    CHECK_OK(vd_store_blobs_gc(s, -1, &removed, &err));
    CHECK_EQ_INT(removed, 0); /* s2 still refers to a */
    CHECK_OK(vd_store_blob_get(s, a, 0, &got, &len, &err));
    free(got);
    CHECK_OK(vd_store_session_delete(s, s2, &err));
    CHECK_OK(vd_store_blobs_gc(s, -1, &removed, &err));
    CHECK_EQ_INT(removed, 1);
    int64_t n = -1;
    CHECK_OK(vd_store_blobs_count(s, &n, NULL, &err));
    CHECK_EQ_INT(n, 0);
    vd_store_close(s);
}

/* Putting bytes again refreshes their grace: a GC between an upload and its
 * session's examples does not take a blob that was just uploaded again. The
 * first put is made ancient in the database itself (no clock in the test). */
VD_TEST(put_again_refreshes_grace)
{
    vd_error err;
    char path[512];
    vd_store *s = open_store(store_url(path, sizeof path), 1);
    CHECK(s);
    char a[VD_SHA256_HEX_LEN + 1], b[VD_SHA256_HEX_LEN + 1];
    CHECK_OK(vd_store_blob_put(s, "old", 3, a, NULL, &err));
    CHECK_OK(vd_store_blob_put(s, "older", 5, b, NULL, &err));
    CHECK_OK(vd_db_exec(s->db, "UPDATE blobs SET put_ms = 0", &err));
    int added = -1;
    CHECK_OK(vd_store_blob_put(s, "old", 3, a, &added, &err)); /* uploaded again */
    CHECK_EQ_INT(added, 0);
    size_t removed = 9;
    CHECK_OK(vd_store_blobs_gc(s, VD_BLOB_GC_GRACE_MS, &removed, &err));
    CHECK_EQ_INT(removed, 1); /* "older" only */
    uint8_t *got;
    size_t len;
    CHECK_OK(vd_store_blob_get(s, a, 0, &got, &len, &err));
    free(got);
    CHECK_EQ_INT(vd_store_blob_get(s, b, 0, &got, &len, &err), VD_ERR_NOT_FOUND);
    vd_store_close(s);
}

/* vd_svc_uploads_keep: temporary files become blob references with their sha256. */
VD_TEST(service_keeps_uploads)
{
    vd_error err;
    char path[512];
    vd_store *s = open_store(store_url(path, sizeof path), 1);
    CHECK(s);
    vd_svc_examples ex = {0};
    const char *names[3] = {"one.png", "two/../x.png", NULL};
    const char *bodies[3] = {"first", "second", "first"};
    for (int i = 0; i < 3; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/upload-%d", vd_test_tmpdir(), i);
        FILE *f = fopen(p, "w");
        CHECK(f);
        fputs(bodies[i], f);
        fclose(f);
        CHECK_OK(vd_svc_examples_add(&ex, strdup(p), i ? "b" : "a", "t", NULL, &err));
    }
    const char *why = NULL;
    CHECK_OK(vd_svc_uploads_keep(s, &ex, names, &why, &err));
    char sha[VD_SHA256_HEX_LEN + 1], hex[VD_SHA256_HEX_LEN + 1];
    for (int i = 0; i < 3; i++) {
        CHECK(vd_blob_ref_parse(ex.v[i].path, sha));
        sha_hex(bodies[i], strlen(bodies[i]), hex);
        CHECK_EQ_STR(sha, hex);
        CHECK_EQ_STR(ex.v[i].sha256, hex);
    }
    CHECK(strstr(ex.v[0].path, "/one.png"));
    CHECK(strstr(ex.v[1].path, "/two_.._x.png")); /* no '/' in a name */
    int64_t n = 0;
    CHECK_OK(vd_store_blobs_count(s, &n, NULL, &err));
    CHECK_EQ_INT(n, 2); /* "first" twice is kept once */
    uint8_t *got;
    size_t len;
    CHECK_OK(vd_store_blob_get(s, ex.v[1].sha256, 0, &got, &len, &err));
    CHECK(len == 6 && memcmp(got, "second", 6) == 0);
    free(got);
    vd_svc_examples_free(&ex);
    /* a file that is gone is "store"'s failure, named */
    CHECK_OK(vd_svc_examples_add(&ex, strdup("/nonexistent/upload"), "a", "t", NULL, &err));
    CHECK(vd_svc_uploads_keep(s, &ex, NULL, &why, &err) != VD_OK);
    CHECK_EQ_STR(why, "store");
    vd_svc_examples_free(&ex);
    vd_store_close(s);
}

/* Processes putting the same bytes at once keep one row each, and every put succeeds. */
VD_TEST(concurrent_puts)
{
    char path[512];
    vd_store *s = open_store(store_url(path, sizeof path), 1);
    CHECK(s);
    vd_store_close(s);
    enum { PROCS = 4, EACH = 25 };
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            vd_error err;
            vd_store *c = open_store(path, 0);
            if (!c) _exit(2);
            for (int i = 0; i < EACH; i++) {
                char body[32], sha[VD_SHA256_HEX_LEN + 1];
                snprintf(body, sizeof body, "body %d", i % 5);
                if (vd_store_blob_put(c, body, strlen(body), sha, NULL, &err) != VD_OK) {
                    fprintf(stderr, "put: %s\n", vd_error_text(&err));
                    _exit(1);
                }
            }
            vd_store_close(c);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        CHECK(wait(&status) > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    vd_error err;
    int64_t n = 0;
    s = open_store(path, 0);
    CHECK(s);
    CHECK_OK(vd_store_blobs_count(s, &n, NULL, &err));
    CHECK_EQ_INT(n, 5);
    vd_store_close(s);
}

/* Makes (create) or drops a database of this process on $VISIOND_TEST_PG's
 * cluster (its role has CREATEDB); writes its URL into url. */
static int pg_db(int create, char *url, size_t n)
{
    const char *base = getenv("VISIOND_TEST_PG");
    vd_error err;
    PGconn *c = NULL;
    if (vd_pg_connect(base, 10000, &c, &err) != VD_OK) {
        fprintf(stderr, "test_blobs: %s\n", vd_error_text(&err));
        return -1;
    }
    char sql[200], name[64];
    snprintf(name, sizeof name, "test_blobs_%d", (int)getpid());
    snprintf(sql, sizeof sql, create ? "CREATE DATABASE %s" : "DROP DATABASE %s WITH (FORCE)",
             name);
    vd_status st = vd_pg_exec(c, sql, create ? "create database" : "drop database", &err);
    PQfinish(c);
    if (st != VD_OK) {
        fprintf(stderr, "test_blobs: %s\n", vd_error_text(&err));
        return -1;
    }
    const char *slash = strrchr(base, '/');
    snprintf(url, n, "%.*s/%s", (int)(slash - base), base, name);
    return 0;
}

int main(void)
{
    int rc = vd_test_run_all();
    const char *pg = getenv("VISIOND_TEST_PG");
    char url[600];
    if (rc == 0 && pg && *pg && strrchr(pg, '/') && pg_db(1, url, sizeof url) == 0) {
        fprintf(stderr, "test_blobs: again on PostgreSQL\n");
        setenv("VISIOND_TEST_PG_BLOBS", url, 1);
        g_pg = 1;
        rc = vd_test_run_all();
        pg_db(0, url, sizeof url);
    } else if (rc == 0 && pg && *pg) {
        rc = 1;
    }
    return rc;
}
