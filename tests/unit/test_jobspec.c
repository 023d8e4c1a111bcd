/* test_jobspec.c: the job types of this build without their handlers
 * (jobspec/jobspec.h): the enqueue check shared by POST /jobs and `visiond
 * jobs enqueue`, test types behind VISIOND_TEST_JOBS, default timeouts, and
 * the registry aggregate (pipeline/jobs.h) agreeing with the table. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobspec/jobspec.h"
#include "pipeline/jobs.h"
#include "vdtest.h"
#include "worker/registry.h"

static char D[1024];

static vd_media_roots *roots(void)
{
    char *real = realpath(vd_test_tmpdir(), NULL);
    snprintf(D, sizeof D, "%s", real);
    free(real);
    char p[1200];
    snprintf(p, sizeof p, "%s/media", D);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/media/a.jpg", D);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/outside.jpg", D);
    f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/media", D);
    const char *dirs[1] = {p};
    vd_media_roots *r = NULL;
    vd_error err;
    if (vd_media_roots_new(dirs, 1, &r, &err) != VD_OK) return NULL;
    return r;
}

/* Returns the refusal code of a check ("ok" when accepted). */
static const char *check(const char *type, const char *payload, const vd_media_roots *r,
                         int test_jobs, int any_type, vd_error *err)
{
    vd_job_check_opts o = {.roots = r, .test_jobs = test_jobs, .any_type = any_type};
    vd_job_refusal why;
    vd_status st = vd_job_check(type, payload, &o, &why, err);
    if (st == VD_OK) return "ok";
    return why.code ? why.code : "?";
}

VD_TEST(embed_paths_are_confined_and_outside_is_refused_alike)
{
    vd_media_roots *r = roots();
    CHECK(r != NULL);
    vd_error err;
    char ok[2400], out1[2400], out2[2400];
    snprintf(ok, sizeof ok, "{\"paths\": [\"%s/media/a.jpg\"]}", D);
    CHECK_EQ_STR(check("embed", ok, r, 0, 0, &err), "ok");
    /* the probe's payload: every path outside, existing or not, the same answer */
    CHECK_EQ_STR(check("embed", "{\"paths\": [\"/etc/shadow\"]}", r, 0, 0, &err),
                 "path_outside_media_roots");
    CHECK(strstr(err.msg, "paths[0]") != NULL);
    snprintf(out1, sizeof out1, "{\"paths\": [\"%s/outside.jpg\"]}", D);
    snprintf(out2, sizeof out2, "{\"paths\": [\"%s/outside-missing.jpg\"]}", D);
    CHECK_EQ_STR(check("embed", out1, r, 0, 0, &err), "path_outside_media_roots");
    CHECK(strncmp(err.msg, "embed payload: paths[0]: path is outside", 40) == 0);
    CHECK_EQ_STR(check("embed", out2, r, 0, 0, &err), "path_outside_media_roots");
    CHECK(strncmp(err.msg, "embed payload: paths[0]: path is outside", 40) == 0);
    CHECK_EQ_STR(check("embed", "{\"paths\": [\"/etc/nonexistent\"]}", r, 0, 0, &err),
                 "path_outside_media_roots");
    CHECK_EQ_STR(check("embed", "{\"paths\": [\"relative.jpg\"]}", r, 0, 0, &err),
                 "path_not_absolute");
    snprintf(ok, sizeof ok, "{\"paths\": [\"%s/media/../outside.jpg\"]}", D);
    CHECK_EQ_STR(check("embed", ok, r, 0, 0, &err), "path_dotdot");
    snprintf(ok, sizeof ok, "{\"paths\": [\"%s/media/missing.jpg\"]}", D);
    vd_job_check_opts o = {.roots = r};
    CHECK_EQ_INT(vd_job_check("embed", ok, &o, NULL, &err), VD_ERR_NOT_FOUND);
    /* a server with no roots refuses every path */
    vd_media_roots *none = NULL;
    CHECK_OK(vd_media_roots_new(NULL, 0, &none, &err));
    snprintf(ok, sizeof ok, "{\"paths\": [\"%s/media/a.jpg\"]}", D);
    CHECK_EQ_STR(check("embed", ok, none, 0, 0, &err), "no_media_roots");
    vd_media_roots_free(none);
    /* no roots known (the CLI without --media-root): shape only */
    CHECK_EQ_STR(check("embed", "{\"paths\": [\"/anything/x.jpg\"]}", NULL, 0, 0, &err), "ok");
    CHECK_EQ_STR(check("embed", "{\"paths\": [\"/a/../b.jpg\"]}", NULL, 0, 0, &err), "path_dotdot");
    vd_media_roots_free(r);
}

VD_TEST(payload_shapes)
{
    vd_error err;
    const char *bad[] = {
        "[]",
        "\"x\"",
        "{}",
        "{\"paths\": []}",
        "{\"paths\": \"/a.jpg\"}",
        "{\"paths\": [1]}",
        "{\"paths\": [\"/a.jpg\"], \"mode\": \"crop\"}",
        "{\"paths\": [\"/a.jpg\"], \"model\": \"\"}",
        "{\"paths\": [\"/a.jpg\"], \"model\": \"../x\"}",
        "{\"paths\": [\"/a.jpg\"], \"extra\": 1}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *code = check("embed", bad[i], NULL, 0, 0, &err);
        if (strcmp(code, "invalid_payload") != 0)
            vd_test_fail_at(__FILE__, __LINE__, "embed %s: %s", bad[i], code);
    }
    CHECK_EQ_STR(check("embed",
                       "{\"paths\": [\"/a.jpg\"], \"model\": \"faceres\", \"mode\": "
                       "\"face\"}",
                       NULL, 0, 0, &err),
                 "ok");
    CHECK_EQ_STR(check("train_session", "{\"session_id\": \"0123abcd\"}", NULL, 0, 0, &err), "ok");
    CHECK_EQ_STR(check("train_session", "{}", NULL, 0, 0, &err), "invalid_payload");
    CHECK_EQ_STR(check("train_session", "{\"session_id\": \"a/b\"}", NULL, 0, 0, &err),
                 "invalid_payload");
    CHECK_EQ_STR(check("train_session", "{\"session_id\": \"x\", \"y\": 1}", NULL, 0, 0, &err),
                 "invalid_payload");
    CHECK_EQ_STR(check("train_session", "{\"session_id\": \"0123456789abcdef0123456789abcdef0\"}",
                       NULL, 0, 0, &err),
                 "invalid_payload");
    CHECK_EQ_STR(check("recluster_people", "{}", NULL, 0, 0, &err), "ok");
    CHECK_EQ_STR(check("recluster_people",
                       "{\"model\": \"faceres\", \"max_distance\": 0.3, \"min_faces\": 3}", NULL, 0,
                       0, &err),
                 "ok");
    const char *bad_recluster[] = {
        "{\"model\": \"../x\"}", "{\"max_distance\": \"0.3\"}",  "{\"min_faces\": 2.5}",
        "{\"min_faces\": -1}",   "{\"min_faces\": 3, \"x\": 1}", "[]",
    };
    for (size_t i = 0; i < sizeof bad_recluster / sizeof bad_recluster[0]; i++) {
        const char *code = check("recluster_people", bad_recluster[i], NULL, 0, 0, &err);
        if (strcmp(code, "invalid_payload") != 0)
            vd_test_fail_at(__FILE__, __LINE__, "recluster_people %s: %s", bad_recluster[i], code);
    }
    /* index: asset ids and both model names (face_model "" = no faces) */
    CHECK_EQ_STR(check("index", "{\"assets\": [1, 2], \"model\": \"m\", \"face_model\": \"f\"}",
                       NULL, 0, 0, &err),
                 "ok");
    CHECK_EQ_STR(check("index", "{\"assets\": [1], \"model\": \"m\", \"face_model\": \"\"}", NULL,
                       0, 0, &err),
                 "ok");
    const char *bad_index[] = {
        "{}",
        "{\"assets\": [], \"model\": \"m\", \"face_model\": \"f\"}",
        "{\"assets\": [0], \"model\": \"m\", \"face_model\": \"f\"}",
        "{\"assets\": [\"1\"], \"model\": \"m\", \"face_model\": \"f\"}",
        "{\"assets\": [1], \"face_model\": \"f\"}",
        "{\"assets\": [1], \"model\": \"../m\", \"face_model\": \"f\"}",
        "{\"assets\": [1], \"model\": \"m\"}",
        "{\"assets\": [1], \"model\": \"m\", \"face_model\": \"f\", \"x\": 1}",
    };
    for (size_t i = 0; i < sizeof bad_index / sizeof bad_index[0]; i++) {
        const char *code = check("index", bad_index[i], NULL, 0, 0, &err);
        if (strcmp(code, "invalid_payload") != 0)
            vd_test_fail_at(__FILE__, __LINE__, "index %s: %s", bad_index[i], code);
    }
}

VD_TEST(test_types_only_with_the_flag_and_unknown_types_only_with_any_type)
{
    vd_error err;
    const char *tests[] = {"noop", "sleep", "fail", "crash", "progress", "count", "alloc"};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        CHECK_EQ_STR(check(tests[i], "{}", NULL, 0, 0, &err), "test_job_type");
        CHECK(strstr(err.msg, "VISIOND_TEST_JOBS=1") != NULL);
        CHECK_EQ_STR(check(tests[i], "{}", NULL, 0, 1, &err), "test_job_type"); /* any_type too */
        CHECK_EQ_STR(check(tests[i], "{}", NULL, 1, 0, &err), "ok");
        CHECK(vd_job_spec_find(tests[i])->test_only);
    }
    CHECK_EQ_STR(check("count", "[1]", NULL, 1, 0, &err), "invalid_payload");
    CHECK_EQ_STR(check("bench.echo", "{}", NULL, 0, 0, &err), "unknown_job_type");
    CHECK_EQ_STR(check("bench.echo", "[1, 2]", NULL, 0, 1, &err), "ok");
    unsetenv("VISIOND_TEST_JOBS");
    CHECK(!vd_job_test_types_enabled());
    setenv("VISIOND_TEST_JOBS", "0", 1);
    CHECK(!vd_job_test_types_enabled());
    setenv("VISIOND_TEST_JOBS", "1", 1);
    CHECK(vd_job_test_types_enabled());
    unsetenv("VISIOND_TEST_JOBS");
}

VD_TEST(the_registry_aggregate_matches_the_table_and_takes_its_timeouts)
{
    vd_error err;
    for (int test_jobs = 0; test_jobs < 2; test_jobs++) {
        vd_registry *reg = NULL;
        CHECK_OK(vd_pipeline_registry_new(NULL, test_jobs, &reg, &err));
        size_t want = 0;
        for (size_t i = 0; i < vd_job_spec_count(); i++) {
            const vd_job_spec *s = vd_job_spec_at(i);
            int shown = !s->test_only || test_jobs;
            want += (size_t)shown;
            CHECK_EQ_INT(vd_registry_has(reg, s->name), shown);
            CHECK(s->default_timeout_ms > 0);
            vd_job job;
            memset(&job, 0, sizeof job);
            snprintf(job.type, sizeof job.type, "%s", s->name);
            if (shown) CHECK_EQ_INT(vd_registry_timeout_ms(reg, &job), s->default_timeout_ms);
            job.timeout_ms = 5;
            if (shown) CHECK_EQ_INT(vd_registry_timeout_ms(reg, &job), 5);
        }
        CHECK_EQ_INT(vd_registry_count(reg), want);
        vd_registry_free(reg);
    }
    CHECK_EQ_INT(vd_job_spec_find("embed")->default_timeout_ms, 3600000);
    CHECK_EQ_INT(vd_job_spec_find("train_session")->default_timeout_ms, 7200000);
}

int main(void)
{
    return vd_test_run_all();
}
