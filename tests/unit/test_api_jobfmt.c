/* test_api_jobfmt.c: the fast job writer (api/jobfmt.h) gives the same
 * document as queue/job_json.h's vd_job_to_json, and its JSON validator
 * agrees with jansson, on hand-picked and random inputs. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/jobfmt.h"
#include "core/util.h"
#include "queue/job_json.h"
#include "vdtest.h"

/* Compares vd_api_job_text(job) with vd_job_to_json(job): equal as JSON
 * always, and byte for byte when `exact` (compact payload and result). */
static int same(const vd_job *job, int exact)
{
    size_t len = 0;
    char *fast = vd_api_job_text(job, &len);
    json_t *ref = vd_job_to_json(job);
    char *ref_text = json_dumps(ref, JSON_COMPACT);
    json_error_t je;
    json_t *parsed = fast ? json_loads(fast, 0, &je) : NULL;
    int ok = fast && parsed && strlen(fast) == len && json_equal(parsed, ref) &&
             (!exact || strcmp(fast, ref_text) == 0);
    if (!ok)
        fprintf(stdout, "    fast: %s\n    ref:  %s\n    %s\n", fast ? fast : "(null)", ref_text,
                parsed ? "" : je.text);
    json_decref(parsed);
    json_decref(ref);
    free(ref_text);
    free(fast);
    return ok;
}

static void base_job(vd_job *j)
{
    memset(j, 0, sizeof *j);
    strcpy(j->id, "af9804496125f366348d772786a6ec1c");
    strcpy(j->type, "demo.echo");
    j->payload = strdup("{\"paths\":[\"/photos/cat1.jpg\"],\"n\":1}");
    j->priority = -3;
    j->max_retries = 2;
    j->retry_base_ms = 1000;
    j->retry_max_ms = 300000;
    j->result_ttl_ms = -1;
    j->created_ms = 1795912228941;
    j->run_at_ms = 1795912228941;
}

VD_TEST(typical_jobs_are_byte_identical)
{
    vd_job j;
    base_job(&j);
    CHECK(same(&j, 1));
    j.state = VD_JOB_FINISHED;
    j.attempts = 1;
    j.started_ms = 1795912229000;
    j.ended_ms = 1795912230000;
    j.lease_until_ms = 1795912260000;
    strcpy(j.worker, "host-1:1234");
    j.progress_done = 7;
    j.progress_total = 9;
    j.result = strdup("{\"labels\":[\"cat\",\"dog\"],\"acc\":0.875,\"big\":-9223372036854775807}");
    j.error =
        strdup("retry 1: \"quoted\" \\ back\tslash\nnew line \x01\x1f caf\xc3\xa9 \xe2\x82\xac");
    j.cancel_requested = 1;
    CHECK(same(&j, 1));
    j.state = VD_JOB_CANCELED;
    j.timeout_ms = INT64_MAX;
    j.progress_done = INT64_MIN;
    CHECK(same(&j, 1));
    vd_job_clear(&j);
}

VD_TEST(odd_payloads_and_results_follow_job_json)
{
    const char *texts[] = {
        "  { \"a\" : [ 1 , 2.5e3 , -0 , true , false , null ] }\n", /* whitespace: equal only */
        "{bad json",
        "[1,]",
        "{\"a\":1}x",
        "99999999999999999999",
        "-99999999999999999999",
        "1e400",
        "1e-400",
        "1e-310",
        "0.0000000000000000000000000000001",
        "\"\\ud83d\\ude00 smile\"",
        "\"\\ud83d alone\"",
        "\"\\ude00 low\"",
        "\"nul \\u0000 inside\"",
        "\"tab\tinside\"",
        "\"bad \xff utf8\"",
        "\"ok \xc3\xa9\"",
        "\"overlong \xc0\xaf\"",
        "\"surrogate \xed\xa0\x80\"",
        "\"escapes \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
        "\"bad escape \\x\"",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "truex",
        "[true,false,null]",
        "",
        "   ",
        "{\"k\":{\"k\":{\"k\":[[[]]]}}}",
        "{\"dup\":1,\"dup\":2}",
        "{1:2}",
        "[\"a\" \"b\"]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        vd_job j;
        base_job(&j);
        free(j.payload);
        j.payload = strdup(texts[i]);
        j.result = strdup(texts[i]);
        j.error = strdup(texts[i]);
        int ok = same(&j, 0);
        json_t *ref = json_loads(texts[i], JSON_DECODE_ANY, NULL);
        int valid_ref = ref != NULL;
        json_decref(ref);
        int valid = vd_api_json_valid(texts[i]);
        vd_job_clear(&j);
        if (!ok || valid != valid_ref) {
            vd_test_fail_at(__FILE__, __LINE__, "text %zu '%s': same=%d valid=%d jansson=%d", i,
                            texts[i], ok, valid, valid_ref);
            return;
        }
    }
}

VD_TEST(nesting_depth_matches_jansson)
{
    for (int depth = 2040; depth <= 2060; depth += 4) {
        char *t = malloc((size_t)depth * 2 + 1);
        CHECK(t);
        memset(t, '[', (size_t)depth);
        memset(t + depth, ']', (size_t)depth);
        t[depth * 2] = '\0';
        json_t *ref = json_loads(t, JSON_DECODE_ANY, NULL);
        int v = vd_api_json_valid(t);
        int r = ref != NULL;
        json_decref(ref);
        free(t);
        if (v != r) {
            vd_test_fail_at(__FILE__, __LINE__, "depth %d: valid=%d jansson=%d", depth, v, r);
            return;
        }
    }
}

/* Random bytes drawn mostly from JSON's own alphabet, so that many are valid. */
static void random_text(char *out, size_t n)
{
    static const char *pieces[] = {
        "{",        "}",    "[",       "]",       ",",
        ":",        "\"",   "\"k\"",   "1",       "-",
        "0",        ".5",   "e9",      "true",    "null",
        " ",        "\\",   "\\u00e9", "\\ud83d", "\\ude00",
        "\xc3\xa9", "\xff", "\x01",    "\"s\"",   "12345678901234567890"};
    size_t used = 0;
    out[0] = '\0';
    while (used + 24 < n && vd_random_unit() < 0.93) {
        const char *p = pieces[(size_t)(vd_random_unit() * (sizeof pieces / sizeof pieces[0]))];
        size_t l = strlen(p);
        memcpy(out + used, p, l);
        used += l;
        out[used] = '\0';
    }
}

VD_TEST(random_texts_agree_with_jansson)
{
    char text[256];
    int valid_seen = 0;
    for (int i = 0; i < 20000; i++) {
        random_text(text, sizeof text);
        /* Bias towards valid documents: wrap some in an array of strings. */
        json_t *ref = json_loads(text, JSON_DECODE_ANY, NULL);
        int r = ref != NULL;
        json_decref(ref);
        valid_seen += r;
        if (vd_api_json_valid(text) != r) {
            vd_test_fail_at(__FILE__, __LINE__, "'%s': valid=%d jansson=%d", text, !r, r);
            return;
        }
        if (i % 20 == 0) {
            vd_job j;
            base_job(&j);
            j.result = strdup(text);
            j.error = strdup(text);
            vd_strlcpy(j.worker, text, sizeof j.worker);
            int ok = same(&j, 0);
            vd_job_clear(&j);
            CHECK(ok);
        }
    }
    CHECK(valid_seen > 100); /* the generator does reach valid documents */
}

int main(void)
{
    return vd_test_run_all();
}
