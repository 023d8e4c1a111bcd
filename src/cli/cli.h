/* cli.h: the subcommands of the visiond executable.
 *
 * Each subcommand is a function `int vd_cmd_NAME(int argc, char **argv)`
 * where argv[0] is the subcommand's name; it returns the process exit
 * code (0 ok, 1 failure, 2 usage error) and handles its own --help.
 * main.c lists them in its command table. */
#ifndef VD_CLI_H
#define VD_CLI_H

#include <stdio.h>

/* Exit codes shared by every subcommand. */
enum { VD_EXIT_OK = 0, VD_EXIT_FAIL = 1, VD_EXIT_USAGE = 2 };

/* Returns 1 when argv holds -h or --help before any "--". */
int vd_cli_wants_help(int argc, char **argv);

/* Prints "visiond: <message>" to stderr, one line; returns VD_EXIT_FAIL. */
int vd_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "visiond: <message>" and "try 'visiond CMD --help'"; returns VD_EXIT_USAGE. */
int vd_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* `--secret-file FILE` of a command that talks to a model server: checks the
 * file now (infer/auth.h: readable, 16 bytes at least, no group/other
 * access) and exports it as $VISIOND_MODEL_SECRET_FILE, where the model-server
 * client and child processes read it. Returns VD_EXIT_OK, or VD_EXIT_USAGE
 * with the reason printed. */
int vd_cli_secret_file(const char *cmd, const char *path);

/* Default queue url: $VISIOND_QUEUE, else "sqlite:$VISIOND_DATA/visiond.db", else
 * "./data/visiond.db". */
const char *vd_cli_default_queue_url(char *buf, size_t n);

/* How long a command waits at start for a PostgreSQL store that is down
 * (it says so once per attempt meanwhile). */
#define VD_CLI_STORE_WAIT_MS 60000

/* Opens the store at url (NULL: vd_store_default_url) once at start when it
 * is a PostgreSQL one, so that a long-running command (serve, worker) applies
 * the migrations, waits for a server that is down (VD_CLI_STORE_WAIT_MS) and
 * refuses a wrong password or database with one message that names the URL
 * without its password (core/pg.h's message). A SQLite store is left to open on first use, as
 * before. Returns VD_EXIT_OK or VD_EXIT_FAIL (after printing why). */
int vd_cli_store_check(const char *cmd, const char *url);

/* `visiond dataset fashion-mnist`: writes a data set's images as PNG files (cmd_dataset.c). */
int vd_cmd_dataset(int argc, char **argv);

/* The subcommands (each in src/cli/cmd_*.c). */
int vd_cmd_jobs(int argc, char **argv);
int vd_cmd_queue(int argc, char **argv);
int vd_cmd_worker(int argc, char **argv);
int vd_cmd_convert(int argc, char **argv);
int vd_cmd_model_server(int argc, char **argv);
int vd_cmd_serve(int argc, char **argv);
int vd_cmd_up(int argc, char **argv);
int vd_cmd_embed(int argc, char **argv);
int vd_cmd_faces(int argc, char **argv);
int vd_cmd_train(int argc, char **argv);
int vd_cmd_predict(int argc, char **argv);
int vd_cmd_search(int argc, char **argv);
int vd_cmd_index(int argc, char **argv);

#endif
