/* test_datadir.c: the one resolver of the data directory (core/datadir.h). */
#include <stdlib.h>
#include <string.h>

#include "core/datadir.h"
#include "infer/client.h"
#include "store/store.h"
#include "vdtest.h"

VD_TEST(unset_or_empty_is_dot_data)
{
    char buf[256];
    unsetenv("VISIOND_DATA");
    CHECK_EQ_STR(vd_data_dir(), "./data");
    setenv("VISIOND_DATA", "", 1); /* empty counts as unset, everywhere */
    CHECK_EQ_STR(vd_data_dir(), "./data");
    CHECK_EQ_STR(vd_data_path(buf, sizeof buf, "store.db"), "./data/store.db");
}

VD_TEST(set_moves_every_default)
{
    vd_error err;
    char buf[256];
    CHECK_OK(vd_data_dir_set("/srv/vd", &err));
    CHECK_EQ_STR(getenv("VISIOND_DATA"), "/srv/vd"); /* children inherit it */
    CHECK_EQ_STR(vd_data_dir(), "/srv/vd");
    CHECK_EQ_STR(vd_store_default_path(buf, sizeof buf), "/srv/vd/store.db");
    unsetenv("VISIOND_MODEL_SERVER");
    CHECK_EQ_STR(vd_infer_default_address(buf, sizeof buf), "unix:/srv/vd/model.sock");
    CHECK_EQ_INT(vd_data_dir_set("", &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_data_dir_set(NULL, NULL), VD_ERR_INVALID);
    CHECK_EQ_STR(vd_data_dir(), "/srv/vd");
}

int main(void)
{
    return vd_test_run_all();
}
