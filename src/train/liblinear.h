/* liblinear.h: liblinear, loaded the first time a classifier is trained or asked.
 *
 * Why: liblinear needs a BLAS, and Debian's brings OpenBLAS, gfortran and quadmath with it:
 * ~20,000 symbol relocations, a third of all that the dynamic loader resolves when any
 * visiond process starts (`visiond version`: ~37 ms with them, ~25 ms without, on a 2-core
 * VM: docs/benchmarks.md, "Start-up"), and ~25 mappings that every fork copies. Only
 * training and the logistic-regression classifier's predictions call it. So no visiond binary
 * links it; this module opens liblinear.so.4 with dlopen (core/dl.h) on first use and calls it
 * through a table. The Debian package depends on liblinear4 by name.
 *
 * Use: vd_liblinear_load before the first call (vd_train and vd_classifier_predict do), then
 * vd_liblinear()->NAME(...). A liblinear function not in VD_LIBLINEAR_FUNCS is not available:
 * add it there. */
#ifndef VD_TRAIN_LIBLINEAR_H
#define VD_TRAIN_LIBLINEAR_H

#include <linear.h>

#include "core/err.h"

#define VD_LIBLINEAR_FUNCS(X)                                                                      \
    X(train)                                                                                       \
    X(check_parameter)                                                                             \
    X(predict_probability)                                                                         \
    X(free_and_destroy_model)                                                                      \
    X(set_print_string_function)

/* The table: one pointer per function, under its own name. */
typedef struct {
#define VD_LIBLINEAR_MEMBER(name) __typeof__(name) *name;
    VD_LIBLINEAR_FUNCS(VD_LIBLINEAR_MEMBER)
#undef VD_LIBLINEAR_MEMBER
} vd_liblinear_table;

/* Loads liblinear once (thread-safe; later calls return the first answer). VD_ERR_UNSUPPORTED,
 * with the loader's message, when liblinear.so.4 or one of the functions above is missing. */
vd_status vd_liblinear_load(vd_error *err);

/* The table; aborts when vd_liblinear_load has not succeeded (a call without a load is a
 * bug, not a runtime condition). */
const vd_liblinear_table *vd_liblinear(void);

#endif
