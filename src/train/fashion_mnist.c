/* fashion_mnist.c: IDX reading (gzip through GIO's zlib converter). */
#include "train/fashion_mnist.h"

#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const names[VD_FMNIST_NLABELS] = {
    "tshirt_top", "trouser", "pullover", "dress", "coat",
    "sandal",     "shirt",   "sneaker",  "bag",   "ankle_boot",
};

const char *vd_fmnist_dir(void)
{
    const char *d = getenv("VISIOND_FASHION_MNIST");
    return d && *d ? d : VD_FMNIST_DEFAULT_DIR;
}

const char *vd_fmnist_label_name(int label)
{
    return label >= 0 && label < VD_FMNIST_NLABELS ? names[label] : NULL;
}

void vd_fmnist_clear(vd_fmnist *d)
{
    if (!d) return;
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* Reads a whole file, gunzipping when gz; *data is malloc'd. */
static vd_status read_all(const char *path, int gz, unsigned char **data, size_t *len,
                          vd_error *err)
{
    *data = NULL;
    *len = 0;
    GFile *file = g_file_new_for_path(path);
    GError *gerr = NULL;
    GInputStream *in = G_INPUT_STREAM(g_file_read(file, NULL, &gerr));
    g_object_unref(file);
    if (!in) {
        vd_status st =
            g_error_matches(gerr, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ? VD_ERR_NOT_FOUND : VD_ERR_IO;
        vd_error_set(err, st, "%s: %s", path, gerr->message);
        g_error_free(gerr);
        return st;
    }
    GInputStream *src = in;
    if (gz) {
        GZlibDecompressor *z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
        src = g_converter_input_stream_new(in, G_CONVERTER(z));
        g_object_unref(z);
    }
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    vd_status rc = VD_OK;
    for (;;) {
        if (!buf) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        if (n == cap) {
            unsigned char *bigger = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap * 2);
            if (!bigger) {
                rc = vd_error_set(err, VD_ERR_LIMIT, "%s: too large", path);
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        gssize got = g_input_stream_read(src, buf + n, cap - n, NULL, &gerr);
        if (got < 0) {
            rc = vd_error_set(err, VD_ERR_INVALID, "%s: %s", path, gerr->message);
            g_error_free(gerr);
            break;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    if (src != in) g_object_unref(src);
    g_object_unref(in);
    if (rc != VD_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return VD_OK;
}

/* Opens dir/name.gz, else dir/name. */
static vd_status read_idx(const char *dir, const char *name, unsigned char **data, size_t *len,
                          vd_error *err)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    if (stat(path, &sb) == 0) return read_all(path, 1, data, len, err);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &sb) == 0) return read_all(path, 0, data, len, err);
    return vd_error_set(err, VD_ERR_NOT_FOUND,
                        "%s/%s(.gz) not found (install Debian's dataset-fashion-mnist, or set "
                        "VISIOND_FASHION_MNIST)",
                        dir, name);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

vd_status vd_fmnist_load(const char *dir, const char *split, vd_fmnist *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    const char *prefix;
    if (split && strcmp(split, "train") == 0)
        prefix = "train";
    else if (split && strcmp(split, "test") == 0)
        prefix = "t10k";
    else
        return vd_error_set(err, VD_ERR_INVALID, "unknown split '%s' (train or test)",
                            split ? split : "(null)");
    if (!dir) dir = vd_fmnist_dir();
    char name[64];
    unsigned char *img = NULL, *lab = NULL;
    size_t img_len, lab_len;
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    vd_status rc = read_idx(dir, name, &img, &img_len, err);
    if (rc != VD_OK) return rc;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if ((rc = read_idx(dir, name, &lab, &lab_len, err)) != VD_OK) {
        free(img);
        return rc;
    }
    if (img_len < 16 || be32(img) != 0x803 || lab_len < 8 || be32(lab) != 0x801) {
        rc = vd_error_set(err, VD_ERR_INVALID, "%s/%s: not IDX image/label files", dir, prefix);
        goto fail;
    }
    uint32_t n = be32(img + 4), rows = be32(img + 8), cols = be32(img + 12);
    if (be32(lab + 4) != n || rows == 0 || cols == 0 || rows > 4096 || cols > 4096 ||
        img_len - 16 != (size_t)n * rows * cols || lab_len - 8 != n) {
        rc = vd_error_set(err, VD_ERR_INVALID, "%s/%s: inconsistent IDX sizes", dir, prefix);
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++)
        if (lab[8 + i] >= VD_FMNIST_NLABELS) {
            rc = vd_error_set(err, VD_ERR_INVALID, "%s/%s: label %u of image %u", dir, prefix,
                              lab[8 + i], i);
            goto fail;
        }
    memmove(img, img + 16, img_len - 16);
    memmove(lab, lab + 8, n);
    out->n = n;
    out->rows = (int)rows;
    out->cols = (int)cols;
    out->pixels = img;
    out->labels = lab;
    return VD_OK;
fail:
    free(img);
    free(lab);
    return rc;
}

vd_status vd_fmnist_pick(const vd_fmnist *d, size_t per_label, size_t *idx, vd_error *err)
{
    for (int l = 0; l < VD_FMNIST_NLABELS; l++) {
        size_t got = 0;
        for (size_t i = 0; i < d->n && got < per_label; i++)
            if (d->labels[i] == l) idx[(size_t)l * per_label + got++] = i;
        if (got < per_label)
            return vd_error_set(err, VD_ERR_LIMIT, "label %s has only %zu images, %zu asked",
                                names[l], got, per_label);
    }
    return VD_OK;
}
