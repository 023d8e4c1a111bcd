/* test_queue_pg.c: what is particular to the PostgreSQL queue backend (queue_pg*.c); the
 * contract itself runs in test_queue.c. Needs $VISIOND_TEST_PG (skips without it): every
 * test gets a database of its own (vdtest_pg.h).
 *
 * Faults are made for real: a connection cut by pg_terminate_backend, a reply lost on the
 * way back (a relay between the queue and the server that drops the connection right after
 * the server has committed), a full disk (a trigger raising SQLSTATE 53100, the class
 * PostgreSQL uses for it). */
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "queue/queue.h"
#include "vdtest.h"
#include "vdtest_pg.h"

/* A fresh database, or skip. */
static int fresh(char *url, size_t n)
{
    char why[512];
    if (!vd_test_pg_fresh(url, n, why, sizeof why)) {
        vd_test_skip(why);
        return 0;
    }
    return 1;
}

/* Runs sql on the database at url; returns 1 when it succeeded. */
static int sql_on(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    int ok = PQstatus(c) == CONNECTION_OK && vd_test_pg_exec(c, sql, NULL, 0);
    PQfinish(c);
    return ok;
}

VD_TEST(postgres_urls_open_the_postgres_backend)
{
    char url[512];
    if (!fresh(url, sizeof url)) return;
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    CHECK_EQ_STR(vd_queue_backend(q), "postgres");
    vd_queue_close(q);
    /* a database that does not exist: one clear error, no wait */
    char bad[600];
    snprintf(bad, sizeof bad, "%s dbname='vdtest_no_such_db'", url);
    CHECK_EQ_INT(vd_queue_open(bad, &q, &err), VD_ERR_NOT_FOUND);
    printf("    no such database: %s\n", err.msg);
}

/* serve and up log the queue URL through vd_queue_url_shown: no password in any form */
VD_TEST(queue_urls_are_shown_without_passwords)
{
    const char *urls[] = {
        "postgres://vd:s3cret@db:5432/visiond", "postgresql://vd:s3cret@db/visiond?sslmode=require",
        "host=db dbname=visiond user=vd password=s3cret",
        "host=db password='s3cret x' dbname=visiond", "redis://:s3cret@127.0.0.1:6379/0"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char buf[256];
        vd_queue_url_shown(urls[i], buf, sizeof buf);
        printf("    %s\n", buf);
        CHECK(strstr(buf, "s3cret") == NULL);
        CHECK(strstr(buf, "***") != NULL);
    }
    char buf[256];
    CHECK_EQ_STR(vd_queue_url_shown("sqlite:/var/lib/visiond/visiond.db", buf, sizeof buf),
                 "sqlite:/var/lib/visiond/visiond.db");
}

VD_TEST(processes_starting_together_create_the_schema_once)
{
    char url[512];
    if (!fresh(url, sizeof url)) return;
    enum { N = 6 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        fflush(NULL);
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            vd_queue *q;
            vd_error err;
            if (vd_queue_open(url, &q, &err) != VD_OK) {
                fprintf(stderr, "open: %s\n", err.msg);
                _exit(1);
            }
            vd_status st = vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, NULL, &err);
            vd_queue_close(q);
            _exit(st == VD_OK ? 0 : 2);
        }
    }
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_QUEUED], N);
    vd_queue_close(q);
}

VD_TEST(a_newer_schema_is_refused)
{
    char url[512];
    if (!fresh(url, sizeof url)) return;
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    vd_queue_close(q);
    CHECK(sql_on(url, "UPDATE vd_queue_schema SET version = 99"));
    CHECK_EQ_INT(vd_queue_open(url, &q, &err), VD_ERR_DB);
    CHECK(strstr(err.msg, "newer") != NULL);
}

VD_TEST(a_full_disk_is_nospace)
{
    char url[512];
    if (!fresh(url, sizeof url)) return;
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    CHECK(sql_on(url, "CREATE FUNCTION vd_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                      " RAISE EXCEPTION 'could not extend file: No space left on device'"
                      " USING ERRCODE = '53100'; END $$;"
                      "CREATE TRIGGER vd_full BEFORE INSERT ON vd_queue_jobs"
                      " FOR EACH ROW EXECUTE FUNCTION vd_full()"));
    CHECK_EQ_INT(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, NULL, &err), VD_ERR_NOSPACE);
    printf("    %s\n", err.msg);
    vd_queue_close(q);
}

VD_TEST(invalid_utf8_in_a_failure_message_is_kept_readable)
{
    char url[512];
    if (!fresh(url, sizeof url)) return;
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_OK(vd_queue_fail(q, id, "w", "bad file \xff\xfe.jpg: caf\xc3\xa9", 0, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_STR(j.error, "bad file ??.jpg: caf\xc3\xa9");
    vd_job_clear(&j);
    vd_queue_close(q);
}

/* ---- waking idle workers ---------------------------------------------------------------- */

/* Waits up to 20 s for fd; returns 1 when it became readable. */
static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 20000) == 1;
}

VD_TEST(an_enqueue_wakes_the_listening_worker)
{
    char url[512];
    if (!fresh(url, sizeof url)) return;
    vd_queue *w, *api;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &w, &err));
    CHECK_OK(vd_queue_open(url, &api, &err));
    int fd = vd_queue_wake_fd(w);
    CHECK(fd >= 0);
    vd_job j = {0};
    CHECK_EQ_INT(vd_queue_reserve(w, "w", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    CHECK_EQ_INT(vd_queue_woken(w), 0);

    char id[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(api, &(vd_enqueue_opts){.type = "t"}, id, &err));
    CHECK(readable(vd_queue_wake_fd(w)));
    CHECK_EQ_INT(vd_queue_woken(w), 1);
    CHECK_OK(vd_queue_reserve(w, "w", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    vd_job_clear(&j);

    /* a release puts a job back in line: announced too (here to the releasing connection
     * itself, whose libpq has it already: woken says so without a wait) */
    CHECK_OK(vd_queue_release(w, id, "w", NULL, &err));
    CHECK_EQ_INT(vd_queue_woken(w), 1);

    /* a delayed job is not runnable yet: no announcement (the periodic reserve finds it) */
    CHECK_OK(vd_queue_reserve(w, "w", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_OK(
        vd_queue_enqueue(api, &(vd_enqueue_opts){.type = "t", .delay_ms = 3600000}, NULL, &err));
    CHECK_OK(vd_queue_enqueue(api, &(vd_enqueue_opts){.type = "t"}, NULL, &err));
    CHECK(readable(vd_queue_wake_fd(w))); /* the second one's */
    vd_queue_close(api);
    vd_queue_close(w);

    /* the other backends have no wake descriptor */
    vd_queue *sq;
    char path[600];
    snprintf(path, sizeof path, "sqlite:%s/q.db", vd_test_tmpdir());
    CHECK_OK(vd_queue_open(path, &sq, &err));
    CHECK_EQ_INT(vd_queue_wake_fd(sq), -1);
    CHECK_EQ_INT(vd_queue_woken(sq), 0);
    vd_queue_close(sq);
}

/* ---- reconnecting --------------------------------------------------------------------------- */

VD_TEST(a_cut_connection_is_reopened)
{
    char url[512];
    if (!fresh(url, sizeof url)) return;
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    int fd = vd_queue_wake_fd(q);
    CHECK(fd >= 0);
    char id[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, id, &err));
    CHECK(sql_on(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <> pg_backend_pid()"));
    /* the idle worker hears the connection go (the wake fd turns readable) and looks */
    CHECK(readable(fd));
    CHECK_EQ_INT(vd_queue_woken(q), 1);
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    vd_job_clear(&j);
    CHECK(vd_queue_wake_fd(q) >= 0); /* listening again on the new connection */
    /* and a cut in the middle of work: the next call reconnects by itself */
    CHECK(sql_on(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <> pg_backend_pid()"));
    CHECK_OK(vd_queue_complete(q, id, "w", "{}", &err));
    vd_queue_close(q);
}

/* A relay between the queue and the server. Armed with a tag (write it to arm_fd), it cuts
 * both sides as soon as the server answers a command with that tag ("COMMIT", "UPDATE 1"):
 * the server did it, the client never hears so and must repeat the call. */
typedef struct {
    pid_t pid;
    int port;
    int arm_fd;
} relay;

static void relay_serve(int lfd, int ctl, int pg_port)
{
    char tag[32] = "";
    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) _exit(0);
        int sfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)pg_port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(sfd, (struct sockaddr *)&sa, sizeof sa) != 0) _exit(3);
        for (int open = 1; open;) {
            struct pollfd p[3] = {{.fd = cfd, .events = POLLIN},
                                  {.fd = sfd, .events = POLLIN},
                                  {.fd = ctl, .events = POLLIN}};
            if (poll(p, 3, -1) < 0) continue;
            char buf[65536];
            if (p[2].revents) {
                ssize_t n = read(ctl, tag, sizeof tag - 1);
                if (n <= 0) _exit(0);
                tag[n] = '\0';
            }
            for (int i = 0; i < 2 && open; i++) {
                if (!p[i].revents) continue;
                ssize_t n = read(p[i].fd, buf, sizeof buf);
                if (n <= 0) {
                    open = 0;
                    break;
                }
                if (i == 1 && tag[0] && memmem(buf, (size_t)n, tag, strlen(tag) + 1)) {
                    tag[0] = '\0'; /* the reply is lost with the connection */
                    open = 0;
                    break;
                }
                if (write(p[1 - i].fd, buf, (size_t)n) != n) open = 0;
            }
        }
        close(cfd);
        close(sfd);
    }
}

static int relay_start(relay *r, int pg_port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 8) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    r->port = ntohs(sa.sin_port);
    int pfd[2];
    if (pipe(pfd) != 0) return 0;
    fflush(NULL);
    r->pid = fork();
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a test that stopped early */
        close(pfd[1]);
        relay_serve(lfd, pfd[0], pg_port);
        _exit(0);
    }
    close(lfd);
    close(pfd[0]);
    r->arm_fd = pfd[1];
    return r->pid > 0;
}

static void relay_arm(relay *r, const char *tag)
{
    if (write(r->arm_fd, tag, strlen(tag)) < 0) perror("relay arm");
    vd_sleep_ms(50); /* the relay reads it before the call's reply comes */
}

static void relay_stop(relay *r)
{
    close(r->arm_fd);
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
}

/* A fresh database (url) and a queue handle on it through a relay (r). Returns 1 when both
 * are there; 0 when the test was skipped (not a TCP address) or failed. */
static int relayed_queue(char *url, size_t n, relay *r, vd_queue **q)
{
    if (!fresh(url, n)) return 0;
    PGconn *c = PQconnectdb(url);
    int pg_port = PQstatus(c) == CONNECTION_OK ? atoi(PQport(c)) : 0;
    int tcp = PQstatus(c) == CONNECTION_OK && PQhost(c) && PQhost(c)[0] != '/';
    PQfinish(c);
    if (!tcp || pg_port <= 0) {
        vd_test_skip("$VISIOND_TEST_PG is not a TCP address");
        return 0;
    }
    if (!relay_start(r, pg_port)) {
        vd_test_fail_at(__FILE__, __LINE__, "could not start the relay");
        return 0;
    }
    char rurl[600];
    snprintf(rurl, sizeof rurl, "%s host='127.0.0.1' port='%d'", url, r->port);
    vd_error err;
    if (vd_queue_open(rurl, q, &err) == VD_OK) return 1;
    vd_test_fail_at(__FILE__, __LINE__, "%s", err.msg);
    relay_stop(r);
    return 0;
}

VD_TEST(a_call_whose_reply_was_lost_is_repeated_safely)
{
    char url[512];
    relay r;
    vd_queue *q;
    if (!relayed_queue(url, sizeof url, &r, &q)) return;
    vd_error err;
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1], d[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 2}, a, &err));
    CHECK_OK(vd_queue_enqueue(
        q,
        &(vd_enqueue_opts){.type = "t", .priority = 1, .max_retries = 3, .retry_base_ms = 3600000},
        b, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, d, &err));

    /* reserve: the repeat hands back the job the lost reply carried (not a, then b) */
    vd_job j = {0};
    relay_arm(&r, "COMMIT");
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, a);
    CHECK_EQ_INT(j.attempts, 1);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, b);
    vd_job_clear(&j);

    /* complete: done once, the first result stands */
    relay_arm(&r, "UPDATE 1");
    CHECK_OK(vd_queue_complete(q, a, "w1", "{\"n\":1}", &err));
    CHECK_OK(vd_queue_get(q, a, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FINISHED);
    vd_job_clear(&j);

    /* fail: the repeat finds the job scheduled by its own first try, not lease_lost */
    relay_arm(&r, "COMMIT");
    CHECK_OK(vd_queue_fail(q, b, "w1", "flaky", 1, &err));
    CHECK_OK(vd_queue_get(q, b, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_SCHEDULED);
    CHECK_EQ_INT(j.attempts, 1);
    vd_job_clear(&j);

    /* cancel and enqueue with a chosen id: applied once, answered ok */
    relay_arm(&r, "UPDATE 1");
    CHECK_OK(vd_queue_cancel(q, d, &err));
    relay_arm(&r, "SELECT 1");
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .id = "mine"}, NULL, &err));
    CHECK_EQ_INT(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .id = "mine"}, NULL, &err),
                 VD_ERR_STATE);
    int64_t cnt[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, cnt, &err));
    CHECK_EQ_INT(cnt[VD_JOB_FINISHED], 1);
    CHECK_EQ_INT(cnt[VD_JOB_SCHEDULED], 1);
    CHECK_EQ_INT(cnt[VD_JOB_CANCELED], 1);
    CHECK_EQ_INT(cnt[VD_JOB_QUEUED], 1);
    CHECK_EQ_INT(cnt[VD_JOB_STARTED], 0);
    vd_queue_close(q);
    relay_stop(&r);
}

/* The transaction id that last wrote job id's row (its xmin), into out; 1 when read. */
static int row_xmin(const char *url, const char *id, char *out, size_t n)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT xmin FROM vd_queue_jobs WHERE id = '%s'", id);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok) snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return ok && out[0];
}

/* vd_queue_complete_reserve on PostgreSQL is one transaction: the finished job and the one it
 * reserved carry the same xmin. Its COMMIT's reply lost (the relay cuts the connection): the
 * repeat finds the job the lost commit took, with the complete (one attempt, first result). */
VD_TEST(complete_reserve_is_one_transaction_and_survives_a_lost_reply)
{
    char url[512];
    relay r;
    vd_queue *q;
    if (!relayed_queue(url, sizeof url, &r, &q)) return;
    vd_error err;
    char id[4][VD_ID_LEN + 1];
    for (int i = 0; i < 4; i++)
        CHECK_OK(
            vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 9 - i}, id[i], &err));
    vd_job j = {0}, next = {0};
    int got = 0;
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id[0]);
    vd_job_clear(&j);

    CHECK_OK(vd_queue_complete_reserve(q, id[0], "w1", "{}", 60000, NULL, 0, &next, &got, &err));
    CHECK_EQ_INT(got, 1);
    CHECK_EQ_STR(next.id, id[1]);
    vd_job_clear(&next);
    char x0[32] = "", x1[32] = "";
    CHECK(row_xmin(url, id[0], x0, sizeof x0) && row_xmin(url, id[1], x1, sizeof x1));
    CHECK_EQ_STR(x0, x1); /* one transaction wrote both */

    relay_arm(&r, "COMMIT");
    CHECK_OK(
        vd_queue_complete_reserve(q, id[1], "w1", "{\"n\":1}", 60000, NULL, 0, &next, &got, &err));
    CHECK_EQ_INT(got, 1);
    CHECK_EQ_STR(next.id, id[2]); /* the job the lost commit took, not id[3] */
    CHECK_EQ_INT(next.attempts, 1);
    vd_job_clear(&next);
    CHECK_OK(vd_queue_get(q, id[1], &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FINISHED);
    CHECK_EQ_STR(j.result, "{\"n\":1}");
    vd_job_clear(&j);
    int64_t cnt[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, cnt, &err));
    CHECK_EQ_INT(cnt[VD_JOB_FINISHED], 2);
    CHECK_EQ_INT(cnt[VD_JOB_STARTED], 1);
    CHECK_EQ_INT(cnt[VD_JOB_QUEUED], 1);
    vd_queue_close(q);
    relay_stop(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return vd_test_run_all();
}
