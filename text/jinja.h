/* jinja.h — a small interpreter for the subset of Jinja2 that Hugging Face chat templates use,
 * rendering exactly what transformers' apply_chat_template renders (jinja2's sandboxed
 * environment with trim_blocks=True, lstrip_blocks=True, the loopcontrols extension and the
 * {% generation %} tag).
 *
 * Why our own: no C Jinja implementation is packaged by Debian (`apt-cache search jinja` lists
 * only the Python jinja2 module, its plugins and Rust's tera crate source), and the chat
 * templates of the llava-hf, Mistral, Vicuna, ChatML and Llama-3 checkpoints use a small, stable
 * part of the language.
 *
 * Supported:
 *   text, {{ expr }}, {# comments #}, whitespace control {%- -%} {{- -}} {%+, trim_blocks and
 *   lstrip_blocks as transformers sets them;
 *   {% if %}/{% elif %}/{% else %}, {% for x in xs %} / {% for k, v in d.items() %} with
 *   {% else %}, loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem,
 *   {% break %}, {% continue %}, {% set x = e %}, {% set ns.attr = e %}, {% generation %};
 *   literals (strings with Python escapes, integers, true/false/none, lists, tuples, dicts),
 *   names, .attr, [item], [a:b:c] slices, calls; operators + - * / // % ~ == != < <= > >= in,
 *   not in, and, or, not, unary -, `a if c else b`;
 *   filters trim, upper, lower, capitalize, title, length/count, first, last, join, default/d,
 *   string, list, int, selectattr, rejectattr, map(attribute=), replace, tojson, safe, items;
 *   tests defined, undefined, none, string, number, integer, mapping, iterable, sequence,
 *   boolean, true, false, odd, even, equalto/eq/==, ne/!=, in;
 *   methods str.strip/lstrip/rstrip/upper/lower/title/capitalize/startswith/endswith/split/
 *   replace, dict.items/keys/values/get; globals raise_exception(msg), range(), namespace().
 * Differences, by design: integers only (no floats); upper/lower/title/capitalize change ASCII
 * letters only (the templates apply them to role names); anything else (macros, call blocks,
 * include/extends, unknown filters/tests/methods) is an error naming the template line.
 * Undefined values print as "" and are false, as jinja2's default Undefined.
 *
 * Limits: a template of at most 1 MiB, nesting depth 64, 16 MiB of output, 1e6 loop iterations
 * and 256 MiB of values per render; each is an error, never a crash.
 * Thread-safety: a parsed jinja_t is immutable; renders may run concurrently. */
#ifndef HIRED_JINJA_H
#define HIRED_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jinja jinja_t;
typedef struct jv jv_t;
typedef struct jarena jarena_t;

/* Parses n bytes of template source. `name` (borrowed for the call, copied) prefixes every
 * error message, e.g. "MODEL/chat_template.json: chat_template". NULL with err filled on a
 * syntax error (the message gives the line) or when out of memory. Caller owns the result. */
jinja_t *jinja_parse(const char *src, size_t n, const char *name, char *err);
void jinja_destroy(jinja_t **p);

// ---- values the caller passes in --------------------------------------------------------------
/* Values live in an arena; everything made from one arena is freed by jarena_destroy. The
 * constructors return NULL when out of memory (and accept NULL arguments then, returning NULL,
 * so a chain of calls needs one check at the end). Strings are copied. */
jarena_t *jarena_new(void);
void jarena_destroy(jarena_t **p);
jv_t *jv_none(jarena_t *a);
jv_t *jv_bool(jarena_t *a, bool b);
jv_t *jv_int(jarena_t *a, int64_t i);
jv_t *jv_str(jarena_t *a, const char *s, size_t n);
jv_t *jv_list(jarena_t *a);
jv_t *jv_dict(jarena_t *a);
/* Appends v to list / sets d[key] = v (replacing). 0, or HIRED_ENOMEM / HIRED_EINVAL (NULL or
 * wrong kind). */
int jv_list_push(jarena_t *a, jv_t *list, jv_t *v);
int jv_dict_set(jarena_t *a, jv_t *d, const char *key, jv_t *v);

/* Renders with the variables of `vars` (a dict; borrowed). On success *out is a new
 * NUL-terminated string the caller owns (mem_free), *len its length. HIRED_EINVAL for a render
 * error (raise_exception's message, undefined operations, wrong types: the message names the
 * template line), HIRED_ERANGE for a limit, HIRED_ENOMEM; *out = NULL then. */
int jinja_render(const jinja_t *t, const jv_t *vars, char **out, size_t *len, char *err);

#endif
