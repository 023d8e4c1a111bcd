/* queue_redis.c: what appendfsync always costs the Redis queue. Runs N jobs
 * through enqueue + reserve + complete, from 1 client and from K clients at
 * once, against each queue URL given (e.g. a redis-server with appendfsync
 * everysec, its peer with always, and a SQLite queue), in the same run, and
 * prints per-job times and the ratio of each to the first URL.
 * bench/queue_redis.sh starts the servers and runs it.
 *
 *   cc -O2 -std=gnu17 -Isrc bench/queue_redis.c build/libvisiond.a \
 *      $(pkg-config --libs hiredis sqlite3 jansson) -lm -o build/queue_redis
 *   build/queue_redis N K URL...                                              */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/queue.h"

/* Enqueues, then reserves and completes n jobs; exits non-zero on an error. */
static void run_jobs(const char *url, int n, const char *worker)
{
    vd_queue *q;
    vd_error err;
    if (vd_queue_open(url, &q, &err) != VD_OK) {
        fprintf(stderr, "%s: %s\n", url, err.msg);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        vd_enqueue_opts o = {.type = "bench"};
        if (vd_queue_enqueue(q, &o, NULL, &err) != VD_OK) exit(2);
    }
    for (int i = 0; i < n; i++) {
        vd_job j = {0};
        if (vd_queue_reserve(q, worker, 60000, NULL, 0, &j, &err) != VD_OK) exit(3);
        if (vd_queue_complete(q, j.id, worker, "{}", &err) != VD_OK) exit(4);
        vd_job_clear(&j);
    }
    vd_queue_close(q);
}

/* Returns wall ms per job with k processes sharing n jobs. */
static double per_job_ms(const char *url, int n, int k)
{
    int64_t t0 = vd_mono_us();
    for (int i = 0; i < k; i++) {
        fflush(NULL);
        pid_t p = fork();
        if (p < 0) exit(5);
        if (p == 0) {
            char w[32];
            snprintf(w, sizeof w, "bench-%d", i);
            run_jobs(url, n / k, w);
            _exit(0);
        }
    }
    for (int i = 0; i < k; i++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "%s: a client failed\n", url);
            exit(6);
        }
    }
    return (double)(vd_mono_us() - t0) / 1000.0 / (n / k * k);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: queue_redis N K URL...\n");
        return 2;
    }
    int n = atoi(argv[1]), k = atoi(argv[2]);
    if (n < 1 || k < 1) return 2;
    double base1 = 0, basek = 0;
    for (int u = 3; u < argc; u++) {
        double one = per_job_ms(argv[u], n, 1), many = per_job_ms(argv[u], n, k);
        if (u == 3) base1 = one, basek = many;
        printf("%-60s 1 client %.3f ms/job (x%.2f)   %d clients %.3f ms/job (x%.2f)\n", argv[u],
               one, one / base1, k, many, many / basek);
    }
    return 0;
}
