/* test_sqlite_wal.c: many processes opening a fresh queue and store at the
 * same moment all succeed (a regression: a worker started beside the api on a
 * fresh data directory died with "set WAL mode: database is locked"). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sqlite_wal.h"
#include "queue/queue.h"
#include "store/store.h"
#include "vdtest.h"

#define NPROC 12

/* Forks NPROC children that wait on one pipe, then all open `what` at path. */
static int open_all_at_once(const char *path, int store)
{
    int gate[2];
    if (pipe(gate) != 0) return -1;
    pid_t kids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char c;
            close(gate[1]);
            if (read(gate[0], &c, 1) < 0) _exit(3);
            vd_error err;
            int rc;
            if (store) {
                vd_store *s = NULL;
                rc = vd_store_open(path, NULL, &s, &err);
                vd_store_close(s);
            } else {
                char url[600];
                snprintf(url, sizeof url, "sqlite:%s", path);
                vd_queue *q = NULL;
                rc = vd_queue_open(url, &q, &err);
                vd_queue_close(q);
            }
            if (rc != VD_OK) fprintf(stdout, "    child %d: %s\n", i, err.msg);
            _exit(rc == VD_OK ? 0 : 1);
        }
    }
    close(gate[0]);
    close(gate[1]); /* EOF wakes every child at once */
    int failed = 0;
    for (int i = 0; i < NPROC; i++) {
        int status;
        waitpid(kids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
    }
    return failed;
}

VD_TEST(concurrent_first_open_of_a_queue_succeeds)
{
    for (int round = 0; round < 5; round++) {
        char path[400];
        snprintf(path, sizeof path, "%s/q%d/visiond.db", vd_test_tmpdir(), round);
        CHECK_EQ_INT(open_all_at_once(path, 0), 0);
    }
}

VD_TEST(concurrent_first_open_of_a_store_succeeds)
{
    for (int round = 0; round < 5; round++) {
        char path[400];
        snprintf(path, sizeof path, "%s/s%d/store.db", vd_test_tmpdir(), round);
        CHECK_EQ_INT(open_all_at_once(path, 1), 0);
    }
}

int main(void)
{
    return vd_test_run_all();
}
