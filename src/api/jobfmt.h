/* jobfmt.h: a job as JSON text, written straight into a buffer.
 *
 * The same document as json_dumps(vd_job_to_json(job), JSON_COMPACT)
 * (queue/job_json.h: the one job shape): same fields, order and values. It
 * exists because GET /jobs/{id} is the API's hot path and building a jansson
 * tree, re-parsing the stored payload and serialising it again cost about as
 * much as the database read. The payload and the result are copied as stored
 * when they are valid JSON by jansson's rules (so the document is equal,
 * though whitespace and number spelling inside them are kept as stored);
 * otherwise they are given as JSON strings, as job_json does. Strings that
 * are not valid UTF-8 have their bytes >= 0x80 replaced by '?', as job_json
 * does. tests/unit/test_api_jobfmt.c checks the equality on many jobs. */
#ifndef VD_API_JOBFMT_H
#define VD_API_JOBFMT_H

#include <stddef.h>

#include "queue/queue.h"

/* Returns the job as malloc'd JSON text (caller frees) and its length in
 * *len, or NULL when out of memory. */
char *vd_api_job_text(const vd_job *job, size_t *len);

/* Returns 1 when text is one JSON value (surrounded by optional whitespace)
 * that jansson's json_loads(text, JSON_DECODE_ANY) would accept. */
int vd_api_json_valid(const char *text);

#endif
