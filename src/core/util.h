/* util.h: time, ids and small helpers shared by every module. */
#ifndef VD_UTIL_H
#define VD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define VD_ID_LEN 32 /* hex characters in a generated id (128 random bits) */

/* Returns wall-clock time in milliseconds since the Unix epoch. */
int64_t vd_now_ms(void);

/* Returns a monotonic clock in milliseconds (for durations and deadlines). */
int64_t vd_mono_ms(void);

/* Returns a monotonic clock in microseconds. */
int64_t vd_mono_us(void);

/* Sleeps for ms milliseconds, resuming after signals. */
void vd_sleep_ms(int64_t ms);

/* Writes a fresh random id of VD_ID_LEN hex characters plus NUL into out. */
void vd_id_new(char out[VD_ID_LEN + 1]);

/* Writes a fresh job id into out: VD_ID_LEN hex characters, the first 12 the wall clock in
 * milliseconds (so ids made later sort later, and a database index on them grows at its end
 * instead of at random places), the other 20 random (80 bits: ids made in the same
 * millisecond, by any process on any host, do not collide), plus NUL. */
void vd_job_id_new(char out[VD_ID_LEN + 1]);

/* Returns a uniformly distributed double in [0, 1) from the OS's randomness. */
double vd_random_unit(void);

/* Returns a malloc'd copy of s (NULL for NULL); the caller frees it. */
char *vd_strdup(const char *s);

/* Copies src into dst of size n, always NUL-terminating; returns dst. */
char *vd_strlcpy(char *dst, const char *src, size_t n);

/* Copies url into buf of size n (always NUL-terminated, truncated to fit) with
 * the password of its userinfo ("scheme://USER:PASSWORD@host...") replaced by
 * "***", so that a URL can be logged or reported without its secret. Anything
 * else is copied as is. Returns buf. */
char *vd_url_redact(const char *url, char *buf, size_t n);

/* Describes a waitpid status: "exited with status 3", "killed by SIGSEGV".
 * Writes into buf of size n and returns buf. */
char *vd_describe_wait_status(int wstatus, char *buf, size_t n);

#endif
