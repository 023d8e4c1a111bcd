/* duplicates.c: groups of near-identical assets (service/search.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/search.h"
#include "store/library.h"

/* The assets the pairs name: sorted unique ids, their paths (NULL: deleted),
 * and a union-find parent per id. */
typedef struct {
    int64_t *ids;
    char **paths;
    size_t *parent;
    size_t n;
} members;

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static size_t index_of(const members *m, int64_t id)
{
    const int64_t *p = bsearch(&id, m->ids, m->n, sizeof id, id_cmp);
    return (size_t)(p - m->ids);
}

static size_t find(members *m, size_t i)
{
    while (m->parent[i] != i) {
        m->parent[i] = m->parent[m->parent[i]];
        i = m->parent[i];
    }
    return i;
}

static void members_free(members *m)
{
    for (size_t i = 0; m->paths && i < m->n; i++)
        free(m->paths[i]);
    free(m->ids);
    free(m->paths);
    free(m->parent);
}

/* Collects the ids of the pairs and reads each from the store (deleted ones
 * keep a NULL path). */
static vd_status members_read(vd_store *store, const vd_vindex_pair *p, size_t np, members *m,
                              vd_error *err)
{
    memset(m, 0, sizeof *m);
    m->ids = malloc((2 * np + 1) * sizeof *m->ids);
    if (!m->ids) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < np; i++) {
        m->ids[m->n++] = p[i].a;
        m->ids[m->n++] = p[i].b;
    }
    qsort(m->ids, m->n, sizeof *m->ids, id_cmp);
    size_t u = 0;
    for (size_t i = 0; i < m->n; i++)
        if (u == 0 || m->ids[u - 1] != m->ids[i]) m->ids[u++] = m->ids[i];
    m->n = u;
    m->paths = calloc(u + 1, sizeof *m->paths);
    m->parent = calloc(u + 1, sizeof *m->parent);
    if (!m->paths || !m->parent) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < u; i++) {
        vd_asset a;
        memset(&a, 0, sizeof a);
        m->parent[i] = i;
        vd_status st = vd_store_asset_get(store, m->ids[i], 0, &a, err);
        if (st == VD_ERR_NOT_FOUND) continue; /* deleted: never returned */
        if (st != VD_OK) return st;
        m->paths[i] = a.path;
        a.path = NULL;
        vd_asset_clear(&a);
    }
    return VD_OK;
}

static int group_cmp(const void *a, const void *b)
{
    const vd_svc_dup_group *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return id_cmp(&x->ids[0], &y->ids[0]);
}

static void group_clear(vd_svc_dup_group *x)
{
    for (size_t j = 0; j < x->n; j++)
        free(x->paths[j]);
    free(x->ids);
    free(x->paths);
    free(x->pairs);
    memset(x, 0, sizeof *x);
}

/* Appends member i to group x (taking its path). */
static vd_status group_add(vd_svc_dup_group *x, members *m, size_t i, vd_error *err)
{
    int64_t *ni = realloc(x->ids, (x->n + 1) * sizeof *ni);
    if (ni) x->ids = ni;
    char **np = ni ? realloc(x->paths, (x->n + 1) * sizeof *np) : NULL;
    if (np) x->paths = np;
    if (!ni || !np) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    x->ids[x->n] = m->ids[i];
    x->paths[x->n++] = m->paths[i];
    m->paths[i] = NULL;
    return VD_OK;
}

/* Builds the groups from the unions: each component of two or more live
 * members, with the pairs inside it. */
static vd_status groups_build(members *m, const vd_vindex_pair *p, size_t np,
                              vd_svc_dup_group **out, size_t *nout, vd_error *err)
{
    size_t *gi = calloc(m->n + 1, sizeof *gi), ng = 0; /* root -> group + 1 */
    char *live = calloc(m->n + 1, 1);
    vd_svc_dup_group *g = calloc(m->n + 1, sizeof *g);
    vd_status st = gi && live && g ? VD_OK : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == VD_OK && i < m->n;
         i++) { /* ascending: a group's first is its smallest */
        if (!m->paths[i]) continue;
        live[i] = 1;
        size_t r = find(m, i);
        if (!gi[r]) gi[r] = ++ng;
        st = group_add(&g[gi[r] - 1], m, i, err);
    }
    for (size_t i = 0; st == VD_OK && i < np; i++) {
        size_t a = index_of(m, p[i].a), b = index_of(m, p[i].b);
        if (!live[a] || !live[b]) continue;
        vd_svc_dup_group *x = &g[gi[find(m, a)] - 1];
        vd_svc_dup_pair *pp = realloc(x->pairs, (x->npairs + 1) * sizeof *pp);
        if (!pp) {
            st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            break;
        }
        x->pairs = pp;
        x->pairs[x->npairs++] = (vd_svc_dup_pair){p[i].a, p[i].b, 1.0f - p[i].score};
    }
    size_t k = 0;
    for (size_t i = 0; g && i < ng; i++) {
        if (st == VD_OK && g[i].n >= 2)
            g[k++] = g[i];
        else
            group_clear(&g[i]); /* alone (its partners deleted), or failing */
    }
    free(gi);
    free(live);
    if (st != VD_OK) {
        free(g);
        return st;
    }
    qsort(g, k, sizeof *g, group_cmp);
    *out = g;
    *nout = k;
    return VD_OK;
}

vd_status vd_svc_duplicates(vd_libindex *li, vd_store *store, const char *model,
                            double max_distance, vd_svc_dup_group **groups, size_t *n,
                            const char **why, vd_error *err)
{
    *groups = NULL;
    *n = 0;
    if (why) *why = NULL;
    model = vd_svc_search_model(model);
    if (max_distance < 0) max_distance = VD_SVC_DUP_DEFAULT_MAX_DISTANCE;
    if (!(max_distance <= VD_SVC_DUP_MAX_DISTANCE)) { /* NaN too */
        if (why) *why = "max_distance_out_of_range";
        return vd_error_set(err, VD_ERR_INVALID, "max_distance must be 0..%g",
                            VD_SVC_DUP_MAX_DISTANCE);
    }
    vd_vindex_pair *pairs = NULL;
    size_t np = 0;
    vd_status st = vd_libindex_pairs(li, VD_LIBINDEX_IMAGE, model, (float)(1.0 - max_distance),
                                     VD_SVC_DUP_PER_VECTOR, &pairs, &np, err);
    if (st != VD_OK) {
        if (why) *why = st == VD_ERR_NOT_FOUND ? "no_index" : "index";
        return st;
    }
    members m;
    st = members_read(store, pairs, np, &m, err);
    if (st != VD_OK && why) *why = st == VD_ERR_NOMEM ? NULL : "store";
    for (size_t i = 0; st == VD_OK && i < np; i++) {
        size_t a = index_of(&m, pairs[i].a), b = index_of(&m, pairs[i].b);
        if (!m.paths[a] || !m.paths[b]) continue; /* a deleted asset joins nothing */
        size_t ra = find(&m, a), rb = find(&m, b);
        if (ra != rb) m.parent[ra > rb ? ra : rb] = ra < rb ? ra : rb; /* the smaller id is root */
    }
    if (st == VD_OK) st = groups_build(&m, pairs, np, groups, n, err);
    members_free(&m);
    free(pairs);
    return st;
}
