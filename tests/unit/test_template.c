/* test_template.c — chat templates: exact output of each, the "<image> already present" and raw
 * modes, unknown names, and the <image> position check. Also cross-checks the prompts that the
 * llava-hf processors' Jinja templates render (tests/fixtures/tokenizer/cases.json "templates"). */
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "mem.h"
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
    CHECK(tpl_render("chatml", "hi", &out, err) == HIRED_EINVAL && out == NULL);
    CHECK_MSG(strstr(err, "chatml") && strstr(err, "vicuna") && strstr(err, "mistral") && strstr(err, "llava-1.5") &&
                  strstr(err, "vicuna-system") && strstr(err, "raw"),
              "%s", err);
    CHECK(tpl_render(NULL, "hi", &out, err) == HIRED_EINVAL);
    CHECK(tpl_render("vicuna", NULL, &out, err) == HIRED_EINVAL);
    int n = 0;
    for (const char *const *p = tpl_names(); *p; p++) n++;
    CHECK_EQ_INT(n, 6);

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

int main(void) {
    test_outputs();
    test_errors();
    test_against_jinja();
    return test_summary();
}
