/* preprocess.c: separable area/bilinear resampling into normalised floats,
 * and the affine warp used by face alignment. */
#include "image/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Resampling weights along one axis: output index d reads source indices
 * first[d] .. first[d]+count[d]-1 with weights w[d*stride ...]. */
typedef struct {
    int *first, *count;
    float *w;
    int stride;
} axis_weights;

static void axis_free(axis_weights *a)
{
    free(a->first);
    free(a->count);
    free(a->w);
}

/* Output pixels 0..dn-1 cover the source interval [s0, s0 + sn) evenly. */
static vd_status axis_make(axis_weights *a, int src_n, double s0, double sn, int dn, vd_error *err)
{
    double step = sn / dn; /* source pixels per output pixel */
    int stride = step > 1 ? (int)ceil(step) + 2 : 2;
    a->stride = stride;
    a->first = malloc(sizeof(int) * (size_t)dn);
    a->count = malloc(sizeof(int) * (size_t)dn);
    a->w = calloc((size_t)dn * (size_t)stride, sizeof(float));
    if (!a->first || !a->count || !a->w) {
        axis_free(a);
        return vd_error_set(err, VD_ERR_NOMEM, "no memory for resampling weights");
    }
    for (int d = 0; d < dn; d++) {
        float *w = a->w + (size_t)d * stride;
        if (step > 1) {
            /* Area average over [lo, hi), clipped to the image. */
            double lo = s0 + d * step, hi = lo + step;
            if (lo < 0) lo = 0;
            if (hi > src_n) hi = src_n;
            int i0 = (int)floor(lo), i1 = (int)ceil(hi);
            if (i0 >= src_n) i0 = src_n - 1;
            if (i1 <= i0) i1 = i0 + 1;
            if (i1 - i0 > stride) i1 = i0 + stride;
            double total = 0;
            for (int i = i0; i < i1; i++) {
                double cover = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                if (cover < 0) cover = 0;
                w[i - i0] = (float)cover;
                total += cover;
            }
            if (total <= 0) {
                w[0] = 1, total = 1;
                for (int i = 1; i < i1 - i0; i++)
                    w[i] = 0;
            }
            for (int i = 0; i < i1 - i0; i++)
                w[i] = (float)(w[i] / total);
            a->first[d] = i0;
            a->count[d] = i1 - i0;
        } else {
            /* Bilinear between the two nearest source centres. */
            double c = s0 + (d + 0.5) * step - 0.5;
            if (c < 0) c = 0;
            if (c > src_n - 1) c = src_n - 1;
            int i0 = (int)floor(c);
            double f = c - i0;
            a->first[d] = i0;
            if (i0 + 1 < src_n && f > 0) {
                a->count[d] = 2;
                w[0] = (float)(1 - f);
                w[1] = (float)f;
            } else {
                a->count[d] = 1;
                w[0] = 1;
            }
        }
    }
    return VD_OK;
}

void vd_prep_map_to_image(const vd_prep_map *m, double u, double v, double *x, double *y)
{
    *x = (u - m->ox) / m->sx;
    *y = (v - m->oy) / m->sy;
}

/* The normalisation, per input channel (after colour reordering):
 * value * mul[c] + add[c] = (value * scale - mean[c]) / std[c]. */
static void norm_coeffs(const vd_model_meta *meta, int C, float mul[3], float add[3])
{
    for (int c = 0; c < C; c++) {
        float sd = meta->std[c] != 0 ? meta->std[c] : 1;
        mul[c] = meta->scale / sd;
        add[c] = -meta->mean[c] / sd;
    }
}

vd_status vd_preprocess_into(const vd_image *img, const vd_model_meta *meta, float *dst,
                             vd_prep_map *map, vd_error *err)
{
    int W = meta->width, H = meta->height, C = meta->channels;
    if (W <= 0 || H <= 0) return vd_error_set(err, VD_ERR_INVALID, "model input size not set");
    if (C != 1 && C != 3)
        return vd_error_set(err, VD_ERR_INVALID, "model input has %d channels (1 or 3)", C);
    if (!img->pixels || img->width <= 0 || img->height <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "empty image");
    int iw = img->width, ih = img->height;

    /* Where the content goes in the input (dx, dy, dw, dh) and which source
     * window it shows (sx0, sy0, sw, sh). */
    int dx = 0, dy = 0, dw = W, dh = H;
    double sx0 = 0, sy0 = 0, sw = iw, sh = ih;
    if (meta->resize == VD_RESIZE_LETTERBOX) {
        double s = fmin((double)W / iw, (double)H / ih);
        dw = (int)lround(iw * s);
        dh = (int)lround(ih * s);
        if (dw < 1) dw = 1;
        if (dh < 1) dh = 1;
        if (dw > W) dw = W;
        if (dh > H) dh = H;
        dx = (W - dw) / 2;
        dy = (H - dh) / 2;
    } else if (meta->resize == VD_RESIZE_CENTER_CROP) {
        double s = fmax((double)W / iw, (double)H / ih);
        sw = W / s;
        sh = H / s;
        sx0 = (iw - sw) / 2;
        sy0 = (ih - sh) / 2;
    }
    if (map) {
        map->sx = dw / sw;
        map->sy = dh / sh;
        map->ox = dx - sx0 * map->sx;
        map->oy = dy - sy0 * map->sy;
    }

    axis_weights ax = {0}, ay = {0};
    vd_status st = axis_make(&ax, iw, sx0, sw, dw, err);
    if (st != VD_OK) return st;
    st = axis_make(&ay, ih, sy0, sh, dh, err);
    if (st != VD_OK) {
        axis_free(&ax);
        return st;
    }
    /* Horizontal pass over the source rows the vertical pass will read. */
    int ry0 = ay.first[0], ry1 = ay.first[dh - 1] + ay.count[dh - 1];
    float *rows = malloc(sizeof(float) * (size_t)(ry1 - ry0) * (size_t)dw * 3);
    float *line = malloc(sizeof(float) * (size_t)dw * 3);
    if (!rows || !line) {
        free(rows);
        free(line);
        axis_free(&ax);
        axis_free(&ay);
        return vd_error_set(err, VD_ERR_NOMEM, "no memory to resize %dx%d", iw, ih);
    }
    for (int y = ry0; y < ry1; y++) {
        const uint8_t *src = img->pixels + (size_t)y * iw * 3;
        float *out = rows + (size_t)(y - ry0) * dw * 3;
        for (int d = 0; d < dw; d++) {
            const float *w = ax.w + (size_t)d * ax.stride;
            const uint8_t *p = src + (size_t)ax.first[d] * 3;
            float r = 0, g = 0, b = 0;
            for (int k = 0; k < ax.count[d]; k++, p += 3) {
                r += w[k] * p[0];
                g += w[k] * p[1];
                b += w[k] * p[2];
            }
            out[3 * d] = r, out[3 * d + 1] = g, out[3 * d + 2] = b;
        }
    }

    float mul[3], add[3];
    norm_coeffs(meta, C, mul, add);
    int nchw = meta->layout == VD_LAYOUT_NCHW, bgr = meta->color == VD_COLOR_BGR;
    size_t plane = (size_t)W * H;
    /* Padding (letterbox): black pixels, normalised. */
    if (dw != W || dh != H)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++) {
                    size_t at = nchw ? c * plane + (size_t)y * W + x : ((size_t)y * W + x) * C + c;
                    dst[at] = add[c];
                }
    for (int d = 0; d < dh; d++) {
        const float *w = ay.w + (size_t)d * ay.stride;
        memset(line, 0, sizeof(float) * (size_t)dw * 3);
        for (int k = 0; k < ay.count[d]; k++) {
            const float *row = rows + (size_t)(ay.first[d] + k - ry0) * dw * 3;
            for (int i = 0; i < dw * 3; i++)
                line[i] += w[k] * row[i];
        }
        int y = dy + d;
        for (int i = 0; i < dw; i++) {
            int x = dx + i;
            float rgb[3] = {line[3 * i], line[3 * i + 1], line[3 * i + 2]};
            float v[3];
            if (C == 1) {
                v[0] = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
            } else if (bgr) {
                v[0] = rgb[2], v[1] = rgb[1], v[2] = rgb[0];
            } else {
                v[0] = rgb[0], v[1] = rgb[1], v[2] = rgb[2];
            }
            for (int c = 0; c < C; c++) {
                size_t at = nchw ? c * plane + (size_t)y * W + x : ((size_t)y * W + x) * C + c;
                dst[at] = v[c] * mul[c] + add[c];
            }
        }
    }
    free(rows);
    free(line);
    axis_free(&ax);
    axis_free(&ay);
    return VD_OK;
}

/* The shape of a batch of n images for meta: [n, H, W, C] (NHWC) or [n, C, H, W] (NCHW). */
static vd_status batch_shape(const vd_model_meta *meta, size_t n, int64_t shape[4], vd_error *err)
{
    if (n == 0) return vd_error_set(err, VD_ERR_INVALID, "empty batch");
    if (meta->width <= 0 || meta->height <= 0 || (meta->channels != 1 && meta->channels != 3))
        return vd_error_set(err, VD_ERR_INVALID, "model input %dx%dx%d is not an image",
                            meta->width, meta->height, meta->channels);
    shape[0] = (int64_t)n;
    shape[1] = meta->height, shape[2] = meta->width, shape[3] = meta->channels;
    if (meta->layout == VD_LAYOUT_NCHW)
        shape[1] = meta->channels, shape[2] = meta->height, shape[3] = meta->width;
    return VD_OK;
}

/* Preprocesses n images into t, of that shape. */
static vd_status batch_fill(const vd_image *imgs, size_t n, const vd_model_meta *meta, vd_tensor *t,
                            vd_prep_map *maps, vd_error *err)
{
    size_t per = vd_model_meta_input_len(meta);
    if (t->rank != 4 || t->shape[0] != (int64_t)n || vd_tensor_count(t) != n * per)
        return vd_error_set(err, VD_ERR_INVALID, "the input tensor does not fit %zu images", n);
    vd_status st = VD_OK;
    for (size_t i = 0; i < n && st == VD_OK; i++)
        st = vd_preprocess_into(&imgs[i], meta, t->data + i * per, maps ? &maps[i] : NULL, err);
    return st;
}

vd_status vd_preprocess_for(vd_runner *r, const vd_image *imgs, size_t n, const vd_model_meta *meta,
                            vd_tensor *out, vd_prep_map *maps, vd_error *err)
{
    memset(out, 0, sizeof *out);
    int64_t shape[4];
    vd_status st = batch_shape(meta, n, shape, err);
    if (st == VD_OK)
        st = r ? vd_runner_input(r, shape, 4, out, err)
               : vd_tensor_alloc_uninit(out, VD_DTYPE_FLOAT32, shape, 4, err);
    if (st == VD_OK) st = batch_fill(imgs, n, meta, out, maps, err);
    if (st != VD_OK) vd_tensor_free(out);
    return st;
}

/* Bilinear sample at continuous point (x, y) (pixel centres at +0.5). Points
 * outside the image are black; inside, the border pixels extend to the edge. */
static void sample_bilinear(const vd_image *s, double x, double y, double out[3])
{
    out[0] = out[1] = out[2] = 0;
    if (!(x >= 0 && y >= 0 && x < s->width && y < s->height)) return;
    x -= 0.5;
    y -= 0.5;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > s->width - 1) x = s->width - 1;
    if (y > s->height - 1) y = s->height - 1;
    int x0 = (int)floor(x), y0 = (int)floor(y);
    double fx = x - x0, fy = y - y0;
    int x1 = x0 + 1 < s->width ? x0 + 1 : x0, y1 = y0 + 1 < s->height ? y0 + 1 : y0;
    const uint8_t *p00 = s->pixels + ((size_t)y0 * s->width + x0) * 3;
    const uint8_t *p01 = s->pixels + ((size_t)y0 * s->width + x1) * 3;
    const uint8_t *p10 = s->pixels + ((size_t)y1 * s->width + x0) * 3;
    const uint8_t *p11 = s->pixels + ((size_t)y1 * s->width + x1) * 3;
    for (int c = 0; c < 3; c++)
        out[c] =
            (1 - fy) * ((1 - fx) * p00[c] + fx * p01[c]) + fy * ((1 - fx) * p10[c] + fx * p11[c]);
}

/* OpenCV's bilinear sample with a black constant border at continuous (x, y). */
static void sample_bilinear_black(const vd_image *s, double x, double y, double out[3])
{
    x -= 0.5, y -= 0.5; /* pixel-index coordinates */
    double fx0 = floor(x), fy0 = floor(y);
    out[0] = out[1] = out[2] = 0;
    if (!(fx0 >= -1 && fy0 >= -1 && fx0 < s->width && fy0 < s->height)) return;
    int x0 = (int)fx0, y0 = (int)fy0;
    double fx = x - fx0, fy = y - fy0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            int xi = x0 + i, yj = y0 + j;
            if (xi < 0 || yj < 0 || xi >= s->width || yj >= s->height) continue;
            double w = (i ? fx : 1 - fx) * (j ? fy : 1 - fy);
            const uint8_t *p = s->pixels + ((size_t)yj * s->width + xi) * 3;
            for (int c = 0; c < 3; c++)
                out[c] += w * p[c];
        }
}

/* The warp of both public functions: up to max_k x max_k samples per pixel
 * when shrinking (vd_image_warp_affine), or one with OpenCV's border (exact). */
static vd_status warp(const vd_image *src, const double m[6], int out_w, int out_h, int exact,
                      vd_image *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    if (!src->pixels || src->width <= 0 || src->height <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "empty image");
    double det = m[0] * m[4] - m[1] * m[3];
    if (!isfinite(det) || fabs(det) < 1e-12)
        return vd_error_set(err, VD_ERR_INVALID, "singular warp matrix");
    /* Inverse: output point -> source point. */
    double ia = m[4] / det, ib = -m[1] / det, id = -m[3] / det, ie = m[0] / det;
    double ic = -(ia * m[2] + ib * m[5]), iff = -(id * m[2] + ie * m[5]);
    vd_status st = vd_image_alloc(out, out_w, out_h, err);
    if (st != VD_OK) return st;
    /* Source pixels per output pixel, along the longer axis of the preimage. */
    double span = fmax(hypot(ia, id), hypot(ib, ie));
    int k = span > 1.5 && !exact ? (int)ceil(span) : 1;
    if (k > 4) k = 4;
    for (int v = 0; v < out_h; v++)
        for (int u = 0; u < out_w; u++) {
            double acc[3] = {0, 0, 0};
            for (int sj = 0; sj < k; sj++)
                for (int si = 0; si < k; si++) {
                    double pu = u + (si + 0.5) / k, pv = v + (sj + 0.5) / k;
                    double px[3];
                    double sx = ia * pu + ib * pv + ic, sy = id * pu + ie * pv + iff;
                    if (exact)
                        sample_bilinear_black(src, sx, sy, px);
                    else
                        sample_bilinear(src, sx, sy, px);
                    acc[0] += px[0], acc[1] += px[1], acc[2] += px[2];
                }
            uint8_t *q = out->pixels + ((size_t)v * out_w + u) * 3;
            for (int c = 0; c < 3; c++) {
                double val = acc[c] / (k * k);
                q[c] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : lround(val));
            }
        }
    return VD_OK;
}

vd_status vd_image_warp_affine(const vd_image *src, const double m[6], int out_w, int out_h,
                               vd_image *out, vd_error *err)
{
    return warp(src, m, out_w, out_h, 0, out, err);
}

vd_status vd_image_warp_affine_exact(const vd_image *src, const double m[6], int out_w, int out_h,
                                     vd_image *out, vd_error *err)
{
    return warp(src, m, out_w, out_h, 1, out, err);
}
