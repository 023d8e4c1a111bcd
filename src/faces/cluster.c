/* cluster.c: incremental assignment and full re-cluster of faces into people (cluster.h). */
#include "faces/cluster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void vd_cluster_params_default(vd_cluster_params *p)
{
    p->max_distance = VD_CLUSTER_MAX_DISTANCE_DEFAULT;
    p->min_faces = VD_CLUSTER_MIN_FACES_DEFAULT;
}

vd_status vd_cluster_params_check(const vd_cluster_params *p, vd_error *err)
{
    if (!isfinite(p->max_distance) || p->max_distance <= 0.0f || p->max_distance >= 2.0f)
        return vd_error_set(err, VD_ERR_INVALID, "max_distance must be in (0, 2), got %g",
                            (double)p->max_distance);
    if (p->min_faces < 1 || p->min_faces > VD_CLUSTER_MIN_FACES_MAX)
        return vd_error_set(err, VD_ERR_INVALID, "min_faces must be in 1..%d, got %d",
                            VD_CLUSTER_MIN_FACES_MAX, p->min_faces);
    return VD_OK;
}

float vd_cluster_min_score(const vd_cluster_params *p)
{
    return 1.0f - p->max_distance;
}

/* ---- incremental ------------------------------------------------------------------------- */

vd_cluster_action vd_cluster_decide(const vd_cluster_params *p, int64_t face_id,
                                    const vd_cluster_neighbour *nb, size_t n, int64_t *person,
                                    int64_t *assign, size_t *n_assign)
{
    float min_score = vd_cluster_min_score(p);
    size_t near = 1; /* the face itself */
    int64_t best = 0;
    size_t best_votes = 0;
    float best_sum = 0.0f;
    *person = 0;
    *n_assign = 0;
    for (size_t i = 0; i < n; i++) {
        if (nb[i].face_id == face_id || !(nb[i].score >= min_score)) continue;
        near++;
        if (nb[i].person_id == 0) continue;
        int64_t pid = nb[i].person_id;
        size_t votes = 0;
        float sum = 0.0f;
        for (size_t j = 0; j < n; j++)
            if (nb[j].person_id == pid && nb[j].face_id != face_id && nb[j].score >= min_score) {
                votes++;
                sum += nb[j].score;
            }
        if (votes > best_votes || (votes == best_votes && sum > best_sum) ||
            (votes == best_votes && sum == best_sum && pid < best)) {
            best = pid;
            best_votes = votes;
            best_sum = sum;
        }
    }
    if (best != 0) {
        *person = best;
        assign[(*n_assign)++] = face_id;
        return VD_CLUSTER_JOIN;
    }
    if (near < (size_t)p->min_faces) return VD_CLUSTER_WAIT;
    assign[(*n_assign)++] = face_id;
    for (size_t i = 0; i < n; i++)
        if (nb[i].face_id != face_id && nb[i].score >= min_score && nb[i].person_id == 0) {
            int seen = 0;
            for (size_t j = 0; j < *n_assign && !seen; j++)
                seen = assign[j] == nb[i].face_id;
            if (!seen) assign[(*n_assign)++] = nb[i].face_id;
        }
    return VD_CLUSTER_FOUND;
}

/* ---- the neighbour graph ----------------------------------------------------------------- */

typedef struct {
    uint32_t a, b;
    float s;
} edge;

static int edge_cmp(const void *x, const void *y)
{
    const edge *e = x, *f = y;
    if (e->a != f->a) return e->a < f->a ? -1 : 1;
    if (e->b != f->b) return e->b < f->b ? -1 : 1;
    return (e->s > f->s) ? -1 : (e->s < f->s); /* the larger similarity first */
}

static long index_of(const vd_cluster_face *faces, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (faces[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && faces[lo].id == id) ? (long)lo : -1;
}

/* Collects the edges (both directions) of every face within max_distance into *out. */
static vd_status collect_edges(const vd_cluster_params *p, const vd_cluster_face *faces, size_t n,
                               size_t cap, vd_cluster_near_fn near, void *ud, edge **out,
                               size_t *n_out, vd_error *err)
{
    vd_status st = VD_OK;
    int64_t *ids = malloc((cap ? cap : 1) * sizeof *ids);
    float *scores = malloc((cap ? cap : 1) * sizeof *scores);
    size_t len = 0, room = 0;
    edge *e = NULL;
    float min_score = vd_cluster_min_score(p);
    if (!ids || !scores) {
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t m = 0;
        if ((st = near(ud, i, cap, ids, scores, &m, err)) != VD_OK) goto done;
        for (size_t k = 0; k < m && k < cap; k++) {
            long j = index_of(faces, n, ids[k]);
            if (j < 0 || (size_t)j == i || !(scores[k] >= min_score)) continue;
            if (len + 2 > room) {
                size_t nr = room ? room * 2 : 1024;
                edge *ne = realloc(e, nr * sizeof *ne);
                if (!ne) {
                    st = vd_error_set(err, VD_ERR_NOMEM, "out of memory (%zu edges)", nr);
                    goto done;
                }
                e = ne;
                room = nr;
            }
            e[len++] = (edge){(uint32_t)i, (uint32_t)j, scores[k]};
            e[len++] = (edge){(uint32_t)j, (uint32_t)i, scores[k]};
        }
    }
done:
    free(ids);
    free(scores);
    if (st != VD_OK) {
        free(e);
        return st;
    }
    *out = e;
    *n_out = len;
    return VD_OK;
}

vd_status vd_cluster_graph_build(const vd_cluster_params *p, const vd_cluster_face *faces, size_t n,
                                 size_t cap, vd_cluster_near_fn near, void *ud, vd_cluster_graph *g,
                                 vd_error *err)
{
    memset(g, 0, sizeof *g);
    vd_status st = vd_cluster_params_check(p, err);
    if (st != VD_OK) return st;
    if (n >= UINT32_MAX)
        return vd_error_set(err, VD_ERR_LIMIT, "too many faces to cluster: %zu", n);
    for (size_t i = 1; i < n; i++)
        if (faces[i].id <= faces[i - 1].id)
            return vd_error_set(err, VD_ERR_INVALID, "faces not sorted by id at %zu", i);
    edge *e = NULL;
    size_t m = 0;
    if ((st = collect_edges(p, faces, n, cap, near, ud, &e, &m, err)) != VD_OK) return st;
    if (m) qsort(e, m, sizeof *e, edge_cmp);
    g->n = n;
    g->start = calloc(n + 1, sizeof *g->start);
    g->nbr = malloc((m ? m : 1) * sizeof *g->nbr);
    g->sim = malloc((m ? m : 1) * sizeof *g->sim);
    if (!g->start || !g->nbr || !g->sim) {
        free(e);
        vd_cluster_graph_free(g);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (i > 0 && e[i].a == e[i - 1].a && e[i].b == e[i - 1].b)
            continue; /* a repeat: the larger similarity came first */
        g->nbr[k] = e[i].b;
        g->sim[k] = e[i].s;
        g->start[e[i].a + 1]++;
        k++;
    }
    for (size_t i = 0; i < n; i++)
        g->start[i + 1] += g->start[i];
    free(e);
    return VD_OK;
}

void vd_cluster_graph_free(vd_cluster_graph *g)
{
    free(g->start);
    free(g->nbr);
    free(g->sim);
    memset(g, 0, sizeof *g);
}

/* ---- full re-cluster --------------------------------------------------------------------- */

static size_t uf_find(size_t *parent, size_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

/* A face that takes part: not one the user took out of every person. */
static int member(const vd_cluster_face *f)
{
    return !(f->user && f->person_id == 0);
}

/* DBSCAN: comp[i] = the root of face i's cluster, or SIZE_MAX for noise. */
static void dbscan(const vd_cluster_params *p, const vd_cluster_face *faces,
                   const vd_cluster_graph *g, unsigned char *core, size_t *comp)
{
    size_t n = g->n;
    for (size_t i = 0; i < n; i++) {
        size_t deg = 0;
        for (size_t k = g->start[i]; k < g->start[i + 1]; k++)
            deg += member(&faces[g->nbr[k]]);
        core[i] = member(&faces[i]) && (faces[i].user || deg + 1 >= (size_t)p->min_faces);
        comp[i] = i;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = g->start[i]; core[i] && k < g->start[i + 1]; k++)
            if (core[g->nbr[k]]) {
                size_t a = uf_find(comp, i), b = uf_find(comp, g->nbr[k]);
                if (a != b) comp[a < b ? b : a] = a < b ? a : b;
            }
    for (size_t i = 0; i < n; i++)
        if (core[i]) comp[i] = uf_find(comp, i);
    for (size_t i = 0; i < n; i++) {
        if (core[i]) continue;
        size_t best = SIZE_MAX;
        float best_sim = -2.0f;
        for (size_t k = g->start[i]; member(&faces[i]) && k < g->start[i + 1]; k++)
            if (core[g->nbr[k]] && g->sim[k] > best_sim) {
                best_sim = g->sim[k];
                best = comp[g->nbr[k]];
            }
        comp[i] = best; /* roots of cores are cores: stable under this pass */
    }
}

static int i64_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* The most frequent value of v[0..n) (sorted here), ties to the smallest; 0 when n == 0. */
static int64_t majority(int64_t *v, size_t n)
{
    int64_t best = 0;
    size_t best_run = 0;
    qsort(v, n, sizeof *v, i64_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j] == v[i])
            j++;
        if (j - i > best_run) {
            best_run = j - i;
            best = v[i];
        }
        i = j;
    }
    return best;
}

/* A cluster with user faces of several people: each face takes the person of the anchor that
 * reaches it first, breadth-first over edges inside the cluster, expanding from cores. */
static void split_by_anchor(const vd_cluster_face *faces, const vd_cluster_graph *g,
                            const unsigned char *core, const size_t *comp, const size_t *mem,
                            size_t n_mem, int64_t *person, size_t *queue)
{
    size_t head = 0, tail = 0;
    for (size_t k = 0; k < n_mem; k++) {
        size_t i = mem[k];
        if (faces[i].user) {
            person[i] = faces[i].person_id;
            queue[tail++] = i;
        } else {
            person[i] = 0;
        }
    }
    while (head < tail) {
        size_t i = queue[head++];
        if (!core[i]) continue;
        for (size_t k = g->start[i]; k < g->start[i + 1]; k++) {
            size_t j = g->nbr[k];
            if (comp[j] != comp[i] || person[j] != 0 || faces[j].user) continue;
            person[j] = person[i];
            queue[tail++] = j;
        }
    }
    for (size_t k = 0; k < n_mem; k++) /* unreachable in a connected cluster; kept safe */
        if (person[mem[k]] == 0) person[mem[k]] = person[queue[0]];
}

/* Gives the cluster mem[0..n_mem) its people (see cluster.h); scratch holds n_mem ids. */
static void label_cluster(const vd_cluster_face *faces, const vd_cluster_graph *g,
                          const unsigned char *core, const size_t *comp, const size_t *mem,
                          size_t n_mem, int64_t *person, int64_t *scratch, size_t *queue,
                          size_t *new_people)
{
    int64_t first_user = 0;
    int several = 0;
    size_t n_votes = 0;
    for (size_t k = 0; k < n_mem; k++) {
        const vd_cluster_face *f = &faces[mem[k]];
        if (f->user && first_user == 0)
            first_user = f->person_id;
        else if (f->user && f->person_id != first_user)
            several = 1;
        if (f->person_id != 0) scratch[n_votes++] = f->person_id;
    }
    if (several) {
        split_by_anchor(faces, g, core, comp, mem, n_mem, person, queue);
        return;
    }
    int64_t who = majority(scratch, n_votes);
    if (!who) who = -(int64_t)(++*new_people);
    for (size_t k = 0; k < n_mem; k++)
        person[mem[k]] = faces[mem[k]].user ? faces[mem[k]].person_id : who;
}

vd_status vd_cluster_full(const vd_cluster_params *p, const vd_cluster_face *faces,
                          const vd_cluster_graph *g, int64_t *person, size_t *new_people,
                          vd_error *err)
{
    vd_status st = vd_cluster_params_check(p, err);
    if (st != VD_OK) return st;
    size_t n = g->n;
    *new_people = 0;
    unsigned char *core = malloc(n ? n : 1);
    size_t *comp = malloc((n ? n : 1) * sizeof *comp);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    size_t *queue = malloc((n ? n : 1) * sizeof *queue);
    int64_t *scratch = malloc((n ? n : 1) * sizeof *scratch);
    if (!core || !comp || !order || !queue || !scratch) {
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        goto done;
    }
    dbscan(p, faces, g, core, comp);
    /* Members of each cluster together (a counting sort by cluster), clusters in the order of
     * their root; queue serves as the cluster number of each root meanwhile. */
    size_t n_in = 0, n_clusters = 0;
    for (size_t i = 0; i < n; i++) {
        person[i] = faces[i].user ? faces[i].person_id : 0;
        queue[i] = comp[i] == i ? n_clusters++ : SIZE_MAX;
    }
    size_t *at = calloc(n_clusters + 1, sizeof *at);
    if (!at) {
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (comp[i] != SIZE_MAX) at[queue[comp[i]] + 1]++;
    for (size_t c = 0; c < n_clusters; c++)
        at[c + 1] += at[c];
    n_in = at[n_clusters];
    for (size_t i = 0; i < n; i++)
        if (comp[i] != SIZE_MAX) order[at[queue[comp[i]]]++] = i;
    free(at);
    for (size_t a = 0; a < n_in;) {
        size_t b = a;
        while (b < n_in && comp[order[b]] == comp[order[a]])
            b++;
        label_cluster(faces, g, core, comp, order + a, b - a, person, scratch, queue, new_people);
        a = b;
    }
done:
    free(core);
    free(comp);
    free(order);
    free(queue);
    free(scratch);
    return st;
}
