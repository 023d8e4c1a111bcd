/* fuzz_bpe.c: the CLIP tokenizer (text/bpe.h) against arbitrary input.
 *
 * First byte even: the rest is a tokenizer.json: loading it either fails
 * with INVALID, UNSUPPORTED or NOMEM, or gives a tokenizer that encodes a
 * fixed sentence. First byte odd: the rest is text for a small fixed
 * tokenizer (the seed corpus's): encoding either refuses it (INVALID: not
 * UTF-8 or a NUL; LIMIT: too long) or fills exactly the context, framed by
 * the start and end ids, with every id inside the vocabulary or the pad. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/bpe.h"

static void check(int cond)
{
    if (!cond) abort();
}

static const char TINY[] =
    "{\"added_tokens\":[{\"id\":9,\"content\":\"<|startoftext|>\"},{\"id\":10,\"content\":"
    "\"<|endoftext|>\"}],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":"
    "\"NFC\"},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},{"
    "\"type\":\"Lowercase\"}]},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{"
    "\"type\":\"Split\",\"pattern\":{\"Regex\":\"'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|["
    "^\\\\s\\\\p{L}\\\\p{N}]+\"},\"behavior\":\"Removed\",\"invert\":true},{\"type\":"
    "\"ByteLevel\"}]},\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"<|endoftext|"
    ">\",10],\"cls\":[\"<|startoftext|>\",9]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<|"
    "endoftext|>\",\"end_of_word_suffix\":\"</w>\",\"vocab\":{\"a\":0,\"b\":1,\"a</w>\":2,\"b</w>"
    "\":3,\"ab\":4,\"ab</w>\":5,\"aba</w>\":6,\"<|startoftext|>\":9,\"<|endoftext|>\":10},\"merges"
    "\":[\"a b\",\"a b</w>\",[\"ab\",\"a</w>\"]]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 200000) return 0;
    vd_bpe *b = NULL;
    vd_error err;
    int32_t ids[16];
    const char *rest = (const char *)data + 1;
    if ((data[0] & 1) == 0) {
        vd_status st = vd_bpe_load_buffer(rest, size - 1, "fuzz.json", &b, &err);
        check(st == VD_OK || st == VD_ERR_INVALID || st == VD_ERR_UNSUPPORTED ||
              st == VD_ERR_NOMEM);
        if (st != VD_OK) return 0;
        check(vd_bpe_encode(b, "A photo of a dog!", 17, 16, 0, ids, NULL, NULL, &err) == VD_OK);
        vd_bpe_free(b);
        return 0;
    }
    check(vd_bpe_load_buffer(TINY, sizeof TINY - 1, "tiny", &b, &err) == VD_OK);
    size_t used = 0;
    vd_status st = vd_bpe_encode(b, rest, size - 1, 16, 7, ids, &used, NULL, &err);
    if (st == VD_OK) {
        check(used >= 2 && used <= 16 && ids[0] == 9 && ids[used - 1] == 10);
        for (size_t i = 1; i + 1 < used; i++)
            check(ids[i] >= 0 && ids[i] <= 10);
        for (size_t i = used; i < 16; i++)
            check(ids[i] == 7);
    } else {
        check(st == VD_ERR_INVALID || st == VD_ERR_LIMIT);
    }
    vd_bpe_free(b);
    return 0;
}
