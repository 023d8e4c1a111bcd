/* cmd_dataset.c: `visiond dataset fashion-mnist`: writes Fashion-MNIST
 * images as PNG files, one sub-folder per label, for demos and tests of
 * training sessions. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <vips/vips.h>

#include "cli/cli.h"
#include "train/fashion_mnist.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: visiond dataset fashion-mnist --out DIR --per-label N [--split train|test]\n"
            "                                     [--from DIR]\n"
            "\n"
            "Writes the first N images of each of the 10 Fashion-MNIST labels of a split\n"
            "(default test) as 28x28 grey PNG files: DIR/<label>/<split>-<index>.png, where\n"
            "<label> is tshirt_top, trouser, pullover, dress, coat, sandal, shirt, sneaker,\n"
            "bag or ankle_boot. Prints a JSON summary.\n"
            "\n"
            "  --from DIR   the IDX files (default $VISIOND_FASHION_MNIST or %s,\n"
            "               from Debian's dataset-fashion-mnist package)\n",
            VD_FMNIST_DEFAULT_DIR);
}

static int make_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int fashion_mnist(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},   {"per-label", required_argument, NULL, 'n'},
        {"split", required_argument, NULL, 's'}, {"from", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *out = NULL, *split = "test", *from = NULL;
    long per = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:n:s:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'n': {
            char *end;
            errno = 0;
            per = strtol(optarg, &end, 10);
            if (errno || *end || per < 1 || per > 6000)
                return vd_cli_usage_error("dataset", "--per-label takes 1 to 6000, not '%s'",
                                          optarg);
            break;
        }
        case 's':
            split = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 'h':
            usage(stdout);
            return VD_EXIT_OK;
        default:
            return vd_cli_usage_error("dataset", "bad option");
        }
    }
    if (optind < argc)
        return vd_cli_usage_error("dataset", "unexpected argument '%s'", argv[optind]);
    if (!out) return vd_cli_usage_error("dataset", "--out DIR is required");
    if (per < 0) return vd_cli_usage_error("dataset", "--per-label N is required");
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)
        return vd_cli_usage_error("dataset", "--split is train or test, not '%s'", split);

    vd_error err;
    vd_fmnist d;
    if (vd_fmnist_load(from, split, &d, &err) != VD_OK)
        return vd_cli_fail("%s", vd_error_text(&err));
    size_t *idx = malloc((size_t)per * VD_FMNIST_NLABELS * sizeof *idx);
    if (!idx) {
        vd_fmnist_clear(&d);
        return vd_cli_fail("out of memory");
    }
    int rc = VD_EXIT_OK;
    if (vd_fmnist_pick(&d, (size_t)per, idx, &err) != VD_OK) {
        rc = vd_cli_fail("%s", vd_error_text(&err));
        goto done;
    }
    if (VIPS_INIT("visiond")) {
        rc = vd_cli_fail("libvips: %s", vips_error_buffer());
        goto done;
    }
    size_t npix = (size_t)d.rows * (size_t)d.cols;
    json_t *labels = json_object();
    for (int l = 0; l < VD_FMNIST_NLABELS && rc == VD_EXIT_OK; l++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", out, vd_fmnist_label_name(l));
        if (make_dir(dir) != 0) {
            rc = vd_cli_fail("cannot create %s: %s", dir, strerror(errno));
            break;
        }
        json_object_set_new(labels, vd_fmnist_label_name(l), json_integer(per));
        for (long i = 0; i < per; i++) {
            size_t k = idx[(size_t)l * (size_t)per + (size_t)i];
            char path[4200];
            snprintf(path, sizeof path, "%s/%s-%05zu.png", dir, split, k);
            VipsImage *im = vips_image_new_from_memory(d.pixels + k * npix, npix, d.cols, d.rows, 1,
                                                       VIPS_FORMAT_UCHAR);
            if (!im || vips_pngsave(im, path, NULL)) {
                rc = vd_cli_fail("cannot write %s: %s", path, vips_error_buffer());
                if (im) g_object_unref(im);
                break;
            }
            g_object_unref(im);
        }
    }
    if (rc == VD_EXIT_OK) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:o}", "out", out, "split", split, "per_label",
                              (json_int_t)per, "files", (json_int_t)per * VD_FMNIST_NLABELS,
                              "labels", labels);
        char *text = json_dumps(o, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(o);
    } else {
        json_decref(labels);
    }
done:
    free(idx);
    vd_fmnist_clear(&d);
    return rc;
}

int vd_cmd_dataset(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? VD_EXIT_USAGE : VD_EXIT_OK;
    }
    if (strcmp(argv[1], "fashion-mnist") == 0) return fashion_mnist(argc - 1, argv + 1);
    return vd_cli_usage_error("dataset", "unknown data set '%s' (known: fashion-mnist)", argv[1]);
}
