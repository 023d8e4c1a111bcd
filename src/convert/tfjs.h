/* tfjs.h: a TensorFlow.js graph model, loaded: the model JSON's node list
 * (a TF GraphDef in JSON form) and its weights, dequantised to float32.
 *
 * Reads `model.json` + binary shards (`*.bin`), or a JS-module packaging
 * (`model.min.js` exporting the JSON, shards exporting base64 strings; see
 * jsmodule.h). Shard paths are relative to the model file; a path that does
 * not exist is retried with ".min.js" and ".js" appended. Weights are float32
 * or int32 after loading: float16 and uint8/uint16-quantised (min + scale * q)
 * weights are expanded. A shard group shorter than its manifest says is
 * VD_ERR_INVALID naming the first weight that does not fit. */
#ifndef VD_TFJS_H
#define VD_TFJS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VD_TFJS_MAX_RANK 8

typedef enum { VD_TFJS_F32 = 0, VD_TFJS_I32 } vd_tfjs_dtype;

typedef struct {
    const char *name; /* borrowed from the model JSON */
    vd_tfjs_dtype dtype;
    int rank;
    int64_t shape[VD_TFJS_MAX_RANK];
    size_t count;
    void *data; /* owned by the model: count floats (F32) or int32_t (I32) */
} vd_tfjs_weight;

typedef struct {
    const char *name, *op; /* borrowed from the model JSON */
    const char **inputs;   /* owned array of borrowed strings, as in the JSON ("x", "x:1", "^x") */
    size_t ninputs;
    json_t *attr; /* borrowed; may be NULL */
} vd_tfjs_node;

typedef struct {
    json_t *root; /* owned: the whole model JSON */
    vd_tfjs_node *nodes;
    size_t nnodes;
    vd_tfjs_weight *weights;
    size_t nweights;
} vd_tfjs_model;

/* Loads the model at path (.json or .js) and all its weights into a new model. */
vd_status vd_tfjs_load(const char *path, vd_tfjs_model **out, vd_error *err);
void vd_tfjs_free(vd_tfjs_model *m);

/* Returns the node named name (exactly), or NULL. */
const vd_tfjs_node *vd_tfjs_node_find(const vd_tfjs_model *m, const char *name);

/* Returns the weight named name, or NULL. */
const vd_tfjs_weight *vd_tfjs_weight_find(const vd_tfjs_model *m, const char *name);

/* Attribute accessors (GraphDef AttrValue in JSON form). Each returns dflt /
 * -1 / 0 when the attribute is missing or has another type. */
int64_t vd_tfjs_attr_int(const vd_tfjs_node *n, const char *key, int64_t dflt);
double vd_tfjs_attr_float(const vd_tfjs_node *n, const char *key, double dflt);
int vd_tfjs_attr_bool(const vd_tfjs_node *n, const char *key, int dflt);
/* Decodes attr.s (base64 in the JSON; plain text is accepted too) into buf;
 * returns 1 when present. */
int vd_tfjs_attr_string(const vd_tfjs_node *n, const char *key, char *buf, size_t size);
/* Fills out[] from attr.list.i; returns the count (-1 when missing or longer than max). */
int vd_tfjs_attr_ints(const vd_tfjs_node *n, const char *key, int64_t *out, int max);
/* Decodes attr.list.s[i] into buf; returns the list's length (0 when missing). */
int vd_tfjs_attr_list_string(const vd_tfjs_node *n, const char *key, int i, char *buf, size_t size);
/* Fills dims from attr.shape.dim[].size (-1 unknown); returns the rank, -1 when unknown. */
int vd_tfjs_attr_shape(const vd_tfjs_node *n, const char *key, int64_t *dims, int max);

#endif
