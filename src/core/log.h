/* log.h: one line per event, with a level, as text or as JSON.
 *
 * Text (the default): "2026-11-29T00:20:01.123Z INFO  worker[1234] message".
 * JSON (--log-format json, $VISIOND_LOG_FORMAT=json): one object per line,
 *   {"time":"2026-11-29T00:20:01.123Z","level":"info","pid":1234,
 *    "component":"worker","message":"...","fields":{"k":"v"}}
 * ("fields" only when the event has some). Lines go to stderr (or the fd
 * given to vd_log_init) in one write(2) each, so that lines from many
 * processes sharing a file do not interleave.
 *
 * The log settings are the one piece of process-wide state outside main:
 * main sets the format (vd_log_setup_format: the global --log-format flag and
 * $VISIOND_LOG_FORMAT, which children inherit) and calls vd_log_init; commands
 * call vd_log_init again with their component; libraries only call vd_log. */
#ifndef VD_LOG_H
#define VD_LOG_H

typedef enum { VD_LOG_DEBUG = 0, VD_LOG_INFO, VD_LOG_WARN, VD_LOG_ERROR } vd_log_level;

typedef enum { VD_LOG_TEXT = 0, VD_LOG_JSON } vd_log_format;

/* Sets the component name shown in each line ("api", "worker"), the minimum
 * level, and the fd lines go to (2 for stderr). Safe to call again after fork. */
void vd_log_init(const char *component, vd_log_level min_level, int fd);

/* Parses "debug", "info", "warn" or "error"; returns -1 when unknown. */
int vd_log_level_parse(const char *s);

/* Parses "text" or "json"; returns -1 when unknown. */
int vd_log_format_parse(const char *s);

/* Sets the line format (vd_log_init keeps it). */
void vd_log_set_format(vd_log_format f);

/* The line format in force: a command's last words (cli.h's vd_cli_fail) are
 * a log line in JSON mode, so that stderr stays JSON lines. */
vd_log_format vd_log_get_format(void);

/* The global --log-format FORMAT (or --log-format=FORMAT) option of every
 * command: removes it from argv (up to a "--"), exports it as
 * $VISIOND_LOG_FORMAT for child processes, and sets the format from
 * $VISIOND_LOG_FORMAT. Returns the new argc, or -1 with *bad set to the
 * refused value (an unknown format, or the flag without one). */
int vd_log_setup_format(int argc, char **argv, const char **bad);

/* Writes one line when level >= the configured minimum. Newlines inside the
 * message are replaced by spaces so an event stays one line, and every other
 * control byte (ESC, BEL, backspace ...) is written as "\xHH", so that
 * client-supplied text (URLs, file names, ids) cannot drive a terminal. */
void vd_log(vd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same with fields: kv holds name, value, name, value ..., NULL (strings).
 * JSON lines carry them in "fields"; text lines show the message alone (which
 * says the same for people: the fields are its parts, for programs). */
void vd_log_kv(vd_log_level level, const char *const *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VD_DEBUG(...) vd_log(VD_LOG_DEBUG, __VA_ARGS__)
#define VD_INFO(...)  vd_log(VD_LOG_INFO, __VA_ARGS__)
#define VD_WARN(...)  vd_log(VD_LOG_WARN, __VA_ARGS__)
#define VD_ERROR(...) vd_log(VD_LOG_ERROR, __VA_ARGS__)

#endif
