/* light.c: the light job types' registry, and the store opening every job
 * type shares (pipeline/light.h, pipeline/jobs.h). Nothing here may reference
 * image/ or infer/ (light.h). */
#include "pipeline/light.h"

#include "pipeline/people.h"
#include "store/store.h"

vd_status vd_pipeline_open_store(const vd_pipeline_config *cfg, vd_store **store, vd_error *err)
{
    char buf[4096];
    const char *path =
        cfg && cfg->store_path ? cfg->store_path : vd_store_default_url(buf, sizeof buf);
    return vd_store_open(path, NULL, store, err);
}

vd_status vd_pipeline_light_registry_new(const vd_pipeline_config *cfg, int test_jobs,
                                         vd_registry **out, vd_error *err)
{
    *out = NULL;
    vd_registry *reg = vd_registry_new();
    if (!reg) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = test_jobs ? vd_registry_add_builtin(reg, err) : VD_OK;
    if (st == VD_OK) st = vd_registry_add(reg, "recluster_people", vd_people_job, (void *)cfg, err);
    if (st != VD_OK) {
        vd_registry_free(reg);
        return st;
    }
    *out = reg;
    return VD_OK;
}
