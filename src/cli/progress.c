/* progress.c: the terminal progress bar (cli/progress.h). */
#include "cli/progress.h"

#include <string.h>
#include <unistd.h>

#include "core/util.h"

#define BAR 30

void vd_progress_init(vd_progress *p, const char *label, int force)
{
    memset(p, 0, sizeof *p);
    vd_strlcpy(p->label, label ? label : "", sizeof p->label);
    int on = force > 0 || (force == 0 && isatty(STDERR_FILENO));
    p->f = on ? stderr : NULL;
}

void vd_progress_update(vd_progress *p, int64_t done, int64_t total, const char *unit)
{
    if (!p->f) return;
    int64_t now = vd_mono_ms();
    if (p->drawn && now - p->last_ms < 100 && done != total) return;
    p->last_ms = now;
    char bar[BAR + 1];
    int fill = total > 0 ? (int)(done * BAR / total) : 0;
    if (fill > BAR) fill = BAR;
    for (int i = 0; i < BAR; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR] = '\0';
    if (total > 0)
        fprintf(p->f, "\r%s [%s] %lld/%lld %s\033[K", p->label, bar, (long long)done,
                (long long)total, unit ? unit : "");
    else
        fprintf(p->f, "\r%s %lld %s\033[K", p->label, (long long)done, unit ? unit : "");
    fflush(p->f);
    p->drawn = 1;
}

void vd_progress_end(vd_progress *p)
{
    if (p->f && p->drawn) {
        fputc('\n', p->f);
        fflush(p->f);
    }
    p->drawn = 0;
}
