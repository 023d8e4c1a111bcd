/* main.c: command dispatch for the visiond executable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("visiond %s\n", VISIOND_VERSION);
    return VD_EXIT_OK;
}

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"version", cmd_version, "print the version"},
    {"dataset", vd_cmd_dataset, "write a data set's images as PNG files (fashion-mnist)"},
    {"jobs", vd_cmd_jobs, "enqueue, list, show, cancel, requeue and purge jobs"},
    {"queue", vd_cmd_queue, "queue statistics and housekeeping"},
    {"worker", vd_cmd_worker, "run jobs from the queue, one forked work-horse per job"},
    {"convert", vd_cmd_convert, "convert a TensorFlow.js graph model to ONNX"},
    {"model-server", vd_cmd_model_server, "serve ONNX models with dynamic batching"},
    {"serve", vd_cmd_serve, "serve the HTTP API"},
    {"up", vd_cmd_up, "run everything on one machine under one supervisor"},
    {"faces", vd_cmd_faces, "decode images, detect and embed faces"},
    {"embed", vd_cmd_embed, "embed image files through the model server (cached)"},
    {"train", vd_cmd_train, "train a classifier from a folder of labelled images"},
    {"predict", vd_cmd_predict, "classify image files with a trained session"},
    {"search", vd_cmd_search, "find the library's photos nearest to an image file"},
    {"index", vd_cmd_index, "add a folder of photos to the library: embed them, find their faces"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: visiond COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions for every command:\n"
               "  --log-format text|json  log lines as text (default) or one JSON object per line\n"
               "                          ($VISIOND_LOG_FORMAT; docs/configuration.md)\n");
    fprintf(f, "\nRun 'visiond COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    const char *lvl = getenv("VISIOND_LOG_LEVEL");
    int level = vd_log_level_parse(lvl);
    vd_log_init("visiond", level < 0 ? VD_LOG_INFO : (vd_log_level)level, 2);
    const char *bad = NULL;
    argc = vd_log_setup_format(argc, argv, &bad);
    if (argc < 0) {
        fprintf(stderr, "visiond: --log-format / $VISIOND_LOG_FORMAT: '%s' is not text or json\n",
                bad ? bad : "");
        return VD_EXIT_USAGE;
    }

    if (argc < 2) {
        usage(stderr);
        return VD_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return VD_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "visiond: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return VD_EXIT_USAGE;
}
