/* test_template.c — chat templates: exact output of each built-in, the "<image> already present"
 * and raw modes, unknown names, and the <image> position check. Against Python: the prompts
 * transformers' apply_chat_template renders (tests/fixtures/templates/cases.json, written by
 * tools/reference/make_template_cases.py) for the real llava-hf / Mistral / Llama-3 / Yi templates
 * and a feature-exercising one, over single-turn, multi-turn, system, text-only and several-image
 * conversations — through our Jinja interpreter, and through the built-in fallbacks where they
 * stand for a llava-hf template. Also tpl_load's file lookup, and the interpreter's errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "json.h"
#include "mem.h"
#include "jinja.h"
#include "template.h"
#include "test.h"

static void expect(const char *name, const char *q, const char *want) {
    char *out = (char *)1, err[HIRED_ERR_LEN] = "";
    int rc = tpl_render(name, q, &out, err);
    CHECK_MSG(rc == 0 && out && !strcmp(out, want), "%s(\"%s\") = \"%s\" (%s), want \"%s\"", name, q,
              rc ? "(error)" : out, err, want);
    if (rc == 0) mem_free(out);
}

#define SYS_HUMAN                                                                                                      \
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives "                    \
    "helpful, detailed, and polite answers to the human's questions. "
#define SYS_USER                                                                                                       \
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives "                     \
    "helpful, detailed, and polite answers to the user's questions. "

static void test_outputs(void) {
    const char *q = "What is shown in this image?";
    expect("vicuna", q, "USER: <image>\nWhat is shown in this image? ASSISTANT:");
    expect("llava-1.5", q, "USER: <image>\nWhat is shown in this image? ASSISTANT:");
    expect("vicuna-system", q, SYS_HUMAN "USER: <image>\nWhat is shown in this image? ASSISTANT:");
    expect("vicuna-lmms-eval", q, SYS_USER "USER: <image>\nWhat is shown in this image? ASSISTANT:");
    expect("mistral", q, "[INST] <image>\nWhat is shown in this image? [/INST]");
    expect("raw", "USER: <image> hi ASSISTANT:", "USER: <image> hi ASSISTANT:");
    expect("raw", "", "");
    expect("vicuna", "", "USER: <image>\n ASSISTANT:");
    /* a question that already holds the placeholder is used as given */
    expect("vicuna", "Compare <image> with the text.", "USER: Compare <image> with the text. ASSISTANT:");
    expect("mistral", "<image>\nDescribe.", "[INST] <image>\nDescribe. [/INST]");
    expect("mistral", "<image><image>", "[INST] <image><image> [/INST]");
    expect("vicuna", "<imag> is not a placeholder", "USER: <image>\n<imag> is not a placeholder ASSISTANT:");
}

static void test_errors(void) {
    char *out = (char *)1, err[HIRED_ERR_LEN] = "";
    CHECK(tpl_render("chatml2", "hi", &out, err) == HIRED_EINVAL && out == NULL);
    CHECK_MSG(strstr(err, "chatml2") && strstr(err, "llama3") && strstr(err, "vicuna") && strstr(err, "mistral") && strstr(err, "llava-1.5") &&
                  strstr(err, "vicuna-system") && strstr(err, "raw"),
              "%s", err);
    CHECK(tpl_render(NULL, "hi", &out, err) == HIRED_EINVAL);
    CHECK(tpl_render("vicuna", NULL, &out, err) == HIRED_EINVAL);
    int n = 0;
    for (const char *const *p = tpl_names(); *p; p++) n++;
    CHECK_EQ_INT(n, 8);

    mem_fail_after(0, false);
    CHECK(tpl_render("vicuna", "hi", &out, err) == HIRED_ENOMEM && out == NULL);
    mem_fail_after(-1, false);

    const int32_t one[] = {1, 733, 32000, 28705, 13};
    const int32_t none[] = {1, 733, 28705};
    const int32_t two[] = {1, 32000, 5, 32000};
    int pos = -1;
    CHECK(tpl_image_pos(one, 5, 32000, &pos, err) == 0 && pos == 2);
    CHECK(tpl_image_pos(none, 3, 32000, &pos, err) == HIRED_EINVAL);
    CHECK_MSG(!strcmp(err, "prompt has no <image> placeholder"), "%s", err);
    CHECK(tpl_image_pos(none, 0, 32000, &pos, err) == HIRED_EINVAL);
    CHECK(tpl_image_pos(two, 4, 32000, &pos, err) == HIRED_EINVAL);
    CHECK_MSG(strstr(err, "2 <image> placeholders") && strstr(err, "exactly one"), "%s", err);
}

/* The prompts transformers renders from the llava-hf chat templates. */
static void test_against_jinja(void) {
    cJSON *cases = NULL;
    char err[HIRED_ERR_LEN];
    CHECK_MSG(json_read_file(test_fixture("tokenizer/cases.json"), 8u << 20, &cases, err) == 0, "%s", err);
    if (!cases) return;
    const cJSON *t;
    int n = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cases, "templates")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
        const char *q = cJSON_GetObjectItemCaseSensitive(t, "question")->valuestring;
        expect(name, q, cJSON_GetObjectItemCaseSensitive(t, "prompt")->valuestring);
        n++;
    }
    CHECK_MSG(n >= 20, "only %d template cases", n);
    cJSON_Delete(cases);
}

// ---- against apply_chat_template ----------------------------------------------------------------

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* The conversation `name` of cases.json as tpl messages (storage in the caller's arrays). */
static int conversation(const cJSON *root, const char *name, tpl_message_t *msgs, tpl_part_t *parts, int max_parts) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "conversations")) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring, name)) continue;
        int nm = 0, np = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c, "messages")) {
            msgs[nm].role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
            msgs[nm].parts = parts + np;
            msgs[nm].n_parts = 0;
            const cJSON *p;
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(m, "content")) {
                if (np == max_parts) return -1;
                bool img = !strcmp(cJSON_GetObjectItemCaseSensitive(p, "type")->valuestring, "image");
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
                parts[np++] = (tpl_part_t){img ? TPL_PART_IMAGE : TPL_PART_TEXT, img ? NULL : t->valuestring};
                msgs[nm].n_parts++;
            }
            nm++;
        }
        return nm;
    }
    return -1;
}

/* The built-in standing for a llava-hf template file, or NULL. */
static const char *builtin_for(const char *file) {
    if (!strcmp(file, "llava-1.5-7b-hf.jinja")) return "llava-1.5";
    if (!strcmp(file, "llava-v1.6-vicuna-7b-hf.jinja")) return "vicuna";
    if (!strcmp(file, "llava-v1.6-mistral-7b-hf.jinja")) return "mistral";
    if (!strcmp(file, "llava-v1.6-34b-hf.jinja")) return "chatml";
    if (!strcmp(file, "llama3-llava-next-8b-hf.jinja")) return "llama3";
    return NULL;
}

static void test_apply_chat_template(void) {
    cJSON *root = NULL;
    char err[HIRED_ERR_LEN];
    CHECK_MSG(json_read_file(test_fixture("templates/cases.json"), 8u << 20, &root, err) == 0, "%s", err);
    if (!root) return;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(root, "specials");
    const char *bos = cJSON_GetObjectItemCaseSensitive(sp, "bos_token")->valuestring;
    const char *eos = cJSON_GetObjectItemCaseSensitive(sp, "eos_token")->valuestring;
    const cJSON *c;
    int n = 0, bad = 0, n_builtin = 0, n_err = 0;
    char templates_seen[32][64];
    int n_templates = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        const char *file = cJSON_GetObjectItemCaseSensitive(c, "template")->valuestring;
        const char *conv = cJSON_GetObjectItemCaseSensitive(c, "conversation")->valuestring;
        bool list = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "content_list"));
        bool gen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "prompt");
        const cJSON *werr = cJSON_GetObjectItemCaseSensitive(c, "error");
        bool seen = false;
        for (int i = 0; i < n_templates; i++) seen = seen || !strcmp(templates_seen[i], file);
        if (!seen && n_templates < 32) snprintf(templates_seen[n_templates++], 64, "%s", file);
        char rel[128];
        snprintf(rel, sizeof rel, "templates/%s", file);
        char *src = slurp(test_fixture(rel));
        CHECK_MSG(src, "cannot read %s", rel);
        if (!src) continue;
        tpl_message_t msgs[8];
        tpl_part_t parts[32];
        int nm = conversation(root, conv, msgs, parts, 32);
        CHECK_MSG(nm > 0, "conversation %s", conv);
        tpl_t *t = tpl_new(src, file, list, bos, eos, err);
        CHECK_MSG(t, "%s: %s", file, err);
        free(src);
        if (!t || nm <= 0) {
            tpl_destroy(&t);
            continue;
        }
        char *out = NULL;
        int rc = tpl_render_chat(t, msgs, nm, gen, &out, err);
        bool ok;
        if (werr) {
            ok = rc == HIRED_EINVAL && strstr(err, werr->valuestring) != NULL;
            CHECK_MSG(ok, "%s / %s: want the error \"%s\", got rc %d \"%s\"", file, conv, werr->valuestring, rc,
                      rc ? err : out);
            n_err++;
        } else {
            ok = rc == 0 && !strcmp(out, want->valuestring);
            CHECK_MSG(ok, "%s / %s (gen %d, list %d):\n  got  \"%s\" (%s)\n  want \"%s\"", file, conv, gen, list,
                      rc ? "(error)" : out, rc ? err : "", want->valuestring);
        }
        bad += !ok;
        n++;
        mem_free(out);
        tpl_destroy(&t);
        const char *bname = builtin_for(file);
        if (bname && want) { /* the built-in fallback renders the same */
            tpl_t *b = tpl_builtin(bname, err);
            CHECK_MSG(b, "%s", err);
            out = NULL;
            rc = b ? tpl_render_chat(b, msgs, nm, gen, &out, err) : -1;
            CHECK_MSG(rc == 0 && !strcmp(out, want->valuestring), "built-in %s / %s differs from %s", bname, conv, file);
            mem_free(out);
            tpl_destroy(&b);
            n_builtin++;
        }
    }
    printf("apply_chat_template: %d renders over %d templates (%d expected errors), %d mismatches; %d built-in renders\n",
           n, n_templates, n_err, bad, n_builtin);
    CHECK_MSG(n >= 200 && n_templates >= 9, "only %d renders over %d templates", n, n_templates);
    cJSON_Delete(root);
}

// ---- tpl_load and interpreter errors --------------------------------------------------------------

static void write_file(const char *dir, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *dir, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static void expect_load(const char *dir, int want_rc, const char *want_source, const char *want_text, const char *frag) {
    char err[HIRED_ERR_LEN] = "";
    tpl_t *t = (tpl_t *)1;
    int rc = tpl_load(dir, &t, err);
    CHECK_MSG(rc == want_rc, "tpl_load rc %d, want %d (%s)", rc, want_rc, err);
    if (rc) {
        CHECK(t == NULL);
        CHECK_MSG(frag && strstr(err, frag), "error \"%s\" lacks \"%s\"", err, frag ? frag : "");
        return;
    }
    if (!want_source) {
        CHECK(t == NULL);
        return;
    }
    CHECK_MSG(t && !strcmp(tpl_source(t), want_source), "source %s, want %s", t ? tpl_source(t) : "(none)", want_source);
    tpl_part_t parts[2] = {{TPL_PART_IMAGE, NULL}, {TPL_PART_TEXT, "hi"}};
    tpl_message_t m = {"user", parts, 2};
    char *out = NULL;
    CHECK(t && tpl_render_chat(t, &m, 1, true, &out, err) == 0);
    CHECK_MSG(out && !strcmp(out, want_text), "rendered \"%s\", want \"%s\"", out ? out : "", want_text);
    mem_free(out);
    tpl_destroy(&t);
}

static void test_load(void) {
    char dir[] = "/tmp/hired_tpl_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    expect_load(dir, 0, NULL, NULL, NULL); /* nothing: no template, not an error */
    write_file(dir, "tokenizer_config.json",
               "{\"bos_token\": {\"content\": \"<B>\"}, \"eos_token\": \"<E>\", \"chat_template\": "
               "[{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": "
               "\"{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token }}\"}]}");
    expect_load(dir, 0, "tokenizer_config.json", "<B>[<image>\nhi]<E>", NULL); /* string content */
    write_file(dir, "processor_config.json", "{\"chat_template\": \"P{{ messages[0].content | length }}\"}");
    expect_load(dir, 0, "processor_config.json", "P2", NULL); /* list content */
    write_file(dir, "chat_template.json", "{\"chat_template\": \"J{{ messages[0]['content'][1].text }}\"}");
    expect_load(dir, 0, "chat_template.json", "Jhi", NULL);
    write_file(dir, "chat_template.jinja", "{{ messages[0].role }}\n");
    expect_load(dir, 0, "chat_template.jinja", "user", NULL); /* trailing newline dropped, as jinja2 */
    write_file(dir, "chat_template.jinja", "{% if x %}unclosed");
    expect_load(dir, HIRED_EFORMAT, NULL, NULL, "missing {% endif %}");
    remove_file(dir, "chat_template.jinja");
    write_file(dir, "chat_template.json", "{\"chat_template\": 5}");
    expect_load(dir, HIRED_EFORMAT, NULL, NULL, "chat_template.json: chat_template must be");
    write_file(dir, "chat_template.json", "{\"chat_template\": \"{{ a | default('d') }}\"}");
    expect_load(dir, 0, "chat_template.json", "d", NULL);
    remove_file(dir, "chat_template.json");
    write_file(dir, "processor_config.json", "{\"chat_template\": \"{% macro m() %}{% endmacro %}\"}");
    expect_load(dir, HIRED_EFORMAT, NULL, NULL, "processor_config.json: chat_template: line 1: unsupported");
    remove_file(dir, "processor_config.json");
    write_file(dir, "tokenizer_config.json", "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}]}");
    expect_load(dir, HIRED_EUNSUPPORTED, NULL, NULL, "no \"default\"");
    write_file(dir, "tokenizer_config.json", "{\"chat_template\": \"{{ broken\"}");
    expect_load(dir, HIRED_EFORMAT, NULL, NULL, "tokenizer_config.json: chat_template: line 1");
    remove_file(dir, "tokenizer_config.json");
    rmdir(dir);
}

/* Renders src with no variables; returns rc, fills out (static) or err. */
static int render1(const char *src, char *out, size_t cap, char *err) {
    jinja_t *j = jinja_parse(src, strlen(src), "t", err);
    if (!j) return HIRED_EFORMAT;
    jarena_t *a = jarena_new();
    jv_t *vars = jv_dict(a);
    jv_dict_set(a, vars, "s", jv_str(a, "héllo wörld", strlen("héllo wörld")));
    char *o = NULL;
    int rc = jinja_render(j, vars, &o, NULL, err);
    if (!rc) snprintf(out, cap, "%s", o);
    mem_free(o);
    jarena_destroy(&a);
    jinja_destroy(&j);
    return rc;
}

static void test_interpreter(void) {
    static const struct {
        const char *src, *want; /* want: output, or "!" + a fragment of the error */
    } cases[] = {
        {"{{ s[1] }}{{ s[-1] }}{{ s[1:4] }}{{ s[::-1][:3] }}|{{ s | length }}", "édélldlr|11"},
        {"{{ 'a' ~ 1 ~ none ~ true }}", "a1NoneTrue"},
        {"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "1"},
        {"{{ [1, 2] + [3] }} {{ (1, 'a') }} {{ {'k': 'v'} }}", "[1, 2, 3] [1, 'a'] {'k': 'v'}"},
        {"{{ x + 1 }}", "!undefined"},
        {"{{ 1 / 2 }}", "!float"},
        {"{{ 1 // 0 }}", "!by zero"},
        {"{{ raise_exception('stop here') }}", "!stop here"},
        {"{% for i in range(2000000) %}{% endfor %}", "!range too long"},
        {"{{ 'x' * 100000000 }}", "!too large"},
        {"{% for a in [1] %}{% for b in [2] %}{{ loop.index }}{{ a }}{{ b }}{% endfor %}{% endfor %}", "112"},
        {"{% break %}", "!outside a loop"},
        {"{{ a.b }}", "!undefined value"},
        {"{{ 3.5 }}", "!floating-point"},
        {"{{ '\\u00e9\\x41\\n' }}", "\xc3\xa9\x41\n"},
        {"{% if true %}a{% else %}b{% endif %}{% if false %}c{% elif 0 %}d{% else %}e{% endif %}", "ae"},
        {"{{ 'abc' | upper | lower | capitalize }} {{ 'a b'.title() }} {{ 'xyx'.strip('x') }}", "Abc A B y"},
        {"{{ [3, 1] | first }}{{ [3, 1] | last }}{{ [] | first }}{{ 'ab' | list }}", "31['a', 'b']"},
        {"{{ 5 is odd }} {{ none is none }} {{ 'a' is string }} {{ 1 is not defined }}", "True True True False"},
        {"{{ 7 if false }}|{{ 'y' if 1 else 'n' }}", "|y"},
        {"{{", "!unclosed tag"},
        {"{{ }}", "!expected an expression"},
        {"{{ a | nosuchfilter }}", "!unsupported filter 'nosuchfilter'"},
        {"{% for %}", "!loop variable"},
        {"{% endfor %}", "!unsupported or unexpected tag"},
        {"{{ 'unterminated }}", "!unterminated string"},
        {"{% include 'x' %}", "!unsupported"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char out[256] = "", err[HIRED_ERR_LEN] = "";
        int rc = render1(cases[i].src, out, sizeof out, err);
        if (cases[i].want[0] == '!')
            CHECK_MSG(rc != 0 && strstr(err, cases[i].want + 1), "%s: want an error with \"%s\", got rc %d \"%s\" %s",
                      cases[i].src, cases[i].want + 1, rc, out, err);
        else
            CHECK_MSG(rc == 0 && !strcmp(out, cases[i].want), "%s: got \"%s\" (%s), want \"%s\"", cases[i].src, out,
                      err, cases[i].want);
    }
    /* deep nesting is an error, not a stack overflow */
    char deep[2000] = "{{ ";
    for (int i = 0; i < 300; i++) strcat(deep, "(");
    strcat(deep, " }}");
    char err[HIRED_ERR_LEN] = "", out[16];
    CHECK(render1(deep, out, sizeof out, err) != 0 && strstr(err, "nested too deeply"));
    /* allocation failures: parse and render report out of memory and leak nothing */
    const char *src = "{% for m in messages %}{{ m['role'] | upper }}{{ m.content[0].text ~ '!' }}{% endfor %}";
    tpl_t *t = NULL;
    for (long k = 0; k < 5000 && !t; k++) {
        mem_fail_after(k, false);
        t = tpl_new(src, "oom", true, NULL, NULL, err);
        mem_fail_after(-1, false);
        if (!t) CHECK_MSG(strstr(err, "out of memory"), "%s", err);
    }
    tpl_part_t p = {TPL_PART_TEXT, "hi"};
    tpl_message_t m = {"user", &p, 1};
    char *o = NULL;
    int rc = -1;
    for (long k = 0; k < 5000 && rc; k++) {
        mem_fail_after(k, false);
        rc = tpl_render_chat(t, &m, 1, true, &o, err);
        mem_fail_after(-1, false);
        if (rc) CHECK_MSG(rc == HIRED_ENOMEM && o == NULL, "rc %d %s", rc, err);
    }
    CHECK(rc == 0 && o && !strcmp(o, "USERhi!"));
    mem_free(o);
    tpl_destroy(&t);
}

int main(void) {
    test_outputs();
    test_errors();
    test_against_jinja();
    test_apply_chat_template();
    test_load();
    test_interpreter();
    return test_summary();
}
