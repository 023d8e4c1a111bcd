/* types.c: every job type of this build, in one registry. */
#include "worker/types.h"

vd_status vd_worker_registry_new(const vd_pipeline_config *pcfg, vd_registry **out, vd_error *err)
{
    *out = NULL;
    vd_registry *reg = vd_registry_new();
    if (!reg) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = vd_registry_add_builtin(reg, err);
    if (st == VD_OK) st = vd_pipeline_register(reg, pcfg, err);
    if (st != VD_OK) {
        vd_registry_free(reg);
        return st;
    }
    *out = reg;
    return VD_OK;
}
