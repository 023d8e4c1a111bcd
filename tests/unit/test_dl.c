/* test_dl.c: libraries opened on first use (core/dl.h), one property per test, on libc
 * itself (always there) and on names that cannot exist. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "core/dl.h"
#include "vdtest.h"

typedef struct {
    size_t (*strlen_)(const char *);
    pid_t (*getpid_)(void);
} libc_table;

static const char *const libc_names[] = {"strlen", "getpid"};

VD_TEST(a_library_opened_on_first_use_fills_its_table_in_order)
{
    static vd_dl lib = VD_DL_INIT("libc.so.6", libc_names);
    libc_table t = {0};
    CHECK_EQ_INT(lib.n, 2);
    CHECK_EQ_INT(vd_dl_load(&lib, &t), 1);
    CHECK(t.strlen_ != NULL && t.getpid_ != NULL);
    CHECK_EQ_INT(t.strlen_("visiond"), 7);
    CHECK_EQ_INT(t.getpid_(), getpid());
    CHECK_EQ_INT(vd_dl_load(&lib, &t), 1); /* the first answer again */
}

VD_TEST(a_missing_library_is_named_and_stays_missing)
{
    static const char *const names[] = {"strlen"};
    static vd_dl lib = VD_DL_INIT("libvisiond-no-such.so.9", names);
    void *t[1] = {NULL};
    CHECK_EQ_INT(vd_dl_load(&lib, t), 0);
    CHECK(strstr(lib.why, "libvisiond-no-such.so.9") != NULL);
    CHECK_EQ_INT(vd_dl_load(&lib, t), 0);
}

VD_TEST(a_missing_function_is_named)
{
    static const char *const names[] = {"strlen", "vd_no_such_function"};
    static vd_dl lib = VD_DL_INIT("libc.so.6", names);
    void *t[2] = {NULL, NULL};
    CHECK_EQ_INT(vd_dl_load(&lib, t), 0);
    CHECK(strstr(lib.why, "has no vd_no_such_function") != NULL);
}

/* Many threads asking at once: one load, every one of them sees the filled table. */
static vd_dl race_lib = VD_DL_INIT("libc.so.6", libc_names);
static libc_table race_table;

static void *ask(void *arg)
{
    (void)arg;
    if (!vd_dl_load(&race_lib, &race_table)) return NULL;
    return race_table.strlen_("abc") == 3 ? (void *)1 : NULL;
}

VD_TEST(threads_asking_at_once_all_get_the_loaded_table)
{
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, ask, NULL);
    for (int i = 0; i < 8; i++) {
        void *ok = NULL;
        pthread_join(th[i], &ok);
        CHECK(ok == (void *)1);
    }
}

int main(void)
{
    return vd_test_run_all();
}
