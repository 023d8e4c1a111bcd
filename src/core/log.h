/* log.h: one line per event, with a level.
 *
 * Format: "2026-11-29T00:20:01.123Z INFO  worker[1234] message". Lines go to
 * stderr (or the file given to vd_log_init) in one write(2) each, so that
 * lines from many processes sharing a file do not interleave.
 *
 * The log settings are the one piece of process-wide state outside main:
 * main calls vd_log_init once; libraries only call vd_log. */
#ifndef VD_LOG_H
#define VD_LOG_H

typedef enum { VD_LOG_DEBUG = 0, VD_LOG_INFO, VD_LOG_WARN, VD_LOG_ERROR } vd_log_level;

/* Sets the component name shown in each line ("api", "worker"), the minimum
 * level, and the fd lines go to (2 for stderr). Safe to call again after fork. */
void vd_log_init(const char *component, vd_log_level min_level, int fd);

/* Parses "debug", "info", "warn" or "error"; returns -1 when unknown. */
int vd_log_level_parse(const char *s);

/* Writes one line when level >= the configured minimum. Newlines inside the
 * message are replaced by spaces so an event stays one line, and every other
 * control byte (ESC, BEL, backspace ...) is written as "\xHH", so that
 * client-supplied text (URLs, file names, ids) cannot drive a terminal. */
void vd_log(vd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define VD_DEBUG(...) vd_log(VD_LOG_DEBUG, __VA_ARGS__)
#define VD_INFO(...)  vd_log(VD_LOG_INFO, __VA_ARGS__)
#define VD_WARN(...)  vd_log(VD_LOG_WARN, __VA_ARGS__)
#define VD_ERROR(...) vd_log(VD_LOG_ERROR, __VA_ARGS__)

#endif
