/* test_train.c: classifiers on vectors (train/classifier.h): real liblinear,
 * real Fashion-MNIST pixels, serialisation through the real store. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/sessions.h"
#include "store/store.h"
#include "train/classifier.h"
#include "train/fashion_mnist.h"
#include "store/classifiers.h"
#include "train/prediction.h"
#include "vdtest.h"
#include "cli/cli.h"

#include <vips/vips.h>

/* A deterministic Gaussian-ish generator (sum of uniforms), so that data
 * and therefore results are the same on every run. */
static double noise(uint64_t *s)
{
    double t = 0;
    for (int i = 0; i < 4; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        t += (double)(*s >> 11) / 9007199254740992.0;
    }
    return t - 2.0;
}

/* n_per examples for each of k labels: label l's vectors point along axis l
 * (of dim) plus noise of the given amplitude. labels point into names. */
static float *clusters(size_t k, size_t n_per, size_t dim, double amp, const char **names,
                       const char **labels, uint64_t seed)
{
    float *v = malloc(k * n_per * dim * sizeof *v);
    for (size_t l = 0; l < k; l++)
        for (size_t i = 0; i < n_per; i++) {
            size_t r = l * n_per + i;
            labels[r] = names[l];
            for (size_t j = 0; j < dim; j++)
                v[r * dim + j] = (float)((j == l ? 1.0 : 0.0) + amp * noise(&seed));
        }
    return v;
}

static const char *names4[] = {"ann", "bob", "cy", "dee"};

VD_TEST(separable_data_gives_accuracy_one_with_both_algorithms)
{
    vd_error err;
    enum { K = 4, PER = 10, DIM = 16 };
    const char *labels[K * PER];
    float *v = clusters(K, PER, DIM, 0.05, names4, labels, 7);
    for (int a = VD_CLF_LOGREG; a <= VD_CLF_CENTROID; a++) {
        vd_train_opts o = {.algorithm = (vd_clf_algorithm)a};
        vd_train_result r;
        CHECK_OK(vd_train(v, K * PER, DIM, labels, &o, &r, &err));
        printf("    %s: cv_accuracy %.3f macro_f1 %.3f C %g folds %d\n",
               vd_clf_algorithm_name(r.algorithm), r.cv_accuracy, r.macro_f1, r.C, r.cv_folds);
        CHECK_EQ_INT(r.algorithm, a);
        CHECK_EQ_INT(r.cv_folds, 5);
        CHECK(r.cv_accuracy == 1.0);
        CHECK(r.macro_f1 == 1.0);
        CHECK(r.threshold == 0);
        for (size_t i = 0; i < K * PER; i++) {
            vd_prediction p;
            double scores[K];
            CHECK_OK(vd_classifier_predict(r.classifier, &v[i * DIM], DIM, &p, scores, &err));
            CHECK_EQ_STR(p.label, labels[i]);
            double sum = 0;
            for (int l = 0; l < K; l++)
                sum += scores[l];
            CHECK(fabs(sum - 1) < 1e-9);
            CHECK(p.score == scores[p.index]);
        }
        /* The metrics JSON has the API's shape. */
        json_t *m = json_loads(r.metrics_json, 0, NULL);
        CHECK(m != NULL);
        CHECK(json_real_value(json_object_get(m, "cv_accuracy")) == 1.0);
        json_t *conf = json_object_get(m, "confusion");
        CHECK_EQ_INT(json_array_size(conf), K);
        CHECK_EQ_INT(json_integer_value(json_array_get(json_array_get(conf, 2), 2)), PER);
        CHECK_EQ_INT(json_integer_value(json_array_get(json_array_get(conf, 2), 1)), 0);
        json_t *pc = json_object_get(json_object_get(m, "per_class"), "cy");
        CHECK(json_real_value(json_object_get(pc, "precision")) == 1.0);
        CHECK(json_real_value(json_object_get(pc, "f1")) == 1.0);
        CHECK_EQ_INT(json_integer_value(json_object_get(pc, "support")), PER);
        CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(m, "labels"), 3)), "dee");
        json_decref(m);
        vd_train_result_clear(&r);
    }
    free(v);
}

VD_TEST(bad_sessions_get_clear_errors)
{
    vd_error err;
    float v[6] = {1, 0, 0, 1, 1, 1};
    vd_train_result r;
    const char *one[3] = {"cat", "cat", "cat"};
    CHECK_EQ_INT(vd_train(v, 3, 2, one, NULL, &r, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "at least 2 distinct labels") && strstr(err.msg, "'cat'"));
    CHECK(r.classifier == NULL && r.metrics_json == NULL);
    const char *empty[3] = {"cat", "", "dog"};
    CHECK_EQ_INT(vd_train(v, 3, 2, empty, NULL, &r, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "example 1 has an empty label") != NULL);
    const char *null[3] = {"cat", "dog", NULL};
    CHECK_EQ_INT(vd_train(v, 3, 2, null, NULL, &r, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "example 2") != NULL);
    const char *reserved[3] = {"cat", "unknown", "dog"};
    CHECK_EQ_INT(vd_train(v, 3, 2, reserved, NULL, &r, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "reserved") != NULL);
    const char *ok[3] = {"cat", "dog", "dog"};
    CHECK_EQ_INT(vd_train(v, 0, 2, ok, NULL, &r, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_train(v, 3, 0, ok, NULL, &r, &err), VD_ERR_INVALID);
    v[3] = NAN;
    CHECK_EQ_INT(vd_train(v, 3, 2, ok, NULL, &r, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "example 1 has a non-finite value at 1") != NULL);
}

VD_TEST(tiny_sessions_use_nearest_centroid)
{
    vd_error err;
    /* 2 examples per label: centroid, 2-fold CV. */
    const char *labels[10];
    float *v = clusters(4, 2, 8, 0.05, names4, labels, 3);
    vd_train_result r;
    CHECK_OK(vd_train(v, 8, 8, labels, NULL, &r, &err));
    CHECK_EQ_INT(r.algorithm, VD_CLF_CENTROID);
    CHECK_EQ_INT(r.cv_folds, 2);
    CHECK(r.cv_accuracy == 1.0);
    vd_train_result_clear(&r);
    free(v);
    /* 1 example per label: centroid without CV; it still predicts. */
    v = clusters(4, 1, 8, 0.05, names4, labels, 4);
    CHECK_OK(vd_train(v, 4, 8, labels, NULL, &r, &err));
    CHECK_EQ_INT(r.algorithm, VD_CLF_CENTROID);
    CHECK_EQ_INT(r.cv_folds, 0);
    CHECK(r.cv_accuracy == -1);
    json_t *m = json_loads(r.metrics_json, 0, NULL);
    CHECK(json_is_null(json_object_get(m, "cv_accuracy")));
    CHECK(json_object_get(m, "note") != NULL);
    json_decref(m);
    vd_prediction p;
    float q[8] = {0, 0, 0.9f, 0.1f, 0, 0, 0, 0};
    CHECK_OK(vd_classifier_predict(r.classifier, q, 8, &p, NULL, &err));
    CHECK_EQ_STR(p.label, "cy");
    CHECK_EQ_INT(vd_classifier_predict(r.classifier, q, 7, &p, NULL, &err), VD_ERR_INVALID);
    vd_train_result_clear(&r);
    free(v);
    /* Separable clusters: both algorithms reach CV accuracy 1.0, and a tie goes to the
     * centroid (the automatic choice is by CV, not by example count). */
    v = clusters(2, 5, 8, 0.05, names4, labels, 5);
    const char *l10[10];
    for (int i = 0; i < 10; i++)
        l10[i] = names4[i / 5];
    CHECK_OK(vd_train(v, 10, 8, l10, NULL, &r, &err));
    CHECK_EQ_INT(r.algorithm, VD_CLF_CENTROID);
    CHECK(r.cv_accuracy == 1.0);
    m = json_loads(r.metrics_json, 0, NULL);
    json_t *sel = json_object_get(m, "selection");
    CHECK(json_real_value(json_object_get(json_object_get(sel, "logreg"), "cv_accuracy")) == 1.0);
    json_decref(m);
    vd_train_result_clear(&r);
    CHECK_OK(vd_train(v, 8, 8,
                      (const char *const[]){"ann", "ann", "ann", "ann", "bob", "bob", "bob", "bob"},
                      NULL, &r, &err));
    CHECK_EQ_INT(r.algorithm, VD_CLF_CENTROID);
    vd_train_result_clear(&r);
    free(v);
}

VD_TEST(unknown_threshold_rejects_strangers)
{
    vd_error err;
    enum { K = 4, PER = 20, DIM = 12 };
    const char *labels[K * PER];
    float *v = clusters(K, PER, DIM, 0.15, names4, labels, 11);
    for (int a = VD_CLF_LOGREG; a <= VD_CLF_CENTROID; a++) {
        vd_train_opts o = {.algorithm = (vd_clf_algorithm)a, .unknown_threshold = 1};
        vd_train_result r;
        CHECK_OK(vd_train(v, K * PER, DIM, labels, &o, &r, &err));
        printf("    %s: cv_accuracy %.3f threshold %.4f\n", vd_clf_algorithm_name(r.algorithm),
               r.cv_accuracy, r.threshold);
        CHECK(r.threshold > 1.0 / K);
        /* Known examples are (mostly) still recognised... */
        int known = 0;
        for (size_t i = 0; i < K * PER; i++) {
            vd_prediction p;
            CHECK_OK(vd_classifier_predict(r.classifier, &v[i * DIM], DIM, &p, NULL, &err));
            if (p.index >= 0 && strcmp(p.label, labels[i]) == 0) known++;
        }
        printf("    known examples recognised: %d of %d\n", known, K * PER);
        CHECK(known >= K * PER * 9 / 10);
        /* ...and a stranger (along an axis no label uses) is "unknown". */
        float stranger[DIM] = {0};
        stranger[DIM - 1] = 1;
        vd_prediction p;
        double scores[K];
        CHECK_OK(vd_classifier_predict(r.classifier, stranger, DIM, &p, scores, &err));
        printf("    stranger: top %s score %.4f -> %s\n", names4[p.top], p.score, p.label);
        CHECK_EQ_STR(p.label, VD_UNKNOWN_LABEL);
        CHECK_EQ_INT(p.index, -1);
        vd_train_result_clear(&r);
    }
    free(v);
}

/* Feeds every prefix and many single-byte corruptions of a blob to the
 * reader: each is refused or read, never a crash (ASan watches). */
static int blob_abuse(const unsigned char *blob, size_t len)
{
    vd_error err;
    vd_classifier *c;
    for (size_t cut = 0; cut < len; cut++)
        if (vd_classifier_deserialize(blob, cut, &c, &err) != VD_ERR_INVALID) return 0;
    unsigned char *copy = malloc(len);
    for (size_t i = 0; i < len; i += 3) {
        memcpy(copy, blob, len);
        copy[i] ^= 0xff;
        if (vd_classifier_deserialize(copy, len, &c, &err) == VD_OK) {
            float x[16] = {1, 2, 3};
            vd_prediction p;
            size_t dim = vd_classifier_dim(c);
            if (dim <= 16) vd_classifier_predict(c, x, dim, &p, NULL, &err);
            vd_classifier_free(c);
        }
    }
    free(copy);
    return 1;
}

VD_TEST(serialised_classifiers_survive_a_store_restart)
{
    vd_error err;
    enum { K = 3, PER = 8, DIM = 10 };
    const char *labels[K * PER];
    float *v = clusters(K, PER, DIM, 0.3, names4, labels, 21);
    char path[400];
    snprintf(path, sizeof path, "%s/store.db", vd_test_tmpdir());
    for (int a = VD_CLF_LOGREG; a <= VD_CLF_CENTROID; a++) {
        vd_train_opts o = {.algorithm = (vd_clf_algorithm)a, .unknown_threshold = 1};
        vd_train_result r;
        CHECK_OK(vd_train(v, K * PER, DIM, labels, &o, &r, &err));
        void *blob;
        size_t len;
        CHECK_OK(vd_classifier_serialize(r.classifier, &blob, &len, &err));
        char *lj = vd_classifier_labels_json(r.classifier);
        CHECK_EQ_STR(lj, "[\"ann\",\"bob\",\"cy\"]");

        vd_store *s;
        CHECK_OK(vd_store_open(path, NULL, &s, &err));
        char id[VD_ID_LEN + 1];
        vd_session_new in = {.name = "x", .kind = VD_SESSION_FACE, .model = "faceres"};
        CHECK_OK(vd_store_session_create(s, &in, id, &err));
        CHECK_OK(vd_store_classifier_put(s, id, vd_clf_algorithm_name(r.algorithm), lj, blob, len,
                                         &err));
        CHECK_OK(vd_store_session_finish(s, id, VD_SESSION_SUCCEEDED, r.metrics_json, r.threshold,
                                         NULL, &err));
        vd_store_close(s);
        free(lj);

        CHECK_OK(vd_store_open(path, NULL, &s, &err));
        vd_stored_classifier sc;
        CHECK_OK(vd_store_classifier_get(s, id, &sc, &err));
        vd_store_close(s);
        vd_classifier *back;
        CHECK_OK(vd_classifier_deserialize(sc.blob, sc.blob_len, &back, &err));
        CHECK_EQ_INT(vd_classifier_algorithm(back), a);
        CHECK_EQ_INT(vd_classifier_nlabels(back), K);
        CHECK(vd_classifier_threshold(back) == r.threshold);
        uint64_t seed = 99;
        for (int t = 0; t < 50; t++) {
            float x[DIM];
            for (int j = 0; j < DIM; j++)
                x[j] = (float)noise(&seed);
            vd_prediction p1, p2;
            double s1[K], s2[K];
            CHECK_OK(vd_classifier_predict(r.classifier, x, DIM, &p1, s1, &err));
            CHECK_OK(vd_classifier_predict(back, x, DIM, &p2, s2, &err));
            CHECK_EQ_STR(p1.label, p2.label);
            CHECK(memcmp(s1, s2, sizeof s1) == 0);
        }
        CHECK(blob_abuse(blob, len));
        vd_classifier_free(back);
        vd_stored_classifier_clear(&sc);
        free(blob);
        vd_train_result_clear(&r);
    }
    free(v);
}

/* Data where one classifier clearly wins, for each side of the automatic choice:
 * x = (1, s*0.3 + 2t, 2t), label sign s, t uniform in [-1, 1] (from noise). The nuisance t
 * swamps the labels' mean difference along axis 1, so cosine to the centroids is not much
 * better than chance, while the linear boundary x1 - x2 = 0 separates them exactly: AUTO
 * must pick logreg. (The other way, a tie goes to the centroid:
 * tiny_sessions_use_nearest_centroid.) */
static float *sheared(size_t n_per, const char **labels, uint64_t seed)
{
    float *v = malloc(2 * n_per * 3 * sizeof *v);
    for (size_t r = 0; r < 2 * n_per; r++) {
        double sign = r < n_per ? 1 : -1, t = noise(&seed) / 2;
        labels[r] = names4[r < n_per ? 0 : 1];
        v[r * 3] = 1;
        v[r * 3 + 1] = (float)(sign * 0.3 + 2 * t);
        v[r * 3 + 2] = (float)(2 * t);
    }
    return v;
}

VD_TEST(cv_selection_picks_the_classifier_that_wins)
{
    vd_error err;
    enum { PER = 20 };
    const char *labels[2 * PER];
    float *v = sheared(PER, labels, 11);
    vd_train_result r, fixed;
    vd_train_opts c = {.algorithm = VD_CLF_CENTROID};
    CHECK_OK(vd_train(v, 2 * PER, 3, labels, &c, &fixed, &err));
    CHECK_OK(vd_train(v, 2 * PER, 3, labels, NULL, &r, &err));
    printf("    sheared: auto picks %s (cv %.3f), centroid alone cv %.3f\n",
           vd_clf_algorithm_name(r.algorithm), r.cv_accuracy, fixed.cv_accuracy);
    CHECK_EQ_INT(r.algorithm, VD_CLF_LOGREG);
    CHECK(r.cv_accuracy > fixed.cv_accuracy + 0.2);
    json_t *m = json_loads(r.metrics_json, 0, NULL);
    json_t *sel = json_object_get(m, "selection");
    CHECK(json_real_value(json_object_get(json_object_get(sel, "centroid"), "cv_accuracy")) ==
          fixed.cv_accuracy);
    CHECK_EQ_STR(json_string_value(json_object_get(m, "algorithm")), "logreg");
    json_decref(m);
    vd_train_result_clear(&r);
    vd_train_result_clear(&fixed);
    free(v);
}

VD_TEST(two_label_logreg_round_trips)
{
    /* liblinear keeps one weight vector for two classes: serialise that too. */
    vd_error err;
    const char *labels[12];
    float *v = clusters(2, 6, 5, 0.2, names4, labels, 8);
    vd_train_result r;
    vd_train_opts o = {.algorithm = VD_CLF_LOGREG};
    CHECK_OK(vd_train(v, 12, 5, labels, &o, &r, &err));
    CHECK_EQ_INT(r.algorithm, VD_CLF_LOGREG);
    void *blob;
    size_t len;
    CHECK_OK(vd_classifier_serialize(r.classifier, &blob, &len, &err));
    vd_classifier *back;
    CHECK_OK(vd_classifier_deserialize(blob, len, &back, &err));
    for (size_t i = 0; i < 12; i++) {
        vd_prediction p1, p2;
        double s1[2], s2[2];
        CHECK_OK(vd_classifier_predict(r.classifier, &v[i * 5], 5, &p1, s1, &err));
        CHECK_OK(vd_classifier_predict(back, &v[i * 5], 5, &p2, s2, &err));
        CHECK_EQ_STR(p2.label, labels[i]);
        CHECK(memcmp(s1, s2, sizeof s1) == 0);
        CHECK(fabs(s1[0] + s1[1] - 1) < 1e-12);
    }
    CHECK(blob_abuse(blob, len));
    vd_classifier_free(back);
    free(blob);
    vd_train_result_clear(&r);
    free(v);
}

/* What a training job and the predict route do: train with the face
 * defaults, save, reopen the store, load, predict, render JSON; a session
 * canceled meanwhile keeps no classifier. */
VD_TEST(save_and_load_through_the_store)
{
    vd_error err;
    enum { K = 3, PER = 6, DIM = 8 };
    const char *labels[K * PER];
    float *v = clusters(K, PER, DIM, 0.1, names4, labels, 31);
    char path[400];
    snprintf(path, sizeof path, "%s/store.db", vd_test_tmpdir());
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    char id[VD_ID_LEN + 1], gone[VD_ID_LEN + 1];
    vd_session_new in = {.name = "team", .kind = VD_SESSION_FACE, .model = "faceres"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    CHECK_OK(vd_store_session_create(s, &in, gone, &err));
    CHECK_OK(vd_store_session_set_state(s, id, VD_SESSION_RUNNING, &err));
    vd_train_opts o;
    vd_session_train_opts(&o, VD_SESSION_FACE);
    vd_train_result r;
    CHECK_OK(vd_train(v, K * PER, DIM, labels, &o, &r, &err));
    CHECK(r.threshold > 0);
    CHECK_OK(vd_store_classifier_save(s, id, &r, &err));
    CHECK_OK(vd_store_session_finish(s, gone, VD_SESSION_CANCELED, NULL, 0, "canceled", &err));
    CHECK_EQ_INT(vd_store_classifier_save(s, gone, &r, &err), VD_ERR_STATE);
    vd_store_close(s);

    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    vd_classifier *c;
    CHECK_EQ_INT(vd_store_classifier_load(s, gone, &c, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_classifier_load(s, id, &c, &err));
    vd_session got;
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    CHECK_EQ_INT(got.state, VD_SESSION_SUCCEEDED);
    CHECK(got.threshold == r.threshold);
    CHECK_EQ_STR(got.metrics_json, r.metrics_json);
    vd_session_clear(&got);
    vd_store_close(s);
    vd_prediction p;
    double scores[K];
    CHECK_OK(vd_classifier_predict(c, &v[DIM * PER], DIM, &p, scores, &err));
    json_t *j = vd_train_prediction_json(c, "/x/bob.jpg", &p, scores);
    char *text = json_dumps(j, JSON_COMPACT);
    printf("    %s\n", text);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "label")), "bob");
    CHECK(json_object_size(json_object_get(j, "scores")) == K);
    free(text);
    json_decref(j);
    vd_classifier_free(c);
    vd_train_result_clear(&r);
    free(v);
}

VD_TEST(training_is_deterministic_per_seed)
{
    vd_error err;
    enum { K = 3, PER = 12, DIM = 6 };
    const char *labels[K * PER];
    float *v = clusters(K, PER, DIM, 0.6, names4, labels, 5);
    vd_train_result a, b;
    CHECK_OK(vd_train(v, K * PER, DIM, labels, NULL, &a, &err));
    CHECK_OK(vd_train(v, K * PER, DIM, labels, NULL, &b, &err));
    CHECK_EQ_STR(a.metrics_json, b.metrics_json);
    printf("    noisy clusters: cv_accuracy %.3f, C %g\n", a.cv_accuracy, a.C);
    vd_train_result_clear(&a);
    vd_train_result_clear(&b);
    free(v);
}

/* The raw-pixel baseline on real data: 20 Fashion-MNIST images of each of
 * the 10 labels (the first 20 of each in the test split), 28x28 pixels
 * scaled to [0, 1], 5-fold CV. Chance is 0.1. */
VD_TEST(fashion_mnist_raw_pixels_beat_chance)
{
    vd_error err;
    vd_fmnist d;
    vd_status st = vd_fmnist_load(NULL, "test", &d, &err);
    if (st == VD_ERR_NOT_FOUND) {
        vd_test_skip(err.msg);
        return;
    }
    CHECK_OK(st);
    CHECK_EQ_INT(d.n, 10000);
    CHECK_EQ_INT(d.rows, 28);
    enum { PER = 20, N = PER * VD_FMNIST_NLABELS, DIM = 28 * 28 };
    size_t idx[N];
    CHECK_OK(vd_fmnist_pick(&d, PER, idx, &err));
    float *x = malloc((size_t)N * DIM * sizeof *x);
    const char *labels[N];
    for (size_t i = 0; i < N; i++) {
        labels[i] = vd_fmnist_label_name(d.labels[idx[i]]);
        for (size_t j = 0; j < DIM; j++)
            x[i * DIM + j] = d.pixels[idx[i] * DIM + j] / 255.0f;
    }
    vd_fmnist_clear(&d);
    double acc[2];
    for (int a = VD_CLF_LOGREG; a <= VD_CLF_CENTROID; a++) {
        vd_train_opts o = {.algorithm = (vd_clf_algorithm)a};
        vd_train_result r;
        int64_t t0 = vd_mono_ms();
        CHECK_OK(vd_train(x, N, DIM, labels, &o, &r, &err));
        acc[a - 1] = r.cv_accuracy;
        printf("    fashion-mnist %d/label raw pixels, %s: cv_accuracy %.3f macro_f1 %.3f C %g "
               "(%lld ms)\n",
               PER, vd_clf_algorithm_name(r.algorithm), r.cv_accuracy, r.macro_f1, r.C,
               (long long)(vd_mono_ms() - t0));
        if (a == VD_CLF_LOGREG) printf("    metrics: %s\n", r.metrics_json);
        vd_train_result_clear(&r);
    }
    free(x);
    CHECK(acc[0] > 0.5);
    CHECK(acc[1] > 0.5);
}

/* `visiond dataset fashion-mnist` writes PNGs whose pixels are the IDX
 * file's, one folder per label. */
VD_TEST(dataset_command_writes_pngs_per_label)
{
    vd_error err;
    vd_fmnist d;
    vd_status st = vd_fmnist_load(NULL, "test", &d, &err);
    if (st == VD_ERR_NOT_FOUND) {
        vd_test_skip(err.msg);
        return;
    }
    CHECK_OK(st);
    char out[400];
    snprintf(out, sizeof out, "%s/fm", vd_test_tmpdir());
    char *argv[] = {"dataset", "fashion-mnist", "--out", out, "--per-label", "3", NULL};
    fflush(stdout);
    CHECK_EQ_INT(vd_cmd_dataset(6, argv), 0);
    CHECK(VIPS_INIT("test_train") == 0);
    size_t idx[30];
    CHECK_OK(vd_fmnist_pick(&d, 3, idx, &err));
    for (size_t i = 0; i < 30; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s/test-%05zu.png", out, vd_fmnist_label_name((int)i / 3),
                 idx[i]);
        VipsImage *im = vips_image_new_from_file(path, NULL);
        CHECK(im != NULL);
        size_t len;
        void *px = vips_image_write_to_memory(im, &len);
        CHECK(len == 28 * 28);
        CHECK(memcmp(px, d.pixels + idx[i] * 784, 784) == 0);
        g_free(px);
        g_object_unref(im);
    }
    vd_fmnist_clear(&d);
    char *bad[] = {"dataset", "fashion-mnist", "--out", out, NULL};
    CHECK_EQ_INT(vd_cmd_dataset(4, bad), 2);
}

/* Prompt priors pull a label's centroid toward its prior: with one example
 * per label, a query nearer the wrong example is put right by the priors;
 * the metrics say so; a prior of a label without examples is ignored; a
 * zero prior is refused. */
VD_TEST(prompt_priors_pull_centroids_toward_their_labels)
{
    vd_error err;
    enum { DIM = 4 };
    const float ex[2 * DIM] = {1, 0, 1, 0, /* "a": its direction (1,0,0,0) plus noise */
                               0, 1, 0, 0};
    const char *labels[2] = {"a", "b"};
    const float q[DIM] = {0.6f, 0.5f, 0, 0};
    const float pri[3 * DIM] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
    const char *plabels[3] = {"a", "b", "zed"};
    vd_prediction p;
    vd_train_result r;
    CHECK_OK(vd_train(ex, 2, DIM, labels, NULL, &r, &err));
    CHECK_OK(vd_classifier_predict(r.classifier, q, DIM, &p, NULL, &err));
    CHECK_EQ_STR(p.label, "b"); /* nearer b's example without priors */
    CHECK(strstr(r.metrics_json, "prompt_priors") == NULL);
    vd_train_result_clear(&r);
    vd_train_opts o = {.priors = pri, .prior_labels = plabels, .npriors = 3};
    CHECK_OK(vd_train(ex, 2, DIM, labels, &o, &r, &err));
    CHECK_OK(vd_classifier_predict(r.classifier, q, DIM, &p, NULL, &err));
    CHECK_EQ_STR(p.label, "a");
    json_t *m = json_loads(r.metrics_json, 0, NULL);
    json_t *pp = json_object_get(m, "prompt_priors");
    CHECK(pp != NULL);
    CHECK_EQ_INT(json_integer_value(json_object_get(pp, "labels")), 2);
    json_decref(m);
    vd_train_result_clear(&r);
    const float zero[DIM] = {0};
    vd_train_opts bad = {.priors = zero, .prior_labels = plabels, .npriors = 1};
    CHECK(vd_train(ex, 2, DIM, labels, &bad, &r, &err) == VD_ERR_INVALID);
}

int main(void)
{
    return vd_test_run_all();
}
