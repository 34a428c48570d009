/* template.c — see template.h. Owns: finding and reading a checkpoint's chat template, the
 * built-in fallback templates (Jinja texts), turning a conversation into the Jinja variables
 * transformers passes, and the <image> position helpers.
 * Invariant: a tpl_t is immutable after construction (renders may run concurrently).
 * Not here: the Jinja interpreter (jinja_parse.c, jinja_eval.c). */
#include "template.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "file.h"
#include "jinja.h"
#include "json.h"
#include "mem.h"

#define TPL_MAX_FILE ((size_t)16 << 20)

struct tpl {
    jinja_t *j;
    bool content_list;
    char *source;
    char *bos, *eos, *unk, *pad; /* special-token strings, or NULL */
    const char *default_system;  /* built-ins: system text used when the conversation has none */
};

// ---- built-in templates -------------------------------------------------------------------------
/* The llava-hf processors' templates (their chat_template.json), as Jinja. */

#define IMAGES_FIRST "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
#define TEXTS(expr)                                                                                                    \
    "{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', "   \
    "'text') %}{{ " expr " }}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', "        \
    "'equalto', 'text') %}{% generation %}{{ " expr " }}{% endgeneration %}{% endfor %}{% endif %}"

static const char k_vicuna[] =
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    IMAGES_FIRST TEXTS("content['text'] + ' '") "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

static const char k_mistral[] =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\n' + message['content'][0]['text'] "
    "+ '\n<</SYS>>\n\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' }}" IMAGES_FIRST
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{{' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> '}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

static const char k_chatml[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}" IMAGES_FIRST TEXTS("content['text']")
    "{{'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

static const char k_llama3[] =
    "{% for message in messages %}{{'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'}}" IMAGES_FIRST
    TEXTS("content['text'] + '<|eot_id|>'")
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

static const char k_raw[] =
    "{% for message in messages %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{% endfor %}";

#define SYSTEM_HUMAN                                                                                                   \
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "          \
    "detailed, and polite answers to the human's questions."
#define SYSTEM_USER                                                                                                    \
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "           \
    "detailed, and polite answers to the user's questions."

static const struct {
    const char *name, *src, *system;
} k_builtin[] = {
    {"vicuna", k_vicuna, NULL},          {"llava-1.5", k_vicuna, NULL},           {"vicuna-system", k_vicuna, SYSTEM_HUMAN},
    {"vicuna-lmms-eval", k_vicuna, SYSTEM_USER}, {"mistral", k_mistral, NULL}, {"chatml", k_chatml, NULL},
    {"llama3", k_llama3, NULL},          {"raw", k_raw, NULL},
};

static const char *const k_names[] = {"vicuna", "llava-1.5", "vicuna-system", "vicuna-lmms-eval", "mistral",
                                      "chatml", "llama3",    "raw",           NULL};

const char *const *tpl_names(void) { return k_names; }

// ---- construction ---------------------------------------------------------------------------------

void tpl_destroy(tpl_t **p) {
    if (!p || !*p) return;
    tpl_t *t = *p;
    jinja_destroy(&t->j);
    mem_free(t->source);
    mem_free(t->bos);
    mem_free(t->eos);
    mem_free(t->unk);
    mem_free(t->pad);
    mem_free(t);
    *p = NULL;
}

const char *tpl_source(const tpl_t *t) { return t->source; }

/* A template object around parsed source; strings copied. NULL (err filled) on failure. */
static tpl_t *make(const char *src, size_t n, const char *name, const char *source, bool content_list, char *err) {
    tpl_t *t = mem_calloc(1, sizeof *t);
    if (!t || !(t->source = mem_strdup(source))) {
        hired_errf(err, HIRED_ENOMEM, "%s: out of memory", name);
        tpl_destroy(&t);
        return NULL;
    }
    t->content_list = content_list;
    if (!(t->j = jinja_parse(src, n, name, err))) tpl_destroy(&t);
    return t;
}

/* Copies s into *dst unless NULL. false when out of memory. */
static bool set_str(char **dst, const char *s) {
    mem_free(*dst);
    *dst = NULL;
    return !s || (*dst = mem_strdup(s)) != NULL;
}

tpl_t *tpl_new(const char *src, const char *name, bool content_list, const char *bos, const char *eos, char *err) {
    if (!src) {
        hired_errf(err, HIRED_EINVAL, "%s: no template source", name ? name : "template");
        return NULL;
    }
    tpl_t *t = make(src, strlen(src), name ? name : "template", name ? name : "template", content_list, err);
    if (t && (!set_str(&t->bos, bos) || !set_str(&t->eos, eos))) {
        hired_errf(err, HIRED_ENOMEM, "%s: out of memory", name ? name : "template");
        tpl_destroy(&t);
    }
    return t;
}

static int unknown_name(const char *name, char *err) {
    char known[256] = "";
    for (size_t i = 0; k_names[i]; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, k_names[i], sizeof known - strlen(known) - 1);
    }
    return hired_errf(err, HIRED_EINVAL, "unknown chat template \"%s\" (known: %s)", name ? name : "(null)", known);
}

tpl_t *tpl_builtin(const char *name, char *err) {
    for (size_t i = 0; name && i < ARRAY_LEN(k_builtin); i++)
        if (!strcmp(k_builtin[i].name, name)) {
            char label[64];
            snprintf(label, sizeof label, "built-in template %s", name);
            tpl_t *t = make(k_builtin[i].src, strlen(k_builtin[i].src), label, name, true, err);
            if (t) t->default_system = k_builtin[i].system;
            return t;
        }
    unknown_name(name, err);
    return NULL;
}

/* A special token in tokenizer_config.json / special_tokens_map.json: a string or an
 * AddedToken object {"content": ...}. NULL when absent or of another type. */
static const char *special_token(const cJSON *root, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsObject(it)) it = cJSON_GetObjectItemCaseSensitive(it, "content");
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Reads dir/name as JSON into *root: 0, HIRED_ENOTFOUND when absent, or an error. */
static int read_json(const char *dir, const char *name, char *path, size_t np, cJSON **root, char *err) {
    if ((size_t)snprintf(path, np, "%s/%s", dir, name) >= np)
        return hired_errf(err, HIRED_ERANGE, "model directory path too long: %s", dir);
    *root = NULL;
    return json_read_file(path, TPL_MAX_FILE, root, err);
}

/* The "chat_template" of a JSON file: a string, or (tokenizer_config.json) a list of
 * {name, template} from which "default" is taken. *src borrowed from root; NULL when absent. */
static int template_field(const cJSON *root, const char *path, const char **src, char *err) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    *src = NULL;
    if (!ct || cJSON_IsNull(ct)) return HIRED_OK;
    if (cJSON_IsString(ct)) {
        *src = ct->valuestring;
        return HIRED_OK;
    }
    if (cJSON_IsArray(ct)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, ct) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            const cJSON *tx = cJSON_GetObjectItemCaseSensitive(it, "template");
            if (!cJSON_IsString(nm) || !cJSON_IsString(tx))
                return hired_errf(err, HIRED_EFORMAT, "%s: chat_template entries must be {\"name\": ..., \"template\": ...}",
                                  path);
            if (!strcmp(nm->valuestring, "default")) *src = tx->valuestring;
        }
        if (!*src) return hired_errf(err, HIRED_EUNSUPPORTED, "%s: chat_template has no \"default\" entry", path);
        return HIRED_OK;
    }
    return hired_errf(err, HIRED_EFORMAT, "%s: chat_template must be a string or a list", path);
}

int tpl_load(const char *dir, tpl_t **out, char *err) {
    char path[4200];
    *out = NULL;
    cJSON *tc = NULL, *root = NULL;
    int rc = read_json(dir, "tokenizer_config.json", path, sizeof path, &tc, err);
    if (rc && rc != HIRED_ENOTFOUND) return rc;
    cJSON *stm = NULL;
    char stm_path[4200];
    if (read_json(dir, "special_tokens_map.json", stm_path, sizeof stm_path, &stm, err)) stm = NULL;

    tpl_t *t = NULL;
    /* 1. chat_template.jinja (raw text) */
    uint8_t *buf = NULL;
    size_t n = 0;
    int fr = (size_t)snprintf(path, sizeof path, "%s/chat_template.jinja", dir) < sizeof path
                 ? file_read(path, TPL_MAX_FILE, &buf, &n, err)
                 : HIRED_ENOTFOUND;
    if (fr != HIRED_ENOTFOUND) {
        rc = fr;
        if (!rc && !(t = make((const char *)buf, n, path, "chat_template.jinja", true, err))) rc = HIRED_EFORMAT;
        mem_free(buf);
    } else {
        /* 2.-4. a "chat_template" field */
        static const struct {
            const char *file;
            bool list;
        } srcs[] = {{"chat_template.json", true}, {"processor_config.json", true}, {"tokenizer_config.json", false}};
        rc = HIRED_OK;
        for (size_t i = 0; i < ARRAY_LEN(srcs) && !t && !rc; i++) {
            const char *src = NULL;
            char p2[4200];
            cJSON *r = NULL;
            if (i == 2) r = tc, snprintf(p2, sizeof p2, "%s/%s", dir, srcs[i].file);
            else {
                int e = read_json(dir, srcs[i].file, p2, sizeof p2, &root, err);
                if (e == HIRED_ENOTFOUND) continue;
                if (e) {
                    rc = e;
                    break;
                }
                r = root;
            }
            if (r && !(rc = template_field(r, p2, &src, err)) && src) {
                char name[4300];
                snprintf(name, sizeof name, "%s: chat_template", p2);
                if (!(t = make(src, strlen(src), name, srcs[i].file, srcs[i].list, err))) rc = HIRED_EFORMAT;
            }
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (t) { /* special tokens: tokenizer_config.json, else special_tokens_map.json */
        static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
        char **dst[] = {&t->bos, &t->eos, &t->unk, &t->pad};
        for (size_t k = 0; k < 4 && !rc; k++) {
            const char *s = special_token(tc, keys[k]);
            if (!s) s = special_token(stm, keys[k]);
            if (!set_str(dst[k], s)) rc = hired_errf(err, HIRED_ENOMEM, "out of memory reading the chat template");
        }
    }
    cJSON_Delete(tc);
    cJSON_Delete(stm);
    if (rc) {
        tpl_destroy(&t);
        return rc;
    }
    *out = t;
    return HIRED_OK;
}

// ---- rendering ------------------------------------------------------------------------------------

int tpl_render_chat(const tpl_t *t, const tpl_message_t *msgs, int n, bool add_generation_prompt, char **out,
                    char *err) {
    *out = NULL;
    if (n < 0 || (n > 0 && !msgs)) return hired_errf(err, HIRED_EINVAL, "chat: no messages");
    bool has_system = false;
    for (int i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].role[0])
            return hired_errf(err, HIRED_EINVAL, "chat: message %d has no role", i);
        if (msgs[i].n_parts < 0 || (msgs[i].n_parts > 0 && !msgs[i].parts))
            return hired_errf(err, HIRED_EINVAL, "chat: message %d has no content", i);
        for (int k = 0; k < msgs[i].n_parts; k++)
            if (msgs[i].parts[k].kind == TPL_PART_TEXT && !msgs[i].parts[k].text)
                return hired_errf(err, HIRED_EINVAL, "chat: message %d part %d has no text", i, k);
        has_system = has_system || !strcmp(msgs[i].role, "system");
    }
    jarena_t *a = jarena_new();
    jv_t *vars = jv_dict(a), *list = jv_list(a);
    int rc = vars && list ? HIRED_OK : HIRED_ENOMEM;
    int first = t->default_system && !has_system ? -1 : 0;
    for (int i = first; !rc && i < n; i++) {
        tpl_part_t sys = {TPL_PART_TEXT, t->default_system};
        const tpl_message_t dm = {"system", &sys, 1}, *m = i < 0 ? &dm : &msgs[i];
        jv_t *msg = jv_dict(a), *content;
        if (t->content_list) {
            content = jv_list(a);
            for (int k = 0; !rc && k < m->n_parts; k++) {
                jv_t *p = jv_dict(a);
                bool img = m->parts[k].kind == TPL_PART_IMAGE;
                rc = jv_dict_set(a, p, "type", jv_str(a, img ? "image" : "text", img ? 5 : 4));
                if (!rc && !img) rc = jv_dict_set(a, p, "text", jv_str(a, m->parts[k].text, strlen(m->parts[k].text)));
                if (!rc) rc = jv_list_push(a, content, p);
            }
        } else {
            size_t len = 0;
            for (int k = 0; k < m->n_parts; k++)
                len += m->parts[k].kind == TPL_PART_IMAGE ? strlen(TPL_IMAGE "\n") : strlen(m->parts[k].text);
            char *s = mem_alloc(len + 1);
            if (s) {
                s[0] = '\0';
                for (int k = 0; k < m->n_parts; k++)
                    strcat(s, m->parts[k].kind == TPL_PART_IMAGE ? TPL_IMAGE "\n" : m->parts[k].text);
            }
            content = s ? jv_str(a, s, len) : NULL;
            mem_free(s);
        }
        if (!rc) rc = jv_dict_set(a, msg, "role", jv_str(a, m->role, strlen(m->role)));
        if (!rc) rc = jv_dict_set(a, msg, "content", content);
        if (!rc) rc = jv_list_push(a, list, msg);
    }
    if (!rc) rc = jv_dict_set(a, vars, "messages", list);
    if (!rc) rc = jv_dict_set(a, vars, "add_generation_prompt", jv_bool(a, add_generation_prompt));
    if (!rc) rc = jv_dict_set(a, vars, "tools", jv_none(a));
    if (!rc) rc = jv_dict_set(a, vars, "documents", jv_none(a));
    const char *const names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    const char *vals[] = {t->bos, t->eos, t->unk, t->pad};
    for (int k = 0; !rc && k < 4; k++)
        if (vals[k]) rc = jv_dict_set(a, vars, names[k], jv_str(a, vals[k], strlen(vals[k])));
    if (rc) {
        jarena_destroy(&a);
        return hired_errf(err, HIRED_ENOMEM, "out of memory rendering the chat template");
    }
    rc = jinja_render(t->j, vars, out, NULL, err);
    jarena_destroy(&a);
    return rc;
}

/* Single question: a user message of [image, text] (or [text] when the question holds
 * "<image>" already, or for raw). */
int tpl_render(const char *name, const char *question, char **out, char *err) {
    *out = NULL;
    bool known = false;
    for (size_t i = 0; name && i < ARRAY_LEN(k_builtin); i++) known = known || !strcmp(k_builtin[i].name, name);
    if (!known) return unknown_name(name, err);
    tpl_t *t = tpl_builtin(name, err);
    if (!t) return HIRED_ENOMEM;
    if (!question) {
        tpl_destroy(&t);
        return hired_errf(err, HIRED_EINVAL, "chat template %s: no question", name);
    }
    bool image = strcmp(name, "raw") && !strstr(question, TPL_IMAGE);
    tpl_part_t parts[2] = {{TPL_PART_IMAGE, NULL}, {TPL_PART_TEXT, question}};
    tpl_message_t m = {"user", image ? parts : parts + 1, image ? 2 : 1};
    int rc = tpl_render_chat(t, &m, 1, true, out, err);
    tpl_destroy(&t);
    return rc;
}

void tpl_image_positions(const int32_t *ids, int n, int32_t image_id, int *pos, int max, int *count) {
    int c = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] == image_id) {
            if (c < max) pos[c] = i;
            c++;
        }
    *count = c;
}

/* One pass: the first position is kept, the count decides the error. */
int tpl_image_pos(const int32_t *ids, int n, int32_t image_id, int *pos, char *err) {
    int count = 0;
    tpl_image_positions(ids, n, image_id, pos, 1, &count);
    if (count == 0) return hired_errf(err, HIRED_EINVAL, "prompt has no " TPL_IMAGE " placeholder");
    if (count > 1)
        return hired_errf(err, HIRED_EINVAL, "prompt has %d " TPL_IMAGE " placeholders; exactly one is supported",
                          count);
    return HIRED_OK;
}
