/* cli.c: helpers shared by the subcommands. */
#include "cli/cli.h"
#include "core/log.h"
#include "core/datadir.h"
#include "infer/auth.h"
#include "core/pg.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int vd_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    }
    return 0;
}

int vd_cli_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (vd_log_get_format() == VD_LOG_JSON) /* stderr stays JSON lines */
        vd_log(VD_LOG_ERROR, "%s", msg);
    else
        fprintf(stderr, "visiond: %s\n", msg);
    return VD_EXIT_FAIL;
}

int vd_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "visiond: %s\ntry 'visiond %s --help'\n", msg, cmd);
    return VD_EXIT_USAGE;
}

int vd_cli_secret_file(const char *cmd, const char *path)
{
    vd_auth_secret s;
    vd_error err;
    vd_status st = vd_auth_secret_load(path, &s, &err);
    memset(&s, 0, sizeof s);
    if (st != VD_OK) return vd_cli_usage_error(cmd, "%s", err.msg);
    setenv(VD_AUTH_SECRET_ENV, path, 1);
    return VD_EXIT_OK;
}

const char *vd_cli_default_queue_url(char *buf, size_t n)
{
    const char *q = getenv("VISIOND_QUEUE");
    if (q && *q) {
        snprintf(buf, n, "%s", q);
        return buf;
    }
    snprintf(buf, n, "sqlite:%s/visiond.db", vd_data_dir());
    return buf;
}

int vd_cli_store_check(const char *cmd, const char *url)
{
    char buf[4096];
    if (!url || !*url) url = vd_store_default_url(buf, sizeof buf);
    if (strncmp(url, "sqlite:", 7) == 0 || !vd_pg_url_is(url)) return VD_EXIT_OK;
    vd_store_opts o = {.conn_wait_ms = VD_CLI_STORE_WAIT_MS};
    vd_store *s = NULL;
    vd_error err;
    if (vd_store_open(url, &o, &s, &err) != VD_OK)
        return vd_cli_fail("%s: cannot open the store: %s", cmd, vd_error_text(&err));
    vd_store_close(s);
    return VD_EXIT_OK;
}
