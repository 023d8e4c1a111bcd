/* config.c: the settings table, file and environment parsing. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/pg.h"
#include "core/util.h"

static const struct {
    const char *name;
    const char *def;
    long min, max; /* numeric keys: min <= max; others: min > max */
} keys[VD_CFG__COUNT] = {
    [VD_CFG_DATA] = {"data", "./data", 1, 0},
    [VD_CFG_LISTEN] = {"listen", "127.0.0.1:8080", 1, 0},
    [VD_CFG_WORKERS] = {"workers", "1", 0, 64},
    [VD_CFG_CONCURRENCY] = {"concurrency", "2", 1, 256},
    [VD_CFG_QUEUE] = {"queue", "", 1, 0},
    [VD_CFG_STORE] = {"store", "", 1, 0},
    [VD_CFG_MODELS] = {"models", "", 1, 0},
    [VD_CFG_MEDIA_ROOTS] = {"media_roots", "", 1, 0},
    [VD_CFG_TOKEN_FILE] = {"token_file", "", 1, 0},
    [VD_CFG_MODEL_THREADS] = {"model_threads", "0", 0, 1024},
    [VD_CFG_PRELOAD] = {"preload", "", 1, 0},
    [VD_CFG_LOG_LEVEL] = {"log_level", "info", 1, 0},
    [VD_CFG_LOG_FORMAT] = {"log_format", "text", 1, 0},
    [VD_CFG_RESTART_MAX] = {"restart_max", "30", 1, 3600},
    [VD_CFG_STOP_GRACE] = {"stop_grace", "15", 1, 3600},
    [VD_CFG_ROLE] = {"role", "api,worker,model-server", 1, 0},
    [VD_CFG_MODEL_SERVER] = {"model_server", "", 1, 0},
    [VD_CFG_MODEL_LISTEN] = {"model_listen", "", 1, 0},
    [VD_CFG_MODEL_SECRET_FILE] = {"model_secret_file", "", 1, 0},
    [VD_CFG_LIBRARY_MODEL] = {"library_model", "mobilenet_v2", 1, 0},
    [VD_CFG_LIBRARY_FACE_MODEL] = {"library_face_model", "faceres", 1, 0},
    [VD_CFG_IMMICH_ML] = {"immich_ml", "0", 0, 1},
    [VD_CFG_IMMICH_MODELS] = {"immich_models", "", 1, 0},
};

static const char *source_names[] = {"default", "file", "env", "flag"};

vd_status vd_config_roles(const char *text, unsigned *mask, vd_error *err)
{
    static const struct {
        const char *name;
        unsigned bit;
    } roles[] = {
        {"api", VD_ROLE_API}, {"worker", VD_ROLE_WORKER}, {"model-server", VD_ROLE_MODEL_SERVER}};
    *mask = 0;
    const char *p = text;
    for (;;) {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
            if (strlen(roles[i].name) == n && strncmp(p, roles[i].name, n) == 0) bit = roles[i].bit;
        if (!bit || (*mask & bit))
            return vd_error_set(err, VD_ERR_INVALID,
                                "role: '%.*s' is %s (a ','-separated list of api, worker, "
                                "model-server)",
                                (int)n, p, bit ? "given twice" : "not a role");
        *mask |= bit;
        if (!p[n]) return VD_OK;
        p += n + 1;
    }
}

void vd_config_defaults(vd_config *cfg)
{
    for (int k = 0; k < VD_CFG__COUNT; k++) {
        vd_strlcpy(cfg->value[k], keys[k].def, sizeof cfg->value[k]);
        cfg->source[k] = VD_CFG_FROM_DEFAULT;
    }
}

const char *vd_config_default(vd_cfg_key k)
{
    return (unsigned)k < VD_CFG__COUNT ? keys[k].def : NULL;
}

const char *vd_config_key_name(vd_cfg_key k)
{
    return (unsigned)k < VD_CFG__COUNT ? keys[k].name : NULL;
}

int vd_config_key_find(const char *name)
{
    for (int k = 0; k < VD_CFG__COUNT; k++)
        if (strcmp(name, keys[k].name) == 0) return k;
    return -1;
}

vd_status vd_config_set(vd_config *cfg, vd_cfg_key k, const char *value, vd_cfg_source src,
                        vd_error *err)
{
    if ((unsigned)k >= VD_CFG__COUNT) return vd_error_set(err, VD_ERR_INVALID, "unknown key");
    if (strlen(value) >= sizeof cfg->value[k])
        return vd_error_set(err, VD_ERR_INVALID, "%s: value too long", keys[k].name);
    if (keys[k].min <= keys[k].max) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < keys[k].min || v > keys[k].max)
            return vd_error_set(err, VD_ERR_INVALID, "%s: '%s' is not a number in %ld..%ld",
                                keys[k].name, value, keys[k].min, keys[k].max);
    }
    if (k == VD_CFG_LOG_LEVEL && vd_log_level_parse(value) < 0)
        return vd_error_set(err, VD_ERR_INVALID,
                            "log_level: '%s' is not debug, info, warn or error", value);
    if (k == VD_CFG_LOG_FORMAT && vd_log_format_parse(value) < 0)
        return vd_error_set(err, VD_ERR_INVALID, "log_format: '%s' is not text or json", value);
    unsigned roles;
    if (k == VD_CFG_ROLE && *value && vd_config_roles(value, &roles, err) != VD_OK)
        return VD_ERR_INVALID;
    if ((k == VD_CFG_DATA || k == VD_CFG_LISTEN || k == VD_CFG_ROLE || k == VD_CFG_LIBRARY_MODEL) &&
        !*value)
        return vd_error_set(err, VD_ERR_INVALID, "%s: must not be empty", keys[k].name);
    vd_strlcpy(cfg->value[k], value, sizeof cfg->value[k]);
    cfg->source[k] = src;
    return VD_OK;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

vd_status vd_config_load_file(vd_config *cfg, const char *path, vd_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vd_error_set(err, errno == ENOENT ? VD_ERR_NOT_FOUND : VD_ERR_IO, "%s: %s", path,
                            strerror(errno));
    char line[2048];
    int lineno = 0;
    vd_status rc = VD_OK;
    while (rc == VD_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = vd_error_set(err, VD_ERR_INVALID, "%s:%d: expected 'key = value'", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        int k = vd_config_key_find(key);
        if (k < 0) {
            rc = vd_error_set(err, VD_ERR_INVALID, "%s:%d: unknown key '%s'", path, lineno, key);
            break;
        }
        vd_error e2;
        if (vd_config_set(cfg, (vd_cfg_key)k, val, VD_CFG_FROM_FILE, &e2) != VD_OK)
            rc = vd_error_set(err, VD_ERR_INVALID, "%s:%d: %s", path, lineno, e2.msg);
    }
    fclose(f);
    return rc;
}

vd_status vd_config_load_env(vd_config *cfg, vd_error *err)
{
    for (int k = 0; k < VD_CFG__COUNT; k++) {
        char var[64] = "VISIOND_";
        size_t n = strlen(var);
        for (const char *p = keys[k].name; *p && n < sizeof var - 1; p++)
            var[n++] = (char)toupper((unsigned char)*p);
        var[n] = '\0';
        const char *v = getenv(var);
        if (!v || !*v) continue;
        vd_error e2;
        if (vd_config_set(cfg, (vd_cfg_key)k, v, VD_CFG_FROM_ENV, &e2) != VD_OK)
            return vd_error_set(err, VD_ERR_INVALID, "%s: %s", var, e2.msg);
    }
    return VD_OK;
}

long vd_config_int(const vd_config *cfg, vd_cfg_key k)
{
    return strtol(cfg->value[k], NULL, 10);
}

void vd_config_print(const vd_config *cfg, FILE *out)
{
    for (int k = 0; k < VD_CFG__COUNT; k++) {
        char shown[1024]; /* a store URL's password is never printed */
        const char *v =
            k == VD_CFG_STORE ? vd_pg_url_shown(cfg->value[k], shown, sizeof shown) : cfg->value[k];
        fprintf(out, "%-14s = %-30s # from %s\n", keys[k].name, v, source_names[cfg->source[k]]);
    }
}
