/* replay_main.c: runs a fuzz harness over files without libFuzzer.
 *
 * Usage: fuzz_NAME_replay PATH...   (a PATH that is a directory means every
 * regular file in it, in name order). Each file's bytes go through
 * LLVMFuzzerTestOneInput once. Exits 0 when every input ran (a crash or a
 * sanitizer report ends the process non-zero on its own), 1 when a path
 * cannot be read or no input was found. Prints the count run. A harness may
 * define vd_fuzz_replay_done, called after the last input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Optional, ours (libFuzzer has no such hook): called once after the last
 * input, before main returns, for a harness whose threads must be stopped
 * before the process's exit handlers run (fuzz_server.c). */
void vd_fuzz_replay_done(void) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return -1;
    }
    /* an exact-size copy, so that ASan sees reads past the input's end */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int ran = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: cannot stat %s\n", argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) < 0)
                failed = 1;
            else
                ran++;
            continue;
        }
        struct dirent **ents;
        int n = scandir(argv[i], &ents, NULL, by_name);
        if (n < 0) {
            fprintf(stderr, "replay: cannot read directory %s\n", argv[i]);
            failed = 1;
            continue;
        }
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], ents[k]->d_name);
            struct stat fs;
            if (stat(path, &fs) == 0 && S_ISREG(fs.st_mode)) {
                if (run_file(path) < 0)
                    failed = 1;
                else
                    ran++;
            }
            free(ents[k]);
        }
        free(ents);
    }
    printf("replay: %d inputs ran\n", ran);
    if (vd_fuzz_replay_done) vd_fuzz_replay_done();
    return failed || ran == 0 ? 1 : 0;
}
