/* cli.c: helpers shared by the subcommands. */
#include "cli/cli.h"
#include "core/log.h"
#include "core/datadir.h"

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
