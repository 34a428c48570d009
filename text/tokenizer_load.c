/* tokenizer_load.c — see tokenizer.h. Owns: a tok_t's lifetime — tok_load/tok_load_file read
 * tokenizer.json (cJSON) into the flat tables of tokenizer_impl.h, tok_destroy frees them.
 *
 * Invariants: every field tokenizers would read is either implemented or refused with
 * HIRED_EUNSUPPORTED naming the field, never approximated; ids, merges and added tokens are checked
 * against the vocab so the encoder can trust the tables without re-checking. A 32k vocab with 60k
 * merges loads in about 50 ms, most of it the JSON parse. Every allocation goes through mem.h.
 * Not here: encoding, decoding and lookups on a loaded tok_t (tokenizer.c); the table layout
 * (tokenizer_impl.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "tokenizer_impl.h"

#define TOK_MAX_JSON_BYTES ((size_t)256 << 20) /* a 256k-piece vocab is ~20 MB of JSON */
#define TOK_MAX_IDS (1 << 24)

void tok_destroy(tok_t **p) {
    if (!p || !*p) return;
    tok_t *t = *p;
    mem_free(t->arena.p);
    mem_free(t->piece);
    mem_free(t->flags);
    mem_free(t->vocab_hash);
    mem_free(t->merges);
    mem_free(t->added);
    for (int i = 0; i < 2; i++) mem_free(t->set[i].idx);
    mem_free(t->norm);
    mem_free(t->pp_ids);
    mem_free(t->dec);
    mem_free(t);
    *p = NULL;
}

// ---- loading ----------------------------------------------------------------------------------------
/* Order matters: the vocab first (everything else looks pieces up), then merges and the model
 * options, the normaliser (added tokens with normalized=true are matched in normalised form), the
 * added tokens, and the rest. Each parser fills err naming the file and the field; anything
 * tokenizers would do that is not implemented here is refused (HIRED_EUNSUPPORTED), never
 * approximated. */

/* Loader context: `path` names the file in messages. */
typedef struct {
    tok_t *t;
    const char *path;
    char *err;
    buf_t tmp, tmp2;
} load_t;

static int oom(load_t *L) {
    return hired_errf(L->err, HIRED_ENOMEM, "%s: out of memory loading the tokenizer", L->path);
}

/* Copies n bytes of s into the arena (NUL-terminated there). */
static bool arena_add(tok_t *t, const char *s, size_t n, span_t *out) {
    if (t->arena.n > UINT32_MAX - n - 1 || n > UINT32_MAX) return false;
    out->off = (uint32_t)t->arena.n;
    out->len = (uint32_t)n;
    return tok_buf_put(&t->arena, s, n) && tok_buf_put(&t->arena, "", 1);
}

/* A string member (required); *out borrowed from the JSON. */
static int get_str(load_t *L, const cJSON *obj, const char *key, const char *where, const char **out) {
    *out = NULL; /* set on every path, so callers' locals are never read uninitialised */
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(it) || !it->valuestring)
        return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.%s must be a string", L->path, where, key);
    *out = it->valuestring;
    return HIRED_OK;
}

/* A member holding exactly one character (Strip content, Metaspace replacement). */
static int get_char(load_t *L, const cJSON *obj, const char *key, const char *where, span_t *out) {
    const char *s;
    int rc = get_str(L, obj, key, where, &s);
    if (rc) return rc;
    uint32_t cp;
    size_t n = strlen(s);
    if (!n || tok_utf8_len((const unsigned char *)s, n, &cp) != n)
        return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.%s must be a single character", L->path, where, key);
    return arena_add(L->t, s, n, out) ? HIRED_OK : oom(L);
}

static int get_bool(load_t *L, const cJSON *obj, const char *key, const char *where, bool def, bool *out) {
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s.", where);
    json_where_t w = {L->path, prefix, L->err};
    return json_opt_bool(&w, obj, key, def, out);
}

/* Replace's {"String": s} pattern (Regex patterns are refused). */
static int get_pattern(load_t *L, const cJSON *obj, const char *where, span_t *out) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "String");
    if (cJSON_GetObjectItemCaseSensitive(p, "Regex"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: %s: Replace with a Regex pattern is not supported", L->path,
                          where);
    if (!cJSON_IsString(s) || !s->valuestring || !s->valuestring[0])
        return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.pattern must be {\"String\": non-empty string}", L->path,
                          where);
    return arena_add(L->t, s->valuestring, strlen(s->valuestring), out) ? HIRED_OK : oom(L);
}

/* obj["type"] as a string, "" when absent or not a string (messages then show an empty type). */
static const char *type_of(const cJSON *obj) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(ty) && ty->valuestring ? ty->valuestring : "";
}

/* Metaspace fields shared by the pre-tokenizer and the decoder, with tokenizers' defaults and its
 * legacy form: prepend_scheme defaults to "always", add_prefix_space=false means "never" (and
 * contradicts any other explicit scheme), split defaults to true. */
static int parse_metaspace(load_t *L, const cJSON *obj, const char *where, span_t *repl, int *scheme, bool *split) {
    int rc = get_char(L, obj, "replacement", where, repl);
    if (rc) return rc;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(obj, "prepend_scheme");
    *scheme = META_ALWAYS;
    if (ps) {
        const char *v = cJSON_IsString(ps) ? ps->valuestring : NULL;
        if (v && !strcmp(v, "always"))
            *scheme = META_ALWAYS;
        else if (v && !strcmp(v, "first"))
            *scheme = META_FIRST;
        else if (v && !strcmp(v, "never"))
            *scheme = META_NEVER;
        else
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.prepend_scheme must be always, first or never", L->path,
                              where);
    }
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(obj, "add_prefix_space");
    if (cJSON_IsFalse(aps)) {
        if (*scheme != META_NEVER && ps)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s: add_prefix_space false contradicts prepend_scheme",
                              L->path, where);
        *scheme = META_NEVER;
    }
    return get_bool(L, obj, "split", where, true, split);
}

// The normalizer: null, Prepend, Replace, or a (nested) Sequence of them.
static int parse_normalizer(load_t *L, const cJSON *n, int depth) {
    tok_t *t = L->t;
    if (!n || cJSON_IsNull(n)) return HIRED_OK;
    const char *ty = type_of(n);
    if (!strcmp(ty, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
        if (!cJSON_IsArray(list))
            return hired_errf(L->err, HIRED_EFORMAT, "%s: normalizer.normalizers must be an array", L->path);
        cJSON_ArrayForEach(it, list) {
            int rc = parse_normalizer(L, it, depth + 1);
            if (rc) return rc;
        }
        return HIRED_OK;
    }
    norm_step_t st = {0};
    int rc;
    if (!strcmp(ty, "Prepend")) {
        const char *s;
        st.kind = NORM_PREPEND;
        if ((rc = get_str(L, n, "prepend", "normalizer", &s))) return rc;
        if (!arena_add(t, s, strlen(s), &st.a)) return oom(L);
    } else if (!strcmp(ty, "Replace")) {
        const char *s;
        st.kind = NORM_REPLACE;
        if ((rc = get_pattern(L, n, "normalizer", &st.a)) || (rc = get_str(L, n, "content", "normalizer", &s)))
            return rc;
        if (!arena_add(t, s, strlen(s), &st.b)) return oom(L);
    } else {
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: normalizer type \"%s\" is not supported (only Prepend, Replace, Sequence)", L->path, ty);
    }
    norm_step_t *p = mem_realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *p);
    if (!p) return oom(L);
    t->norm = p;
    t->norm[t->n_norm++] = st;
    return HIRED_OK;
}

/* The two Split regexes the byte-level pre-tokenizer is used with (tokenizer_bytelevel.c). */
static const char k_llama3_regex[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char k_gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Split {pattern: {Regex: one of the two}, behavior: Isolated, invert: false}. */
static int parse_split(load_t *L, const cJSON *p) {
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "pattern"), "Regex");
    const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
    if (!cJSON_IsString(re))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: pre_tokenizer Split needs a {\"Regex\": ...} pattern",
                          L->path);
    if (!strcmp(re->valuestring, k_llama3_regex)) L->t->split = TOK_SPLIT_LLAMA3;
    else if (!strcmp(re->valuestring, k_gpt2_regex)) L->t->split = TOK_SPLIT_GPT2;
    else
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: pre_tokenizer Split regex \"%.80s\" is not supported (only the Llama-3 and GPT-2 "
                          "patterns)", L->path, re->valuestring);
    if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "invert")))
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: pre_tokenizer Split must have behavior Isolated and invert false", L->path);
    return HIRED_OK;
}

/* ByteLevel {add_prefix_space, trim_offsets, use_regex}: trim_offsets only moves offsets. */
static int parse_bytelevel(load_t *L, const cJSON *p) {
    tok_t *t = L->t;
    bool use_regex;
    int rc;
    if ((rc = get_bool(L, p, "add_prefix_space", "pre_tokenizer.ByteLevel", true, &t->bl_prefix)) ||
        (rc = get_bool(L, p, "use_regex", "pre_tokenizer.ByteLevel", true, &use_regex)))
        return rc;
    if (use_regex && t->split)
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: a Split pre-tokenizer followed by ByteLevel with use_regex true is not supported", L->path);
    t->bytelevel = true;
    t->bl_regex = use_regex ? TOK_SPLIT_GPT2 : TOK_SPLIT_NONE;
    return HIRED_OK;
}

/* null, Metaspace, ByteLevel, Split + ByteLevel (Llama-3), or a Sequence of those. */
static int parse_pre_tokenizer(load_t *L, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return HIRED_OK;
    const char *ty = type_of(p);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *it;
        if (!cJSON_IsArray(list))
            return hired_errf(L->err, HIRED_EFORMAT, "%s: pre_tokenizer.pretokenizers must be an array", L->path);
        int i = 0;
        cJSON_ArrayForEach(it, list) {
            const char *k = type_of(it);
            int rc;
            if (!strcmp(k, "Split") && i == 0) rc = parse_split(L, it);
            else if (!strcmp(k, "ByteLevel") && !L->t->bytelevel && !L->t->meta) rc = parse_bytelevel(L, it);
            else if (!strcmp(k, "Metaspace") && cJSON_GetArraySize(list) == 1) rc = parse_pre_tokenizer(L, it);
            else
                return hired_errf(L->err, HIRED_EUNSUPPORTED,
                                  "%s: pre_tokenizer Sequence step %d \"%s\" is not supported (supported: Metaspace, "
                                  "ByteLevel, Split then ByteLevel)", L->path, i, k);
            if (rc) return rc;
            i++;
        }
        return HIRED_OK;
    }
    if (!strcmp(ty, "ByteLevel")) return parse_bytelevel(L, p);
    if (!strcmp(ty, "Split")) return parse_split(L, p);
    if (strcmp(ty, "Metaspace"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: pre_tokenizer type \"%s\" is not supported (only Metaspace, ByteLevel, Split)", L->path, ty);
    L->t->meta = true;
    return parse_metaspace(L, p, "pre_tokenizer", &L->t->meta_repl, &L->t->meta_scheme, &L->t->meta_split);
}

/* TemplateProcessing's "single": special tokens around exactly one $A. */
static int parse_post_processor(load_t *L, const cJSON *p) {
    tok_t *t = L->t;
    if (!p || cJSON_IsNull(p) || !strcmp(type_of(p), "ByteLevel")) return HIRED_OK; /* ByteLevel: offsets only */
    if (!strcmp(type_of(p), "Sequence")) { /* ByteLevel steps and at most one TemplateProcessing */
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors"), *it;
        int n_tp = 0;
        if (!cJSON_IsArray(list))
            return hired_errf(L->err, HIRED_EFORMAT, "%s: post_processor.processors must be an array", L->path);
        cJSON_ArrayForEach(it, list) {
            bool tp = !strcmp(type_of(it), "TemplateProcessing");
            if ((!tp && strcmp(type_of(it), "ByteLevel")) || (tp && n_tp++))
                return hired_errf(L->err, HIRED_EUNSUPPORTED,
                                  "%s: post_processor Sequence may hold ByteLevel and one TemplateProcessing (has \"%s\")",
                                  L->path, type_of(it));
            if (tp) {
                int rc = parse_post_processor(L, it);
                if (rc) return rc;
            }
        }
        return HIRED_OK;
    }
    if (strcmp(type_of(p), "TemplateProcessing"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED,
                          "%s: post_processor type \"%s\" is not supported (only TemplateProcessing, ByteLevel)", L->path,
                          type_of(p));
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens"), *it;
    if (!cJSON_IsArray(single))
        return hired_errf(L->err, HIRED_EFORMAT, "%s: post_processor.single must be an array", L->path);
    int seen_a = 0;
    ivec_t ids = {0};
    int rc = HIRED_OK;
    cJSON_ArrayForEach(it, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(seq ? seq : sp, "id");
        if (!cJSON_IsString(sid) || !sid->valuestring) {
            rc = hired_errf(L->err, HIRED_EFORMAT,
                            "%s: post_processor.single items must be Sequence or SpecialToken with an id", L->path);
            break;
        }
        if (seq) {
            if (strcmp(sid->valuestring, "A") || seen_a++) {
                rc = hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: post_processor.single must hold $A exactly once",
                                L->path);
                break;
            }
            t->pp_before = (int)ids.n;
            continue;
        }
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(specials, sid->valuestring), "ids"),
                    *x;
        if (!cJSON_IsArray(list)) {
            rc = hired_errf(L->err, HIRED_EFORMAT, "%s: post_processor.special_tokens has no ids for \"%s\"", L->path,
                            sid->valuestring);
            break;
        }
        cJSON_ArrayForEach(x, list) {
            if (!json_is_int_in(x, 0, t->n_ids - 1)) {
                rc = hired_errf(L->err, HIRED_ERANGE, "%s: post_processor: id of \"%s\" is not a token id", L->path,
                                sid->valuestring);
                break;
            }
            if (!tok_ivec_push(&ids, (int32_t)x->valuedouble)) {
                rc = oom(L);
                break;
            }
        }
        if (rc) break;
    }
    if (!rc && !seen_a) rc = hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: post_processor.single has no $A", L->path);
    t->pp_ids = ids.p;
    t->n_pp = (int)ids.n;
    return rc;
}

/* Appends a per-token decoder step. false when out of memory. */
static bool add_dec(tok_t *t, dec_step_t d) {
    dec_step_t *p = mem_realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *p);
    if (!p) return false;
    t->dec = p;
    t->dec[t->n_dec++] = d;
    return true;
}

/* Decoder: per-token steps, then ByteFallback, then Fuse and one Strip (see tokenizer.h). */
static int parse_decoder(load_t *L, const cJSON *d) {
    tok_t *t = L->t;
    if (!d || cJSON_IsNull(d))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: a tokenizer without a decoder is not supported", L->path);
    const cJSON *list = d, *it;
    bool seq = !strcmp(type_of(d), "Sequence");
    if (seq) list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
    if (seq && !cJSON_IsArray(list))
        return hired_errf(L->err, HIRED_EFORMAT, "%s: decoder.decoders must be an array", L->path);
    int phase = 0; /* 0 per-token, 1 after ByteFallback, 2 after Fuse, 3 after the final Strip */
    for (it = seq ? list->child : d; it; it = seq ? it->next : NULL) {
        const char *ty = type_of(it);
        dec_step_t st = {0};
        int rc = HIRED_OK;
        if (t->dec_bytelevel)
            return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: decoder steps after ByteLevel are not supported",
                              L->path);
        if (!strcmp(ty, "ByteLevel") && phase == 0 && t->n_dec == 0) {
            t->dec_bytelevel = true;
            phase = 3;
        } else if (!strcmp(ty, "ByteFallback") && phase == 0) {
            t->dec_bytes = true;
            phase = 1;
        } else if (!strcmp(ty, "Fuse") && phase <= 1) {
            t->dec_fuse = true;
            phase = 2;
        } else if (!strcmp(ty, "Strip") && phase != 1 && phase != 3) {
            int64_t start, stop;
            json_where_t w = {L->path, "decoder.Strip.", L->err};
            if ((rc = get_char(L, it, "content", "decoder.Strip", &st.a)) ||
                (rc = json_opt_int(&w, it, "start", 0, 1 << 20, 0, &start)) ||
                (rc = json_opt_int(&w, it, "stop", 0, 1 << 20, 0, &stop)))
                return rc;
            if (stop)
                return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: decoder Strip with stop > 0 is not supported",
                                  L->path);
            if (phase == 2) {
                t->strip_char = st.a;
                t->strip_n = (int)start;
                phase = 3;
            } else {
                st.kind = DEC_STRIP;
                st.n = (int)start;
                if (!add_dec(t, st)) return oom(L);
            }
        } else if (!strcmp(ty, "Replace") && phase == 0) {
            const char *s;
            st.kind = DEC_REPLACE;
            if ((rc = get_pattern(L, it, "decoder.Replace", &st.a)) ||
                (rc = get_str(L, it, "content", "decoder.Replace", &s)))
                return rc;
            if (!arena_add(t, s, strlen(s), &st.b) || !add_dec(t, st)) return oom(L);
        } else if (!strcmp(ty, "Metaspace") && phase == 0) {
            int scheme;
            bool split;
            st.kind = DEC_METASPACE;
            if ((rc = parse_metaspace(L, it, "decoder.Metaspace", &st.a, &scheme, &split))) return rc;
            st.n = scheme != META_NEVER;
            if (!add_dec(t, st)) return oom(L);
        } else {
            return hired_errf(
                L->err, HIRED_EUNSUPPORTED,
                "%s: decoder step \"%s\" is not supported here (supported: ByteLevel alone, or Replace/Strip/Metaspace "
                "per token, then ByteFallback, then Fuse and one Strip)",
                L->path, ty);
        }
    }
    return HIRED_OK;
}

static int cmp_merge(const void *a, const void *b) {
    const merge_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* model.vocab {piece: id}: ids must cover 0..n-1 exactly once and pieces must be distinct (cJSON
 * keeps duplicate keys, so both are checked). Fills piece[], flags[] and the hash table. */
static int parse_vocab(load_t *L, const cJSON *vocab) {
    tok_t *t = L->t;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!json_is_int_in(it, 0, t->n_vocab - 1))
            return hired_errf(L->err, HIRED_EFORMAT,
                              "%s: model.vocab[\"%s\"] must be an id in [0, %d] (vocab ids must be dense)", L->path,
                              it->string, t->n_vocab - 1);
        int id = (int)it->valuedouble;
        if (t->flags[id] & ID_VALID)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.vocab: id %d is used twice", L->path, id);
        if (!arena_add(t, it->string, strlen(it->string), &t->piece[id])) return oom(L);
        t->flags[id] = ID_VALID;
    }
    uint32_t cap = 64;
    while (cap < 2u * (uint32_t)t->n_vocab) cap *= 2;
    t->vocab_hash = mem_calloc(cap, sizeof *t->vocab_hash);
    if (!t->vocab_hash) return oom(L);
    t->hash_mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        uint32_t *slot = tok_vocab_slot(t, tok_str(t, t->piece[id]), t->piece[id].len);
        if (*slot)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.vocab: piece \"%s\" appears twice", L->path,
                              tok_str(t, t->piece[id]));
        *slot = (uint32_t)id + 1;
    }
    return HIRED_OK;
}

/* model.merges in priority order: "a b" (split on its only space, as tokenizers does) or [a, b].
 * a, b and a+b must all be vocab pieces (tokenizers' MergeTokenOutOfVocabulary). */
static int parse_merges(load_t *L, const cJSON *merges) {
    tok_t *t = L->t;
    int n = cJSON_GetArraySize(merges), i = 0;
    t->merges = mem_alloc((size_t)(n ? n : 1) * sizeof *t->merges);
    if (!t->merges) return oom(L);
    const cJSON *it;
    cJSON_ArrayForEach(it, merges) {
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (cJSON_IsString(it) && it->valuestring) { /* "a b": exactly one space */
            const char *sp = strchr(it->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ')) a = it->valuestring, na = (size_t)(sp - a), b = sp + 1, nb = strlen(b);
        } else if (cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
            a = it->child->valuestring, b = it->child->next->valuestring, na = strlen(a), nb = strlen(b);
        }
        if (!a || !b)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.merges[%d] must be \"a b\" or [a, b]", L->path, i);
        int32_t ia = tok_vocab_find(t, a, na), ib = tok_vocab_find(t, b, nb);
        L->tmp.n = 0;
        if (!tok_buf_put(&L->tmp, a, na) || !tok_buf_put(&L->tmp, b, nb)) return oom(L);
        int32_t im = tok_vocab_find(t, L->tmp.p, L->tmp.n);
        if (ia < 0 || ib < 0 || im < 0) {
            const char *bad = ia < 0 ? a : ib < 0 ? b : L->tmp.p;
            int nbad = (int)(ia < 0 ? na : ib < 0 ? nb : L->tmp.n);
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.merges[%d]: \"%.*s\" is not in the vocab", L->path, i,
                              nbad, bad);
        }
        t->merges[i] = (merge_t){(uint64_t)(uint32_t)ia << 32 | (uint32_t)ib, (uint32_t)i, im};
        i++;
    }
    /* a pair listed twice keeps its last rank, as the HashMap `tokenizers` builds does */
    qsort(t->merges, (size_t)n, sizeof *t->merges, cmp_merge);
    int m = 0;
    for (int k = 0; k < n; k++) {
        if (m && t->merges[m - 1].key == t->merges[k].key) m--;
        t->merges[m++] = t->merges[k];
    }
    t->n_merges = m;
    return HIRED_OK;
}

/* The BPE model and its options. unk_token must name a vocab piece (tokenizers would only fail when
 * the first unknown character is met). */
static int parse_model(load_t *L, const cJSON *model) {
    tok_t *t = L->t;
    int rc;
    if (!cJSON_IsObject(model)) return hired_errf(L->err, HIRED_EFORMAT, "%s: no \"model\" object", L->path);
    if (strcmp(type_of(model), "BPE"))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: model.type \"%s\" is not supported (only BPE)", L->path,
                          type_of(model));
    if ((rc = parse_vocab(L, cJSON_GetObjectItemCaseSensitive(model, "vocab")))) return rc;
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges)) return hired_errf(L->err, HIRED_EFORMAT, "%s: model.merges must be an array", L->path);
    if ((rc = parse_merges(L, merges))) return rc;

    if ((rc = get_bool(L, model, "byte_fallback", "model", false, &t->byte_fallback)) ||
        (rc = get_bool(L, model, "fuse_unk", "model", false, &t->fuse_unk)) ||
        (rc = get_bool(L, model, "ignore_merges", "model", false, &t->ignore_merges)))
        return rc;
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0.0))
        return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: model.dropout is not supported", L->path);
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t k = 0; k < ARRAY_LEN(affix); k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(model, affix[k]);
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && a->valuestring && !a->valuestring[0]))
            return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: model.%s is not supported", L->path, affix[k]);
    }
    t->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk) && unk->valuestring) {
        t->unk_id = tok_vocab_find(t, unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: model.unk_token \"%s\" is not in the vocab", L->path,
                              unk->valuestring);
    } else if (unk && !cJSON_IsNull(unk)) {
        return hired_errf(L->err, HIRED_EFORMAT, "%s: model.unk_token must be a string or null", L->path);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tok_vocab_find(t, name, 6);
    }
    return HIRED_OK;
}

static int cmp_first_byte(const void *a, const void *b, void *ctx) {
    const tok_t *t = ctx;
    unsigned char x = (unsigned char)tok_str(t, t->added[*(const int *)a].pattern)[0];
    unsigned char y = (unsigned char)tok_str(t, t->added[*(const int *)b].pattern)[0];
    return (x > y) - (x < y);
}

/* added_tokens: flags, match patterns, the two first-byte-bucketed matching sets. tokenizers
 * re-derives the ids (a content already in the vocab keeps its vocab id; new contents get the next
 * id past the vocab, in file order) and only warns when the file disagrees; we refuse instead, so
 * the ids the model was trained with are never silently changed. */
static int parse_added(load_t *L, const cJSON *list) {
    tok_t *t = L->t;
    int n = cJSON_GetArraySize(list), i = 0;
    const cJSON *it;
    t->added = mem_calloc((size_t)(n ? n : 1), sizeof *t->added);
    if (!t->added) return oom(L);
    int32_t next_id = t->n_vocab;
    cJSON_ArrayForEach(it, list) {
        added_t *a = &t->added[i];
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%d]", i);
        const char *content;
        bool single_word;
        int rc;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!json_is_int_in(id, 0, t->n_ids - 1))
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.id must be a token id", L->path, where);
        if ((rc = get_str(L, it, "content", where, &content)) ||
            (rc = get_bool(L, it, "special", where, false, &a->special)) ||
            (rc = get_bool(L, it, "lstrip", where, false, &a->lstrip)) ||
            (rc = get_bool(L, it, "rstrip", where, false, &a->rstrip)) ||
            (rc = get_bool(L, it, "normalized", where, !a->special, &a->normalized)) ||
            (rc = get_bool(L, it, "single_word", where, false, &single_word)))
            return rc;
        size_t len = strlen(content);
        if (!len) return hired_errf(L->err, HIRED_EFORMAT, "%s: %s.content is empty", L->path, where);
        if (single_word)
            return hired_errf(L->err, HIRED_EUNSUPPORTED, "%s: %s (\"%s\"): single_word is not supported", L->path,
                              where, content);
        for (int k = 0; k < i; k++)
            if (t->added[k].content.len == len && !memcmp(tok_str(t, t->added[k].content), content, len))
                return hired_errf(L->err, HIRED_EFORMAT, "%s: added token \"%s\" is listed twice", L->path, content);
        /* the id `tokenizers` assigns: the vocab id, else the next free id past the vocab */
        int32_t expect = tok_vocab_find(t, content, len);
        if (expect < 0) expect = next_id++;
        a->id = (int32_t)id->valuedouble;
        if (a->id != expect)
            return hired_errf(L->err, HIRED_EFORMAT, "%s: %s \"%s\" has id %d but tokenizers would give it id %d",
                              L->path, where, content, a->id, expect);
        if (!arena_add(t, content, len, &a->content)) return oom(L);
        a->pattern = a->content;
        if (a->normalized && t->n_norm) {
            if (!tok_normalize(t, content, len, &L->tmp, &L->tmp2) || !arena_add(t, L->tmp.p, L->tmp.n, &a->pattern))
                return oom(L);
        }
        t->piece[a->id] = a->content;
        t->flags[a->id] = (uint8_t)(ID_VALID | (a->special ? ID_SPECIAL : 0));
        i++;
    }
    t->n_added = n;
    for (int s = 0; s < 2; s++) { /* bucket each matching stage by first byte */
        added_set_t *set = &t->set[s];
        set->idx = mem_alloc((size_t)(n ? n : 1) * sizeof *set->idx);
        if (!set->idx) return oom(L);
        for (int k = 0; k < n; k++)
            if (t->added[k].normalized == (s == 1) && t->added[k].pattern.len) set->idx[set->n++] = k;
        qsort_r(set->idx, (size_t)set->n, sizeof *set->idx, cmp_first_byte, t);
        for (int b = 0, k = 0; b <= 256; b++) {
            while (k < set->n && (unsigned char)tok_str(t, t->added[set->idx[k]].pattern)[0] < b) k++;
            set->first[b] = k;
        }
    }
    return HIRED_OK;
}

/* Sizes the id space (vocab plus added ids), then runs the parsers in dependency order. */
static int load(load_t *L, const cJSON *root) {
    tok_t *t = L->t;
    int rc;
    if (!cJSON_IsObject(root)) return hired_errf(L->err, HIRED_EFORMAT, "%s: the top level must be an object", L->path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), *it;
    if (!cJSON_IsArray(added)) added = NULL;
    if (!cJSON_IsObject(vocab) || !vocab->child)
        return hired_errf(L->err, HIRED_EFORMAT, "%s: model.vocab must be a non-empty object", L->path);
    if (!added && json_has(root, "added_tokens") && !json_is_null(root, "added_tokens"))
        return hired_errf(L->err, HIRED_EFORMAT, "%s: added_tokens must be an array", L->path);
    int nv = cJSON_GetArraySize(vocab);
    if (nv > TOK_MAX_IDS)
        return hired_errf(L->err, HIRED_ERANGE, "%s: %d vocab entries, more than %d", L->path, nv, TOK_MAX_IDS);
    t->n_vocab = t->n_ids = nv;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (json_is_int_in(id, 0, TOK_MAX_IDS - 1) && (int)id->valuedouble >= t->n_ids)
            t->n_ids = (int)id->valuedouble + 1;
    }
    t->piece = mem_calloc((size_t)t->n_ids, sizeof *t->piece);
    t->flags = mem_calloc((size_t)t->n_ids, sizeof *t->flags);
    if (!t->piece || !t->flags) return oom(L);
    if ((rc = parse_model(L, model)) ||
        (rc = parse_normalizer(L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), 0)) ||
        (rc = parse_added(L, added)) ||
        (rc = parse_pre_tokenizer(L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"))) ||
        (rc = parse_post_processor(L, cJSON_GetObjectItemCaseSensitive(root, "post_processor"))) ||
        (rc = parse_decoder(L, cJSON_GetObjectItemCaseSensitive(root, "decoder"))))
        return rc;
    tok_bytelevel_table(t->byte_cp);
    for (int c = 0; c < (int)ARRAY_LEN(t->cp_byte); c++) t->cp_byte[c] = -1;
    for (int b = 0; b < 256; b++) t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    t->bos = t->pp_before > 0 ? t->pp_ids[0] : tok_id(t, "<s>");
    t->eos = tok_id(t, "</s>");
    return HIRED_OK;
}

tok_t *tok_load_file(const char *path, char *err) {
    cJSON *root = NULL;
    if (json_read_file(path, TOK_MAX_JSON_BYTES, &root, err)) return NULL;
    load_t L = {mem_calloc(1, sizeof(tok_t)), path, err, {0}, {0}};
    int rc = L.t ? load(&L, root) : oom(&L);
    cJSON_Delete(root);
    mem_free(L.tmp.p);
    mem_free(L.tmp2.p);
    if (rc) {
        tok_destroy(&L.t);
        return NULL;
    }
    log_debug("%s: %d ids (%d vocab, %d merges, %d added), byte_fallback %d", path, L.t->n_ids, L.t->n_vocab,
              L.t->n_merges, L.t->n_added, L.t->byte_fallback);
    return L.t;
}

tok_t *tok_load(const char *model_dir, char *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", model_dir) >= sizeof path) {
        hired_errf(err, HIRED_ERANGE, "model directory path too long: %s", model_dir);
        return NULL;
    }
    return tok_load_file(path, err);
}
