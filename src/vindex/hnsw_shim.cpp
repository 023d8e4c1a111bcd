// hnsw_shim.cpp: hnsw_shim.h over hnswlib's HierarchicalNSW<float> with the
// inner-product space. hnswlib starts no thread; every exception stops here.
#include "vindex/hnsw_shim.h"

#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

#include <hnswlib/hnswlib.h>

struct vd_hnsw {
    int dim;
    size_t m, efc, ef;
    hnswlib::InnerProductSpace space;
    hnswlib::HierarchicalNSW<float> *g;
    vd_hnsw(int d, size_t m_, size_t efc_, size_t ef_)
        : dim(d), m(m_), efc(efc_), ef(ef_), space((size_t)d), g(nullptr)
    {
    }
    ~vd_hnsw()
    {
        delete g;
    }
};

static void put_msg(char *msg, const char *what)
{
    if (msg) std::snprintf(msg, 256, "%s", what);
}

template <typename F> static int guarded(char *msg, F f)
{
    try {
        f();
        return 0;
    } catch (const std::bad_alloc &) {
        put_msg(msg, "out of memory");
        return -1;
    } catch (const std::exception &e) {
        put_msg(msg, e.what());
        return -2;
    } catch (...) {
        put_msg(msg, "unknown C++ exception");
        return -2;
    }
}

extern "C" int vd_hnsw_new(int dim, size_t capacity, size_t m, size_t ef_construction, size_t ef,
                           vd_hnsw **out, char *msg)
{
    *out = nullptr;
    vd_hnsw *h = nullptr;
    int rc = guarded(msg, [&] {
        h = new vd_hnsw(dim, m, ef_construction, ef);
        h->g = new hnswlib::HierarchicalNSW<float>(&h->space, capacity ? capacity : 1, m,
                                                   ef_construction);
        h->g->setEf(ef);
    });
    if (rc != 0) {
        delete h;
        return rc;
    }
    *out = h;
    return 0;
}

extern "C" void vd_hnsw_free(vd_hnsw *h)
{
    delete h;
}

extern "C" int vd_hnsw_reserve(vd_hnsw *h, size_t more, char *msg)
{
    size_t need = h->g->cur_element_count + more, cap = h->g->max_elements_;
    if (need <= cap) return 0;
    size_t grown = cap + cap / 2;
    return guarded(msg, [&] { h->g->resizeIndex(need > grown ? need : grown); });
}

extern "C" int vd_hnsw_add(vd_hnsw *h, int64_t label, const float *v, char *msg)
{
    int rc = vd_hnsw_reserve(h, 1, msg);
    if (rc != 0) return rc;
    return guarded(msg, [&] { h->g->addPoint(v, (hnswlib::labeltype)label); });
}

static bool find_live(const vd_hnsw *h, int64_t label, hnswlib::tableint *id)
{
    auto it = h->g->label_lookup_.find((hnswlib::labeltype)label);
    if (it == h->g->label_lookup_.end() || h->g->isMarkedDeleted(it->second)) return false;
    *id = it->second;
    return true;
}

extern "C" int vd_hnsw_remove(vd_hnsw *h, int64_t label)
{
    hnswlib::tableint id;
    if (!find_live(h, label, &id)) return 1;
    h->g->markDeletedInternal(id);
    return 0;
}

extern "C" int vd_hnsw_contains(const vd_hnsw *h, int64_t label)
{
    hnswlib::tableint id;
    return find_live(h, label, &id) ? 1 : 0;
}

extern "C" size_t vd_hnsw_live(const vd_hnsw *h)
{
    return h->g->cur_element_count - h->g->num_deleted_;
}

extern "C" size_t vd_hnsw_deleted(const vd_hnsw *h)
{
    return h->g->num_deleted_;
}

extern "C" size_t vd_hnsw_slots(const vd_hnsw *h)
{
    return h->g->cur_element_count;
}

extern "C" int vd_hnsw_slot(const vd_hnsw *h, size_t i, int64_t *label, const float **vec)
{
    hnswlib::tableint id = (hnswlib::tableint)i;
    *label = (int64_t)h->g->getExternalLabel(id);
    *vec = (const float *)h->g->getDataByInternalId(id);
    return h->g->isMarkedDeleted(id) ? 0 : 1;
}

extern "C" int vd_hnsw_search(const vd_hnsw *h, const float *q, size_t k, int64_t *labels,
                              float *scores, size_t *n, char *msg)
{
    *n = 0;
    return guarded(msg, [&] {
        auto res = h->g->searchKnn(q, k); // a max-heap of distances: worst on top
        size_t cnt = res.size();
        for (size_t i = cnt; i > 0; i--) {
            labels[i - 1] = (int64_t)res.top().second;
            scores[i - 1] = 1.0f - res.top().first; // the space's distance is 1 - <q, v>
            res.pop();
        }
        *n = cnt;
    });
}
