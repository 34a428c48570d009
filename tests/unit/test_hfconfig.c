/* test_hfconfig — config.json / preprocessor_config.json written by the test: the real llava-hf
 * files, the class-default traps of transformers (Mistral rope_theta and sliding_window, Llama
 * rms_norm_eps, CLIP vision defaults), and every wrong type, range and unsupported value, each
 * with a message naming the file and key path; an allocation-failure sweep. */
#include "test.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "hfconfig.h"
#include "mem.h"

static char g_tmp[256];

static void write_file(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_tmp, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static bool has(const char *err, const char *needle) {
    bool ok = strstr(err, needle) != NULL;
    if (!ok) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err, needle);
    return ok;
}

/* Writes config.json and loads it. */
static int load_cfg(const char *json, hf_config_t *c, char *err) {
    write_file("config.json", json);
    err[0] = '\0';
    return hf_config_load(g_tmp, c, err);
}

static int load_pp(const char *json, hf_preproc_t *p, char *err) {
    write_file("preprocessor_config.json", json);
    err[0] = '\0';
    return hf_preproc_load(g_tmp, p, err);
}

// ---- real files ------------------------------------------------------------------------------

/* llava-hf/llava-v1.6-mistral-7b-hf config.json (abridged to the keys that matter) */
static const char *k_next_mistral =
    "{\"architectures\":[\"LlavaNextForConditionalGeneration\"],\"ignore_index\":-100,"
    "\"image_grid_pinpoints\":[[336,672],[672,336],[672,672],[1008,336],[336,1008]],"
    "\"image_token_index\":32000,\"model_type\":\"llava_next\",\"projector_hidden_act\":\"gelu\","
    "\"text_config\":{\"_name_or_path\":\"mistralai/Mistral-7B-Instruct-v0.2\",\"architectures\":[\"MistralForCausalLM\"],"
    "\"intermediate_size\":14336,\"max_position_embeddings\":32768,\"model_type\":\"mistral\",\"num_key_value_heads\":8,"
    "\"rms_norm_eps\":1e-05,\"rope_theta\":1000000.0,\"sliding_window\":null,\"torch_dtype\":\"bfloat16\",\"vocab_size\":32064},"
    "\"torch_dtype\":\"float16\",\"transformers_version\":\"4.39.0.dev0\",\"use_image_newline_parameter\":true,"
    "\"vision_config\":{\"hidden_size\":1024,\"image_size\":336,\"intermediate_size\":4096,\"model_type\":\"clip_vision_model\","
    "\"num_attention_heads\":16,\"num_hidden_layers\":24,\"patch_size\":14,\"projection_dim\":768,\"vocab_size\":32000},"
    "\"vision_feature_layer\":-2,\"vision_feature_select_strategy\":\"default\",\"vocab_size\":32064}";

/* llava-hf/llava-1.5-7b-hf */
static const char *k_llava15 =
    "{\"architectures\":[\"LlavaForConditionalGeneration\"],\"ignore_index\":-100,\"image_token_index\":32000,"
    "\"model_type\":\"llava\",\"pad_token_id\":32001,\"projector_hidden_act\":\"gelu\","
    "\"text_config\":{\"_name_or_path\":\"lmsys/vicuna-7b-v1.5\",\"architectures\":[\"LlamaForCausalLM\"],"
    "\"max_position_embeddings\":4096,\"model_type\":\"llama\",\"rms_norm_eps\":1e-05,\"torch_dtype\":\"float16\","
    "\"vocab_size\":32064},\"tie_word_embeddings\":false,\"torch_dtype\":\"float16\","
    "\"vision_config\":{\"hidden_size\":1024,\"image_size\":336,\"intermediate_size\":4096,\"model_type\":\"clip_vision_model\","
    "\"num_attention_heads\":16,\"num_hidden_layers\":24,\"patch_size\":14,\"projection_dim\":768,\"vocab_size\":32000},"
    "\"vision_feature_layer\":-2,\"vision_feature_select_strategy\":\"default\",\"vocab_size\":32064}";

static void test_real_configs(void) {
    char err[HIRED_ERR_LEN];
    hf_config_t c;
    CHECK_EQ_INT(load_cfg(k_next_mistral, &c, err), HIRED_OK);
    CHECK_EQ_INT(c.kind, HF_MODEL_LLAVA_NEXT);
    CHECK_EQ_INT(c.image_token_id, 32000);
    CHECK_EQ_INT(c.feature_layer, -2);
    CHECK(c.select_default);
    CHECK_EQ_INT(c.projector_act, HF_ACT_GELU_ERF);
    CHECK(c.projector_bias);
    CHECK(c.use_image_newline);
    CHECK_EQ_INT(c.n_pinpoints, 5);
    CHECK(c.pinpoints[3][0] == 1008 && c.pinpoints[3][1] == 336);
    CHECK(c.vision.hidden == 1024 && c.vision.intermediate == 4096 && c.vision.layers == 24 && c.vision.heads == 16);
    CHECK(c.vision.image_size == 336 && c.vision.patch_size == 14 && c.vision.channels == 3);
    CHECK(c.vision.eps == 1e-5f && c.vision.act == HF_ACT_QUICK_GELU);
    const hf_text_config_t *t = &c.text;
    CHECK_EQ_INT(t->kind, HF_TEXT_MISTRAL);
    CHECK(t->hidden == 4096 && t->intermediate == 14336 && t->layers == 32 && t->heads == 32);
    CHECK(t->kv_heads == 8 && t->head_dim == 128 && t->vocab == 32064 && t->max_pos == 32768);
    CHECK(t->rms_eps == 1e-5f && t->rope_theta == 1e6);
    CHECK_EQ_INT(t->sliding_window, -1); /* explicit null */
    CHECK(t->bos_id == 1 && t->eos_id == 2 && t->pad_id == -1);
    CHECK(!t->tie_embeddings);

    CHECK_EQ_INT(load_cfg(k_llava15, &c, err), HIRED_OK);
    CHECK_EQ_INT(c.kind, HF_MODEL_LLAVA);
    CHECK_EQ_INT(c.n_pinpoints, 0);
    CHECK(!c.use_image_newline);
    t = &c.text;
    CHECK_EQ_INT(t->kind, HF_TEXT_LLAMA);
    CHECK(t->hidden == 4096 && t->intermediate == 11008 && t->kv_heads == 32 && t->max_pos == 4096);
    CHECK(t->rms_eps == 1e-5f && t->rope_theta == 1e4 && t->sliding_window == -1);
    CHECK_EQ_INT(t->pad_id, 32001); /* from the top level */
}

// ---- defaults --------------------------------------------------------------------------------

static void test_defaults(void) {
    char err[HIRED_ERR_LEN];
    hf_config_t c;
    /* mistral without rope_theta / sliding_window / kv heads / eps: MistralConfig's defaults */
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava_next\",\"text_config\":{\"model_type\":\"mistral\"}}", &c, err), HIRED_OK);
    CHECK(c.text.rope_theta == 1e4);
    CHECK_EQ_INT(c.text.sliding_window, 4096);
    CHECK_EQ_INT(c.text.kv_heads, 8);
    CHECK(c.text.rms_eps == 1e-6f);
    CHECK_EQ_INT(c.text.intermediate, 14336);
    CHECK_EQ_INT(c.text.max_pos, 131072);
    CHECK_EQ_INT(c.text.vocab, 32000);
    CHECK_EQ_INT(c.n_pinpoints, 5); /* LlavaNextConfig's default pinpoints */
    CHECK(c.pinpoints[0][0] == 336 && c.pinpoints[0][1] == 672);
    /* mistral with an explicit window, and kv heads null = heads */
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava_next\",\"text_config\":{\"model_type\":\"mistral\",\"sliding_window\":1024,"
                          "\"num_key_value_heads\":null}}", &c, err), HIRED_OK);
    CHECK_EQ_INT(c.text.sliding_window, 1024);
    CHECK_EQ_INT(c.text.kv_heads, 32);
    /* llama without anything: LlamaConfig */
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"text_config\":{}}", &c, err), HIRED_OK);
    CHECK_EQ_INT(c.text.kind, HF_TEXT_LLAMA);
    CHECK(c.text.rms_eps == 1e-6f && c.text.rope_theta == 1e4);
    CHECK(c.text.kv_heads == 32 && c.text.intermediate == 11008 && c.text.max_pos == 2048 && c.text.sliding_window == -1);
    CHECK(c.text.bos_id == 1 && c.text.eos_id == 2 && c.text.pad_id == -1);
    /* no vision_config at all: LLaVA's CLIP-L/336; an empty one: CLIPVisionConfig's own defaults */
    CHECK(c.vision.hidden == 1024 && c.vision.layers == 24 && c.vision.image_size == 336 && c.vision.patch_size == 14);
    CHECK_EQ_INT(c.image_token_id, 32000);
    CHECK_EQ_INT(c.feature_layer, -2);
    CHECK(c.projector_bias);
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"vision_config\":{}}", &c, err), HIRED_OK);
    CHECK(c.vision.hidden == 768 && c.vision.intermediate == 3072 && c.vision.layers == 12 && c.vision.heads == 12);
    CHECK(c.vision.image_size == 224 && c.vision.patch_size == 32 && c.vision.act == HF_ACT_QUICK_GELU);
    CHECK(c.vision.eps == 1e-5f);
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"vision_config\":null,\"text_config\":null}", &c, err), HIRED_OK);
    CHECK(c.vision.hidden == 1024 && c.text.hidden == 4096);
    /* image_token_id (newer name), head_dim given, rope_parameters (transformers 5), ties, bias off */
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"image_token_id\":7,\"multimodal_projector_bias\":false,"
                          "\"vision_feature_select_strategy\":\"full\",\"vision_feature_layer\":-1,"
                          "\"text_config\":{\"vocab_size\":100,\"head_dim\":64,\"tie_word_embeddings\":true,"
                          "\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":500000.0},\"pad_token_id\":5}}",
                          &c, err), HIRED_OK);
    CHECK_EQ_INT(c.image_token_id, 7);
    CHECK(!c.projector_bias && !c.select_default);
    CHECK_EQ_INT(c.feature_layer, -1);
    CHECK(c.text.head_dim == 64 && c.text.tie_embeddings && c.text.rope_theta == 5e5 && c.text.pad_id == 5);
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"image_token_index\":9,\"image_token_id\":9,\"tie_word_embeddings\":true}",
                          &c, err), HIRED_OK);
    CHECK(c.image_token_id == 9 && c.text.tie_embeddings);
    /* LlavaConfig()'s own defaults put the image token at vocab_size: allowed */
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\"}", &c, err), HIRED_OK);
    CHECK(c.image_token_id == 32000 && c.text.vocab == 32000);
    /* the pad and eos ids may be null */
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"pad_token_id\":null,\"text_config\":{\"eos_token_id\":null}}", &c, err),
                 HIRED_OK);
    CHECK(c.text.pad_id == -1 && c.text.eos_id == -1 && c.text.n_eos == 0);
    /* a list of EOS ids (Llama-3) */
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"text_config\":{\"eos_token_id\":[128001, 128009]}}", &c, err),
                 HIRED_OK);
    CHECK(c.text.n_eos == 2 && c.text.eos_ids[0] == 128001 && c.text.eos_ids[1] == 128009 && c.text.eos_id == 128001);
    /* generation_config.json's eos_token_id wins (what generate() uses); absent there: config's */
    write_file("generation_config.json", "{\"eos_token_id\": [7, 9], \"bos_token_id\": 1}");
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"text_config\":{\"eos_token_id\":2}}", &c, err), HIRED_OK);
    CHECK(c.text.n_eos == 2 && c.text.eos_ids[0] == 7 && c.text.eos_ids[1] == 9 && c.text.eos_id == 7);
    write_file("generation_config.json", "{\"bos_token_id\": 1}");
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\",\"text_config\":{\"eos_token_id\":3}}", &c, err), HIRED_OK);
    CHECK(c.text.n_eos == 1 && c.text.eos_id == 3);
    write_file("generation_config.json", "{\"eos_token_id\": \"x\"}");
    CHECK_EQ_INT(load_cfg("{\"model_type\":\"llava\"}", &c, err), HIRED_EFORMAT);
    CHECK_MSG(strstr(err, "generation_config.json: eos_token_id"), "%s", err);
    {
        char gp[512];
        snprintf(gp, sizeof gp, "%s/generation_config.json", g_tmp);
        unlink(gp);
    }
}

// ---- errors ----------------------------------------------------------------------------------

typedef struct {
    const char *json;
    int code;
    const char *needle;
} bad_t;

static void test_bad_configs(void) {
    static const bad_t cases[] = {
        {"{\"model_type\":\"qwen2_vl\"}", HIRED_EUNSUPPORTED, "model_type 'qwen2_vl'"},
        {"{\"architectures\":[]}", HIRED_EFORMAT, "model_type"},
        {"{\"model_type\":3}", HIRED_EFORMAT, "model_type must be a string"},
        {"[1]", HIRED_EFORMAT, "not a JSON object"},
        {"{\"model_type\":\"llava\",", HIRED_EFORMAT, "malformed JSON"},
        {"{\"model_type\":\"llava\"} {}", HIRED_EFORMAT, "trailing"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"model_type\":\"qwen2\"}}", HIRED_EUNSUPPORTED, "text_config.model_type 'qwen2'"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"num_attention_heads\":-4}}", HIRED_ERANGE, "text_config.num_attention_heads must be"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"num_attention_heads\":\"32\"}}", HIRED_EFORMAT, "text_config.num_attention_heads must be an integer"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"num_attention_heads\":null}}", HIRED_EFORMAT, "text_config.num_attention_heads"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"hidden_size\":4.5}}", HIRED_EFORMAT, "text_config.hidden_size must be an integer"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"hidden_size\":1e300}}", HIRED_EFORMAT, "text_config.hidden_size"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"hidden_size\":4100}}", HIRED_ERANGE, "text_config.num_attention_heads (32) must divide hidden_size (4100)"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"num_key_value_heads\":5}}", HIRED_ERANGE, "text_config.num_key_value_heads (5) must divide"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"num_key_value_heads\":64}}", HIRED_ERANGE, "text_config.num_key_value_heads"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"model_type\":\"mistral\",\"num_attention_heads\":4,\"hidden_size\":64}}",
         HIRED_ERANGE, "num_key_value_heads (8)"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"rms_norm_eps\":-1}}", HIRED_ERANGE, "text_config.rms_norm_eps"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"rms_norm_eps\":\"1e-5\"}}", HIRED_EFORMAT, "text_config.rms_norm_eps must be a number"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"rope_theta\":0}}", HIRED_ERANGE, "text_config.rope_theta"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"model_type\":\"mistral\",\"sliding_window\":0}}", HIRED_ERANGE, "text_config.sliding_window"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"model_type\":\"mistral\",\"sliding_window\":\"4096\"}}", HIRED_EFORMAT, "text_config.sliding_window"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}}}", HIRED_EUNSUPPORTED, "text_config.rope_scaling"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"rope_parameters\":{\"rope_type\":\"yarn\"}}}", HIRED_EUNSUPPORTED, "rope_type 'yarn'"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"attention_bias\":true}}", HIRED_EUNSUPPORTED, "text_config.attention_bias"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"mlp_bias\":1}}", HIRED_EFORMAT, "text_config.mlp_bias must be true or false"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"hidden_act\":\"gelu\"}}", HIRED_EUNSUPPORTED, "text_config.hidden_act 'gelu'"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"eos_token_id\":[]}}", HIRED_ERANGE, "text_config.eos_token_id must list 1 to 8"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"eos_token_id\":[2,\"x\"]}}", HIRED_EFORMAT, "text_config.eos_token_id[1]"},
        {"{\"model_type\":\"llava_next\",\"quantization_config\":{\"quant_method\":\"awq\",\"bits\":4}}", HIRED_EUNSUPPORTED, "quantization_config (awq): quantised checkpoints"},
        {"{\"model_type\":\"llava\",\"quantization_config\":{\"load_in_4bit\":true}}", HIRED_EUNSUPPORTED, "quantization_config (bitsandbytes 4-bit)"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"quantization_config\":{\"quant_method\":\"gptq\"}}}", HIRED_EUNSUPPORTED, "text_config.quantization_config (gptq)"},
        {"{\"model_type\":\"llava_onevision\"}", HIRED_EUNSUPPORTED, "model_type 'llava_onevision' is not supported"},
        {"{\"model_type\":\"llava_next\",\"text_config\":{\"model_type\":\"qwen2\"}}", HIRED_EUNSUPPORTED, "text_config.model_type 'qwen2'"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"bos_token_id\":-5}}", HIRED_ERANGE, "text_config.bos_token_id"},
        {"{\"model_type\":\"llava\",\"text_config\":{\"head_dim\":63,\"num_attention_heads\":2}}", HIRED_ERANGE, "head_dim"},
        {"{\"model_type\":\"llava\",\"text_config\":[]}", HIRED_EFORMAT, "text_config must be an object"},
        {"{\"model_type\":\"llava\",\"vision_config\":\"clip\"}", HIRED_EFORMAT, "vision_config must be an object"},
        {"{\"model_type\":\"llava\",\"vision_config\":{\"model_type\":\"siglip_vision_model\"}}", HIRED_EUNSUPPORTED, "vision_config.model_type 'siglip_vision_model'"},
        {"{\"model_type\":\"llava\",\"vision_config\":{\"hidden_size\":0}}", HIRED_ERANGE, "vision_config.hidden_size"},
        {"{\"model_type\":\"llava\",\"vision_config\":{\"hidden_size\":1000,\"num_attention_heads\":16}}", HIRED_ERANGE, "vision_config.num_attention_heads (16) must divide hidden_size (1000)"},
        {"{\"model_type\":\"llava\",\"vision_config\":{\"image_size\":336,\"patch_size\":32}}", HIRED_ERANGE, "vision_config.patch_size"},
        {"{\"model_type\":\"llava\",\"vision_config\":{\"hidden_act\":\"gelu_pytorch_tanh\"}}", HIRED_EUNSUPPORTED, "vision_config.hidden_act 'gelu_pytorch_tanh'"},
        {"{\"model_type\":\"llava\",\"vision_config\":{\"layer_norm_eps\":null}}", HIRED_EFORMAT, "vision_config.layer_norm_eps"},
        {"{\"model_type\":\"llava\",\"projector_hidden_act\":\"gelu_pytorch_tanh\"}", HIRED_EUNSUPPORTED, "projector_hidden_act 'gelu_pytorch_tanh'"},
        {"{\"model_type\":\"llava\",\"projector_hidden_act\":\"gelu_new\"}", HIRED_EUNSUPPORTED, "projector_hidden_act"},
        {"{\"model_type\":\"llava\",\"multimodal_projector_bias\":\"yes\"}", HIRED_EFORMAT, "multimodal_projector_bias"},
        {"{\"model_type\":\"llava_next\",\"use_image_newline_parameter\":1}", HIRED_EFORMAT, "use_image_newline_parameter"},
        {"{\"model_type\":\"llava\",\"vision_feature_layer\":25}", HIRED_ERANGE, "vision_feature_layer must be an integer in [-25, 24]"},
        {"{\"model_type\":\"llava\",\"vision_feature_layer\":-26}", HIRED_ERANGE, "vision_feature_layer"},
        {"{\"model_type\":\"llava\",\"vision_feature_layer\":[-2,-5]}", HIRED_EUNSUPPORTED, "vision_feature_layer"},
        {"{\"model_type\":\"llava\",\"vision_feature_layer\":null}", HIRED_EFORMAT, "vision_feature_layer"},
        {"{\"model_type\":\"llava\",\"vision_feature_select_strategy\":\"cls\"}", HIRED_ERANGE, "vision_feature_select_strategy"},
        {"{\"model_type\":\"llava\",\"image_token_index\":-1}", HIRED_ERANGE, "image_token_index"},
        {"{\"model_type\":\"llava\",\"image_token_index\":32000,\"image_token_id\":32001}", HIRED_EFORMAT, "differ"},
        {"{\"model_type\":\"llava\",\"image_token_index\":\"32000\"}", HIRED_EFORMAT, "image_token_index must be an integer"},
        {"{\"model_type\":\"llava_next\",\"image_grid_pinpoints\":[[336,672],[600,336]]}", HIRED_ERANGE, "image_grid_pinpoints[1] = [600, 336]"},
        {"{\"model_type\":\"llava_next\",\"image_grid_pinpoints\":[[336,672],[336]]}", HIRED_EFORMAT, "image_grid_pinpoints[1]"},
        {"{\"model_type\":\"llava_next\",\"image_grid_pinpoints\":[[336,-672]]}", HIRED_EFORMAT, "image_grid_pinpoints[0]"},
        {"{\"model_type\":\"llava_next\",\"image_grid_pinpoints\":[]}", HIRED_ERANGE, "image_grid_pinpoints"},
        {"{\"model_type\":\"llava_next\",\"image_grid_pinpoints\":\"(1x1),(2x2)\"}", HIRED_EFORMAT, "image_grid_pinpoints"},
        {"{\"model_type\":\"llava_next\",\"image_grid_pinpoints\":[[336,336],[336,336],[336,336],[336,336],[336,336],"
         "[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],"
         "[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],[336,336],"
         "[336,336],[336,336],[336,336],[336,336],[336,336],[336,336]]}", HIRED_ERANGE, "1 to 32 entries"},
        {"{\"model_type\":\"llava\",\"tie_word_embeddings\":null}", HIRED_EFORMAT, "tie_word_embeddings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[HIRED_ERR_LEN];
        hf_config_t c;
        int rc = load_cfg(cases[i].json, &c, err);
        CHECK_MSG(rc == cases[i].code, "case %zu: got %d (%s), want %d", i, rc, err, cases[i].code);
        CHECK(has(err, "config.json"));
        CHECK(has(err, cases[i].needle));
    }
    char err[HIRED_ERR_LEN];
    hf_config_t c;
    CHECK_EQ_INT(hf_config_load("/nonexistent/dir", &c, err), HIRED_ENOTFOUND);
    CHECK(has(err, "/nonexistent/dir/config.json"));
}

// ---- preprocessor_config.json ----------------------------------------------------------------

static const char *k_pp_next =
    "{\"aspect_ratio_setting\":\"anyres\",\"crop_size\":{\"height\":336,\"width\":336},\"do_center_crop\":true,"
    "\"do_convert_rgb\":true,\"do_normalize\":true,\"do_pad\":true,\"do_rescale\":true,\"do_resize\":true,"
    "\"image_grid_pinpoints\":[[336,672],[672,336],[672,672],[1008,336],[336,1008]],"
    "\"image_mean\":[0.48145466,0.4578275,0.40821073],\"image_processor_type\":\"LlavaNextImageProcessor\","
    "\"image_std\":[0.26862954,0.26130258,0.27577711],\"processor_class\":\"LlavaNextProcessor\",\"resample\":3,"
    "\"rescale_factor\":0.00392156862745098,\"size\":{\"shortest_edge\":336}}";

static void test_preproc(void) {
    char err[HIRED_ERR_LEN];
    hf_preproc_t p;
    CHECK_EQ_INT(load_pp(k_pp_next, &p, err), HIRED_OK);
    CHECK(p.shortest_edge == 336 && p.crop_h == 336 && p.crop_w == 336);
    CHECK(p.do_resize && p.do_center_crop && p.do_rescale && p.do_normalize && p.do_pad && p.do_convert_rgb);
    CHECK(p.rescale_factor == 1.0 / 255.0);
    CHECK(p.mean[0] == 0.48145466f && p.mean[2] == 0.40821073f && p.std[1] == 0.26130258f);
    CHECK_EQ_INT(p.resample, 3);
    CHECK_EQ_INT(p.n_pinpoints, 5);
    CHECK(p.pinpoints[4][0] == 336 && p.pinpoints[4][1] == 1008);
    /* CLIPImageProcessor with nothing given: its class defaults */
    CHECK_EQ_INT(load_pp("{\"image_processor_type\":\"CLIPImageProcessor\"}", &p, err), HIRED_OK);
    CHECK(p.shortest_edge == 224 && p.crop_h == 224 && p.crop_w == 224 && p.resample == 3);
    CHECK(!p.do_pad && p.n_pinpoints == 0 && p.do_resize && p.do_center_crop);
    CHECK(p.mean[1] == 0.4578275f && p.std[2] == 0.27577711f && p.rescale_factor == 1.0 / 255.0);
    /* LlavaNextImageProcessor: do_pad and the default pinpoints; integer size/crop, scalar mean */
    CHECK_EQ_INT(load_pp("{\"image_processor_type\":\"LlavaNextImageProcessor\",\"crop_size\":336,\"size\":336,"
                         "\"image_mean\":0.5,\"image_std\":[1,2,3]}", &p, err), HIRED_OK);
    CHECK(p.do_pad && p.n_pinpoints == 5 && p.crop_h == 336 && p.crop_w == 336 && p.shortest_edge == 336);
    CHECK(p.mean[0] == 0.5f && p.mean[2] == 0.5f && p.std[2] == 3.0f);
    /* the LlavaNext defaults with CLIP's 224 crop are not multiples: refused */
    CHECK_EQ_INT(load_pp("{\"image_processor_type\":\"LlavaNextImageProcessor\"}", &p, err), HIRED_ERANGE);
    CHECK(has(err, "image_grid_pinpoints[0]"));

    static const bad_t cases[] = {
        {"{\"resample\":2}", HIRED_EUNSUPPORTED, "resample 2"},
        {"{\"resample\":\"bicubic\"}", HIRED_EFORMAT, "resample"},
        {"{\"size\":{\"height\":336,\"width\":336}}", HIRED_EUNSUPPORTED, "size"},
        {"{\"size\":{\"longest_edge\":336}}", HIRED_EFORMAT, "size"},
        {"{\"size\":{\"shortest_edge\":-1}}", HIRED_ERANGE, "size.shortest_edge"},
        {"{\"size\":\"336\"}", HIRED_EFORMAT, "size"},
        {"{\"crop_size\":{\"height\":336}}", HIRED_EFORMAT, "crop_size"},
        {"{\"crop_size\":{\"height\":336,\"width\":0}}", HIRED_ERANGE, "crop_size.width"},
        {"{\"image_mean\":[0.5,0.5]}", HIRED_EFORMAT, "image_mean"},
        {"{\"image_std\":[0.5,0,0.5]}", HIRED_ERANGE, "image_std[1]"},
        {"{\"image_std\":[0.5,\"x\",0.5]}", HIRED_EFORMAT, "image_std"},
        {"{\"rescale_factor\":0}", HIRED_ERANGE, "rescale_factor"},
        {"{\"do_resize\":\"true\"}", HIRED_EFORMAT, "do_resize must be true or false"},
        {"{\"image_processor_type\":\"SiglipImageProcessor\"}", HIRED_EUNSUPPORTED, "SiglipImageProcessor"},
        {"{\"image_processor_type\":\"LlavaNextImageProcessor\",\"crop_size\":336,\"image_grid_pinpoints\":[[336,500]]}",
         HIRED_ERANGE, "image_grid_pinpoints[0]"},
        {"{\"image_processor_type\":\"LlavaNextImageProcessor\",\"crop_size\":336,\"image_grid_pinpoints\":{}}",
         HIRED_EFORMAT, "image_grid_pinpoints"},
        {"{oops}", HIRED_EFORMAT, "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = load_pp(cases[i].json, &p, err);
        CHECK_MSG(rc == cases[i].code, "pp case %zu: got %d (%s), want %d", i, rc, err, cases[i].code);
        CHECK(has(err, "preprocessor_config.json"));
        CHECK(has(err, cases[i].needle));
    }
    CHECK_EQ_INT(hf_preproc_load("/nonexistent/dir", &p, err), HIRED_ENOTFOUND);
}

// ---- allocation failures ---------------------------------------------------------------------

static void test_alloc_sweep(void) {
    char err[HIRED_ERR_LEN];
    hf_config_t c;
    write_file("config.json", k_next_mistral);
    int bad = 0;
    long i;
    for (i = 0; i < 100000; i++) {
        mem_fail_after(i, false);
        int rc = hf_config_load(g_tmp, &c, err);
        mem_fail_after(-1, false);
        if (rc == HIRED_OK) break;
        if (rc != HIRED_ENOMEM) {
            bad++;
            fprintf(stderr, "  sweep step %ld: rc %d (%s)\n", i, rc, err);
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(i > 10 && i < 100000);
    CHECK_EQ_INT(c.text.kv_heads, 8);

    hf_preproc_t p;
    write_file("preprocessor_config.json", k_pp_next);
    for (i = 0; i < 100000; i++) {
        mem_fail_after(i, false);
        int rc = hf_preproc_load(g_tmp, &p, err);
        mem_fail_after(-1, false);
        if (rc == HIRED_OK) break;
        if (rc != HIRED_ENOMEM) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(i > 10 && i < 100000);
}

// ---- fixture models --------------------------------------------------------------------------

/* The tiny fixture models (tools/reference/tiny_models.py): real CLIP-L/336 geometry at width
 * 32, a 2-layer Mistral (GQA 4/2) for NeXT and a 2-layer Llama for 1.5. */
static bool fixture_dir(const char *rel, char *dir, size_t cap) {
    snprintf(dir, cap, "%s", test_fixture(rel));
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("skip: fixture %s not present\n", rel);
        return false;
    }
    return true;
}

static void check_fixture_common(const hf_config_t *c, const hf_preproc_t *p) {
    const hf_vision_config_t *v = &c->vision;
    CHECK(v->hidden == 32 && v->intermediate == 128 && v->layers == 24 && v->heads == 16);
    CHECK(v->image_size == 336 && v->patch_size == 14 && v->channels == 3);
    CHECK(v->eps == 1e-5f && v->act == HF_ACT_QUICK_GELU);
    CHECK(c->image_token_id == 32000 && c->feature_layer == -2 && c->select_default);
    CHECK(c->projector_act == HF_ACT_GELU_ERF && c->projector_bias);
    const hf_text_config_t *t = &c->text;
    CHECK(t->hidden == 32 && t->intermediate == 64 && t->layers == 2 && t->heads == 4 && t->head_dim == 8);
    CHECK(t->vocab == 32064 && t->max_pos == 4096 && t->rms_eps == 1e-5f);
    CHECK(t->bos_id == 1 && t->eos_id == 2 && !t->tie_embeddings);
    CHECK(p->shortest_edge == 336 && p->crop_h == 336 && p->crop_w == 336 && p->resample == 3);
    CHECK(p->rescale_factor == 1.0 / 255.0 && p->mean[0] == 0.48145466f && p->std[2] == 0.27577711f);
    CHECK(p->do_resize && p->do_center_crop && p->do_rescale && p->do_normalize && p->do_convert_rgb);
}

static void test_fixtures(void) {
    char dir[4096], err[HIRED_ERR_LEN];
    hf_config_t c;
    hf_preproc_t p;
    if (fixture_dir("models/llava-next-tiny", dir, sizeof dir)) {
        int rc = hf_config_load(dir, &c, err);
        CHECK_MSG(rc == HIRED_OK, "%s", err);
        rc = hf_preproc_load(dir, &p, err);
        CHECK_MSG(rc == HIRED_OK, "%s", err);
        check_fixture_common(&c, &p);
        CHECK(c.kind == HF_MODEL_LLAVA_NEXT && c.use_image_newline);
        CHECK(c.n_pinpoints == 5 && c.pinpoints[2][0] == 672 && c.pinpoints[2][1] == 672);
        CHECK(c.text.kind == HF_TEXT_MISTRAL && c.text.kv_heads == 2);
        CHECK(c.text.rope_theta == 1e6 && c.text.sliding_window == -1 && c.text.pad_id == -1);
        CHECK(p.do_pad && p.n_pinpoints == 5 && p.pinpoints[3][0] == 1008 && p.pinpoints[3][1] == 336);
    }
    if (fixture_dir("models/llava15-tiny", dir, sizeof dir)) {
        int rc = hf_config_load(dir, &c, err);
        CHECK_MSG(rc == HIRED_OK, "%s", err);
        rc = hf_preproc_load(dir, &p, err);
        CHECK_MSG(rc == HIRED_OK, "%s", err);
        check_fixture_common(&c, &p);
        CHECK(c.kind == HF_MODEL_LLAVA && !c.use_image_newline && c.n_pinpoints == 0);
        CHECK(c.text.kind == HF_TEXT_LLAMA && c.text.kv_heads == 4);
        CHECK(c.text.rope_theta == 1e4 && c.text.sliding_window == -1 && c.text.pad_id == 32001);
        CHECK(!p.do_pad && p.n_pinpoints == 0);
    }
}

int main(void) {
    if (!test_tmpdir(g_tmp, sizeof g_tmp, "test_hfconfig")) return 1;
    test_real_configs();
    test_defaults();
    test_bad_configs();
    test_preproc();
    test_alloc_sweep();
    test_fixtures();
    test_rmtree(g_tmp);
    return test_summary();
}
