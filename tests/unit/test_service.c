/* test_service.c: the rules of a training session (service/training.h) that
 * need no model server: the request check, labels, the example limit, the
 * folder scan (one sub-folder per label) with and without a path check, two
 * distinct labels. Session start and predict run end to end in
 * tests/integration/train_parity.sh, train_rollback.sh and training_session.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "service/training.h"
#include "vdtest.h"

static void touch(const char *dir, const char *sub, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}

VD_TEST(request_check_fills_defaults_and_refuses)
{
    vd_error err;
    const char *why = NULL;
    vd_svc_session_spec sp;
    vd_svc_session_req r = {.name = "pets"};
    CHECK_OK(vd_svc_session_check(&r, &sp, &why, &err));
    CHECK_EQ_INT(sp.kind, VD_SESSION_IMAGE);
    CHECK_EQ_STR(sp.model, "mobilenet_v2");
    CHECK_EQ_STR(sp.options_json, "{}");
    r.kind = "face";
    r.crop = 1;
    CHECK_OK(vd_svc_session_check(&r, &sp, &why, &err));
    CHECK_EQ_STR(sp.model, "faceres");
    CHECK_EQ_STR(sp.options_json, "{\"crop\": true}");
    r.kind = "image";
    CHECK_EQ_INT(vd_svc_session_check(&r, &sp, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "invalid_value");
    r.kind = "audio";
    CHECK_EQ_INT(vd_svc_session_check(&r, &sp, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "unknown_kind");
    r = (vd_svc_session_req){.name = ""};
    CHECK_EQ_INT(vd_svc_session_check(&r, &sp, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "invalid_value");
    r = (vd_svc_session_req){.name = "x", .model = ""};
    CHECK_EQ_INT(vd_svc_session_check(&r, &sp, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "unknown_model");
}

VD_TEST(labels_and_the_limit)
{
    vd_error err;
    const char *why = NULL;
    vd_svc_examples l = {0};
    char long_label[VD_SVC_MAX_LABEL_LEN + 2];
    memset(long_label, 'l', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = '\0';
    CHECK_EQ_INT(vd_svc_examples_add(&l, vd_strdup("/a"), "", "e0", &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "empty_label");
    CHECK_EQ_INT(vd_svc_examples_add(&l, vd_strdup("/a"), "unknown", "e0", &why, &err),
                 VD_ERR_INVALID);
    CHECK_EQ_STR(why, "reserved_label");
    CHECK_EQ_INT(vd_svc_examples_add(&l, vd_strdup("/a"), long_label, "e0", &why, &err),
                 VD_ERR_INVALID);
    CHECK_EQ_STR(why, "label_too_long");
    CHECK_EQ_INT(l.n, 0);
    CHECK_EQ_INT(vd_svc_examples_check(&l, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "no_examples");
    CHECK_OK(vd_svc_examples_add(&l, vd_strdup("/a"), "cat", "e0", &why, &err));
    CHECK_OK(vd_svc_examples_add(&l, vd_strdup("/b"), "cat", "e1", &why, &err));
    CHECK_EQ_INT(vd_svc_examples_check(&l, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "one_label");
    CHECK_OK(vd_svc_examples_add(&l, vd_strdup("/c"), "dog", "e2", &why, &err));
    CHECK_OK(vd_svc_examples_check(&l, &why, &err));
    CHECK_EQ_INT(vd_svc_examples_reserve(&l, VD_SVC_MAX_EXAMPLES - 2, &why, &err), VD_ERR_LIMIT);
    CHECK_EQ_STR(why, "too_many_examples");
    CHECK_OK(vd_svc_examples_reserve(&l, VD_SVC_MAX_EXAMPLES - 3, &why, &err));
    while (l.n < VD_SVC_MAX_EXAMPLES)
        CHECK_OK(vd_svc_examples_add(&l, vd_strdup("/d"), "dog", "e", &why, &err));
    CHECK_EQ_INT(vd_svc_examples_add(&l, vd_strdup("/e"), "dog", "e", &why, &err), VD_ERR_LIMIT);
    CHECK_EQ_STR(why, "too_many_examples");
    CHECK_EQ_INT(l.n, VD_SVC_MAX_EXAMPLES);
    vd_svc_examples_free(&l);
}

/* A path check that refuses every file named "secret". */
static vd_status no_secrets(void *ud, const char *path, int want_dir, char **resolved,
                            const char **why, vd_error *err)
{
    (*(int *)ud)++;
    (void)want_dir;
    if (strstr(path, "secret")) {
        *why = "path_outside_media_roots";
        return vd_error_set(err, VD_ERR_INVALID, "%s is outside", path);
    }
    *resolved = vd_strdup(path);
    return VD_OK;
}

VD_TEST(folder_scan)
{
    vd_error err;
    const char *why = NULL;
    const char *dir = vd_test_tmpdir();
    touch(dir, "cat", "a.png");
    touch(dir, "cat", "b.png");
    touch(dir, "cat", ".hidden");
    touch(dir, "dog", "c.png");
    touch(dir, ".git", "x");
    char stray[1024]; /* a file beside the label folders is skipped */
    snprintf(stray, sizeof stray, "%s/README", dir);
    FILE *f = fopen(stray, "w");
    if (f) fclose(f);
    vd_svc_examples l = {0};
    CHECK_OK(vd_svc_examples_scan(dir, NULL, NULL, &l, &why, &err));
    CHECK_EQ_INT(l.n, 3);
    CHECK_EQ_STR(l.v[0].label, "cat");
    CHECK_EQ_STR(l.v[2].label, "dog");
    CHECK(strstr(l.v[1].path, "/cat/b.png") != NULL);
    CHECK_OK(vd_svc_examples_check(&l, &why, &err));
    vd_svc_examples_free(&l);

    int calls = 0;
    CHECK_OK(vd_svc_examples_scan(dir, no_secrets, &calls, &l, &why, &err));
    CHECK_EQ_INT(calls, 4); /* the folder, then each file */
    vd_svc_examples_free(&l);
    touch(dir, "dog", "secret.png");
    CHECK_EQ_INT(vd_svc_examples_scan(dir, no_secrets, &calls, &l, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "path_outside_media_roots");
    vd_svc_examples_free(&l);

    char p[1024];
    snprintf(p, sizeof p, "%s/unknown", dir);
    mkdir(p, 0755);
    touch(dir, "unknown", "u.png");
    CHECK_EQ_INT(vd_svc_examples_scan(dir, NULL, NULL, &l, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "reserved_label");
    vd_svc_examples_free(&l);

    snprintf(p, sizeof p, "%s/no_such", dir);
    CHECK_EQ_INT(vd_svc_examples_scan(p, NULL, NULL, &l, &why, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_STR(why, "path_not_found");
    snprintf(p, sizeof p, "%s/empty", dir);
    mkdir(p, 0755);
    CHECK_EQ_INT(vd_svc_examples_scan(p, NULL, NULL, &l, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "no_examples");
    vd_svc_examples_free(&l);
}

int main(void)
{
    return vd_test_run_all();
}
