/* pg.c: connecting to PostgreSQL, hiding passwords, and libpq results as
 * vd_status (see pg.h). */
#include "core/pg.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

#define PG_BACKOFF_FIRST_MS 100
#define PG_BACKOFF_MAX_MS   2000

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* Returns 1 when the keyword-form string s sets keyword kw ("host"). */
static int sets_keyword(const char *s, const char *kw)
{
    size_t n = strlen(kw);
    for (const char *p = s; (p = strstr(p, kw)) != NULL; p += n) {
        int at_word = p == s || p[-1] == ' ' || p[-1] == '\t';
        const char *q = p + n;
        while (*q == ' ')
            q++;
        if (at_word && *q == '=') return 1;
    }
    return 0;
}

int vd_pg_url_is(const char *url)
{
    if (!url) return 0;
    if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://")) return 1;
    const char *scheme = strstr(url, "://"), *eq = strchr(url, '=');
    if (scheme && (!eq || scheme < eq)) return 0; /* a URL of another scheme */
    return sets_keyword(url, "host") || sets_keyword(url, "hostaddr") ||
           sets_keyword(url, "dbname") || sets_keyword(url, "service");
}

/* Copies the keyword form with the value of password= replaced by ***. */
static char *shown_keywords(const char *url, char *buf, size_t n)
{
    size_t o = 0;
    const char *p = url;
    while (*p && o + 1 < n) {
        if ((p == url || p[-1] == ' ' || p[-1] == '\t') && has_prefix(p, "password")) {
            const char *q = p + 8;
            while (*q == ' ')
                q++;
            if (*q == '=') {
                q++;
                while (*q == ' ')
                    q++;
                if (*q == '\'') { /* a quoted value, with \' escapes */
                    for (q++; *q && *q != '\''; q++)
                        if (*q == '\\' && q[1]) q++;
                    if (*q) q++;
                } else {
                    q += strcspn(q, " \t");
                }
                o += (size_t)snprintf(buf + o, n - o, "password=***");
                p = q;
                continue;
            }
        }
        buf[o++] = *p++;
    }
    if (o >= n) o = n - 1;
    buf[o] = '\0';
    return buf;
}

char *vd_pg_url_shown(const char *url, char *buf, size_t n)
{
    if (n == 0) return buf;
    if (!url) url = "";
    char tmp[1024];
    int is_url = has_prefix(url, "postgres://") || has_prefix(url, "postgresql://");
    if (!is_url && !vd_pg_url_is(url) && strstr(url, "://")) return vd_url_redact(url, buf, n);
    if (is_url) {
        /* the userinfo first, then a password=... query parameter, if any */
        vd_url_redact(url, tmp, sizeof tmp);
        const char *q = strchr(tmp, '?');
        if (!q) return vd_strlcpy(buf, tmp, n);
        size_t o = 0, len = (size_t)(q - tmp);
        o = (size_t)snprintf(buf, n, "%.*s", (int)len, tmp);
        for (const char *p = q; *p && o + 1 < n;) {
            if ((p[-1] == '?' || p[-1] == '&') && has_prefix(p, "password=")) {
                o += (size_t)snprintf(buf + o, n - o, "password=***");
                p += strcspn(p, "&");
                continue;
            }
            buf[o++] = *p++;
        }
        if (o >= n) o = n - 1;
        buf[o] = '\0';
        return buf;
    }
    return shown_keywords(url, buf, n);
}

/* A connect failure that waiting cannot fix, by libpq's message (connect
 * failures carry no SQLSTATE). Returns VD_OK when it is worth retrying. */
static vd_status classify_connect(const char *msg)
{
    static const char *auth[] = {"password authentication failed", "no password supplied",
                                 "no pg_hba.conf entry",           "role \"",
                                 "authentication failed",          "SCRAM authentication",
                                 "permission denied for database"};
    if (strstr(msg, "does not exist") && strstr(msg, "database \"")) return VD_ERR_NOT_FOUND;
    for (size_t i = 0; i < sizeof auth / sizeof *auth; i++)
        if (strstr(msg, auth[i])) return VD_ERR_AUTH;
    if (strstr(msg, "invalid connection option") || strstr(msg, "invalid URI") ||
        strstr(msg, "missing \"=\"") || strstr(msg, "unterminated quoted string") ||
        strstr(msg, "invalid integer value") || strstr(msg, "definition of service"))
        return VD_ERR_INVALID;
    return VD_OK;
}

/* Trims libpq's message to one line for logs and errors. */
static void one_line(const char *in, char *out, size_t n)
{
    vd_strlcpy(out, in ? in : "", n);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    size_t len = strlen(out);
    while (len && out[len - 1] == ' ')
        out[--len] = '\0';
}

/* One attempt: *c is set (even on failure, for its message). */
static PGconn *connect_once(const char *url)
{
    const char *keys[] = {"dbname", "application_name", "client_encoding", NULL};
    const char *vals[] = {url, "visiond", "UTF8", NULL};
    /* expand_dbname=1: the first dbname is parsed as a URL or keyword string;
     * the later keywords fill what it leaves unset. */
    return PQconnectdbParams(keys, vals, 1);
}

vd_status vd_pg_connect(const char *url, int64_t wait_ms, PGconn **out, vd_error *err)
{
    *out = NULL;
    vd_status st = vd_pq_load(err);
    if (st != VD_OK) return st;
    char shown[512], why[400];
    vd_pg_url_shown(url, shown, sizeof shown);
    int64_t start = vd_mono_ms(), backoff = PG_BACKOFF_FIRST_MS;
    for (int attempt = 1;; attempt++) {
        PGconn *c = connect_once(url);
        if (!c) return vd_error_set(err, VD_ERR_NOMEM, "postgres %s: out of memory", shown);
        if (PQstatus(c) == CONNECTION_OK) {
            if (attempt > 1) VD_INFO("postgres %s: connected after %d attempts", shown, attempt);
            *out = c;
            return VD_OK;
        }
        one_line(PQerrorMessage(c), why, sizeof why);
        PQfinish(c);
        vd_status st = classify_connect(why);
        if (st != VD_OK) return vd_error_set(err, st, "postgres %s: %s", shown, why);
        int64_t waited = vd_mono_ms() - start;
        if (waited + backoff > wait_ms)
            return vd_error_set(err, VD_ERR_CONN,
                                "postgres %s: not reachable after %d attempt(s): %s", shown,
                                attempt, why);
        VD_WARN("postgres %s: not reachable (%s); retrying in %lld ms", shown, why,
                (long long)backoff);
        vd_sleep_ms(backoff);
        backoff = backoff * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : backoff * 2;
    }
}

vd_status vd_pg_status(PGconn *c, const PGresult *r, const char *what, vd_error *err)
{
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) return VD_OK;
    char why[400];
    one_line(r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(c), why,
             sizeof why);
    if (!what) what = "postgres";
    if (!c || PQstatus(c) != CONNECTION_OK)
        return vd_error_set(err, VD_ERR_CONN, "%s: connection lost: %s", what, why);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    vd_status st = VD_ERR_DB;
    if (state && strncmp(state, "53", 2) == 0)
        st = VD_ERR_NOSPACE;
    else if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01")))
        st = VD_ERR_BUSY;
    else if (state && (!strcmp(state, "23505") || !strcmp(state, "23503")))
        st = VD_ERR_STATE;
    else if (state && strncmp(state, "08", 2) == 0)
        st = VD_ERR_CONN;
    else if (state &&
             (!strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03")))
        st = VD_ERR_CONN; /* admin shutdown, crash shutdown, cannot connect now */
    return vd_error_set(err, st, "%s: %s", what, why);
}

vd_status vd_pg_exec(PGconn *c, const char *sql, const char *what, vd_error *err)
{
    PGresult *r = PQexec(c, sql);
    vd_status st = vd_pg_status(c, r, what, err);
    PQclear(r);
    return st;
}

static vd_status lock_call(PGconn *c, const char *fn, int64_t key, vd_error *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT %s(%lld)", fn, (long long)key);
    return vd_pg_exec(c, sql, fn, err);
}

vd_status vd_pg_lock(PGconn *c, int64_t key, vd_error *err)
{
    return lock_call(c, "pg_advisory_lock", key, err);
}

vd_status vd_pg_unlock(PGconn *c, int64_t key, vd_error *err)
{
    return lock_call(c, "pg_advisory_unlock", key, err);
}
