/* test_core.c: err, util and log helpers. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/procstat.h"
#include "core/util.h"
#include "queue/queue.h"
#include "vdtest.h"

VD_TEST(error_set_formats_and_returns_code)
{
    vd_error err;
    vd_error_clear(&err);
    CHECK_EQ_STR(vd_error_text(&err), "success");
    CHECK_EQ_INT(vd_error_set(&err, VD_ERR_LIMIT, "too many pixels: %d > %d", 9, 4), VD_ERR_LIMIT);
    CHECK_EQ_STR(err.msg, "too many pixels: 9 > 4");
    CHECK_EQ_STR(vd_status_name(VD_ERR_NOT_FOUND), "not_found");
    CHECK_EQ_STR(vd_status_name((vd_status)999), "unknown");
    CHECK_EQ_INT(vd_error_set(NULL, VD_ERR_IO, "ignored"), VD_ERR_IO);
}

VD_TEST(ids_are_hex_and_distinct)
{
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1];
    vd_id_new(a);
    vd_id_new(b);
    CHECK_EQ_INT(strlen(a), VD_ID_LEN);
    CHECK(strspn(a, "0123456789abcdef") == VD_ID_LEN);
    CHECK(strcmp(a, b) != 0);
}

/* Job ids start with the wall clock in milliseconds (12 hex characters), so a job id made
 * later sorts later and the id index of a queue grows at its end (docs/queue.md, "Bulk
 * enqueue"); the other 20 characters are random. */
VD_TEST(job_ids_sort_by_creation_time)
{
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1], c[VD_ID_LEN + 1];
    int64_t before = vd_now_ms();
    vd_job_id_new(a);
    vd_job_id_new(b);
    int64_t after = vd_now_ms();
    CHECK_EQ_INT(strlen(a), VD_ID_LEN);
    CHECK(strspn(a, "0123456789abcdef") == VD_ID_LEN);
    CHECK(strcmp(a + 12, b + 12) != 0);
    char stamp[13];
    memcpy(stamp, a, 12);
    stamp[12] = '\0';
    int64_t ms = (int64_t)strtoull(stamp, NULL, 16);
    CHECK(ms >= before && ms <= after);
    while (vd_now_ms() <= after)
        vd_sleep_ms(1);
    vd_job_id_new(c);
    CHECK(strcmp(a, c) < 0 && strcmp(b, c) < 0);
}

/* Ids come from a pool of random bytes drawn ahead (core/util.c): a forked child (a
 * work-horse) must not hand out the bytes its parent hands out next. */
VD_TEST(ids_after_fork_differ_from_the_parents)
{
    char first[VD_ID_LEN + 1];
    vd_id_new(first); /* fills the pool */
    for (int round = 0; round < 3; round++) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            char c[VD_ID_LEN + 1];
            vd_id_new(c);
            ssize_t w = write(fds[1], c, VD_ID_LEN);
            _exit(w == VD_ID_LEN ? 0 : 1);
        }
        CHECK(pid > 0);
        close(fds[1]);
        char p[VD_ID_LEN + 1], c[VD_ID_LEN + 1] = "";
        vd_id_new(p);
        CHECK_EQ_INT(read(fds[0], c, VD_ID_LEN), VD_ID_LEN);
        close(fds[0]);
        int st = -1;
        CHECK(waitpid(pid, &st, 0) == pid && st == 0);
        c[VD_ID_LEN] = '\0';
        CHECK_EQ_INT(strspn(c, "0123456789abcdef"), VD_ID_LEN);
        CHECK(strcmp(p, c) != 0);
        CHECK(strcmp(first, c) != 0);
    }
}

VD_TEST(strlcpy_truncates_and_terminates)
{
    char buf[4];
    vd_strlcpy(buf, "abcdef", sizeof buf);
    CHECK_EQ_STR(buf, "abc");
    vd_strlcpy(buf, NULL, sizeof buf);
    CHECK_EQ_STR(buf, "");
}

VD_TEST(backoff_doubles_caps_and_jitters)
{
    CHECK_EQ_INT(vd_queue_backoff_ms(100, 100000, 1, 0.999999), 99);
    CHECK_EQ_INT(vd_queue_backoff_ms(100, 100000, 3, 0.0), 200);
    CHECK_EQ_INT(vd_queue_backoff_ms(100, 1000, 30, 0.0), 500);
    CHECK(vd_queue_backoff_ms(0, 0, 1, 0.0) == 500); /* defaults: 1 s base */
}

VD_TEST(job_state_names_round_trip)
{
    for (int s = 0; s < VD_JOB__NSTATES; s++) {
        vd_job_state back;
        CHECK_EQ_INT(vd_job_state_parse(vd_job_state_name((vd_job_state)s), &back), VD_OK);
        CHECK_EQ_INT(back, s);
    }
    vd_job_state x;
    CHECK_EQ_INT(vd_job_state_parse("running", &x), VD_ERR_INVALID);
}

VD_TEST(log_escapes_control_bytes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/log", vd_test_tmpdir());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    vd_log_init("t", VD_LOG_INFO, fd);
    VD_INFO("GET /jobs/%s 404", "a\x1b[2Jb\x07"
                                "c\nd\re\x7f\x01");
    vd_log_init("t", VD_LOG_INFO, 2);
    char buf[512] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    CHECK(n > 0);
    CHECK(strstr(buf, "GET /jobs/a\\x1b[2Jb\\x07c d e\\x7f\\x01 404\n") != NULL);
    for (ssize_t i = 0; i < n - 1; i++) /* one line, no control byte but its newline */
        CHECK((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f);
    CHECK_EQ_INT(buf[n - 1], '\n');
}

VD_TEST(job_ids_are_one_url_segment)
{
    CHECK(vd_job_id_valid("my-job-1"));
    CHECK(vd_job_id_valid("A.b_c-9"));
    CHECK(vd_job_id_valid("0123456789abcdef0123456789abcdef"));
    CHECK(!vd_job_id_valid("0123456789abcdef0123456789abcdef0")); /* 33 */
    CHECK(!vd_job_id_valid(""));
    CHECK(!vd_job_id_valid(NULL));
    CHECK(!vd_job_id_valid("a/b"));
    CHECK(!vd_job_id_valid(".."));
    CHECK(!vd_job_id_valid(".hidden"));
    CHECK(!vd_job_id_valid("esc\x1b"));
    CHECK(!vd_job_id_valid("nl\n"));
    CHECK(!vd_job_id_valid("caf\xc3\xa9"));
}

int main(void)
{
    return vd_test_run_all();
}

#if defined(__SANITIZE_ADDRESS__)
#define VD_TEST_ASAN 1 /* gcc */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VD_TEST_ASAN 1 /* clang */
#endif
#endif
#ifdef VD_TEST_ASAN
#define GLIBC_MALLOC 0 /* ASan's allocator replaces it: mallinfo2 sees nothing */
#else
#define GLIBC_MALLOC 1
#endif

VD_TEST(procstat_sees_fds_heap_and_sqlite_grow)
{
    vd_procstat a, b;
    vd_procstat_read(&a);
    CHECK(a.rss_bytes > 0);
    CHECK(a.threads >= 1);
    CHECK(a.open_fds >= 3);
    CHECK(a.cpu_seconds >= 0);
    CHECK(!GLIBC_MALLOC || a.malloc_in_use > 0);
    int fds[10];
    for (int i = 0; i < 10; i++)
        fds[i] = open("/dev/null", O_RDONLY);
    char *block = malloc(8 << 20);
    CHECK(block != NULL);
    memset(block, 1, 8 << 20);
    sqlite3 *db = NULL;
    CHECK_EQ_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(100000));",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    vd_procstat_read(&b);
    CHECK_EQ_INT(b.open_fds - a.open_fds, 10);
    CHECK(!GLIBC_MALLOC || b.malloc_in_use - a.malloc_in_use >= (8 << 20));
    CHECK(b.rss_bytes - a.rss_bytes >= (4 << 20));
    CHECK(b.sqlite_in_use - a.sqlite_in_use >= 100000);
    sqlite3_close(db);
    free(block);
    for (int i = 0; i < 10; i++)
        close(fds[i]);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    vd_procstat_write_prometheus(&b, f);
    fclose(f);
    CHECK(strstr(text,
                 "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ") !=
          NULL);
    CHECK(strstr(text, "\nvisiond_sqlite_memory_bytes ") != NULL);
    b.open_fds = -1;
    free(text);
    text = NULL;
    f = open_memstream(&text, &len);
    vd_procstat_write_prometheus(&b, f);
    fclose(f);
    CHECK(strstr(text, "process_open_fds") == NULL);
    free(text);
}
