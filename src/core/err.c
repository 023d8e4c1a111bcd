/* err.c: status names, messages and the vd_error helpers. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *text;
} status_info[VD_ERR__COUNT] = {
    [VD_OK] = {"ok", "success"},
    [VD_ERR_NOMEM] = {"out_of_memory", "out of memory"},
    [VD_ERR_INVALID] = {"invalid", "invalid argument or input"},
    [VD_ERR_NOT_FOUND] = {"not_found", "no such object"},
    [VD_ERR_STATE] = {"wrong_state", "not allowed in the current state"},
    [VD_ERR_IO] = {"io", "input/output error"},
    [VD_ERR_DB] = {"store", "store error"},
    [VD_ERR_CONN] = {"unavailable", "could not connect"},
    [VD_ERR_BUSY] = {"busy", "busy, try again later"},
    [VD_ERR_TIMEOUT] = {"timeout", "deadline exceeded"},
    [VD_ERR_PROTOCOL] = {"protocol", "protocol error"},
    [VD_ERR_UNSUPPORTED] = {"unsupported", "not supported"},
    [VD_ERR_IMAGE] = {"bad_image", "image could not be decoded"},
    [VD_ERR_LIMIT] = {"too_large", "limit exceeded"},
    [VD_ERR_MODEL] = {"model", "inference failed"},
    [VD_ERR_LEASE_LOST] = {"lease_lost", "lease lost"},
    [VD_ERR_CANCELED] = {"canceled", "canceled"},
    [VD_ERR_EMPTY] = {"empty", "nothing available"},
    [VD_ERR_AUTH] = {"unauthorized", "missing or wrong credentials"},
    [VD_ERR_INTERNAL] = {"internal", "internal error"},
    [VD_ERR_NOSPACE] = {"storage_full", "no space left for the store"},
};

const char *vd_status_name(vd_status s)
{
    if ((unsigned)s >= VD_ERR__COUNT || !status_info[s].name) return "unknown";
    return status_info[s].name;
}

const char *vd_strerror(vd_status s)
{
    if ((unsigned)s >= VD_ERR__COUNT || !status_info[s].text) return "unknown error";
    return status_info[s].text;
}

vd_status vd_error_set(vd_error *err, vd_status code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void vd_error_clear(vd_error *err)
{
    if (!err) return;
    err->code = VD_OK;
    err->msg[0] = '\0';
}

const char *vd_error_text(const vd_error *err)
{
    if (!err) return "";
    return err->msg[0] ? err->msg : vd_strerror(err->code);
}
