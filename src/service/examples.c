/* examples.c: the examples of a training session: label rules, the limit,
 * the folder scan (one sub-folder per label), two distinct labels. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "service/training.h"
#include "train/classifier.h"

/* Sets *why to reason (when why is non-NULL) and returns st. */
static vd_status refused(const char **why, const char *reason, vd_status st)
{
    if (why) *why = reason;
    return st;
}

void vd_svc_examples_free(vd_svc_examples *l)
{
    vd_example_list_free(l->v, l->n);
    memset(l, 0, sizeof *l);
}

static vd_status too_many(const char **why, vd_error *err)
{
    vd_error_set(err, VD_ERR_LIMIT, "at most %d examples per session", VD_SVC_MAX_EXAMPLES);
    return refused(why, "too_many_examples", VD_ERR_LIMIT);
}

vd_status vd_svc_examples_reserve(vd_svc_examples *l, size_t n, const char **why, vd_error *err)
{
    if (n > VD_SVC_MAX_EXAMPLES || l->n > VD_SVC_MAX_EXAMPLES - n) return too_many(why, err);
    if (l->n + n <= l->cap) return VD_OK;
    size_t cap = l->n + n;
    vd_example *v = realloc(l->v, cap * sizeof *v);
    if (!v) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    l->v = v, l->cap = cap;
    return VD_OK;
}

static vd_status check_label(const char *label, const char *where, const char **why, vd_error *err)
{
    if (!*label) {
        vd_error_set(err, VD_ERR_INVALID, "%s: the label is empty", where);
        return refused(why, "empty_label", VD_ERR_INVALID);
    }
    if (strlen(label) > VD_SVC_MAX_LABEL_LEN) {
        vd_error_set(err, VD_ERR_INVALID, "%s: labels have at most %d characters", where,
                     VD_SVC_MAX_LABEL_LEN);
        return refused(why, "label_too_long", VD_ERR_INVALID);
    }
    if (strcmp(label, VD_UNKNOWN_LABEL) == 0) {
        vd_error_set(err, VD_ERR_INVALID,
                     "%s: the label \"unknown\" is reserved (predict answers it below the "
                     "threshold)",
                     where);
        return refused(why, "reserved_label", VD_ERR_INVALID);
    }
    return VD_OK;
}

vd_status vd_svc_examples_add(vd_svc_examples *l, char *path, const char *label, const char *where,
                              const char **why, vd_error *err)
{
    vd_status st = check_label(label, where, why, err);
    if (st == VD_OK && l->n == l->cap) {
        size_t more = l->cap ? l->cap : 64;
        if (more > VD_SVC_MAX_EXAMPLES - l->n) more = VD_SVC_MAX_EXAMPLES - l->n;
        st = more ? vd_svc_examples_reserve(l, more, why, err) : too_many(why, err);
    }
    char *lab = st == VD_OK ? vd_strdup(label) : NULL;
    if (st == VD_OK && !lab) st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (st != VD_OK) {
        free(path);
        return st;
    }
    memset(&l->v[l->n], 0, sizeof l->v[l->n]);
    l->v[l->n].path = path;
    l->v[l->n++].label = lab;
    return VD_OK;
}

static int visible(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Adds the regular files of sub (the label's folder) through check. */
static vd_status scan_label(const char *sub, const char *label, const char *where,
                            vd_svc_path_check check, void *ud, vd_svc_examples *l, const char **why,
                            vd_error *err)
{
    struct dirent **files = NULL;
    int nf = scandir(sub, &files, visible, alphasort);
    vd_status st = VD_OK;
    for (int k = 0; k < nf; k++) {
        char file[4400];
        struct stat sb;
        if (st == VD_OK &&
            snprintf(file, sizeof file, "%s/%s", sub, files[k]->d_name) < (int)sizeof file &&
            stat(file, &sb) == 0 && S_ISREG(sb.st_mode)) {
            char *path = NULL;
            /* the folder passed the check; a symlink inside it must too */
            st = check ? check(ud, file, 0, &path, why, err)
                       : ((path = vd_strdup(file))
                              ? VD_OK
                              : vd_error_set(err, VD_ERR_NOMEM, "out of memory"));
            if (st == VD_OK) st = vd_svc_examples_add(l, path, label, where, why, err);
        }
        free(files[k]);
    }
    free(files);
    return st;
}

vd_status vd_svc_examples_scan(const char *folder, vd_svc_path_check check, void *ud,
                               vd_svc_examples *l, const char **why, vd_error *err)
{
    char *dir = NULL;
    vd_status st = VD_OK;
    if (check)
        st = check(ud, folder, 1, &dir, why, err);
    else if (!(dir = realpath(folder, NULL))) {
        vd_error_set(err, VD_ERR_NOT_FOUND, "%s: %s", folder, strerror(errno));
        st = refused(why, "path_not_found", VD_ERR_NOT_FOUND);
    }
    if (st != VD_OK) return st;
    struct dirent **labels = NULL;
    int nl = scandir(dir, &labels, visible, alphasort);
    if (nl < 0) {
        vd_error_set(err, VD_ERR_IO, "cannot list %s: %s", folder, strerror(errno));
        free(dir);
        return refused(why, "unreadable_folder", VD_ERR_IO);
    }
    size_t before = l->n;
    for (int i = 0; i < nl; i++) {
        char sub[4096], where[300];
        struct stat sb;
        if (st == VD_OK &&
            snprintf(sub, sizeof sub, "%s/%s", dir, labels[i]->d_name) < (int)sizeof sub &&
            stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            snprintf(where, sizeof where, "folder %s/%s", folder, labels[i]->d_name);
            st = check_label(labels[i]->d_name, where, why, err);
            if (st == VD_OK) st = scan_label(sub, labels[i]->d_name, where, check, ud, l, why, err);
        }
        free(labels[i]);
    }
    free(labels);
    free(dir);
    if (st == VD_OK && l->n == before) {
        vd_error_set(err, VD_ERR_INVALID,
                     "folder %s has no sub-folder with files (one sub-folder per label)", folder);
        return refused(why, "no_examples", VD_ERR_INVALID);
    }
    return st;
}

vd_status vd_svc_examples_check(const vd_svc_examples *l, const char **why, vd_error *err)
{
    if (l->n == 0) {
        vd_error_set(err, VD_ERR_INVALID, "a session needs examples");
        return refused(why, "no_examples", VD_ERR_INVALID);
    }
    if (l->n > VD_SVC_MAX_EXAMPLES) return too_many(why, err);
    const char *first = l->v[0].label;
    for (size_t i = 1; i < l->n; i++)
        if (strcmp(l->v[i].label, first) != 0) return VD_OK;
    vd_error_set(err, VD_ERR_INVALID,
                 "a session needs at least 2 distinct labels, but every example is labelled "
                 "\"%.100s\"",
                 first);
    return refused(why, "one_label", VD_ERR_INVALID);
}
