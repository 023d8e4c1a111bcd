/* metrics.h: the HTTP server's request counters and latency histograms, in
 * Prometheus text exposition format (version 0.0.4).
 *
 * Series:
 *   visiond_http_requests_total{method, route, status}            counter
 *   visiond_http_request_duration_seconds{method, route}          histogram
 *   visiond_http_response_bytes_total{method, route}              counter
 * `route` is the matched route's pattern ("/jobs/{id}"), never the raw path,
 * so the number of series stays bounded; requests that matched no route are
 * counted under route="unmatched" and their method as "other" unless it is a
 * standard one. The server records a request when its response is queued
 * (duration: headers received to response ready), or with status 0 when the
 * client went away before an answer. Thread-safe: observe and write take an internal mutex. */
#ifndef VD_API_METRICS_H
#define VD_API_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "core/err.h"

typedef struct vd_http_metrics vd_http_metrics;

/* Returns a new, empty registry (NULL when out of memory); free with vd_http_metrics_free. */
vd_http_metrics *vd_http_metrics_new(void);
void vd_http_metrics_free(vd_http_metrics *m);

/* Records one finished request. route NULL means "unmatched". Series past an
 * internal cap (a few thousand) are folded into route="overflow". */
void vd_http_metrics_observe(vd_http_metrics *m, const char *method, const char *route, int status,
                             double seconds, size_t bytes_out);

/* Returns the count recorded for method + route + status (0 when none): for tests. */
long long vd_http_metrics_count(vd_http_metrics *m, const char *method, const char *route,
                                int status);

/* Writes every series, with HELP and TYPE lines, to out. VD_ERR_IO when writing fails. */
vd_status vd_http_metrics_write(vd_http_metrics *m, FILE *out, vd_error *err);

#endif
