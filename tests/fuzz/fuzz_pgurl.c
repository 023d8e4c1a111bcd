/* fuzz_pgurl.c: the PostgreSQL URL helpers (core/pg.h) against arbitrary
 * text: vd_pg_url_is never crashes, and vd_pg_url_shown always ends its
 * output inside the buffer and never shows a password: when the input holds a
 * password marked by a canary ("password=CANARY", "USER:CANARY@"), the shown
 * text does not contain the canary. The input, up to a NUL, is the URL; a
 * second part after the NUL sets the buffer size (1..255). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pg.h"

static void check(int cond)
{
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 900) return 0;
    char url[1024];
    size_t n = strnlen((const char *)data, size);
    memcpy(url, data, n);
    url[n] = '\0';
    size_t bufn = n + 1 < size ? (size_t)data[n + 1] : 200;
    if (bufn == 0) bufn = 1;

    (void)vd_pg_url_is(url);
    char shown[256];
    memset(shown, 'x', sizeof shown);
    vd_pg_url_shown(url, shown, bufn);
    check(memchr(shown, '\0', bufn) != NULL);

    /* the same text with a known password in each form must not show it */
    if (strstr(url, "ZQXJCANARY")) return 0;
    static const char *forms[] = {"postgres://u:ZQXJCANARY@h/db", "host=h password=ZQXJCANARY ",
                                  "postgres://u@h/db?password=ZQXJCANARY&a=b"};
    for (size_t i = 0; i < 3; i++) {
        char both[1100];
        snprintf(both, sizeof both, "%s%s", forms[i], i == 2 ? "" : url);
        if (i == 0 && strpbrk(url, "@/?#")) continue; /* would change where the userinfo ends */
        if (i == 1 && (strchr(url, '\'') || strchr(url, '\\'))) continue;
        if (i == 2) snprintf(both, sizeof both, "%s", forms[2]);
        char out[1200];
        vd_pg_url_shown(both, out, sizeof out);
        check(strstr(out, "ZQXJCANARY") == NULL);
    }
    return 0;
}
