/* cmd_queue.c: `visiond queue ...`, the queue as a whole.
 *
 *   queue stats      {"backend": "sqlite", "counts": {"queued": n, ...}, "total": n}
 *   queue maintain   one housekeeping pass: {"changed": n}
 *
 * Exit codes: 0 ok, 1 the queue cannot be opened or read, 2 usage. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/pg.h"
#include "cli/cli.h"
#include "queue/job_json.h"
#include "queue/queue.h"

static const char queue_usage[] =
    "usage: visiond queue SUBCOMMAND [--queue URL]\n"
    "\n"
    "subcommands:\n"
    "  stats       job counts by state, as JSON:\n"
    "              {\"backend\": \"sqlite\", \"counts\": {\"queued\": n, ...}, \"total\": n}\n"
    "  maintain    one housekeeping pass (return lapsed leases, promote due\n"
    "              scheduled jobs, delete finished jobs past their result TTL);\n"
    "              prints {\"changed\": n}\n"
    "\n"
    "options:\n"
    "  --queue URL    sqlite:PATH, redis://HOST:PORT/DB or postgres://USER@HOST/DB\n"
    "                 (default: $VISIOND_QUEUE,\n"
    "                 else sqlite:$VISIOND_DATA/visiond.db, else sqlite:./data/visiond.db)\n"
    "  -h, --help     this help\n";

static int print_json(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_INDENT(2)) : NULL;
    json_decref(v);
    if (!s) return vd_cli_fail("out of memory");
    printf("%s\n", s);
    free(s);
    return VD_EXIT_OK;
}

int vd_cmd_queue(int argc, char **argv)
{
    if (argc < 2) {
        fputs(queue_usage, stderr);
        return vd_cli_usage_error("queue", "queue needs a subcommand");
    }
    if (vd_cli_wants_help(argc, argv) || strcmp(argv[1], "help") == 0) {
        fputs(queue_usage, stdout);
        return VD_EXIT_OK;
    }
    const char *sub = argv[1], *url = NULL;
    if (strcmp(sub, "stats") != 0 && strcmp(sub, "maintain") != 0)
        return vd_cli_usage_error("queue", "unknown subcommand '%s'", sub);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strncmp(argv[i], "--queue=", 8) == 0)
            url = argv[i] + 8;
        else
            return vd_cli_usage_error("queue", "queue %s: unexpected argument '%s'", sub, argv[i]);
    }
    char buf[1024];
    if (!url) url = vd_cli_default_queue_url(buf, sizeof buf);
    vd_queue *q;
    vd_error err;
    if (vd_queue_open(url, &q, &err) != VD_OK) {
        char shown[1024]; /* never the password (core/pg.h shows every URL form) */
        vd_pg_url_shown(url, shown, sizeof shown);
        if (err.code == VD_ERR_INVALID)
            return vd_cli_usage_error("queue", "bad queue url %s: %s", shown, vd_error_text(&err));
        return vd_cli_fail("cannot open queue %s: %s", shown, vd_error_text(&err));
    }
    json_t *out = NULL;
    vd_status st;
    if (strcmp(sub, "stats") == 0) {
        int64_t counts[VD_JOB__NSTATES];
        st = vd_queue_counts(q, counts, &err);
        if (st == VD_OK) {
            int64_t total = 0;
            for (int s = 0; s < VD_JOB__NSTATES; s++)
                total += counts[s];
            out = json_pack("{s:s, s:o, s:I}", "backend", vd_queue_backend(q), "counts",
                            vd_job_counts_to_json(counts), "total", (json_int_t)total);
        }
    } else {
        int changed = 0;
        st = vd_queue_maintain(q, &changed, &err);
        if (st == VD_OK) out = json_pack("{s:i}", "changed", changed);
    }
    vd_queue_close(q);
    if (st != VD_OK) return vd_cli_fail("queue %s: %s", sub, vd_error_text(&err));
    return print_json(out);
}
