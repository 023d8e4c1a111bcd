/* queue_lua.h: the Redis backend's Lua scripts, embedded in the binary.
 *
 * The scripts live as Lua in src/queue/lua/NAME.lua; the build (cmake/embed_lua.cmake, run by
 * CMakeLists.txt) turns them into a constant table in a generated source under the build
 * directory. queue_redis_conn.c prepends prelude.lua to each of the others and loads them
 * into Redis (docs/queue-redis.md). The table is sorted by name, immutable and shared by
 * every thread. */
#ifndef VD_QUEUE_LUA_H
#define VD_QUEUE_LUA_H

#include <stddef.h>

typedef struct {
    const char *name; /* the file name without ".lua", e.g. "enqueue" */
    const char *src;  /* len bytes, then a NUL */
    size_t len;
} vd_lua_script;

/* Returns the table (borrowed, static) and sets *n to its length. */
const vd_lua_script *vd_queue_lua_scripts(size_t *n);

#endif
