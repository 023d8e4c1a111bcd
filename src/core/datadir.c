/* datadir.c: the data directory ($VISIOND_DATA, else ./data). */
#include "core/datadir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vd_data_dir(void)
{
    const char *d = getenv("VISIOND_DATA");
    return d && *d ? d : VD_DATA_DIR_DEFAULT;
}

vd_status vd_data_dir_set(const char *dir, vd_error *err)
{
    if (!dir || !*dir) return vd_error_set(err, VD_ERR_INVALID, "the data directory is empty");
    if (setenv("VISIOND_DATA", dir, 1) != 0)
        return vd_error_set(err, errno == ENOMEM ? VD_ERR_NOMEM : VD_ERR_INVALID,
                            "cannot set the data directory %s: %s", dir, strerror(errno));
    return VD_OK;
}

const char *vd_data_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", vd_data_dir(), name);
    return buf;
}
