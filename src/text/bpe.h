/* bpe.h: CLIP's byte-level BPE tokenizer, read from a Hugging Face
 * tokenizer.json (the file OpenCLIP exports and Immich's model folders hold).
 *
 * What encoding does, in order (the pipeline tokenizer.json describes for
 * CLIP; anything else in the file is refused as VD_ERR_UNSUPPORTED, naming
 * the part):
 *   1. normalise: Unicode NFC, every run of white space (the Unicode
 *      White_Space property) to one space, lower case (per character, full
 *      mapping: "İ" becomes "i̇", and no final-sigma rule);
 *   2. the added tokens ("<|startoftext|>", "<|endoftext|>") become their ids
 *      wherever they appear in the normalised text;
 *   3. split the rest with CLIP's pattern: the contractions 's 't 're 've 'm
 *      'll 'd, runs of letters (\p{L}), single numbers (\p{N}), runs of what
 *      is neither a letter, a number nor white space; white space is dropped;
 *   4. each piece's UTF-8 bytes map to GPT-2's printable byte alphabet; the
 *      last symbol gets the end-of-word suffix ("</w>"); pairs are merged by
 *      rank (lowest first, every occurrence left to right) until no pair of
 *      the merge list is left; each symbol becomes its vocabulary id (the
 *      unknown token's id when absent);
 *   5. the result is truncated to context_length - 2 ids, framed with the
 *      start and end tokens, and padded to context_length with pad_id.
 * The original CLIP tokenizer also runs ftfy and HTML unescaping before 1;
 * tokenizer.json does not, and neither does this.
 *
 * Cost: loading CLIP's file (49,408 tokens, 48,894 merges, ~2 MB of JSON)
 * builds two hash tables, a few MB; encoding is linear in the text with a
 * quadratic BPE per word (words are short). A vd_bpe is read-only after
 * loading: share it between threads freely. */
#ifndef VD_BPE_H
#define VD_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct vd_bpe vd_bpe;

/* Longest text vd_bpe_encode takes, in bytes; longer is VD_ERR_LIMIT. */
#define VD_BPE_TEXT_MAX (64 * 1024)

/* Loads the tokenizer.json at path. *out is owned by the caller
 * (vd_bpe_free). VD_ERR_IO when the file cannot be read, VD_ERR_INVALID
 * when it is not a tokenizer file (bad JSON, a missing vocabulary, a merge
 * of unknown tokens), VD_ERR_UNSUPPORTED for a pipeline other than CLIP's;
 * every message names the file. */
vd_status vd_bpe_load(const char *path, vd_bpe **out, vd_error *err);

/* The same from the file's bytes; name is used in messages. */
vd_status vd_bpe_load_buffer(const char *json, size_t len, const char *name, vd_bpe **out,
                             vd_error *err);

void vd_bpe_free(vd_bpe *b);

/* Returns the id of token (exact vocabulary entry, e.g. "<|endoftext|>" or
 * "dog</w>"), or -1 when the vocabulary has none. */
int32_t vd_bpe_token_id(const vd_bpe *b, const char *token);

/* The ids framing every text. */
int32_t vd_bpe_start_id(const vd_bpe *b);
int32_t vd_bpe_end_id(const vd_bpe *b);

/* Encodes len bytes of UTF-8 text into ids[0..context_length): start id,
 * the text's tokens (at most context_length - 2: the rest is cut, as the
 * reference tokenizers do), end id, then pad_id up to context_length.
 * *n_used (may be NULL) gets the count before padding, *truncated (may be
 * NULL) 1 when tokens were cut. VD_ERR_INVALID for text that is not UTF-8
 * or context_length < 2; VD_ERR_LIMIT for text over VD_BPE_TEXT_MAX. */
vd_status vd_bpe_encode(const vd_bpe *b, const char *text, size_t len, size_t context_length,
                        int32_t pad_id, int32_t *ids, size_t *n_used, int *truncated,
                        vd_error *err);

#endif
