/* horse_main.c: visiond-horse, the light fork server (docs/worker.md, "Light horses").
 *
 * Not a command for people: `visiond worker` execs it with its socket as
 * descriptor 3 (worker/forkserver.h, vd_forkserver_exec) and the worker's store
 * as --store, and its clones run the light job types (pipeline/light.h). It
 * links only what those need, so it maps 9 shared objects where `visiond`
 * maps ~118 (libvips, ONNX Runtime, libmicrohttpd ...; libpq is loaded only
 * for a PostgreSQL store: core/pq.h), and a clone and an exit cost a
 * fraction of theirs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/pg.h"
#include "jobspec/jobspec.h"
#include "pipeline/light.h"
#include "worker/forkserver.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: visiond-horse [--store URL]\n"
            "(started by `visiond worker` with its socket as descriptor %d; "
            "docs/worker.md)\n",
            VD_FORKSERVER_FD);
    return 2;
}

int main(int argc, char **argv)
{
    const char *lvl = getenv("VISIOND_LOG_LEVEL");
    int level = vd_log_level_parse(lvl);
    vd_log_init("worker", level < 0 ? VD_LOG_INFO : (vd_log_level)level, 2);
    const char *bad = NULL;
    argc = vd_log_setup_format(argc, argv, &bad);
    if (argc < 0) return usage();
    vd_pipeline_config cfg = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            cfg.store_path = argv[++i];
        else
            return usage();
    }
    int type;
    socklen_t len = sizeof type;
    if (getsockopt(VD_FORKSERVER_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_SEQPACKET)
        return usage();
    vd_registry *reg;
    vd_error err;
    vd_error_clear(&err);
    /* horses of a PostgreSQL store inherit libpq loaded, not each a dlopen of ~20 libraries */
    if (cfg.store_path && vd_pg_url_is(cfg.store_path) && vd_pq_load(&err) != VD_OK) {
        VD_ERROR("visiond-horse: %s", vd_error_text(&err));
        return 1;
    }
    if (vd_pipeline_light_registry_new(&cfg, vd_job_test_types_enabled(), &reg, &err) != VD_OK) {
        VD_ERROR("visiond-horse: %s", vd_error_text(&err));
        return 1;
    }
    vd_forkserver_serve(VD_FORKSERVER_FD, reg);
}
