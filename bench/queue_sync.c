/* queue_sync.c: the SQLite queue's cost of durability. Runs N jobs through
 * enqueue + reserve + complete on a synchronous=FULL queue (the default) and
 * on a synchronous=NORMAL one (its peer), in the same run, and prints the
 * per-job times and their ratio.
 *
 *   cc -O2 -std=gnu17 -Isrc bench/queue_sync.c build/libvisiond.a \
 *      $(pkg-config --libs sqlite3 jansson) -lm -o build/queue_sync
 *   build/queue_sync DIR [N]        (DIR on the disk the queue will live on) */
#include <stdio.h>
#include <stdlib.h>

#include "queue/queue.h"

static double per_job_ms(const char *url, int n)
{
    vd_queue *q;
    vd_error err;
    if (vd_queue_open(url, &q, &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    int64_t t0 = vd_mono_us();
    for (int i = 0; i < n; i++) {
        vd_enqueue_opts o = {.type = "bench"};
        if (vd_queue_enqueue(q, &o, NULL, &err) != VD_OK) exit(2);
    }
    for (int i = 0; i < n; i++) {
        vd_job j = {0};
        if (vd_queue_reserve(q, "bench", 60000, NULL, 0, &j, &err) != VD_OK) exit(3);
        if (vd_queue_complete(q, j.id, "bench", "{}", &err) != VD_OK) exit(4);
        vd_job_clear(&j);
    }
    int64_t t1 = vd_mono_us();
    vd_queue_close(q);
    return (double)(t1 - t0) / 1000.0 / n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: queue_sync DIR [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    char full[1024], normal[1024];
    snprintf(full, sizeof full, "sqlite:%s/bench-full-%d.db", argv[1], (int)vd_now_ms() % 100000);
    snprintf(normal, sizeof normal, "sqlite:%s/bench-normal-%d.db?sync=normal", argv[1],
             (int)vd_now_ms() % 100000);
    double f = per_job_ms(full, n), m = per_job_ms(normal, n);
    printf("%d jobs, enqueue+reserve+complete per job: synchronous=FULL %.3f ms, NORMAL %.3f ms; "
           "FULL/NORMAL = %.2f\n",
           n, f, m, f / m);
    return 0;
}
