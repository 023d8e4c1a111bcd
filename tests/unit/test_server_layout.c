/* test_server_layout.c: the model server's layout choice (infer/server_layout.h)
 * on measured costs fed by hand: this CPU's, an accelerator's, the latency
 * bound, the margin that keeps batches and parallel runs out unless they pay. */
#include <stdint.h>
#include <string.h>

#include "infer/server_layout.h"
#include "vdtest.h"

/* A row of `runs` runs x `threads` threads, sizes 1, 2, 4, ... with these round times (us). */
static srv_calib_row row(int runs, int threads, size_t n, const int64_t *us)
{
    srv_calib_row r;
    memset(&r, 0, sizeof r);
    r.runs = runs;
    r.threads = threads;
    r.nsizes = n;
    for (size_t i = 0; i < n; i++) {
        r.batch[i] = (size_t)1 << i;
        r.round_us[i] = us[i];
    }
    return r;
}

VD_TEST(this_cpu_two_single_threaded_runs_of_one_image_beat_any_batch)
{
    /* mobilenet_v2 on the 2-core box (issue 17): the shared pool makes 114.5
     * images/s at batch 1 and less with every bigger batch; two runs of one
     * thread each make ~160/s */
    srv_calib_row rows[2];
    rows[0] = row(1, 0, 4, (const int64_t[]){8734, 19000, 60000, 316000});
    rows[1] = row(2, 1, 2, (const int64_t[]){12500, 30000});
    srv_layout l = vd_srv_layout_choose(rows, 2, 2000);
    CHECK_EQ_INT(l.runs, 2);
    CHECK_EQ_INT(l.threads, 1);
    CHECK_EQ_INT((int)l.batch, 1);
    CHECK(l.ips > 159.0 && l.ips < 161.0);
    CHECK_EQ_INT((int)l.run_us, 12500);
}

VD_TEST(an_accelerator_batches_up_to_the_latency_bound)
{
    /* a batch costs little more than one image */
    srv_calib_row r = row(1, 0, 4, (const int64_t[]){1000, 1050, 1100, 1300});
    srv_layout l = vd_srv_layout_choose(&r, 1, 2000);
    CHECK_EQ_INT((int)l.batch, 8);
    CHECK_EQ_INT(l.runs, 1);
    /* a bound of 100 us admits batches whose round costs at most 100 us more than batch 1 */
    l = vd_srv_layout_choose(&r, 1, 100);
    CHECK_EQ_INT((int)l.batch, 4);
    /* a bound of 0: no batching at all */
    l = vd_srv_layout_choose(&r, 1, 0);
    CHECK_EQ_INT((int)l.batch, 1);
}

VD_TEST(a_batch_or_a_parallel_run_must_win_by_more_than_the_margin)
{
    /* batch 2 is 2% faster per image: not worth the latency */
    srv_calib_row r = row(1, 0, 2, (const int64_t[]){10000, 19600});
    srv_layout l = vd_srv_layout_choose(&r, 1, 1000000);
    CHECK_EQ_INT((int)l.batch, 1);
    /* 10% faster: taken */
    r = row(1, 0, 2, (const int64_t[]){10000, 18000});
    l = vd_srv_layout_choose(&r, 1, 1000000);
    CHECK_EQ_INT((int)l.batch, 2);
    /* two runs at once 1% faster than one: one run */
    srv_calib_row rows[2] = {row(1, 0, 1, (const int64_t[]){10000}),
                             row(2, 1, 1, (const int64_t[]){19800})};
    l = vd_srv_layout_choose(rows, 2, 1000000);
    CHECK_EQ_INT(l.runs, 1);
    CHECK_EQ_INT(l.threads, 0);
    /* ... 25% faster: two runs */
    rows[1] = row(2, 1, 1, (const int64_t[]){16000});
    l = vd_srv_layout_choose(rows, 2, 1000000);
    CHECK_EQ_INT(l.runs, 2);
}

VD_TEST(the_smallest_batch_within_the_margin_of_the_best_wins)
{
    /* batch 4 and 8 within 1% of each other, both 2x batch 1: batch 4 */
    srv_calib_row r = row(1, 0, 4, (const int64_t[]){10000, 12000, 20000, 39800});
    srv_layout l = vd_srv_layout_choose(&r, 1, 1000000);
    CHECK_EQ_INT((int)l.batch, 4);
}

VD_TEST(unmeasured_points_are_never_chosen)
{
    srv_layout l = vd_srv_layout_choose(NULL, 0, 2000);
    CHECK_EQ_INT(l.runs, 1);
    CHECK_EQ_INT(l.threads, 0);
    CHECK_EQ_INT((int)l.batch, 1);
    CHECK(l.ips == 0);
    /* a failed point (0) next to a measured one */
    srv_calib_row r = row(1, 0, 2, (const int64_t[]){10000, 0});
    l = vd_srv_layout_choose(&r, 1, 1000000);
    CHECK_EQ_INT((int)l.batch, 1);
    CHECK_EQ_INT((int)l.run_us, 10000);
    /* a batch > 1 without a batch-1 point to bound its latency against */
    srv_calib_row only2;
    memset(&only2, 0, sizeof only2);
    only2.runs = 1;
    only2.nsizes = 1;
    only2.batch[0] = 2;
    only2.round_us[0] = 100;
    l = vd_srv_layout_choose(&only2, 1, 1000000);
    CHECK_EQ_INT((int)l.batch, 1);
    CHECK(l.ips == 0);
}

VD_TEST(a_fixed_batch_model_only_chooses_how_many_runs)
{
    srv_calib_row rows[2] = {row(1, 0, 1, (const int64_t[]){5000}),
                             row(4, 1, 1, (const int64_t[]){8000})};
    srv_layout l = vd_srv_layout_choose(rows, 2, 0);
    CHECK_EQ_INT(l.runs, 4);
    CHECK_EQ_INT((int)l.batch, 1);
    CHECK(l.ips > 499.0 && l.ips < 501.0);
}

int main(void)
{
    return vd_test_run_all();
}

VD_TEST(the_coalescing_wait_is_skipped_while_it_gathers_nothing_and_probed_again)
{
    srv_coalesce c;
    memset(&c, 0, sizeof c);
    /* a fresh model waits; waits that gather nothing, fewer than the limit: still waits */
    for (int i = 0; i < SRV_COALESCE_USELESS - 1; i++) {
        CHECK_EQ_INT(vd_srv_coalesce_wait(&c), 1);
        vd_srv_coalesce_taken(&c, 1, 1);
    }
    CHECK_EQ_INT(vd_srv_coalesce_wait(&c), 1);
    /* a wait that gathered a second request resets the count */
    vd_srv_coalesce_taken(&c, 2, 1);
    for (int i = 0; i < SRV_COALESCE_USELESS; i++) {
        CHECK_EQ_INT(vd_srv_coalesce_wait(&c), 1);
        vd_srv_coalesce_taken(&c, 1, 1);
    }
    /* one client: runs start at once, all but every SRV_COALESCE_PROBE-th */
    int waits = 0;
    for (int i = 0; i < 4 * SRV_COALESCE_PROBE; i++) {
        int w = vd_srv_coalesce_wait(&c);
        if (w) {
            /* a probe keeps waiting however often it is asked until its run starts */
            CHECK_EQ_INT(vd_srv_coalesce_wait(&c), 1);
            waits++;
        }
        vd_srv_coalesce_taken(&c, 1, w);
    }
    CHECK_EQ_INT(waits, 4);
    CHECK_EQ_INT((int)c.skipped, 4 * SRV_COALESCE_PROBE - 4);
    /* a run that found two requests queued (more clients came): waits again */
    CHECK_EQ_INT(vd_srv_coalesce_wait(&c), 0);
    vd_srv_coalesce_taken(&c, 3, 0);
    CHECK_EQ_INT(vd_srv_coalesce_wait(&c), 1);
    /* a run that did not wait out its delay (a full batch came) changes nothing */
    vd_srv_coalesce_taken(&c, 1, 0);
    CHECK_EQ_INT(vd_srv_coalesce_wait(&c), 1);
}
