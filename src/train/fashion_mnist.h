/* fashion_mnist.h: reading the Fashion-MNIST data set (IDX files).
 *
 * Debian's dataset-fashion-mnist package installs the four IDX files,
 * gzipped, under /usr/share/datasets/fashion-mnist ($VISIOND_FASHION_MNIST
 * overrides the directory): {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz.
 * Plain (not gzipped) files with the same names minus ".gz" are read too.
 * Images are 28x28 8-bit grey; labels 0..9 (names below). */
#ifndef VD_TRAIN_FASHION_MNIST_H
#define VD_TRAIN_FASHION_MNIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VD_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define VD_FMNIST_NLABELS     10

/* A loaded split. pixels: n * rows * cols bytes, row-major per image. */
typedef struct {
    size_t n;
    int rows, cols;
    unsigned char *pixels; /* owned */
    unsigned char *labels; /* owned: n labels in 0..9 */
} vd_fmnist;

/* Returns the directory to read: $VISIOND_FASHION_MNIST or the default. */
const char *vd_fmnist_dir(void);

/* Returns a folder-friendly name of label 0..9 ("tshirt_top", "trouser",
 * "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
 * "ankle_boot"), or NULL. */
const char *vd_fmnist_label_name(int label);

/* Loads split "train" (60000 images) or "test" (10000) from dir (NULL =
 * vd_fmnist_dir()). VD_ERR_NOT_FOUND when the files are missing,
 * VD_ERR_INVALID for a bad split name or a malformed file. *out is cleared
 * by the caller with vd_fmnist_clear. */
vd_status vd_fmnist_load(const char *dir, const char *split, vd_fmnist *out, vd_error *err);

/* Frees the owned fields and zeroes *d. */
void vd_fmnist_clear(vd_fmnist *d);

/* Picks the first per_label images of every label, in file order, label by
 * label: idx receives 10 * per_label indices (label 0's first). VD_ERR_LIMIT
 * when a label has fewer images. */
vd_status vd_fmnist_pick(const vd_fmnist *d, size_t per_label, size_t *idx, vd_error *err);

#endif
