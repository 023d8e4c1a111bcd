/* test_security.c: the claims of docs/security.md that a unit test can back:
 * URL redaction for logs, the token compare, path confinement against the
 * spellings an attacker uses (after JSON or URL decoding), and the pixel limit
 * refusing decompression bombs from the header. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

#include "api/http.h"
#include "core/paths.h"
#include "core/util.h"
#include "image/decode.h"
#include "vdtest.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

VD_TEST(url_redact_hides_passwords_only)
{
    char buf[256];
    CHECK_EQ_STR(vd_url_redact("redis://:s3cret@127.0.0.1:6379/0", buf, sizeof buf),
                 "redis://:***@127.0.0.1:6379/0");
    CHECK_EQ_STR(vd_url_redact("redis://alice:s3cret@host/2?timeout_ms=5", buf, sizeof buf),
                 "redis://alice:***@host/2?timeout_ms=5");
    /* a password with '@' in it: everything up to the last '@' of the authority goes */
    CHECK_EQ_STR(vd_url_redact("redis://u:p@ss@host:1/0", buf, sizeof buf),
                 "redis://u:***@host:1/0");
    CHECK_EQ_STR(vd_url_redact("redis://127.0.0.1:6379/0", buf, sizeof buf),
                 "redis://127.0.0.1:6379/0");
    CHECK_EQ_STR(vd_url_redact("redis://user@host/0", buf, sizeof buf), "redis://user@host/0");
    CHECK_EQ_STR(vd_url_redact("sqlite:/data/q.db", buf, sizeof buf), "sqlite:/data/q.db");
    CHECK_EQ_STR(vd_url_redact("redis://h/0?x=a:b@c", buf, sizeof buf), "redis://h/0?x=a:b@c");
    CHECK_EQ_STR(vd_url_redact(NULL, buf, sizeof buf), "");
    char small[12];
    vd_url_redact("redis://:s3cret@host/0", small, sizeof small);
    CHECK(strstr(small, "s3c") == NULL && strlen(small) == sizeof small - 1);
}

VD_TEST(token_compare_refuses_every_other_length_and_every_one_byte_change)
{
    const char *token = "tok-0123456789abcdef";
    size_t n = strlen(token);
    char cand[64];
    for (size_t len = 0; len <= n + 8; len++) {
        /* the token's own prefix (or the token padded) of every length */
        for (size_t i = 0; i < len; i++)
            cand[i] = i < n ? token[i] : 'x';
        cand[len] = 0;
        CHECK_EQ_INT(vd_http_token_equal(cand, token), len == n);
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(cand, token, n + 1);
        cand[i] ^= 1;
        CHECK_EQ_INT(vd_http_token_equal(cand, token), 0);
    }
    CHECK_EQ_INT(vd_http_token_equal(token, token), 1);
    CHECK_EQ_INT(vd_http_token_equal(NULL, token), 0);
    CHECK_EQ_INT(vd_http_token_equal("", ""), 1);
}

/* D/root/{a.jpg, esc -> ../outside}, D/outside/secret.jpg */
static vd_media_roots *make_roots(char *dir, size_t n)
{
    snprintf(dir, n, "%s", vd_test_tmpdir());
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%.3000s/root", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%.3000s/outside", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%.3000s/outside/secret.jpg", dir);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%.3000s/root/a.jpg", dir);
    f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%.3000s/root/esc", dir);
    if (symlink("../outside", p) != 0) return NULL;
    snprintf(p, sizeof p, "%.3000s/root", dir);
    const char *roots[] = {p};
    vd_media_roots *r = NULL;
    vd_error err;
    if (vd_media_roots_new(roots, 1, &r, &err) != VD_OK) return NULL;
    return r;
}

VD_TEST(paths_decoded_from_json_cannot_escape)
{
    char dir[PATH_MAX];
    vd_media_roots *r = make_roots(dir, sizeof dir);
    CHECK(r != NULL);
    /* what a JSON body can spell: \u002e\u002e is "..", \/ is "/" */
    static const char *const bodies[] = {
        "\"%s/root/\\u002e\\u002e/outside/secret.jpg\"",
        "\"%s/root/..\\/outside/secret.jpg\"",
        "\"%s/root/esc/secret.jpg\"",
        "\"%s/root/./esc/./secret.jpg\"",
        "\"%s/outside/secret.jpg\"",
        "\"%s/root/%%2e%%2e/outside/secret.jpg\"", /* not decoded again: a literal name */
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char text[PATH_MAX * 2];
        snprintf(text, sizeof text, bodies[i], dir);
        json_error_t je;
        json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
        CHECK(j != NULL && json_is_string(j));
        char *resolved = NULL;
        vd_path_problem pb;
        vd_error err;
        vd_status st =
            vd_media_roots_check(r, json_string_value(j), VD_PATH_WANT_FILE, &resolved, &pb, &err);
        if (st == VD_OK) printf("ACCEPTED %s -> %s\n", json_string_value(j), resolved);
        CHECK(st != VD_OK && resolved == NULL);
        printf("  %-60s -> %s\n", json_string_value(j), vd_path_problem_name(pb));
        json_decref(j);
    }
    /* a NUL inside a JSON string never reaches the check: the API's parser refuses it
     * (jansson without JSON_ALLOW_NUL, as http.c parses bodies) */
    char text[PATH_MAX * 2];
    snprintf(text, sizeof text, "{\"path\": \"%s/root/a.jpg\\u0000/../../outside/secret.jpg\"}",
             dir);
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    CHECK(j == NULL);
    /* and a C string cut at the NUL is the harmless prefix */
    char *resolved = NULL;
    vd_error err;
    snprintf(text, sizeof text, "%s/root/a.jpg", dir);
    CHECK_OK(vd_media_roots_check(r, text, VD_PATH_WANT_FILE, &resolved, NULL, &err));
    CHECK(strstr(resolved, "/root/a.jpg") != NULL);
    free(resolved);
    vd_media_roots_free(r);
}

VD_TEST(pixel_bombs_are_refused_from_the_header)
{
    /* A complete, valid 20000 x 20000 1-bit PNG (400 Mpx, about 60 KB compressed:
     * 1.2 GB once decoded to RGB) is refused before any pixel is decoded. */
    VipsImage *black = NULL;
    CHECK(vips_black(&black, 20000, 20000, NULL) == 0);
    void *png = NULL;
    size_t len = 0;
    CHECK(vips_pngsave_buffer(black, &png, &len, "bitdepth", 1, "compression", 9, NULL) == 0);
    g_object_unref(black);
    printf("  bomb: %zu bytes of PNG\n", len);
    vd_image img;
    vd_error err;
    double t0 = now_ms();
    vd_status st = vd_image_decode_buffer(png, len, NULL, &img, &err);
    double dt = now_ms() - t0;
    printf("  refused in %.1f ms: %s\n", dt, err.msg);
    CHECK_EQ_INT(st, VD_ERR_LIMIT);
    CHECK(strstr(err.msg, "too many pixels") != NULL);
    CHECK(img.pixels == NULL);
    /* the same from a file */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/bomb.png", vd_test_tmpdir());
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(png, 1, len, f) == len);
    fclose(f);
    g_free(png);
    t0 = now_ms();
    st = vd_image_decode_file(path, NULL, &img, NULL, &err);
    printf("  from a file: refused in %.1f ms\n", now_ms() - t0);
    CHECK_EQ_INT(st, VD_ERR_LIMIT);

    /* 60000 x 60000 declared in the IHDR, a tiny IDAT (tests/fuzz/corpus/image/png_60000x60000):
     * refused the same way */
    static const unsigned char hdr[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
        0x44, 0x52, 0x00, 0x00, 0xea, 0x60, 0x00, 0x00, 0xea, 0x60, 0x08, 0x02, 0x00, 0x00,
        0x00, 0x0f, 0xb0, 0xe2, 0x15, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78,
        0x9c, 0x63, 0x60, 0xa0, 0x3d, 0x00, 0x00, 0x00, 0x64, 0x00, 0x01, 0x86, 0x64, 0x3c,
        0x35, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    st = vd_image_decode_buffer(hdr, sizeof hdr, NULL, &img, &err);
    printf("  60000x60000 header: %s (%s)\n", vd_status_name(st), err.msg);
    CHECK_EQ_INT(st, VD_ERR_LIMIT);
    CHECK(strstr(err.msg, "3600000000") != NULL);
    /* and a file over the byte limit is refused from its size, before reading */
    vd_decode_opts small = {.max_file_bytes = 1000};
    CHECK_EQ_INT(vd_image_decode_file(path, &small, &img, NULL, &err), VD_ERR_LIMIT);
    CHECK(strstr(err.msg, "file too large") != NULL);
}

int main(void)
{
    vd_error err;
    if (vd_image_init("test_security", &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = vd_test_run_all();
    vd_image_shutdown();
    return rc;
}
