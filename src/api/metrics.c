/* metrics.c: HTTP request counters and histograms (see metrics.h). */
#include "api/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define MAX_SERIES 2048
#define ROUTE_MAX  96

/* Upper bounds of the latency buckets, in seconds (+Inf is implicit). */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

typedef struct {
    char method[8];
    char route[ROUTE_MAX];
    int status;
    long long count;
} counter;

typedef struct {
    char method[8];
    char route[ROUTE_MAX];
    long long buckets[NBUCKETS]; /* non-cumulative here; cumulated when written */
    long long count;
    double sum;
    unsigned long long bytes;
} histogram;

struct vd_http_metrics {
    pthread_mutex_t mu;
    counter *c;
    size_t nc, capc;
    histogram *h;
    size_t nh, caph;
};

vd_http_metrics *vd_http_metrics_new(void)
{
    vd_http_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void vd_http_metrics_free(vd_http_metrics *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m->c);
    free(m->h);
    free(m);
}

static const char *label_method(const char *method)
{
    static const char *known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; method && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0) return known[i];
    return "other";
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 1;
    size_t nc = *cap ? *cap * 2 : 32;
    void *p = realloc(*arr, nc * elem);
    if (!p) return 0;
    *arr = p;
    *cap = nc;
    return 1;
}

static counter *find_counter(vd_http_metrics *m, const char *method, const char *route, int status,
                             int create)
{
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].status == status && strcmp(m->c[i].route, route) == 0 &&
            strcmp(m->c[i].method, method) == 0)
            return &m->c[i];
    if (!create || m->nc >= MAX_SERIES || !grow((void **)&m->c, &m->capc, m->nc, sizeof *m->c))
        return NULL;
    counter *c = &m->c[m->nc++];
    memset(c, 0, sizeof *c);
    vd_strlcpy(c->method, method, sizeof c->method);
    vd_strlcpy(c->route, route, sizeof c->route);
    c->status = status;
    return c;
}

static histogram *find_histogram(vd_http_metrics *m, const char *method, const char *route)
{
    for (size_t i = 0; i < m->nh; i++)
        if (strcmp(m->h[i].route, route) == 0 && strcmp(m->h[i].method, method) == 0)
            return &m->h[i];
    if (m->nh >= MAX_SERIES || !grow((void **)&m->h, &m->caph, m->nh, sizeof *m->h)) return NULL;
    histogram *h = &m->h[m->nh++];
    memset(h, 0, sizeof *h);
    vd_strlcpy(h->method, method, sizeof h->method);
    vd_strlcpy(h->route, route, sizeof h->route);
    return h;
}

void vd_http_metrics_observe(vd_http_metrics *m, const char *method, const char *route, int status,
                             double seconds, size_t bytes_out)
{
    if (!m) return;
    const char *meth = label_method(method);
    if (!route) route = "unmatched";
    pthread_mutex_lock(&m->mu);
    counter *c = find_counter(m, meth, route, status, 1);
    if (!c) c = find_counter(m, meth, "overflow", status, 1);
    if (c) c->count++;
    histogram *h = find_histogram(m, meth, route);
    if (!h) h = find_histogram(m, meth, "overflow");
    if (h) {
        size_t b = 0;
        while (b < NBUCKETS && seconds > bucket_le[b])
            b++;
        if (b < NBUCKETS) h->buckets[b]++;
        h->count++;
        h->sum += seconds;
        h->bytes += bytes_out;
    }
    pthread_mutex_unlock(&m->mu);
}

long long vd_http_metrics_count(vd_http_metrics *m, const char *method, const char *route,
                                int status)
{
    pthread_mutex_lock(&m->mu);
    counter *c = find_counter(m, label_method(method), route ? route : "unmatched", status, 0);
    long long n = c ? c->count : 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* Writes a label value with Prometheus escaping (\\, \", \n). */
static void put_label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f), fputc(*s, f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void put_labels(FILE *f, const char *method, const char *route)
{
    fputs("{method=\"", f);
    put_label(f, method);
    fputs("\",route=\"", f);
    put_label(f, route);
    fputc('"', f);
}

vd_status vd_http_metrics_write(vd_http_metrics *m, FILE *f, vd_error *err)
{
    pthread_mutex_lock(&m->mu);
    fputs("# HELP visiond_http_requests_total HTTP requests answered, by method, route and "
          "status.\n# TYPE visiond_http_requests_total counter\n",
          f);
    for (size_t i = 0; i < m->nc; i++) {
        fputs("visiond_http_requests_total", f);
        put_labels(f, m->c[i].method, m->c[i].route);
        fprintf(f, ",status=\"%d\"} %lld\n", m->c[i].status, m->c[i].count);
    }
    fputs("# HELP visiond_http_request_duration_seconds Time from the request's first byte to "
          "the end of its response.\n# TYPE visiond_http_request_duration_seconds histogram\n",
          f);
    for (size_t i = 0; i < m->nh; i++) {
        const histogram *h = &m->h[i];
        long long cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += h->buckets[b];
            fputs("visiond_http_request_duration_seconds_bucket", f);
            put_labels(f, h->method, h->route);
            fprintf(f, ",le=\"%g\"} %lld\n", bucket_le[b], cum);
        }
        fputs("visiond_http_request_duration_seconds_bucket", f);
        put_labels(f, h->method, h->route);
        fprintf(f, ",le=\"+Inf\"} %lld\n", h->count);
        fputs("visiond_http_request_duration_seconds_sum", f);
        put_labels(f, h->method, h->route);
        fprintf(f, "} %.6f\n", h->sum);
        fputs("visiond_http_request_duration_seconds_count", f);
        put_labels(f, h->method, h->route);
        fprintf(f, "} %lld\n", h->count);
    }
    fputs("# HELP visiond_http_response_bytes_total Response body bytes sent.\n"
          "# TYPE visiond_http_response_bytes_total counter\n",
          f);
    for (size_t i = 0; i < m->nh; i++) {
        fputs("visiond_http_response_bytes_total", f);
        put_labels(f, m->h[i].method, m->h[i].route);
        fprintf(f, "} %llu\n", m->h[i].bytes);
    }
    pthread_mutex_unlock(&m->mu);
    if (ferror(f)) return vd_error_set(err, VD_ERR_IO, "writing metrics failed");
    return VD_OK;
}
