// hnsw_shim.cpp: hnsw_shim.h over hnswlib's HierarchicalNSW<float> with an
// inner-product space of our own (vd_ip_space). hnswlib starts no thread; vd_hnsw_add_parallel
// starts and joins its own inside the call. Every exception stops here.
#include "vindex/hnsw_shim.h"
#include "vindex/dot.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

// hnswlib 0.6.2 prefetches the neighbour after the last one with
// _mm_prefetch(... *(datal + j + 1) ...): the argument is a real load, 4 bytes
// past the end of a full upper-level link list (a heap overflow ASan reports in
// searchBaseLayer during addPoint; fixed upstream later). With the prefetch
// made a no-op that does not evaluate its arguments, nothing reads past a list.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#undef _mm_prefetch
#define _mm_prefetch(p, hint) ((void)sizeof(p), (void)sizeof(hint))
#endif
// It also copies an empty neighbour list with memcpy(vector.data(), list, 0)
// (getConnectionsWithLock, from updatePoint: replacing a vector whose node is
// alone on one of its levels), and an empty std::vector's data() is NULL: a
// null argument to memcpy, undefined behaviour (UBSan stops there). Inside
// hnswlib's headers memcpy skips zero-length copies; every standard header
// they include is included first, so the macro reaches only hnswlib's text.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <deque>
#include <fstream>
#include <iostream>
#include <list>
#include <queue>
#include <random>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unordered_map>
#include <unordered_set>
static inline void *vd_memcpy_nonempty(void *dst, const void *src, size_t n)
{
    return n ? std::memcpy(dst, src, n) : dst;
}
#define memcpy vd_memcpy_nonempty

// A node's level is drawn from one generator per graph, and hnswlib draws it
// without a lock: concurrent inserts (vd_hnsw_add_parallel, as hnswlib's own
// Python ParallelFor) race on the generator's state, a data race that
// ThreadSanitizer reports (tests/tsan/run.sh). The macros below route the one
// call, getRandomLevel(mult_), to vd_next_level, and leave hnswlib's
// definition in place under another name (the definition's first token is
// `double`, the call's `mult_`: a new use of the name in hnswlib fails to
// compile instead of escaping this).
#define VD_HNSW_MAX_LEVEL 64 /* a node's highest level, here and in the loader */
namespace
{
std::mutex vd_level_lock;
// The level this thread's next insert takes, when >= 0 (set by with_level).
thread_local int vd_forced_level = -1;

// Draws a level from gen under a lock, as hnswlib would: floor(-ln(u) * mult).
template <typename Engine> int vd_draw_level(Engine &gen, double mult)
{
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    double u;
    {
        std::lock_guard<std::mutex> hold(vd_level_lock);
        u = unit(gen);
    }
    // u is in [0, 1): -log(0) is infinite, and a level beyond the loader's
    // bound would make a graph that cannot be read back
    double level = u > 0 ? -std::log(u) * mult : VD_HNSW_MAX_LEVEL;
    return level < VD_HNSW_MAX_LEVEL ? (int)level : VD_HNSW_MAX_LEVEL;
}

// What hnswlib's addPoint gets for the new node's level.
template <typename Engine> int vd_next_level(Engine &gen, double mult)
{
    int forced = vd_forced_level;
    vd_forced_level = -1;
    return forced >= 0 ? forced : vd_draw_level(gen, mult);
}

// Makes this thread's next insert take `level`, until the scope ends.
struct with_level {
    explicit with_level(int level)
    {
        vd_forced_level = level;
    }
    ~with_level()
    {
        vd_forced_level = -1;
    }
};
} // namespace
#define getRandomLevel(arg) VD_HNSW_LEVEL_##arg)
#define VD_HNSW_LEVEL_double getRandomLevel_unlocked(double
#define VD_HNSW_LEVEL_mult_ vd_next_level(level_generator_, mult_
#include <hnswlib/hnswlib.h>
#undef getRandomLevel
#undef VD_HNSW_LEVEL_double
#undef VD_HNSW_LEVEL_mult_
#undef memcpy

namespace
{
// hnswlib's inner-product distance, 1 - <a, b>, scored by vindex/dot.h.
// hnswlib's own InnerProductSpace picks its SIMD when it is compiled: SSE
// only (4 floats at a time, one accumulator, no FMA) in a build for the
// x86-64 baseline such as ours; vd_dot takes AVX2 + FMA where the CPU has it.
// The distance is nearly all of an HNSW insert's and search's CPU at our
// dimensions (docs/vindex.md, bench/search).
class vd_ip_space : public hnswlib::SpaceInterface<float>
{
    size_t dim_;
    static float distance(const void *a, const void *b, const void *dim)
    {
        return 1.0f - vd_dot((const float *)a, (const float *)b, *(const size_t *)dim);
    }

  public:
    explicit vd_ip_space(size_t dim) : dim_(dim)
    {
    }
    size_t get_data_size() override
    {
        return dim_ * sizeof(float);
    }
    hnswlib::DISTFUNC<float> get_dist_func() override
    {
        return distance;
    }
    void *get_dist_func_param() override
    {
        return &dim_;
    }
};
} // namespace

struct vd_hnsw {
    int dim;
    size_t m, efc, ef;
    vd_ip_space space;
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

extern "C" void vd_hnsw_set_ef(vd_hnsw *h, size_t ef)
{
    h->ef = ef;
    h->g->setEf(ef);
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

extern "C" int vd_hnsw_known(const vd_hnsw *h, int64_t label)
{
    return h->g->label_lookup_.count((hnswlib::labeltype)label) ? 1 : 0;
}

namespace
{
// What the workers of one parallel run share: the next item, the first failure.
struct par_job {
    std::function<void(size_t)> one; // adds item j; may throw
    size_t n;
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex fail_lock;
    int rc = 0;
    char msg[256] = "";

    void work()
    {
        for (;;) {
            size_t j = next.fetch_add(1);
            if (j >= n || stop.load()) return;
            char m[256] = "";
            int e = guarded(m, [&] { one(j); });
            if (e != 0) {
                std::lock_guard<std::mutex> g(fail_lock);
                if (rc == 0) {
                    rc = e;
                    std::memcpy(msg, m, sizeof msg);
                }
                stop.store(true);
                return;
            }
        }
    }
};
} // namespace

// Runs one(0..n) over `threads` threads, the caller's included, as hnswlib's
// Python ParallelFor: each takes the next item until none is left. A thread
// that cannot be started leaves its share to the others.
static int run_parallel(size_t n, int threads, std::function<void(size_t)> one, char *msg)
{
    par_job job;
    job.one = std::move(one);
    job.n = n;
    std::vector<std::thread> pool;
    int rc = guarded(msg, [&] {
        pool.reserve(threads > 1 ? (size_t)threads - 1 : 0);
        for (int t = 1; t < threads && (size_t)t < n; t++) {
            try {
                pool.emplace_back([&job] { job.work(); });
            } catch (const std::system_error &) {
                break;
            }
        }
    });
    job.work();
    for (auto &t : pool)
        t.join();
    if (rc != 0) return rc;
    if (job.rc != 0) put_msg(msg, job.msg);
    return job.rc;
}

// Inserts items 0..n (vector vec(j), label label(j), all new to the graph)
// with `threads` threads. Every level is drawn first, in item order, from the
// graph's generator; the items that raise the graph's top level go in one by
// one, in that order, before the others go in in parallel. So no insert of
// the parallel phase changes the entry point or the top level: hnswlib writes
// those under its global lock but reads them without it (a data race
// ThreadSanitizer reports in the parallel phase otherwise). The levels keep
// hnswlib's distribution, and their sequence no longer depends on the
// threads' interleaving.
template <typename Vec, typename Label>
static int insert_all(vd_hnsw *h, size_t n, Vec vec, Label label, int threads, char *msg)
{
    std::vector<int> levels;
    std::vector<size_t> rest;
    int rc = guarded(msg, [&] {
        levels.resize(n);
        rest.reserve(n);
        std::vector<size_t> raising;
        int top = h->g->cur_element_count ? h->g->maxlevel_ : -1;
        for (size_t j = 0; j < n; j++) {
            levels[j] = vd_draw_level(h->g->level_generator_, h->g->mult_);
            if (levels[j] > top) {
                raising.push_back(j);
                top = levels[j];
            } else {
                rest.push_back(j);
            }
        }
        for (size_t j : raising) {
            with_level lv(levels[j]);
            h->g->addPoint(vec(j), (hnswlib::labeltype)label(j));
        }
    });
    if (rc != 0) return rc;
    return run_parallel(
        rest.size(), threads,
        [&](size_t i) {
            size_t j = rest[i];
            with_level lv(levels[j]);
            h->g->addPoint(vec(j), (hnswlib::labeltype)label(j));
        },
        msg);
}

extern "C" int vd_hnsw_add_parallel(vd_hnsw *h, size_t n, const int64_t *labels, const float *vecs,
                                    const size_t *rows, int threads, char *msg)
{
    int rc = vd_hnsw_reserve(h, n, msg);
    if (rc != 0 || n == 0) return rc;
    auto row = [=](size_t j) { return rows ? rows[j] : j; };
    return insert_all(
        h, n, [&](size_t j) { return (const void *)(vecs + row(j) * (size_t)h->dim); },
        [&](size_t j) { return labels[row(j)]; }, threads, msg);
}

extern "C" int vd_hnsw_rebuild(const vd_hnsw *old, int threads, vd_hnsw **out, char *msg)
{
    *out = nullptr;
    std::vector<hnswlib::tableint> live;
    int rc = guarded(msg, [&] {
        for (size_t i = 0; i < old->g->cur_element_count; i++)
            if (!old->g->isMarkedDeleted((hnswlib::tableint)i))
                live.push_back((hnswlib::tableint)i);
    });
    vd_hnsw *h = nullptr;
    if (rc == 0) rc = vd_hnsw_new(old->dim, live.size() + 1, old->m, old->efc, old->ef, &h, msg);
    if (rc == 0)
        rc = insert_all(
            h, live.size(),
            [&](size_t j) { return (const void *)old->g->getDataByInternalId(live[j]); },
            [&](size_t j) { return (int64_t)old->g->getExternalLabel(live[j]); }, threads, msg);
    if (rc != 0) {
        vd_hnsw_free(h);
        return rc;
    }
    *out = h;
    return 0;
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

// ---- the graph as bytes: u32 little-endian words ----
// [maxlevel + 1] [enterpoint] then per slot: [level] and, for each level
// 0..level, [count] [count neighbour slots].

static void put_u32(unsigned char *&p, uint32_t v)
{
    std::memcpy(p, &v, 4);
    p += 4;
}

static unsigned int *links_of(const hnswlib::HierarchicalNSW<float> *g, size_t i, int level)
{
    return level == 0 ? g->get_linklist0((hnswlib::tableint)i)
                      : g->get_linklist((hnswlib::tableint)i, level);
}

extern "C" size_t vd_hnsw_graph_size(const vd_hnsw *h)
{
    const auto *g = h->g;
    size_t words = 2;
    for (size_t i = 0; i < g->cur_element_count; i++) {
        words += 1;
        for (int l = 0; l <= g->element_levels_[i]; l++)
            words += 1 + g->getListCount(links_of(g, i, l));
    }
    return words * 4;
}

extern "C" void vd_hnsw_graph_write(const vd_hnsw *h, unsigned char *out)
{
    const auto *g = h->g;
    unsigned char *p = out;
    put_u32(p, (uint32_t)(g->maxlevel_ + 1));
    put_u32(p, (uint32_t)g->enterpoint_node_);
    for (size_t i = 0; i < g->cur_element_count; i++) {
        put_u32(p, (uint32_t)g->element_levels_[i]);
        for (int l = 0; l <= g->element_levels_[i]; l++) {
            unsigned int *ll = links_of(g, i, l);
            size_t cnt = g->getListCount(ll);
            put_u32(p, (uint32_t)cnt);
            for (size_t j = 0; j < cnt; j++)
                put_u32(p, ll[1 + j]);
        }
    }
}

namespace
{
struct reader {
    const unsigned char *p, *end;
    bool get(uint32_t *v)
    {
        if (end - p < 4) return false;
        std::memcpy(v, p, 4);
        p += 4;
        return true;
    }
};
} // namespace

// Fills slot i's links from the reader, checking every count and neighbour.
static bool read_links(hnswlib::HierarchicalNSW<float> *g, reader &r, size_t i, size_t nslots)
{
    uint32_t level;
    if (!r.get(&level) || level > VD_HNSW_MAX_LEVEL) return false;
    if (level > 0) {
        g->linkLists_[i] = (char *)std::calloc(level, g->size_links_per_element_);
        if (!g->linkLists_[i]) throw std::bad_alloc();
    }
    g->element_levels_[i] = (int)level;
    for (uint32_t l = 0; l <= level; l++) {
        uint32_t cnt, nb;
        if (!r.get(&cnt) || cnt > (l == 0 ? g->maxM0_ : g->maxM_)) return false;
        unsigned int *ll = links_of(g, i, (int)l);
        g->setListCount(ll, (unsigned short)cnt);
        for (uint32_t j = 0; j < cnt; j++) {
            if (!r.get(&nb) || nb >= nslots || nb == i) return false;
            ll[1 + j] = nb;
        }
    }
    return true;
}

static bool graph_fill(vd_hnsw *h, size_t nslots, const int64_t *labels, const float *vecs,
                       const unsigned char *live, const unsigned char *graph, size_t graph_len)
{
    auto *g = h->g;
    reader r{graph, graph + graph_len};
    uint32_t levels, entry;
    if (!r.get(&levels) || !r.get(&entry) || levels > VD_HNSW_MAX_LEVEL + 1) return false;
    if ((nslots == 0) != (levels == 0)) return false;
    for (size_t i = 0; i < nslots; i++) {
        std::memset(g->get_linklist0((hnswlib::tableint)i), 0, g->size_links_level0_);
        std::memcpy(g->getDataByInternalId((hnswlib::tableint)i), vecs + i * (size_t)h->dim,
                    g->data_size_);
        hnswlib::labeltype label = (hnswlib::labeltype)labels[i];
        std::memcpy(g->data_level0_memory_ + i * g->size_data_per_element_ + g->label_offset_,
                    &label, sizeof label);
        g->cur_element_count = i + 1; // the destructor frees the link lists of [0, count)
        g->element_levels_[i] = 0;
        if (!read_links(g, r, i, nslots)) return false;
        if (!g->label_lookup_.emplace(label, (hnswlib::tableint)i).second) return false;
        if (!live[i]) g->markDeletedInternal((hnswlib::tableint)i);
    }
    if (r.p != r.end) return false;
    if (nslots > 0) {
        if (entry >= nslots || (uint32_t)g->element_levels_[entry] != levels - 1) return false;
        for (size_t i = 0; i < nslots; i++) {
            if ((uint32_t)g->element_levels_[i] > levels - 1) return false;
            // a neighbour on level l must itself reach level l (search reads its list there)
            for (int l = 1; l <= g->element_levels_[i]; l++) {
                unsigned int *ll = links_of(g, i, l);
                for (size_t j = 0; j < g->getListCount(ll); j++)
                    if (g->element_levels_[ll[1 + j]] < l) return false;
            }
        }
        g->enterpoint_node_ = entry;
        g->maxlevel_ = (int)levels - 1;
    }
    return true;
}

extern "C" int vd_hnsw_from_graph(int dim, size_t m, size_t ef_construction, size_t ef,
                                  size_t nslots, const int64_t *labels, const float *vecs,
                                  const unsigned char *live, const unsigned char *graph,
                                  size_t graph_len, vd_hnsw **out, char *msg)
{
    vd_hnsw *h = nullptr;
    int rc = vd_hnsw_new(dim, nslots, m, ef_construction, ef, &h, msg);
    if (rc != 0) return rc;
    bool ok = false;
    rc = guarded(msg, [&] { ok = graph_fill(h, nslots, labels, vecs, live, graph, graph_len); });
    if (rc == 0 && !ok) {
        put_msg(msg, "inconsistent HNSW graph");
        rc = -2;
    }
    if (rc != 0) {
        vd_hnsw_free(h);
        return rc;
    }
    *out = h;
    return 0;
}
