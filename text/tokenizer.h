/* tokenizer.h — a Hugging Face `tokenizer.json` BPE tokenizer, encoding and decoding exactly as the
 * `tokenizers` library does for the configurations listed below: SentencePiece-style ones
 * (LlamaTokenizerFast: byte fallback, "▁" for spaces, docs/numerics.md §8; Yi's, without the
 * dummy prefix) and byte-level ones (GPT-2 / Llama-3: bytes mapped to characters, the Llama-3
 * split).
 *
 * What tok_load accepts (anything else is refused with HIRED_EUNSUPPORTED naming the field):
 *   model          BPE: vocab, merges ("a b" strings or [a, b] pairs; index = rank), unk_token,
 *                  byte_fallback, fuse_unk, ignore_merges; no dropout, no continuing_subword_prefix,
 *                  no end_of_word_suffix.
 *   normalizer     null, or Prepend / Replace (string pattern) steps, possibly inside Sequence.
 *   pre_tokenizer  null; Metaspace (replacement, prepend_scheme always|first|never, split);
 *                  ByteLevel (add_prefix_space, use_regex = the GPT-2 split); Split with the
 *                  Llama-3 or GPT-2 regex (behavior Isolated, invert false), optionally followed
 *                  by ByteLevel without use_regex (Llama-3) — in a Sequence or alone.
 *   post_processor null, ByteLevel (offsets only), TemplateProcessing whose "single" is special
 *                  tokens around $A, or a Sequence of ByteLevel and one TemplateProcessing.
 *   decoder        ByteLevel alone (characters back to bytes, then UTF-8 with each maximal
 *                  invalid sequence as one U+FFFD, Rust's from_utf8_lossy); or per-token Replace
 *                  (string pattern) / Strip (stop 0) / Metaspace steps, then optionally
 *                  ByteFallback, then optionally Fuse followed by at most one Strip (stop 0).
 *                  That covers every legacy and non-legacy Llama/Mistral/Yi conversion.
 *   added_tokens   special or not, normalized or not, lstrip/rstrip; single_word is refused.
 *                  Ids must be those `tokenizers` assigns (vocab ids for contents already in the
 *                  vocab, then consecutive ids from the vocab size in file order).
 * Only tokenizer.json is read: tokenizer_config.json overrides (add_eos_token, ...) are not applied.
 *
 * Encoding: text is split on added-token strings (leftmost-longest), each remaining non-empty
 * segment is normalised on its own, pre-tokenised (Metaspace, or the byte-level split and byte
 * mapping of tokenizer_bytelevel.c), and BPE-merged with a rank heap (ignore_merges: a word in
 * the vocab is one token); then the post-processor's ids (BOS) are added. Decoding runs the decoder steps; the stream decoder below is
 * the same state machine, so streamed text concatenates to exactly the final decode.
 *
 * A loaded tok_t is immutable: any number of threads may encode/decode with it concurrently.
 * Not here: chat templates and the <image> position (template.h), generation stop logic. */
#ifndef HIRED_TOKENIZER_H
#define HIRED_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tok tok_t;
typedef struct tok_stream tok_stream_t;

/* Loads MODEL_DIR/tokenizer.json. Returns NULL with err (HIRED_ERR_LEN bytes) filled on any
 * failure: missing file (the message names the path), malformed JSON, inconsistent vocab or
 * merges, unsupported configuration, out of memory. Caller owns the result (tok_destroy). */
tok_t *tok_load(const char *model_dir, char *err);

/* Same, from the path of a tokenizer.json file. Caller owns the result (tok_destroy). */
tok_t *tok_load_file(const char *path, char *err);

/* Frees *p (NULL-safe) and sets *p = NULL. Streams made from it must be destroyed first. */
void tok_destroy(tok_t **p);

/* Encodes NUL-terminated UTF-8 `text`. add_bos applies the post-processor (for Llama: prepend BOS),
 * like HF's add_special_tokens=True. On success *ids (caller owns, mem_free; non-NULL even when
 * *n == 0) holds *n ids. Errors: HIRED_EINVAL (text not valid UTF-8, message gives the byte
 * offset), HIRED_ERANGE (text longer than INT_MAX/8 bytes), HIRED_ENOMEM; *ids = NULL then. */
int tok_encode(const tok_t *tok, const char *text, bool add_bos, int32_t **ids, int *n, char *err);

/* Same for len bytes of text, which may contain NUL characters. Caller owns *ids (mem_free). */
int tok_encode_n(const tok_t *tok, const char *text, size_t len, bool add_bos, int32_t **ids, int *n, char *err);

/* Decodes n ids like HF `decode(ids, skip_special_tokens=skip_special)` (clean-up of spaces off).
 * Ids that name no token are skipped, as HF does. Returns a NUL-terminated UTF-8 string the caller
 * owns (mem_free), or NULL when out of memory. */
char *tok_decode(const tok_t *tok, const int32_t *ids, int n, bool skip_special);

/* Same; also stores the length in bytes in *len (the text may contain NUL characters from <0x00>).
 * Caller owns the result (mem_free); NULL when out of memory. */
char *tok_decode_n(const tok_t *tok, const int32_t *ids, int n, bool skip_special, size_t *len);

/* Id of the token whose string is `piece` ("<image>", "▁the", "<0x0A>"): added tokens first, then
 * the model vocab, as HF token_to_id. -1 if none. */
int32_t tok_id(const tok_t *tok, const char *piece);

/* String of token `id` (added-token content or vocab piece), borrowed from tok and valid until
 * tok_destroy; NULL if no token has that id. */
const char *tok_piece(const tok_t *tok, int32_t id);

/* True when `id` is dropped by skip_special decoding (an added token marked special). */
bool tok_is_special(const tok_t *tok, int32_t id);

/* The first id the post-processor puts before the text (Llama: <s> = 1), else the id of "<s>",
 * else -1. */
int32_t tok_bos(const tok_t *tok);

/* Id of "</s>" (the end-of-sequence piece of Llama/Mistral vocabularies) or -1. Generation should
 * take its stop ids from generation_config.json; this is the fallback. */
int32_t tok_eos(const tok_t *tok);

/* Number of ids: 1 + the largest vocab or added-token id (32002 for llava-next). */
int tok_vocab_size(const tok_t *tok);

// ---- streaming decode ---------------------------------------------------------------------------

/* An incremental decoder: feed ids one at a time and get the text they complete. Concatenating
 * every feed's result and the finish result gives exactly tok_decode_n of all the ids (same
 * skip_special). Byte-fallback runs are held back until a non-byte token (or finish) decides
 * whether they form valid UTF-8, because HF turns a whole invalid run into U+FFFD per byte; the
 * leading-space strip is applied to the first text produced. Caller owns the result
 * (tok_stream_destroy); tok is borrowed and must outlive the stream. NULL when out of memory. */
tok_stream_t *tok_stream_new(const tok_t *tok, bool skip_special);

/* Feeds one id. Returns the newly completed text (possibly ""), *len its length in bytes (len may
 * be NULL). The result is borrowed from the stream and valid until the next call on it. NULL when
 * out of memory; the stream must then only be destroyed. */
const char *tok_stream_feed(tok_stream_t *st, int32_t id, size_t *len);

/* Ends the sequence: returns the held-back remainder (borrowed as for feed; NULL on OOM). The
 * stream is then reset and may be reused for a new sequence. */
const char *tok_stream_finish(tok_stream_t *st, size_t *len);

/* Frees *p (NULL-safe) and sets *p = NULL. */
void tok_stream_destroy(tok_stream_t **p);

#endif
