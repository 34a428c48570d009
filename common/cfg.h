/* cfg.h — configuration tables: one caller-defined table of keys (redis static_configs), values
 * in a caller struct. A service reads them from a libconfig-syntax file (-c FILE) overridden from
 * the command line (-o key=value or --key=value); a command (the `hired` CLI's subcommands)
 * reads them as its options (cfg_cli: --key VALUE, repeatable lists, positional arguments).
 *
 * A service declares
 *     struct enc_cfg { char *frontend; int64_t gpu; double timeout_s; bool warmup; };
 *     static const cfg_entry_t k_cfg[] = {
 *         {"broker.backend", CFG_STRING, offsetof(struct enc_cfg, frontend), 1, 256,
 *          "tcp://127.0.0.1:5556", NULL, "broker endpoint workers connect to"},
 *         {"encoder.gpu", CFG_INT, offsetof(struct enc_cfg, gpu), 0, 63, "0", NULL, "CUDA device"},
 *         ...};
 * and calls cfg_args (or cfg_load + cfg_set), cfg_log, and at exit cfg_free.
 * Keys are dotted paths: "broker.backend" is `broker = { backend = "..."; };` (or
 * `broker: { backend = ...; }`) in the file. Precedence: command line > file > default.
 * Unknown keys, wrong types and out-of-range values are rejected by name, with FILE:LINE for
 * the file. Not here: what the keys mean (each service's main.c), hired.cfg.example. */
#ifndef HIRED_CFG_H
#define HIRED_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CFG_INT = 0, /* int64_t field; [min, max] always applies */
    CFG_DOUBLE,  /* double field; [min, max] always applies; integers in the file are accepted */
    CFG_BOOL,    /* bool field; command line: true/false, yes/no, on/off, 1/0 */
    CFG_STRING,  /* char * field, owned by the struct (cfg_free); length in [min, max] when max > 0 */
    CFG_STRLIST, /* cfg_strlist_t field, owned by the struct; item count in [min, max] when max > 0;
                    file: ["a", "b"] or ("a", "b"); command line: a,b (no item may be empty) */
    CFG_ENUM,    /* int field: index into `choices` ("debug|info|warn|error"); file: a string */
} cfg_type_t;

typedef struct {
    int n;
    char **items; /* [n] */
} cfg_strlist_t;

typedef struct {
    const char *key;     /* dotted path, e.g. "broker.frontend" */
    cfg_type_t type;
    size_t offset;       /* offsetof(caller struct, field) */
    double min, max;     /* see cfg_type_t */
    const char *def;     /* default, written as on the command line ("5", "true", "a,b", "info") */
    const char *choices; /* CFG_ENUM only: alternatives separated by '|' */
    const char *help;    /* one line */
} cfg_entry_t;

/* Frees the strings and lists the table owns inside `values` (the struct itself is the caller's)
 * and zeroes those fields. Safe on a zero-initialised struct and to call twice. */
void cfg_free(const cfg_entry_t *t, int n, void *values);

/* Checks the table (unique keys, no key both a value and a group, valid types and choices,
 * defaults that parse and are in range) and sets every field to its default. `values` must be
 * zero-initialised or previously filled by cfg (old strings are freed). HIRED_EINVAL for a bad
 * table, HIRED_ENOMEM; err filled. */
int cfg_defaults(const cfg_entry_t *t, int n, void *values, char *err);

/* cfg_defaults, then the libconfig file at `path` (NULL: defaults only). Errors: HIRED_ENOTFOUND
 * / HIRED_EIO (cannot read), HIRED_EFORMAT ("FILE:LINE: <libconfig message>" for syntax errors,
 * "FILE:LINE: unknown key 'x'", wrong types), HIRED_ERANGE ("FILE:LINE: 'key' must be an integer
 * in [a, b] (got c)"), HIRED_ENOMEM. On failure `values` holds defaults and part of the file;
 * cfg_free it either way. */
int cfg_load(const cfg_entry_t *t, int n, const char *path, void *values, char *err);

/* Applies one "key=value" override with the same checks ("command line: unknown key 'x'").
 * The field is unchanged on failure. */
int cfg_set(const cfg_entry_t *t, int n, void *values, const char *assignment, char *err);

/* The usual main(): `-c FILE` / `--config FILE` / `--config=FILE` (at most one) is loaded first,
 * then every `-o KEY=VALUE` and `--KEY=VALUE` is applied in order. `-h` / `--help` prints
 * cfg_help to stdout and returns 1 (the caller exits 0). Any other argument is an error
 * (HIRED_EINVAL). Returns 0 or HIRED_E*; cfg_free `values` either way. */
int cfg_args(const cfg_entry_t *t, int n, void *values, int argc, char **argv, char *err);

/* A command's options from its own table (the hired CLI's subcommands). Keys are the option
 * names as typed ("max-tokens"). On the command line `--KEY VALUE` or `--KEY=VALUE`; a CFG_BOOL
 * also bare (`--json` is true); every occurrence of a CFG_STRLIST key appends its value as one
 * item (not split at commas; the first one replaces the default items; the item count is
 * checked against [min, max] at the end).
 * Arguments not starting with "--" are positional: at most max_pos of them go to pos[]
 * (*n_pos). `-h` / `--help` prints `usage`, then the options (cfg_options), to stdout and returns
 * 1. An option the table lacks goes to `extra` (may be NULL), which returns 1 when it took the
 * option with its value, 0 when it does not know it, or a negative HIRED_E* (err filled) on a bad
 * value. Errors name the option ("--budget: 'budget' must be a number in [1e-09, 1] (got 2)",
 * "unknown option '--colour'", "--model needs a value"). Every field starts at its default.
 * Returns 0, 1 (help) or HIRED_E*; cfg_free `values` either way. */
typedef int (*cfg_cli_extra_fn)(void *user, const char *key, const char *value, char *err);
int cfg_cli(const cfg_entry_t *t, int n, void *values, int argc, char **argv, const char *usage, const char **pos,
            int max_pos, int *n_pos, cfg_cli_extra_fn extra, void *user, char *err);
/* Prints a command's options: "  --KEY VALUE" with what VALUE may be, its default and help. */
void cfg_options(const cfg_entry_t *t, int n, FILE *out);

/* Logs the effective configuration at info level, one "config: key = value" line per key. */
void cfg_log(const cfg_entry_t *t, int n, const void *values);

/* Prints every key with its type, range, default and help to out. */
void cfg_help(const cfg_entry_t *t, int n, FILE *out);

#endif
