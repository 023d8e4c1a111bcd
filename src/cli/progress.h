/* progress.h: a one-line progress bar for long CLI commands.
 *
 * Drawn on stderr, only when stderr is a terminal (never in pipes, logs or
 * tests), redrawn at most 10 times a second with a carriage return:
 *     training pets  [##########..........]  100/200 embedded
 * vd_progress_end finishes the line. No global state: the caller owns the
 * struct. */
#ifndef VD_CLI_PROGRESS_H
#define VD_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;         /* stderr when it is a terminal, else NULL (disabled) */
    char label[64];  /* text before the bar */
    int64_t last_ms; /* last redraw */
    int drawn;       /* something is on the line */
} vd_progress;

/* Sets p up with label; enabled when stderr is a TTY (force: 1 on, -1 off, 0 auto). */
void vd_progress_init(vd_progress *p, const char *label, int force);

/* Shows done of total (total <= 0: just the count) with a unit word
 * ("embedded"); redraws at most every 100 ms unless done == total. */
void vd_progress_update(vd_progress *p, int64_t done, int64_t total, const char *unit);

/* Ends the line (when something was drawn). */
void vd_progress_end(vd_progress *p);

#endif
