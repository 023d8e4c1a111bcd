/* test_bpe.c: CLIP's BPE tokenizer (text/bpe.h).
 *
 * The agreement test runs an independent reference written in Python
 * (tests/oracle/clip_bpe_ref.py, with Debian's python3-regex for the Unicode
 * classes): it learns a vocabulary from generated text, writes it as a
 * tokenizer.json, and encodes a few thousand generated strings (punctuation,
 * digits, accents, combining marks, emoji, odd white space, special tokens,
 * texts longer than the context); every string must give the same 77 ids
 * here. The rest are properties checked on small hand-made vocabularies. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bpe.h"
#include "vdtest.h"

#define PY "/usr/bin/python3"

/* A tiny CLIP-shaped tokenizer.json: the byte alphabet's letters we need,
 * a few merges, the two special tokens. */
static const char *tiny_json(const char *normalizer, const char *model_extra)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"added_tokens\":[{\"id\":20,\"content\":\"<|startoftext|>\",\"special\":true},"
             "{\"id\":21,\"content\":\"<|endoftext|>\",\"special\":true}],"
             "\"normalizer\":%s,"
             "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
             "\"pattern\":{\"Regex\":\"'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|[^\\\\s\\\\p{"
             "L}\\\\p{N}]+\"},\"behavior\":\"Removed\",\"invert\":true},{\"type\":\"ByteLevel\","
             "\"add_prefix_space\":false,\"use_regex\":false}]},"
             "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"<|endoftext|>\",21],"
             "\"cls\":[\"<|startoftext|>\",20]},"
             "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<|endoftext|>\","
             "\"end_of_word_suffix\":\"</w>\",%s"
             "\"vocab\":{\"d\":0,\"o\":1,\"g\":2,\"g</w>\":3,\"do\":4,\"dog</w>\":5,\"s</w>\":6,"
             "\"'\":7,\"!</w>\":8,\"<|startoftext|>\":20,\"<|endoftext|>\":21},"
             "\"merges\":[\"d o\",[\"do\",\"g</w>\"]]}}",
             normalizer, model_extra);
    return buf;
}

#define CLIP_NORMALIZER                                                                            \
    "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Replace\","            \
    "\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},{\"type\":\"Lowercase\"}]}"

static vd_bpe *tiny(void)
{
    vd_bpe *b = NULL;
    vd_error err;
    const char *j = tiny_json(CLIP_NORMALIZER, "");
    if (vd_bpe_load_buffer(j, strlen(j), "tiny.json", &b, &err) != VD_OK)
        fprintf(stderr, "tiny: %s\n", err.msg);
    return b;
}

VD_TEST(merges_frames_and_pads)
{
    vd_bpe *b = tiny();
    CHECK(b != NULL);
    int32_t ids[8];
    size_t used;
    int cut;
    vd_error err;
    CHECK_OK(vd_bpe_encode(b, "  DOG\t's!", 9, 8, 0, ids, &used, &cut, &err));
    /* dog</w> 's -> ' s</w> ; ! -> !</w> */
    int32_t want[8] = {20, 5, 7, 6, 8, 21, 0, 0};
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(ids[i], want[i]);
    CHECK_EQ_INT(used, 6);
    CHECK_EQ_INT(cut, 0);
    vd_bpe_free(b);
}

VD_TEST(truncates_to_the_context_keeping_the_frame)
{
    vd_bpe *b = tiny();
    CHECK(b != NULL);
    int32_t ids[4];
    size_t used;
    int cut;
    vd_error err;
    CHECK_OK(vd_bpe_encode(b, "dog dog dog", 11, 4, 9, ids, &used, &cut, &err));
    CHECK_EQ_INT(ids[0], 20);
    CHECK_EQ_INT(ids[1], 5);
    CHECK_EQ_INT(ids[2], 5);
    CHECK_EQ_INT(ids[3], 21);
    CHECK_EQ_INT(used, 4);
    CHECK_EQ_INT(cut, 1);
    CHECK_OK(vd_bpe_encode(b, "", 0, 4, 9, ids, &used, &cut, &err));
    CHECK_EQ_INT(ids[1], 21);
    CHECK_EQ_INT(ids[2], 9);
    CHECK_EQ_INT(used, 2);
    vd_bpe_free(b);
}

VD_TEST(refuses_bad_text)
{
    vd_bpe *b = tiny();
    CHECK(b != NULL);
    int32_t ids[8];
    vd_error err;
    CHECK_EQ_INT(vd_bpe_encode(b, "a\xff", 2, 8, 0, ids, NULL, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_bpe_encode(b, "a\0b", 3, 8, 0, ids, NULL, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_bpe_encode(b, "a", 1, 1, 0, ids, NULL, NULL, &err), VD_ERR_INVALID);
    static char big[VD_BPE_TEXT_MAX + 1];
    memset(big, 'a', sizeof big);
    CHECK_EQ_INT(vd_bpe_encode(b, big, sizeof big, 8, 0, ids, NULL, NULL, &err), VD_ERR_LIMIT);
    vd_bpe_free(b);
}

VD_TEST(refuses_other_pipelines_naming_the_file_and_part)
{
    vd_bpe *b = NULL;
    vd_error err;
    const char *j = tiny_json("{\"type\":\"NFKC\"}", "");
    CHECK_EQ_INT(vd_bpe_load_buffer(j, strlen(j), "m/tokenizer.json", &b, &err),
                 VD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "m/tokenizer.json: normalizer") == err.msg);
    j = tiny_json(CLIP_NORMALIZER, "\"continuing_subword_prefix\":\"##\",");
    CHECK_EQ_INT(vd_bpe_load_buffer(j, strlen(j), "x.json", &b, &err), VD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "model") != NULL);
    CHECK_EQ_INT(vd_bpe_load_buffer("{\"model\":", 9, "x.json", &b, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_bpe_load_buffer("{}", 2, "x.json", &b, &err), VD_ERR_INVALID);
    CHECK(b == NULL);
    CHECK_EQ_INT(vd_bpe_load("/nonexistent/tokenizer.json", &b, &err), VD_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/tokenizer.json") != NULL);
}

VD_TEST(a_merge_of_unknown_tokens_is_refused)
{
    char j[4096];
    snprintf(j, sizeof j, "%s", tiny_json(CLIP_NORMALIZER, ""));
    char *m = strstr(j, "\"d o\"");
    CHECK(m != NULL);
    memcpy(m, "\"d q\"", 5);
    vd_bpe *b = NULL;
    vd_error err;
    CHECK_EQ_INT(vd_bpe_load_buffer(j, strlen(j), "x.json", &b, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "merges[0]") != NULL);
}

/* Runs the reference into dir; 0 when it ran. */
static int run_reference(const char *dir)
{
    const char *src = getenv("VISIOND_SOURCE_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             PY " -c 'import regex' 2>/dev/null && " PY
                " %s/tests/oracle/clip_bpe_ref.py build %s 3000",
             src ? src : ".", dir);
    return system(cmd);
}

VD_TEST(agrees_with_the_python_reference)
{
    const char *dir = vd_test_tmpdir();
    if (run_reference(dir) != 0) {
        vd_test_skip("the reference needs /usr/bin/python3 with python3-regex (scripts/setup.sh)");
        return;
    }
    char path[1024];
    vd_bpe *b = NULL;
    vd_error err;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(vd_bpe_load(path, &b, &err));
    snprintf(path, sizeof path, "%s/cases.json", dir);
    json_t *cases = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/expected.json", dir);
    json_t *want = json_load_file(path, 0, NULL);
    CHECK(cases && want && json_array_size(cases) == json_array_size(want));
    size_t agree = 0, n = json_array_size(cases), cut = 0;
    for (size_t i = 0; i < n; i++) {
        const char *text = json_string_value(json_array_get(cases, i));
        int32_t ids[77];
        int t = 0;
        CHECK_OK(vd_bpe_encode(b, text, strlen(text), 77, 0, ids, NULL, &t, &err));
        cut += (size_t)t;
        json_t *w = json_array_get(want, i);
        size_t k = 0;
        while (k < 77 && ids[k] == json_integer_value(json_array_get(w, k)))
            k++;
        if (k == 77)
            agree++;
        else if (i - agree < 5)
            fprintf(stderr, "  differs at id %zu: %s\n", k, text);
    }
    printf("bpe: %zu of %zu texts agree with the reference (%zu truncated)\n", agree, n, cut);
    json_decref(cases);
    json_decref(want);
    vd_bpe_free(b);
    CHECK_EQ_INT(agree, n);
    CHECK(cut > 0);
}

int main(void)
{
    return vd_test_run_all();
}
