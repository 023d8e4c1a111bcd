/* bench_text.c: CLIP text embeddings per second, through the model server against
 * in-process ONNX Runtime on the same text tower.
 *
 *   bench_text --visiond build/visiond --models DIR --model NAME.textual [--seconds S]
 *              [--clients N]...
 *
 * in-process  the peer (what Immich's ML service does per text): one thread, tokenize
 *             (text/bpe.h) and run the tower once per text (its batch is fixed at 1)
 * server      `visiond model-server` on DIR with NAME preloaded; N concurrent clients
 *             (threads, one runner each) call vd_text_embed with one text a call (no
 *             store): tokenizing, the int32 ids over the protocol, the server's
 *             batching and run layout; and one client sending 32 texts a call
 * Each line prints texts/s and the ratio to in-process. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "infer/model_folder.h"
#include "infer/model_meta.h"
#include "infer/ort_session.h"
#include "infer/runner_client.h"
#include "pipeline/text_embed.h"
#include "text/bpe.h"

static const char *const words[] = {"a",     "photo", "of",   "the",   "dog",      "cat",
                                    "beach", "night", "with", "my",    "family",   "sunset",
                                    "red",   "car",   "on",   "snowy", "mountain", "2019"};
#define NTEXTS 256
static char texts[NTEXTS][160];
static double seconds = 3.0;

static void make_texts(void)
{
    unsigned seed = 11;
    for (int i = 0; i < NTEXTS; i++) {
        size_t used = 0;
        int n = 3 + i % 9;
        for (int k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            used += (size_t)snprintf(texts[i] + used, sizeof texts[i] - used, "%s%s", k ? " " : "",
                                     words[(seed >> 8) % (sizeof words / sizeof words[0])]);
        }
    }
}

static double inprocess(const vd_model_meta *m)
{
    vd_error e;
    vd_ort_env *env = NULL;
    vd_ort_session *s = NULL;
    vd_bpe *b = NULL;
    if (vd_ort_env_new(0, &env, &e) != VD_OK || vd_ort_session_open(env, m->onnx_path, &s, &e) ||
        vd_bpe_load(m->tokenizer_path, &b, &e)) {
        fprintf(stderr, "in-process: %s\n", e.msg);
        exit(1);
    }
    int32_t pad = m->pad_token[0] ? vd_bpe_token_id(b, m->pad_token) : m->pad_id;
    int64_t shape[2] = {1, m->context_length};
    vd_tensor in;
    vd_tensor_alloc_dtype(&in, VD_DTYPE_INT32, shape, 2, &e);
    long n = 0;
    int64_t t0 = vd_mono_us(), end = t0 + (int64_t)(seconds * 1e6);
    while (vd_mono_us() < end) {
        const char *t = texts[n % NTEXTS];
        vd_tensor out[4];
        if (vd_bpe_encode(b, t, strlen(t), (size_t)m->context_length, pad, in.i32, NULL, NULL,
                          &e) != VD_OK ||
            vd_ort_session_run(s, NULL, &in, NULL, 0, out, &e) != VD_OK) {
            fprintf(stderr, "in-process: %s\n", e.msg);
            exit(1);
        }
        vd_tensor_free(&out[0]);
        n++;
    }
    double tps = (double)n * 1e6 / (double)(vd_mono_us() - t0);
    vd_tensor_free(&in);
    vd_bpe_free(b);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
    return tps;
}

typedef struct {
    const char *addr, *model;
    int per_call;
    long done;
    int64_t end_us;
} client;

static void *client_main(void *p)
{
    client *c = p;
    vd_error e;
    vd_runner *r = NULL;
    if (vd_runner_client_new(c->addr, NULL, 60000, &r, &e) != VD_OK) return NULL;
    vd_text_opts o = {.runner = r, .model = c->model};
    vd_text_item items[32];
    const char *batch[32];
    for (long k = 0; vd_mono_us() < c->end_us; k++) {
        for (int j = 0; j < c->per_call; j++)
            batch[j] = texts[(k * c->per_call + j) % NTEXTS];
        int dim;
        if (vd_text_embed(&o, batch, (size_t)c->per_call, items, &dim, NULL, &e) != VD_OK) {
            fprintf(stderr, "client: %s\n", e.msg);
            break;
        }
        vd_text_items_clear(items, (size_t)c->per_call);
        c->done += c->per_call;
    }
    vd_runner_free(r);
    return NULL;
}

static double through_server(const char *addr, const char *model, int nc, int per_call)
{
    client cs[64];
    pthread_t th[64];
    int64_t t0 = vd_mono_us();
    for (int i = 0; i < nc; i++) {
        cs[i] = (client){addr, model, per_call, 0, t0 + (int64_t)(seconds * 1e6)};
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    long n = 0;
    for (int i = 0; i < nc; i++) {
        pthread_join(th[i], NULL);
        n += cs[i].done;
    }
    return (double)n * 1e6 / (double)(vd_mono_us() - t0);
}

static pid_t start_server(const char *bin, const char *models, const char *sock, const char *model)
{
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        setenv("VISIOND_LOG_LEVEL", "warn", 1);
        execl(bin, bin, "model-server", "--models", models, "--socket", sock, "--preload", model,
              "--idle-ttl", "0", "--queue-max", "4096", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[512] = "";
    size_t got = 0;
    while (got < sizeof line - 1 && !strchr(line, '\n')) {
        struct pollfd pf = {pfd[0], POLLIN, 0};
        if (poll(&pf, 1, 300000) <= 0) break;
        ssize_t r = read(pfd[0], line + got, sizeof line - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        line[got] = 0;
    }
    close(pfd[0]);
    if (!strstr(line, "\"ready\"")) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

int main(int argc, char **argv)
{
    const char *bin = NULL, *models = NULL, *model = NULL;
    int clients[8], nclients = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--visiond") == 0) bin = argv[i + 1];
        if (strcmp(argv[i], "--models") == 0) models = argv[i + 1];
        if (strcmp(argv[i], "--model") == 0) model = argv[i + 1];
        if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        if (strcmp(argv[i], "--clients") == 0 && nclients < 8)
            clients[nclients++] = atoi(argv[i + 1]);
    }
    if (!bin || !models || !model) {
        fprintf(stderr, "usage: bench_text --visiond BIN --models DIR --model NAME [--seconds S] "
                        "[--clients N]...\n");
        return 2;
    }
    if (!nclients) {
        clients[0] = 1, clients[1] = 4, clients[2] = 16;
        nclients = 3;
    }
    make_texts();
    char path[4096];
    vd_model_meta m;
    vd_error e;
    if (!vd_model_folder_find(models, model, path, sizeof path) ||
        vd_model_meta_load(path, &m, &e) != VD_OK || m.task != VD_TASK_TEXT_EMBEDDING) {
        fprintf(stderr, "no text model %s in %s\n", model, models);
        return 1;
    }
    double ip = inprocess(&m);
    printf("%-28s in-process (1 thread, tokenize + run, batch 1): %8.1f texts/s\n", model, ip);
    char sock[256];
    snprintf(sock, sizeof sock, "/tmp/bench_text.%d.sock", (int)getpid());
    pid_t srv = start_server(bin, models, sock, model);
    if (srv < 0) {
        fprintf(stderr, "the model server did not start\n");
        return 1;
    }
    char addr[300];
    snprintf(addr, sizeof addr, "unix:%s", sock);
    for (int i = 0; i < nclients; i++) {
        double s = through_server(addr, model, clients[i], 1);
        printf("%-28s server, %2d client(s), 1 text a call:   %8.1f texts/s  ratio %.2f\n", model,
               clients[i], s, s / ip);
    }
    double s = through_server(addr, model, 1, 32);
    printf("%-28s server, 1 client, 32 texts a call:      %8.1f texts/s  ratio %.2f\n", model, s,
           s / ip);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    return 0;
}
