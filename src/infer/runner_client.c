/* runner_client.c: the vd_runner over the model server's client library. */
#include "infer/runner_client.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "infer/client.h"
#include "infer/model_folder.h"

/* MODELS is answered by the server's I/O thread at once: a server that does
 * not answer within this is down, and callers (the API) should say so soon. */
#define MODELS_TIMEOUT_MS 5000

/* A cached answer, with the identity of the metadata file it was read from:
 * a file changed, replaced or removed since is read (or looked up) again. An
 * answer from the server's MODELS list holds only while the connection it
 * came on does: once that connection is gone or was replaced (a restarted
 * server, perhaps with other models; a server that is down) the server is
 * asked again. */
typedef struct meta_entry {
    vd_model_meta meta;
    char file[4096];
    struct stat sb;
    uint64_t connects;
    struct meta_entry *next;
} meta_entry;

typedef struct {
    vd_runner base;
    vd_infer_client *client;
    char *models_path; /* NULL = ask the server */
    int64_t timeout_ms;
    meta_entry *metas;
} client_runner;

static vd_status valid_name(const char *name, vd_error *err)
{
    size_t n = strlen(name);
    if (n == 0 || n >= VD_MODEL_NAME_MAX || strchr(name, '/') || name[0] == '.')
        return vd_error_set(err, VD_ERR_INVALID, "bad model name \"%.80s\"", name);
    return VD_OK;
}

/* Looks for NAME.json in the directories of r->models_path. */
static vd_status meta_from_path(client_runner *r, const char *name, meta_entry *e, vd_error *err)
{
    const char *p = r->models_path;
    while (*p) {
        size_t dl = strcspn(p, ":");
        char dir[4096], file[4096];
        if (dl > 0 && dl < sizeof dir) {
            snprintf(dir, sizeof dir, "%.*s", (int)dl, p);
            /* NAME.json, or a tower of a model folder (infer/model_folder.h) */
            if (vd_model_folder_find(dir, name, file, sizeof file) && stat(file, &e->sb) == 0) {
                vd_strlcpy(e->file, file, sizeof e->file);
                return vd_model_meta_load(file, &e->meta, err);
            }
        }
        p += dl;
        if (*p == ':') p++;
    }
    return vd_error_set(err, VD_ERR_NOT_FOUND, "unknown model \"%s\" (not in %s)", name,
                        r->models_path);
}

/* Asks the server's MODELS list for name and loads the metadata file it names. */
static vd_status meta_from_server(client_runner *r, const char *name, meta_entry *e, vd_error *err)
{
    vd_model_meta *meta = &e->meta;
    char *text = NULL;
    vd_status st = vd_infer_client_models(r->client, MODELS_TIMEOUT_MS, &text, err);
    if (st != VD_OK) return st;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    json_t *models = json_object_get(j, "models");
    json_t *found = NULL, *m;
    size_t i;
    json_array_foreach(models, i, m)
    {
        const char *n = json_string_value(json_object_get(m, "name"));
        if (n && strcmp(n, name) == 0) found = m;
    }
    if (!found) {
        json_decref(j);
        return vd_error_set(err, VD_ERR_NOT_FOUND,
                            "unknown model \"%s\" (the model server has "
                            "no such model)",
                            name);
    }
    const char *path = json_string_value(json_object_get(found, "metadata"));
    json_int_t dim = json_integer_value(json_object_get(found, "dim"));
    if (!path) {
        json_decref(j);
        return vd_error_set(err, VD_ERR_PROTOCOL, "the model server gave no metadata file for %s",
                            name);
    }
    /* its identity before reading it: a file replaced meanwhile is read again next time */
    if (stat(path, &e->sb) == 0) vd_strlcpy(e->file, path, sizeof e->file);
    st = vd_model_meta_load(path, meta, err);
    if (st != VD_OK) {
        vd_error e2 = *err;
        st = vd_error_set(err, st,
                          "model %s: cannot read its metadata %s here (%s); give a models "
                          "directory when the model server runs elsewhere",
                          name, path, vd_error_text(&e2));
    } else if (meta->dim <= 0 && dim > 0) {
        meta->dim = (int)dim;
    }
    json_decref(j);
    return st;
}

/* Returns 1 when e still holds: its file is the one it was read from and,
 * for an answer from the server, the connection it came on is still the one. */
static int entry_fresh(const client_runner *r, const meta_entry *e)
{
    struct stat sb;
    if (!r->models_path && (!vd_infer_client_connected(r->client) ||
                            e->connects != vd_infer_client_connects(r->client)))
        return 0;
    return stat(e->file, &sb) == 0 && sb.st_dev == e->sb.st_dev && sb.st_ino == e->sb.st_ino &&
           sb.st_size == e->sb.st_size && sb.st_mtim.tv_sec == e->sb.st_mtim.tv_sec &&
           sb.st_mtim.tv_nsec == e->sb.st_mtim.tv_nsec;
}

static vd_status cr_meta(vd_runner *base, const char *name, vd_model_meta *meta, vd_error *err)
{
    client_runner *r = (client_runner *)base;
    vd_status st = valid_name(name, err);
    if (st != VD_OK) return st;
    for (meta_entry **pe = &r->metas; *pe; pe = &(*pe)->next) {
        meta_entry *e = *pe;
        if (strcmp(e->meta.name, name) != 0) continue;
        if (entry_fresh(r, e)) {
            *meta = e->meta;
            return VD_OK;
        }
        *pe = e->next; /* stale: look it up again */
        free(e);
        break;
    }
    meta_entry *e = calloc(1, sizeof *e);
    if (!e) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    st = r->models_path ? meta_from_path(r, name, e, err) : meta_from_server(r, name, e, err);
    /* The server knows models by file stem: key the cache by the name asked for. */
    vd_strlcpy(e->meta.name, name, sizeof e->meta.name);
    if (st != VD_OK || !e->file[0]) { /* failed, or no file to watch: answer without caching */
        if (st == VD_OK) *meta = e->meta;
        free(e);
        return st;
    }
    e->connects = vd_infer_client_connects(r->client);
    e->next = r->metas;
    r->metas = e;
    *meta = e->meta;
    return VD_OK;
}

static vd_status cr_run(vd_runner *base, const char *name, const vd_tensor *input, vd_tensor *outs,
                        size_t max_outs, size_t *nouts, vd_error *err)
{
    client_runner *r = (client_runner *)base;
    *nouts = 0;
    vd_infer_result res;
    memset(&res, 0, sizeof res);
    vd_status st = vd_infer_client_infer(r->client, name, input, r->timeout_ms, &res, err);
    if (st != VD_OK) return st;
    if (res.noutputs > max_outs) {
        size_t n = res.noutputs;
        vd_infer_result_free(&res);
        return vd_error_set(err, VD_ERR_INVALID, "model %s has %zu outputs, room for %zu", name, n,
                            max_outs);
    }
    for (size_t i = 0; i < res.noutputs; i++) {
        outs[i] = res.outputs[i]; /* move */
        memset(&res.outputs[i], 0, sizeof res.outputs[i]);
    }
    *nouts = res.noutputs;
    vd_infer_result_free(&res);
    return VD_OK;
}

static void cr_free(vd_runner *base)
{
    client_runner *r = (client_runner *)base;
    while (r->metas) {
        meta_entry *e = r->metas;
        r->metas = e->next;
        free(e);
    }
    vd_infer_client_free(r->client);
    free(r->models_path);
    free(r);
}

static vd_status cr_input(vd_runner *base, const int64_t *shape, size_t rank, vd_tensor *t,
                          vd_error *err)
{
    return vd_infer_client_input(((client_runner *)base)->client, shape, rank, t, err);
}

static const vd_runner_ops client_ops = {cr_meta, cr_run, cr_free, cr_input};

vd_status vd_runner_client_new(const char *address, const char *models_path, int64_t timeout_ms,
                               vd_runner **out, vd_error *err)
{
    *out = NULL;
    char buf[4096];
    if (!address || !*address) address = vd_infer_default_address(buf, sizeof buf);
    client_runner *r = calloc(1, sizeof *r);
    if (!r) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    r->base.ops = &client_ops;
    r->timeout_ms = timeout_ms;
    if (models_path && *models_path && !(r->models_path = vd_strdup(models_path))) {
        free(r);
        return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    }
    vd_status st = vd_infer_client_new(address, &r->client, err);
    if (st != VD_OK) {
        free(r->models_path);
        free(r);
        return st;
    }
    *out = &r->base;
    return VD_OK;
}

vd_status vd_runner_client_models(vd_runner *base, char **json, vd_error *err)
{
    client_runner *r = (client_runner *)base;
    return vd_infer_client_models(r->client, MODELS_TIMEOUT_MS, json, err);
}
