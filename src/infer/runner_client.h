/* runner_client.h: a vd_runner (infer/runner.h) over the model server's client.
 *
 * Work-horses and the API run models through this runner: every run() is one
 * INFER request to the model server (infer/client.h), which batches it with
 * other clients' requests. meta() answers from a cache filled on first use:
 * when models_path is given, from NAME.json in its ':'-separated directories
 * (the files the model server reads, for hosts that share them); otherwise
 * from the model server's MODELS answer: the model must be listed there and
 * its metadata file (the "metadata" path it reports) must be readable here
 * (same machine). A model the server does not list is VD_ERR_NOT_FOUND.
 * The cache keeps only answers found, each with the identity (inode, size,
 * mtime) of the metadata file it came from: a file changed, replaced or
 * removed since is looked up again, and a model not found is asked for anew
 * on every call, so that one runner can serve a long-lived process (the API
 * pools them) while models are added or changed. An answer from the server
 * holds while the connection it came on is open (checked without a round
 * trip): after the server closed it (restarted, stopped) the server is asked
 * again, so a server that is down is reported within the 5 s above.
 * MODELS requests (meta() and vd_runner_client_models) wait at most 5 s, so
 * that a server that is down is reported soon.
 * Used from one thread at a time, like every runner. */
#ifndef VD_INFER_RUNNER_CLIENT_H
#define VD_INFER_RUNNER_CLIENT_H

#include <stdint.h>

#include "core/err.h"
#include "infer/runner.h"

/* Creates a runner talking to the model server at address (see
 * vd_infer_client_new; NULL = vd_infer_default_address). models_path may be
 * NULL. timeout_ms bounds each request (<= 0: VD_INFER_DEFAULT_TIMEOUT_MS).
 * Does not connect yet. Free with vd_runner_free. */
vd_status vd_runner_client_new(const char *address, const char *models_path, int64_t timeout_ms,
                               vd_runner **out, vd_error *err);

/* Returns the model server's MODELS answer as JSON text (owned: free()),
 * through r, which must come from vd_runner_client_new. */
vd_status vd_runner_client_models(vd_runner *r, char **json, vd_error *err);

#endif
