/* hfconfig.h — what hired reads from a Hugging Face LLaVA model directory's config.json and
 * preprocessor_config.json (docs/numerics.md §1, §7.4), with the class defaults of transformers
 * applied to every absent key (the default traps: LlamaConfig/MistralConfig rms_norm_eps 1e-6,
 * Mistral rope_theta 1e4 and sliding_window 4096 when absent, null = no window).
 * Parsing goes through cJSON; every wrong type or out-of-range value is an error naming the
 * file and key path ("DIR/config.json: text_config.num_attention_heads must be ...").
 * Codes: HIRED_ENOTFOUND (no file), HIRED_EIO, HIRED_EFORMAT (malformed JSON, wrong type),
 * HIRED_ERANGE (value out of range, inconsistent sizes), HIRED_EUNSUPPORTED (well-formed but
 * not something hired runs: other model types and architectures, quantised checkpoints
 * (quantization_config: AWQ, GPTQ, bitsandbytes, ...), tanh GELU, rope_scaling, biases in the
 * LLM, non-bicubic resampling...), HIRED_ENOMEM. All of it is read before any weight.
 * Not here: tensors (st.h), tokenizer.json (decoder_worker). */
#ifndef HIRED_HFCONFIG_H
#define HIRED_HFCONFIG_H

#include <stdbool.h>

#define HF_MAX_PINPOINTS 32
#define HF_MAX_EOS 8

typedef enum { HF_MODEL_LLAVA = 0, HF_MODEL_LLAVA_NEXT } hf_model_kind_t;
typedef enum { HF_ACT_QUICK_GELU = 0, HF_ACT_GELU_ERF, HF_ACT_SILU } hf_act_t;
typedef enum { HF_TEXT_LLAMA = 0, HF_TEXT_MISTRAL } hf_text_kind_t;

typedef struct {
    int hidden;       /* 1024 for CLIP-L */
    int intermediate; /* 4096 */
    int layers;       /* 24 */
    int heads;        /* 16 */
    int image_size;   /* 336 */
    int patch_size;   /* 14 */
    int channels;     /* 3 */
    float eps;        /* layer_norm_eps, 1e-5 */
    hf_act_t act;     /* quick_gelu */
} hf_vision_config_t;

typedef struct {
    hf_text_kind_t kind;
    int hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, max_pos;
    float rms_eps;
    double rope_theta;
    int sliding_window; /* -1: none (Llama; Mistral with explicit null); Mistral absent: 4096 */
    int bos_id, eos_id;   /* class defaults 1 and 2; -1 when null. eos_id = eos_ids[0] */
    int eos_ids[HF_MAX_EOS]; /* every id that ends generation: generation_config.json's
                                eos_token_id when that file has one, else text_config's */
    int n_eos;
    int pad_id;           /* text_config.pad_token_id, else the top-level one, else -1 */
    bool tie_embeddings;  /* top-level or text_config tie_word_embeddings (either true) */
} hf_text_config_t;

typedef struct {
    hf_model_kind_t kind;
    int image_token_id;       /* 32000; may be >= text.vocab (replace before embedding lookup) */
    int feature_layer;        /* vision_feature_layer, -2: a Python index into the layers + 1
                                 hidden states (0 = embeddings after pre_layrnorm) */
    bool select_default;      /* vision_feature_select_strategy "default" (drop CLS) vs "full" */
    hf_act_t projector_act;   /* gelu (erf) */
    bool projector_bias;      /* multimodal_projector_bias, default true */
    bool use_image_newline;   /* true iff LLaVA-NeXT: transformers always appends image_newline;
                                 use_image_newline_parameter is type-checked, else ignored */
    int n_pinpoints;                    /* LLaVA-NeXT only (class default: 5 pinpoints), else 0 */
    int pinpoints[HF_MAX_PINPOINTS][2]; /* (height, width), multiples of vision.image_size */
    hf_vision_config_t vision;
    hf_text_config_t text;
} hf_config_t;

typedef struct {
    int shortest_edge;      /* size.shortest_edge, 336 */
    int crop_h, crop_w;     /* crop_size, 336x336 */
    bool do_resize, do_center_crop, do_rescale, do_normalize, do_pad, do_convert_rgb;
    double rescale_factor;  /* 1/255 as a Python double */
    float mean[3], std[3];
    int resample;           /* 3 = BICUBIC; anything else is refused */
    int n_pinpoints;        /* LlavaNextImageProcessor (class default: 5 pinpoints), else 0 */
    int pinpoints[HF_MAX_PINPOINTS][2]; /* (height, width), multiples of the crop size */
} hf_preproc_t;

/* Reads dir/config.json into *out (caller-provided; nothing to free), then the EOS ids of
 * dir/generation_config.json when that file exists (an int or a list). 0 or HIRED_E* with err
 * naming file and key. */
int hf_config_load(const char *dir, hf_config_t *out, char *err);
/* Reads dir/preprocessor_config.json into *out (nothing to free): CLIPImageProcessor defaults
 * for absent keys, plus do_pad true and the default pinpoints when image_processor_type is
 * LlavaNextImageProcessor (or, without a type, when image_grid_pinpoints is present).
 * size {height, width} and resample != 3 are HIRED_EUNSUPPORTED. */
int hf_preproc_load(const char *dir, hf_preproc_t *out, char *err);

#endif
