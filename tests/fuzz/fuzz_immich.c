/* fuzz_immich.c: Immich's POST /predict entries (service/immich.h) against
 * arbitrary input, over an in-process runner that knows no model.
 *
 * The first byte picks the input: even, a text; odd, no input at all. The
 * rest is the `entries` field. With no model to resolve, every call must fail
 * without touching an image: a refusal of the request (VD_ERR_INVALID with
 * refusal 400 or 422 and a message: malformed entries, an unknown task, type
 * or model, a missing input) and never an answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "infer/runner.h"
#include "service/immich.h"

static void check(int cond)
{
    if (!cond) abort();
}

static vd_runner *runner;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    vd_error err;
    check(vd_runner_ort_new("/nonexistent-visiond-models", 1, &runner, &err) == VD_OK);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 100000) return 0;
    if (!runner) LLVMFuzzerInitialize(NULL, NULL);
    char *entries = malloc(size);
    check(entries != NULL);
    memcpy(entries, data + 1, size - 1);
    entries[size - 1] = 0;
    vd_immich_aliases al;
    memset(&al, 0, sizeof al);
    vd_error err;
    check(vd_immich_aliases_parse("buffalo_l:detection=nope", &al, &err) == VD_OK);
    json_t *out = NULL;
    int refusal = -1;
    vd_status st = vd_immich_predict(runner, &al, entries, NULL, 0,
                                     (data[0] & 1) == 0 ? "a photo" : NULL, &out, &refusal, &err);
    check(st == VD_ERR_INVALID && out == NULL);
    check(refusal == VD_IMMICH_BAD_ENTRIES || refusal == VD_IMMICH_BAD_INPUT);
    check(err.msg[0] != 0);
    free(entries);
    return 0;
}
