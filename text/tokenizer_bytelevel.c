/* tokenizer_bytelevel.c — the byte-level (GPT-2 / Llama-3) parts of the tokenizer: the byte <->
 * character table of ByteLevel, the two pre-tokenizer regexes it is used with, written out as
 * matchers (no regex engine), and Rust's lossy UTF-8 decoding that the ByteLevel decoder ends with.
 *
 * The regexes (exactly these strings are accepted in tokenizer.json, anything else is refused):
 *   Llama-3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *            \s*[\r\n]+|\s+(?!\S)|\s+
 *   GPT-2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * A backtracking engine (Oniguruma, which tokenizers uses) tries the alternatives in order at each
 * position and takes the first that matches; every position starts some match here, so the split
 * is a left-to-right walk. The character classes come from unicode_tables.c, measured from the
 * same engine. (?i) case folding: 's matches 'S and U+017F LATIN SMALL LETTER LONG S.
 * Not here: the BPE itself and the pipeline (tokenizer.c), parsing (tokenizer_load.c). */
#include <string.h>

#include "err.h"
#include "tokenizer_impl.h"

extern const uint32_t tok_uni_letter[][2], tok_uni_number[][2], tok_uni_space[][2];
extern const int tok_uni_letter_n, tok_uni_number_n, tok_uni_space_n;

static bool in_ranges(const uint32_t (*r)[2], int n, uint32_t c) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (c < r[mid][0]) hi = mid - 1;
        else if (c > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

static bool is_l(uint32_t c) { return in_ranges(tok_uni_letter, tok_uni_letter_n, c); }
static bool is_n(uint32_t c) { return in_ranges(tok_uni_number, tok_uni_number_n, c); }
static bool is_s(uint32_t c) { return in_ranges(tok_uni_space, tok_uni_space_n, c); }

// ---- byte table ---------------------------------------------------------------------------------

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes for
 * U+0100.. in byte order. */
void tok_bytelevel_table(uint32_t byte_to_cp[256]) {
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        byte_to_cp[b] = self ? (uint32_t)b : next++;
    }
}

// ---- the split ------------------------------------------------------------------------------------

typedef struct {
    const unsigned char *s;
    size_t n;
} text_t;

/* The code point at i (the text is valid UTF-8) and its length. */
static uint32_t at(const text_t *t, size_t i, size_t *w) {
    uint32_t c;
    *w = tok_utf8_len(t->s + i, t->n - i, &c);
    if (!*w) *w = 1, c = t->s[i];
    return c;
}

/* Matches (?i:'s|'t|'re|'ve|'m|'ll|'d) (ci) or the case-sensitive list at i: bytes matched or 0. */
static size_t contraction(const text_t *t, size_t i, bool ci) {
    if (t->s[i] != '\'' || i + 1 >= t->n) return 0;
    static const char *const suffix[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    for (size_t k = 0; k < ARRAY_LEN(suffix); k++) {
        size_t j = i + 1, m = 0;
        for (; suffix[k][m]; m++) {
            if (j >= t->n) break;
            unsigned char c = t->s[j];
            char want = suffix[k][m];
            if (c == (unsigned char)want || (ci && c == (unsigned char)(want - 32))) {
                j++;
            } else if (ci && want == 's' && j + 1 < t->n && c == 0xC5 && t->s[j + 1] == 0xBF) {
                j += 2; /* U+017F folds to s */
            } else {
                break;
            }
        }
        if (!suffix[k][m]) return j - i;
    }
    return 0;
}

/* Length in bytes of the whitespace run at i. */
static size_t space_run(const text_t *t, size_t i, size_t *last_char) {
    size_t j = i, w;
    *last_char = i;
    while (j < t->n && is_s(at(t, j, &w))) *last_char = j, j += w;
    return j - i;
}

/* \s*[\r\n]+ | \s+(?!\S) | \s+ at i (a whitespace character). */
static size_t spaces(const text_t *t, size_t i, bool crlf_alt) {
    size_t last, run = space_run(t, i, &last), end = i + run;
    if (crlf_alt) { /* \s*[\r\n]+: up to the last CR/LF of the run */
        for (size_t j = end; j > i; j--)
            if (t->s[j - 1] == '\r' || t->s[j - 1] == '\n') return j - i;
    }
    if (end == t->n) return run;     /* (?!\S) holds at the end of the text */
    if (last > i) return last - i;   /* give back the last space: it precedes a space */
    return run;                      /* \s+ */
}

/* One match of the Llama-3 pattern at i. */
static size_t match_llama3(const text_t *t, size_t i) {
    size_t w, w2, k;
    if ((k = contraction(t, i, true))) return k;
    uint32_t c = at(t, i, &w);
    bool l = is_l(c), n = !l && is_n(c), s = !l && !n && is_s(c);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    size_t j = i;
    if (!l && !n && c != '\r' && c != '\n' && i + w < t->n && is_l(at(t, i + w, &w2))) j = i + w;
    else if (l) j = i;
    else goto numbers;
    while (j < t->n && is_l(at(t, j, &w2))) j += w2;
    return j - i;
numbers:
    if (n) { /* \p{N}{1,3} */
        j = i;
        for (int r = 0; r < 3 && j < t->n && is_n(at(t, j, &w2)); r++) j += w2;
        return j - i;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    j = i;
    if (c == ' ' && i + 1 < t->n) {
        uint32_t d = at(t, i + 1, &w2);
        if (!is_s(d) && !is_l(d) && !is_n(d)) j = i + 1;
    }
    if (j > i || !s) {
        uint32_t d;
        while (j < t->n && (d = at(t, j, &w2), !is_s(d) && !is_l(d) && !is_n(d))) j += w2;
        while (j < t->n && (t->s[j] == '\r' || t->s[j] == '\n')) j++;
        return j - i;
    }
    return spaces(t, i, true);
}

/* The run of letters (cls 0), numbers (1) or "other" characters (2: not \s, \p{L}, \p{N})
 * starting at j; 0 when the character at j is not of the class. */
static size_t class_run(const text_t *t, size_t j, int cls) {
    size_t e = j, w;
    while (e < t->n) {
        uint32_t x = at(t, e, &w);
        bool ok = cls == 0 ? is_l(x) : cls == 1 ? is_n(x) : !is_s(x) && !is_l(x) && !is_n(x);
        if (!ok) break;
        e += w;
    }
    return e - j;
}

/* One match of the GPT-2 pattern at i: contractions, then " ?\p{L}+", " ?\p{N}+",
 * " ?[^\s\p{L}\p{N}]+" (each first with the optional space), then the whitespace rules. */
static size_t match_gpt2(const text_t *t, size_t i) {
    size_t k;
    if ((k = contraction(t, i, false))) return k;
    for (int cls = 0; cls < 3; cls++) {
        if (t->s[i] == ' ' && i + 1 < t->n && (k = class_run(t, i + 1, cls))) return k + 1;
        if ((k = class_run(t, i, cls))) return k;
    }
    return spaces(t, i, false);
}

int tok_bytelevel_split(int kind, const char *s, size_t n, size_t *cuts, size_t max_cuts) {
    text_t t = {(const unsigned char *)s, n};
    size_t i = 0, k = 0;
    while (i < n) {
        size_t m = kind == TOK_SPLIT_LLAMA3 ? match_llama3(&t, i) : match_gpt2(&t, i);
        if (m == 0) m = 1; /* cannot happen: every character starts a match */
        i += m;
        if (k == max_cuts) return -1;
        cuts[k++] = i;
    }
    return (int)k;
}

// ---- lossy UTF-8 ------------------------------------------------------------------------------------

size_t tok_utf8_lossy_step(const unsigned char *s, size_t n, bool *valid) {
    unsigned c = s[0];
    *valid = false;
    if (c < 0x80) {
        *valid = true;
        return 1;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 1;
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n) return 0; /* a valid prefix that the next bytes may complete */
        unsigned x = s[i];
        if (x < (i == 1 ? lo : 0x80) || x > (i == 1 ? hi : 0xBF)) return i;
    }
    *valid = true;
    return need + 1;
}
