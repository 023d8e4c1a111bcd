/* config.h: the settings of `visiond up`, from defaults, a config file,
 * environment variables and flags (later sources win, in that order).
 *
 * Every setting has a key ("workers"), an environment variable
 * (VISIOND_WORKERS) and a default. The config file holds `key = value`
 * lines; '#' starts a comment. Unknown keys and bad values are errors that
 * name the file and line. docs/configuration.md lists every key. */
#ifndef VD_CONFIG_H
#define VD_CONFIG_H

#include <stdio.h>

#include "core/err.h"

typedef enum {
    VD_CFG_DATA = 0,      /* data directory */
    VD_CFG_LISTEN,        /* api address */
    VD_CFG_WORKERS,       /* worker supervisors */
    VD_CFG_CONCURRENCY,   /* work-horses per supervisor */
    VD_CFG_QUEUE,         /* queue url ("" = sqlite under data) */
    VD_CFG_STORE,         /* store url ("" = DATA/store.db) */
    VD_CFG_MODELS,        /* models directory ("" = DATA/models) */
    VD_CFG_MEDIA_ROOTS,   /* colon-separated directories */
    VD_CFG_TOKEN_FILE,    /* api bearer token file ("" = none) */
    VD_CFG_MODEL_THREADS, /* ONNX Runtime intra-op threads (0 = all cores) */
    VD_CFG_PRELOAD,       /* comma-separated models loaded at start */
    VD_CFG_LOG_LEVEL,     /* debug|info|warn|error */
    VD_CFG_LOG_FORMAT,    /* text|json */
    VD_CFG_RESTART_MAX,   /* longest restart backoff, seconds */
    VD_CFG_STOP_GRACE,    /* seconds children get to stop on SIGTERM */
    /* several hosts (docs/deploy.md) */
    VD_CFG_ROLE,              /* ','-separated: api, worker, model-server */
    VD_CFG_MODEL_SERVER,      /* model-server address(es) ("" = this host's socket) */
    VD_CFG_MODEL_LISTEN,      /* model server's TCP HOST:PORT ("" = unix socket only) */
    VD_CFG_MODEL_SECRET_FILE, /* the model servers' shared secret ("" = none) */
    /* the photo library (docs/library.md) */
    VD_CFG_LIBRARY_MODEL,      /* image model of the index job */
    VD_CFG_LIBRARY_FACE_MODEL, /* face embedding model of the index job ("" = no faces) */
    VD_CFG_IMMICH_ML,          /* 1: Immich's /ping and /predict need no token */
    VD_CFG_IMMICH_MODELS,      /* Immich model names: NAME:TYPE=MODEL,... ("" = none) */
    VD_CFG__COUNT
} vd_cfg_key;

typedef enum {
    VD_CFG_FROM_DEFAULT = 0,
    VD_CFG_FROM_FILE,
    VD_CFG_FROM_ENV,
    VD_CFG_FROM_FLAG
} vd_cfg_source;

typedef struct {
    char value[VD_CFG__COUNT][1024];
    vd_cfg_source source[VD_CFG__COUNT];
} vd_config;

/* The roles of a host (key role): which processes `visiond up` runs. */
enum { VD_ROLE_API = 1, VD_ROLE_WORKER = 2, VD_ROLE_MODEL_SERVER = 4 };

/* Parses a role list ("api,worker,model-server", in any order, each once at
 * most) into *mask. VD_ERR_INVALID naming the bad word. */
vd_status vd_config_roles(const char *text, unsigned *mask, vd_error *err);

/* Fills *cfg with every key's default. */
void vd_config_defaults(vd_config *cfg);

/* Returns the key's default value (the one home of each default), or NULL
 * for an unknown key. */
const char *vd_config_default(vd_cfg_key k);

/* Returns the key's name ("media_roots"), or NULL for an unknown key. */
const char *vd_config_key_name(vd_cfg_key k);

/* Finds a key by name; returns -1 when unknown. */
int vd_config_key_find(const char *name);

/* Sets one key from a source after checking its value (numbers in range, a
 * known log level). VD_ERR_INVALID with a message naming the key. */
vd_status vd_config_set(vd_config *cfg, vd_cfg_key k, const char *value, vd_cfg_source src,
                        vd_error *err);

/* Reads a config file over *cfg. VD_ERR_NOT_FOUND when missing,
 * VD_ERR_INVALID naming path:line for a bad line. */
vd_status vd_config_load_file(vd_config *cfg, const char *path, vd_error *err);

/* Applies VISIOND_<KEY> environment variables over *cfg. */
vd_status vd_config_load_env(vd_config *cfg, vd_error *err);

/* Returns a key's value as an integer (keys checked numeric at set time). */
long vd_config_int(const vd_config *cfg, vd_cfg_key k);

/* Writes every key as `key = value  # from <source>` lines: a valid config file. */
void vd_config_print(const vd_config *cfg, FILE *out);

#endif
