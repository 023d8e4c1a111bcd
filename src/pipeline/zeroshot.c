/* zeroshot.c: CLIP zero-shot classification (pipeline/zeroshot.h). */
#include "pipeline/zeroshot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "pipeline/embed.h"
#include "pipeline/text_embed.h"

void vd_zeroshot_items_clear(vd_zeroshot_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].scores);
        free(items[i].error);
        memset(&items[i], 0, sizeof items[i]);
    }
}

/* The pair: image tower into img, text tower's name into txt. */
static vd_status resolve_pair(vd_runner *r, const char *model, char *img, char *txt, vd_error *err)
{
    vd_model_meta m;
    vd_status st = vd_runner_meta(r, model, &m, err);
    if (st != VD_OK) return st;
    if (m.task == VD_TASK_IMAGE_EMBEDDING && m.text_model[0]) {
        vd_strlcpy(img, model, VD_MODEL_NAME_MAX);
        vd_strlcpy(txt, m.text_model, VD_MODEL_NAME_MAX);
        return VD_OK;
    }
    if (m.task == VD_TASK_TEXT_EMBEDDING && m.image_model[0]) {
        vd_strlcpy(img, m.image_model, VD_MODEL_NAME_MAX);
        vd_strlcpy(txt, model, VD_MODEL_NAME_MAX);
        return VD_OK;
    }
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "model %s is a %s model that is not one tower of a CLIP pair: zero-shot "
                        "needs an image model with a text tower (a CLIP folder's NAME)",
                        model, vd_model_task_name(m.task));
}

/* The prompts: template with every "{label}" replaced by the label. */
static vd_status make_prompts(const char *tpl, const char *const *labels, size_t n, char **out,
                              vd_error *err)
{
    if (!strstr(tpl, "{label}"))
        return vd_error_set(err, VD_ERR_INVALID, "template \"%.100s\" has no {label}", tpl);
    for (size_t i = 0; i < n; i++) {
        if (!labels[i][0]) return vd_error_set(err, VD_ERR_INVALID, "labels[%zu] is empty", i);
        size_t cap = strlen(tpl) + 1, len = 0;
        for (const char *p = tpl; (p = strstr(p, "{label}")); p += 7)
            cap += strlen(labels[i]);
        char *s = malloc(cap);
        if (!s) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
        for (const char *p = tpl; *p;) {
            if (strncmp(p, "{label}", 7) == 0) {
                memcpy(s + len, labels[i], strlen(labels[i]));
                len += strlen(labels[i]);
                p += 7;
            } else {
                s[len++] = *p++;
            }
        }
        s[len] = 0;
        out[i] = s;
    }
    return VD_OK;
}

/* softmax over labels of scale x cosine(v, row j of t) into scores. */
static void score(const float *v, const float *t, size_t nl, int dim, float *scores, size_t *best)
{
    double nv = 0, mx = -1e30, sum = 0;
    for (int d = 0; d < dim; d++)
        nv += (double)v[d] * v[d];
    double *logit = malloc(nl * sizeof *logit);
    if (!logit) return;
    for (size_t j = 0; j < nl; j++) {
        double dot = 0, nt = 0;
        for (int d = 0; d < dim; d++) {
            double x = t[j * (size_t)dim + (size_t)d];
            dot += (double)v[d] * x;
            nt += x * x;
        }
        logit[j] = nv > 0 && nt > 0 ? VD_ZEROSHOT_SCALE * dot / sqrt(nv * nt) : 0;
        if (logit[j] > mx) {
            mx = logit[j];
            *best = j;
        }
    }
    for (size_t j = 0; j < nl; j++)
        sum += exp(logit[j] - mx);
    for (size_t j = 0; j < nl; j++)
        scores[j] = (float)(exp(logit[j] - mx) / sum);
    free(logit);
}

vd_status vd_zeroshot_classify(const vd_zeroshot_opts *o, const char *const *labels, size_t nlabels,
                               const char *const *paths, size_t n, vd_zeroshot_item *items,
                               char *image_model, char *text_model, vd_error *err)
{
    if (n) memset(items, 0, n * sizeof *items);
    if (nlabels < 2)
        return vd_error_set(err, VD_ERR_INVALID,
                            "labels: give at least two (one label is no choice)");
    if (nlabels > VD_ZEROSHOT_MAX_LABELS)
        return vd_error_set(err, VD_ERR_LIMIT, "labels: %zu; at most %d", nlabels,
                            VD_ZEROSHOT_MAX_LABELS);
    char img[VD_MODEL_NAME_MAX], txt[VD_MODEL_NAME_MAX];
    vd_status st = resolve_pair(o->runner, o->model, img, txt, err);
    if (st != VD_OK) return st;
    if (image_model) vd_strlcpy(image_model, img, VD_MODEL_NAME_MAX);
    if (text_model) vd_strlcpy(text_model, txt, VD_MODEL_NAME_MAX);
    float *t = NULL;
    vd_embed_item *e = calloc(n ? n : 1, sizeof *e);
    int tdim = 0, idim = 0;
    if (!e) st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
    if (st == VD_OK) st = vd_zeroshot_prompt_vectors(o, labels, nlabels, 0, &t, &tdim, err);
    vd_embed_opts eo = {.runner = o->runner,
                        .store = o->store,
                        .model = img,
                        .mode = VD_EMBED_IMAGE,
                        .roots = o->roots,
                        .want_vectors = 1};
    if (st == VD_OK) st = vd_embed_paths(&eo, paths, n, e, &idim, NULL, err);
    if (st == VD_OK && idim > 0 && idim != tdim)
        st = vd_error_set(err, VD_ERR_MODEL, "%s gives %d-d vectors, its text tower %s %d-d", img,
                          idim, txt, tdim);
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        vd_strlcpy(items[i].sha256, e[i].sha256, sizeof items[i].sha256);
        items[i].cached = e[i].cached;
        items[i].status = e[i].status;
        if (e[i].status != VD_OK) {
            items[i].error = e[i].error;
            e[i].error = NULL;
        } else if (!(items[i].scores = malloc(nlabels * sizeof(float)))) {
            st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
        } else {
            score(e[i].vector, t, nlabels, tdim, items[i].scores, &items[i].best);
        }
    }
    if (st != VD_OK) vd_zeroshot_items_clear(items, n);
    free(t);
    if (e) vd_embed_items_clear(e, n);
    free(e);
    return st;
}

vd_status vd_zeroshot_prompt_vectors(const vd_zeroshot_opts *o, const char *const *labels, size_t n,
                                     int image_dim, float **vectors, int *dim, vd_error *err)
{
    *vectors = NULL;
    *dim = 0;
    char img[VD_MODEL_NAME_MAX], txt[VD_MODEL_NAME_MAX];
    vd_status st = resolve_pair(o->runner, o->model, img, txt, err);
    if (st != VD_OK) return st;
    char **prompts = calloc(n ? n : 1, sizeof *prompts);
    vd_text_item *t = calloc(n ? n : 1, sizeof *t);
    if (!prompts || !t) st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
    if (st == VD_OK)
        st = make_prompts(o->template_text ? o->template_text : VD_ZEROSHOT_TEMPLATE, labels, n,
                          prompts, err);
    vd_text_opts to = {.runner = o->runner, .store = o->store, .model = txt};
    if (st == VD_OK) st = vd_text_embed(&to, (const char *const *)prompts, n, t, dim, NULL, err);
    if (st == VD_OK && image_dim > 0 && image_dim != *dim)
        st = vd_error_set(err, VD_ERR_MODEL, "%s gives %d-d vectors, its text tower %s %d-d", img,
                          image_dim, txt, *dim);
    if (st == VD_OK && !(*vectors = malloc(n * (size_t)*dim * sizeof(float))))
        st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
    for (size_t i = 0; st == VD_OK && i < n; i++)
        memcpy(*vectors + i * (size_t)*dim, t[i].vector, (size_t)*dim * sizeof(float));
    for (size_t j = 0; prompts && j < n; j++)
        free(prompts[j]);
    free(prompts);
    if (t) vd_text_items_clear(t, n);
    free(t);
    return st;
}
