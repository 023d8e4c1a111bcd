/* ort_session.h: ONNX Runtime through its C API, in-process.
 *
 * One vd_ort_env per process (it owns ORT's environment and thread pools);
 * any number of sessions, one per loaded model. Only the model server (and
 * tests, benchmarks and `visiond convert --check`) run models in-process:
 * a work-horse never does. Inputs are float32, or int32/int64 token ids (text
 * towers); outputs are returned as float32. */
#ifndef VD_ORT_SESSION_H
#define VD_ORT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/tensor.h"

typedef struct vd_ort_env vd_ort_env;
typedef struct vd_ort_session vd_ort_session;

/* The allocator policy (docs/model-server.md, "Memory"), the one home for
 * every process that runs ORT in-process. ORT's CPU arena is off (it kept the
 * largest batch's activations for good), so every run mallocs its activation
 * buffers and frees them; with glibc's defaults a block over the mmap
 * threshold (dynamic, at most 32 MiB) is mmapped and munmapped on every run
 * and faulted in again, zeroed: ~2,600 minor faults per image for
 * mobilenet_v2 at batch 8. reuse_bytes > 0 sets glibc's M_MMAP_THRESHOLD and
 * M_TRIM_THRESHOLD to it (freed blocks stay in the heap for the next run;
 * the heap holds the working set of the largest batch seen, not more);
 * 0 leaves glibc's defaults. arenas > 0 sets M_ARENA_MAX (binds only threads
 * that have no arena yet: call before starting threads); 0 leaves it.
 * vd_ort_env_new applies VD_ORT_MALLOC_REUSE_DEF and 1 arena when no policy
 * was set before in the process (threads that already allocated keep their
 * arenas; ORT's pool threads, started by vd_ort_env_new, do not): with an
 * arena per thread, parallel runs' blocks land in thread arenas, whose 64 MiB
 * heaps are unmapped when they empty, and fault again. VD_ERR_INVALID when glibc refuses. */
#define VD_ORT_MALLOC_REUSE_DEF (1LL << 30)
vd_status vd_ort_malloc_policy(long long reuse_bytes, long long arenas, vd_error *err);

/* Creates the process's ORT environment, opening libonnxruntime.so.1 the first
 * time (dlopen), and checking that it supports the API version we were built
 * against: VD_ERR_UNSUPPORTED, saying which, when it cannot be loaded or is too
 * old. intra_threads 0 = ORT's default. */
vd_status vd_ort_env_new(int intra_threads, vd_ort_env **out, vd_error *err);
void vd_ort_env_free(vd_ort_env *env);

/* Returns the ORT version string of the library ("1.29.0"; "unavailable" when it cannot be
 * loaded). Loads it. */
const char *vd_ort_version(void);

/* Loads an ONNX file. A missing, truncated or corrupt file is VD_ERR_MODEL with
 * ORT's message. The session owns everything it allocates. */
vd_status vd_ort_session_open(vd_ort_env *env, const char *onnx_path, vd_ort_session **out,
                              vd_error *err);
/* The same with the session's own intra-op thread count: 0 = the env's shared
 * pool (what vd_ort_session_open does); n > 0 = n threads of its own (n = 1:
 * the run computes in the calling thread only, so several threads can run
 * the session at once, each on one core). Sessions are safe to Run from
 * several threads at once. */
vd_status vd_ort_session_open_threads(vd_ort_env *env, const char *onnx_path, int intra_threads,
                                      vd_ort_session **out, vd_error *err);
void vd_ort_session_close(vd_ort_session *s);

/* Graph inputs and outputs: names (borrowed, live as long as the session) and
 * shapes (-1 for a dynamic dim; rank written to *rank, at most VD_TENSOR_MAX_RANK). */
size_t vd_ort_session_ninputs(const vd_ort_session *s);
size_t vd_ort_session_noutputs(const vd_ort_session *s);
const char *vd_ort_session_input_name(const vd_ort_session *s, size_t i);
const char *vd_ort_session_output_name(const vd_ort_session *s, size_t i);
void vd_ort_session_input_shape(const vd_ort_session *s, size_t i, int64_t *shape, size_t *rank);
void vd_ort_session_output_shape(const vd_ort_session *s, size_t i, int64_t *shape, size_t *rank);

/* The element type of graph input i as a vd_dtype: 1 and *dtype set for
 * float32, int32 and int64; 0 for any other type. */
int vd_ort_session_input_dtype(const vd_ort_session *s, size_t i, vd_dtype *dtype);

/* Runs the graph on one input (float32 for a float32 graph input; int32 or
 * int64 for an integer one, converted to the graph's integer type, a value
 * out of int32's range being VD_ERR_INVALID) (name NULL = the first input) and
 * returns the named outputs (NULL/0 = all, in graph order) in outs[], each
 * owned by the caller (vd_tensor_free). Shape mismatches are VD_ERR_INVALID. */
vd_status vd_ort_session_run(vd_ort_session *s, const char *input_name, const vd_tensor *input,
                             const char *const *output_names, size_t noutputs, vd_tensor *outs,
                             vd_error *err);

#endif
