/* bpe_impl.h: the private state of a vd_bpe, shared by bpe_load.c (reading
 * tokenizer.json) and bpe.c (encoding). Not part of the module's contract. */
#ifndef VD_BPE_IMPL_H
#define VD_BPE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "text/bpe.h"

/* A string -> int32 hash table with open addressing (linear probing); keys
 * are owned copies. Load factor <= 1/2. */
typedef struct {
    char *key; /* NULL: empty slot */
    uint32_t len;
    int32_t val;
} bpe_slot;

typedef struct {
    bpe_slot *slots;
    size_t cap; /* a power of two */
    size_t n;
} bpe_map;

int bpe_map_init(bpe_map *m, size_t expected);
void bpe_map_free(bpe_map *m);
/* Inserts (key, val); an existing key keeps its first value. 0 or -1 (OOM). */
int bpe_map_put(bpe_map *m, const char *key, size_t len, int32_t val);
/* Returns the value of key, or -1 when absent. */
int32_t bpe_map_get(const bpe_map *m, const char *key, size_t len);

typedef struct {
    char *content;
    size_t len;
    int32_t id;
} bpe_added;

struct vd_bpe {
    bpe_map vocab;   /* token -> id */
    bpe_map merges;  /* "LEFT RIGHT" -> rank (0 merges first) */
    char suffix[16]; /* end-of-word suffix, "</w>" for CLIP */
    size_t suffix_len;
    int32_t unk_id; /* -1: none (a symbol outside the vocabulary is dropped) */
    int32_t start_id, end_id;
    bpe_added *added; /* sorted longest first */
    size_t n_added;
    char byte_sym[256][3]; /* GPT-2's printable alphabet: byte -> UTF-8 (1-2 bytes + NUL) */
};

/* Fills b->byte_sym. */
void bpe_byte_alphabet(vd_bpe *b);

#endif
