/* test_api_dashboard.c: the embedded dashboard files, ETag matching and the
 * image sniffing behind GET /media. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_impl.h"
#include "api/webassets.h"
#include "vdtest.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = '\0';
    *len = (size_t)n;
    return b;
}

static const vd_web_asset *asset(const char *name)
{
    size_t n;
    const vd_web_asset *a = vd_web_assets(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0) return &a[i];
    return NULL;
}

/* Every file in web/ is embedded byte for byte, sorted, with a distinct quoted ETag. */
VD_TEST(embedded_files_equal_web_dir)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/web", VISIOND_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    size_t files = 0;
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d)) && ok) {
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' || e->d_name[nl - 1] == '~') continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        files++;
        size_t len = 0;
        char *bytes = read_file(p, &len);
        const vd_web_asset *a = asset(e->d_name);
        ok = bytes && a && a->len == len && memcmp(a->data, bytes, len) == 0 && a->data[len] == 0;
        if (!ok) vd_test_fail_at(__FILE__, __LINE__, "web/%s is not embedded as it is", e->d_name);
        free(bytes);
    }
    closedir(d);
    if (!ok) return;
    size_t n;
    const vd_web_asset *a = vd_web_assets(&n);
    CHECK_EQ_INT(n, files);
    for (size_t i = 0; i < n; i++) {
        CHECK(a[i].etag[0] == '"' && strlen(a[i].etag) == 18 && a[i].etag[17] == '"');
        if (i) CHECK(strcmp(a[i - 1].name, a[i].name) < 0);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(a[k].etag, a[i].etag) != 0);
    }
    CHECK(asset("index.html") && asset("app.js") && asset("style.css"));
}

/* The page refers only to files that are embedded. */
VD_TEST(page_refers_to_embedded_files)
{
    const vd_web_asset *page = asset("index.html");
    CHECK(page != NULL);
    const char *p = (const char *)page->data;
    int refs = 0;
    while ((p = strstr(p, "/dashboard/"))) {
        p += strlen("/dashboard/");
        char name[128];
        size_t k = 0;
        while (p[k] && p[k] != '"' && k + 1 < sizeof name) {
            name[k] = p[k];
            k++;
        }
        name[k] = '\0';
        if (!asset(name)) {
            vd_test_fail_at(__FILE__, __LINE__, "index.html refers to /dashboard/%s", name);
            return;
        }
        refs++;
    }
    CHECK(refs >= 3);
    CHECK(strstr((const char *)page->data, "<script>") == NULL); /* the CSP forbids inline code */
    CHECK(strstr((const char *)page->data, " style=\"") == NULL);
}

VD_TEST(etag_matching)
{
    const char *t = "\"abc\"";
    CHECK(vd_api_etag_matches("\"abc\"", t));
    CHECK(vd_api_etag_matches("W/\"abc\"", t));
    CHECK(vd_api_etag_matches("\"x\", \"abc\"", t));
    CHECK(vd_api_etag_matches(" \"x\" ,W/\"abc\" ", t));
    CHECK(vd_api_etag_matches("*", t));
    CHECK(!vd_api_etag_matches("\"abcd\"", t));
    CHECK(!vd_api_etag_matches("\"ab\"", t));
    CHECK(!vd_api_etag_matches("abc", t));
    CHECK(!vd_api_etag_matches("", t));
    CHECK(!vd_api_etag_matches(",,,", t));
    CHECK(!vd_api_etag_matches(NULL, t));
    CHECK(!vd_api_etag_matches("\"abc\"", NULL));
}

VD_TEST(image_sniffing)
{
    static const struct {
        const char *bytes;
        size_t n;
        const char *type;
    } cases[] = {
        {"\xFF\xD8\xFF\xE0", 4, "image/jpeg"},
        {"\x89PNG\r\n\x1a\n\0\0", 10, "image/png"},
        {"GIF89a..", 8, "image/gif"},
        {"GIF87a", 6, "image/gif"},
        {"RIFF\x10\0\0\0WEBPVP8 ", 16, "image/webp"},
        {"BM\x36\0\0\0\0\0\0\0\x36\0\0\0", 14, "image/bmp"},
        {"II*\0", 4, "image/tiff"},
        {"MM\0*", 4, "image/tiff"},
        {"\0\0\0\x1c"
         "ftypavif",
         12, "image/avif"},
        {"\0\0\0\x18"
         "ftypheic",
         12, "image/heif"},
        {"\0\0\0\x18"
         "ftypmp42",
         12, NULL}, /* a video */
        {"RIFF\x10\0\0\0WAVE", 12, NULL},
        {"<svg xmlns=", 11, NULL},
        {"root:x:0:0:", 11, NULL},
        {"\x89PNG", 4, NULL}, /* too short to tell */
        {"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = vd_api_sniff_image((const unsigned char *)cases[i].bytes, cases[i].n);
        if (cases[i].type)
            CHECK_EQ_STR(got, cases[i].type);
        else if (got)
            vd_test_fail_at(__FILE__, __LINE__, "case %zu sniffed as %s", i, got);
    }
}

int main(void)
{
    return vd_test_run_all();
}
