/* bench_people.c: clustering quality of faces/cluster.h on labelled face vectors.
 *
 *   bench_people FILE [MAX_DISTANCE...]
 *
 * FILE: one face a line, "LABEL v1 v2 ... vD" (unit vectors). For each max_distance (default
 * 0.20 .. 0.60) and min_faces 2..4 it runs the full re-cluster (all faces unassigned, exact
 * neighbours) and the incremental path (faces arriving in a fixed shuffled order, each
 * decided by vd_cluster_decide against the assignments so far), and prints per run: people
 * found vs true identities (those with two faces or more), purity (faces in a person whose
 * majority identity is theirs, over assigned faces), identities split (found in more than one
 * person), unassigned faces of those identities, and lone faces (identities with one face:
 * distractors, which should stay unassigned) that were put in a person. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faces/cluster.h"

typedef struct {
    size_t n, dim, n_labels;
    int *label;
    float *v;
    vd_cluster_face *f;
} data;

static int read_data(const char *path, data *d)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    char labels[4096][64];
    char *line = NULL;
    size_t cap = 0;
    memset(d, 0, sizeof *d);
    while (getline(&line, &cap, fp) > 0) {
        char *save = NULL, *tok = strtok_r(line, " \t\n", &save);
        if (!tok) continue;
        size_t l = 0;
        while (l < d->n_labels && strcmp(labels[l], tok) != 0)
            l++;
        if (l == d->n_labels && d->n_labels < 4096)
            snprintf(labels[d->n_labels++], sizeof labels[0], "%s", tok);
        float buf[4096];
        size_t k = 0;
        while ((tok = strtok_r(NULL, " \t\n", &save)) && k < 4096)
            buf[k++] = strtof(tok, NULL);
        if (d->dim == 0) d->dim = k;
        if (k != d->dim) continue;
        d->v = realloc(d->v, (d->n + 1) * d->dim * sizeof *d->v);
        d->label = realloc(d->label, (d->n + 1) * sizeof *d->label);
        memcpy(d->v + d->n * d->dim, buf, d->dim * sizeof *buf);
        d->label[d->n++] = (int)l;
    }
    free(line);
    fclose(fp);
    d->f = calloc(d->n, sizeof *d->f);
    for (size_t i = 0; i < d->n; i++)
        d->f[i] = (vd_cluster_face){(int64_t)i + 1, 0, 0};
    return 0;
}

static float dot(const data *d, size_t a, size_t b)
{
    float s = 0.0f;
    for (size_t k = 0; k < d->dim; k++)
        s += d->v[a * d->dim + k] * d->v[b * d->dim + k];
    return s;
}

/* Exact nearest faces of i, best first (cap of them). */
static vd_status near_exact(void *ud, size_t i, size_t cap, int64_t *ids, float *scores, size_t *n,
                            vd_error *err)
{
    (void)err;
    const data *d = ud;
    *n = 0;
    for (size_t j = 0; j < d->n; j++) {
        float s = dot(d, i, j);
        size_t at = *n < cap ? (*n)++ : cap;
        while (at > 0 && scores[at - 1] < s) {
            if (at < cap) {
                scores[at] = scores[at - 1];
                ids[at] = ids[at - 1];
            }
            at--;
        }
        if (at < cap) {
            scores[at] = s;
            ids[at] = (int64_t)j + 1;
        }
    }
    return VD_OK;
}

/* Prints one result row for the assignment person[0..n) (0 = unassigned). */
static void report(const data *d, const char *how, const vd_cluster_params *p,
                   const int64_t *person)
{
    size_t n = d->n, people = 0, pure = 0, assigned = 0, split = 0, multi = 0, lost = 0, lone = 0;
    int64_t *ids = calloc(n, sizeof *ids);
    size_t *faces_of = calloc(d->n_labels, sizeof *faces_of);
    for (size_t i = 0; i < n; i++)
        faces_of[d->label[i]]++;
    for (size_t l = 0; l < d->n_labels; l++)
        multi += faces_of[l] > 1;
    for (size_t i = 0; i < n; i++) {
        if (person[i] == 0) {
            lost += faces_of[d->label[i]] > 1;
            continue;
        }
        lone += faces_of[d->label[i]] == 1;
        assigned++;
        size_t k = 0;
        while (k < people && ids[k] != person[i])
            k++;
        if (k == people) ids[people++] = person[i];
    }
    size_t *count = calloc(d->n_labels, sizeof *count);
    size_t *persons_of = calloc(d->n_labels, sizeof *persons_of);
    for (size_t k = 0; k < people; k++) {
        memset(count, 0, d->n_labels * sizeof *count);
        for (size_t i = 0; i < n; i++)
            if (person[i] == ids[k]) count[d->label[i]]++;
        size_t best = 0;
        for (size_t l = 0; l < d->n_labels; l++) {
            best = count[l] > best ? count[l] : best;
            persons_of[l] += count[l] > 0;
        }
        pure += best;
    }
    for (size_t l = 0; l < d->n_labels; l++)
        split += persons_of[l] > 1;
    size_t n_multi = n - (d->n_labels - multi); /* faces of identities with two or more */
    printf("%-11s %5.2f %3d  %5zu / %-4zu %7.3f  %6zu  %6zu (%4.1f%%)", how,
           (double)p->max_distance, p->min_faces, people, multi,
           assigned ? (double)pure / (double)assigned : 1.0, split, lost,
           n_multi ? 100.0 * (double)lost / (double)n_multi : 0.0);
    if (multi < d->n_labels) printf("  %5zu / %zu", lone, d->n_labels - multi);
    printf("\n");
    free(ids);
    free(faces_of);
    free(count);
    free(persons_of);
}

static void run_full(const data *d, const vd_cluster_params *p, int64_t *person)
{
    vd_error err;
    vd_cluster_graph g;
    size_t fresh = 0;
    if (vd_cluster_graph_build(p, d->f, d->n, 64, near_exact, (void *)d, &g, &err) != VD_OK ||
        vd_cluster_full(p, d->f, &g, person, &fresh, &err) != VD_OK) {
        fprintf(stderr, "bench_people: %s\n", err.msg);
        exit(1);
    }
    vd_cluster_graph_free(&g);
    report(d, "recluster", p, person);
}

/* Faces arrive in order[]; each is decided against those already there (the index holds
 * only arrived faces) and the assignments so far. */
static void run_incremental(const data *d, const vd_cluster_params *p, const size_t *order,
                            int64_t *person)
{
    size_t cap = 64, n_people = 0;
    unsigned char *arrived = calloc(d->n, 1);
    vd_cluster_neighbour *nb = malloc(cap * sizeof *nb);
    int64_t *assign = malloc((cap + 1) * sizeof *assign);
    memset(person, 0, d->n * sizeof *person);
    for (size_t t = 0; t < d->n; t++) {
        size_t i = order[t], m = 0;
        arrived[i] = 1;
        for (size_t j = 0; j < d->n; j++) { /* exact top-cap among arrived faces */
            if (!arrived[j]) continue;
            float s = dot(d, i, j);
            size_t at = m < cap ? m++ : cap;
            while (at > 0 && nb[at - 1].score < s) {
                if (at < cap) nb[at] = nb[at - 1];
                at--;
            }
            if (at < cap) nb[at] = (vd_cluster_neighbour){(int64_t)j + 1, s, person[j]};
        }
        int64_t who = 0;
        size_t n_assign = 0;
        vd_cluster_action a = vd_cluster_decide(p, (int64_t)i + 1, nb, m, &who, assign, &n_assign);
        if (a == VD_CLUSTER_FOUND) who = (int64_t)++n_people;
        for (size_t k = 0; k < n_assign; k++)
            if (person[assign[k] - 1] == 0) /* conditional, as the store update is */
                person[assign[k] - 1] = who;
    }
    free(arrived);
    free(nb);
    free(assign);
    report(d, "incremental", p, person);
}

static void similarity_summary(const data *d)
{
    double same_min = 2, diff_max = -2, same_sum = 0, diff_sum = 0;
    size_t same_n = 0, diff_n = 0, diff_over[5] = {0};
    const double thr[5] = {0.5, 0.55, 0.6, 0.65, 0.7};
    for (size_t a = 0; a < d->n; a++)
        for (size_t b = a + 1; b < d->n; b++) {
            double s = dot(d, a, b);
            if (d->label[a] == d->label[b]) {
                same_min = s < same_min ? s : same_min;
                same_sum += s;
                same_n++;
            } else {
                diff_max = s > diff_max ? s : diff_max;
                diff_sum += s;
                diff_n++;
                for (int k = 0; k < 5; k++)
                    diff_over[k] += s >= thr[k];
            }
        }
    size_t *count = calloc(d->n_labels, sizeof *count), lone = 0;
    for (size_t i = 0; i < d->n; i++)
        count[d->label[i]]++;
    for (size_t l = 0; l < d->n_labels; l++)
        lone += count[l] == 1;
    free(count);
    printf("faces %zu, identities %zu (%zu of them with one face), dim %zu\n", d->n, d->n_labels,
           lone, d->dim);
    printf("same identity: %zu pairs, cosine mean %.3f min %.3f\n", same_n,
           same_n ? same_sum / (double)same_n : 0.0, same_min);
    printf("different identities: %zu pairs, cosine mean %.3f max %.3f;", diff_n,
           diff_n ? diff_sum / (double)diff_n : 0.0, diff_max);
    for (int k = 0; k < 5; k++)
        printf(" >=%.2f: %zu", thr[k], diff_over[k]);
    printf("\n\n");
}

int main(int argc, char **argv)
{
    data d;
    if (argc < 2 || read_data(argv[1], &d) != 0 || d.n == 0) {
        fprintf(stderr, "usage: bench_people FILE [MAX_DISTANCE...]\n");
        return 2;
    }
    similarity_summary(&d);
    float grid[] = {0.20f, 0.25f, 0.30f, 0.35f, 0.40f, 0.45f, 0.50f, 0.60f};
    size_t n_grid = sizeof grid / sizeof grid[0];
    if (argc > 2) {
        n_grid = 0;
        for (int a = 2; a < argc && n_grid < 8; a++)
            grid[n_grid++] = strtof(argv[a], NULL);
    }
    size_t *order = malloc(d.n * sizeof *order);
    for (size_t i = 0; i < d.n; i++)
        order[i] = i;
    unsigned s = 7;
    for (size_t i = d.n; i > 1; i--) { /* fixed shuffle: faces arrive mixed */
        s = s * 1103515245u + 12345u;
        size_t j = (s >> 8) % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    int64_t *person = malloc(d.n * sizeof *person);
    size_t lone_n = 0; /* identities with one face (distractors) */
    size_t *count = calloc(d.n_labels, sizeof *count);
    for (size_t i = 0; i < d.n; i++)
        count[d.label[i]]++;
    for (size_t l = 0; l < d.n_labels; l++)
        lone_n += count[l] == 1;
    free(count);
    printf("%-11s %5s %3s  %-12s %7s  %6s  %s%s\n", "run", "dist", "min", "people/true", "purity",
           "split", "unassigned", lone_n ? "    lone in a person" : "");
    for (size_t gi = 0; gi < n_grid; gi++)
        for (int mf = 2; mf <= 4; mf++) {
            vd_cluster_params p = {grid[gi], mf};
            run_full(&d, &p, person);
            run_incremental(&d, &p, order, person);
        }
    free(order);
    free(person);
    free(d.label);
    free(d.v);
    free(d.f);
    return 0;
}
