/* vdtest.h: a small test harness for the unit tests.
 *
 *   VD_TEST(name) { ... CHECK(cond); CHECK_EQ_INT(a, b); CHECK_OK(status_expr); ... }
 *   int main(void) { return vd_test_run_all(); }
 *
 * Tests register themselves; vd_test_run_all runs each (or those whose name
 * contains $VDTEST_FILTER), prints one line per test and a closing
 * "N passed, N failed" line, and returns 0 only if none failed. A test calls
 * vd_test_skip("why") to be counted as skipped. */
#ifndef VDTEST_H
#define VDTEST_H

#include <stdint.h>
#include <stdio.h>

typedef void (*vd_test_fn)(void);

void vd_test_register(const char *name, vd_test_fn fn);
int vd_test_run_all(void);
void vd_test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vd_test_skip(const char *why);
int vd_test_failed(void);

/* Returns a fresh private temporary directory for the current test (removed
 * at exit unless VDTEST_KEEP is set). The string lives until exit. */
const char *vd_test_tmpdir(void);

#define VD_TEST(name)                                                                              \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void name##_register(void)                                 \
    {                                                                                              \
        vd_test_register(#name, name);                                                             \
    }                                                                                              \
    static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            vd_test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            vd_test_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, va_, vb_);       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                               \
            vd_test_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,              \
                            sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                           \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Checks that a vd_status expression is VD_OK; prints the vd_error `err` in scope when not. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int st_ = (int)(expr);                                                                     \
        if (st_ != 0) {                                                                            \
            vd_test_fail_at(__FILE__, __LINE__, "%s returned %d (%s)", #expr, st_,                 \
                            vd_error_text(&err));                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
