#!/usr/bin/env python3
"""make_random_llava.py — a random LLaVA-NeXT model with the real LLaVA-NeXT-7B widths, for
benchmarks on machines without the real checkpoint (`hired bench --model DIR`).

What it writes (a llava-hf directory as users download it):
  config.json               llava_next; vision = CLIP ViT-L/14-336 (1024 wide, 24 layers, 16
                            heads, MLP 4096); text = Vicuna-style LLaMA (4096 wide, 32 heads,
                            MLP 11008, vocab 32064) with --text-layers layers (default 2)
  preprocessor_config.json  the llava-v1.6 anyres processor (5 grid pinpoints)
  model-0000i-of-0000n.safetensors + model.safetensors.index.json
                            F16, pre-4.52 key layout ("language_model.model.*"), sharded
  tokenizer files           copied from tests/fixtures/models/llava-next-tiny (same vocab)

The weights are seeded normal(0, 0.02) (norm weights 1, biases 0), drawn shard by shard so
the script needs about one shard of memory. The answers are nonsense; the point is the real
per-layer cost: every matrix has the real shape, so ViT, projector, prefill and decode cost
what they cost on LLaVA-NeXT-7B, per layer. Per-token cost scales with the text layers.

Not here: accuracy (use a real checkpoint), the tiny fixtures (tools/reference/tiny_models.py).
Usage: tools/make_random_llava.py OUT_DIR [--text-layers N] [--seed S] [--shard-mb MB]
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "tests", "fixtures", "models", "llava-next-tiny")
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "generation_config.json"]

# ---- geometry (LLaVA-NeXT-7B, llava-hf/llava-v1.6-vicuna-7b-hf) ------------------------------
V_HIDDEN, V_LAYERS, V_HEADS, V_MLP, V_IMAGE, V_PATCH = 1024, 24, 16, 4096, 336, 14
T_HIDDEN, T_HEADS, T_MLP, VOCAB = 4096, 32, 11008, 32064
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


def config(text_layers):
    return {
        "architectures": ["LlavaNextForConditionalGeneration"],
        "image_grid_pinpoints": PINPOINTS,
        "image_seq_length": 576,
        "image_token_index": 32000,
        "model_type": "llava_next",
        "multimodal_projector_bias": True,
        "projector_hidden_act": "gelu",
        "text_config": {
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "hidden_act": "silu",
            "hidden_size": T_HIDDEN,
            "intermediate_size": T_MLP,
            "max_position_embeddings": 4096,
            "model_type": "llama",
            "num_attention_heads": T_HEADS,
            "num_hidden_layers": text_layers,
            "num_key_value_heads": T_HEADS,
            "pad_token_id": 0,
            "rms_norm_eps": 1e-05,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
            "torch_dtype": "float16",
            "vocab_size": VOCAB,
        },
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_image_newline_parameter": True,
        "vision_config": {
            "hidden_act": "quick_gelu",
            "hidden_size": V_HIDDEN,
            "image_size": V_IMAGE,
            "intermediate_size": V_MLP,
            "layer_norm_eps": 1e-05,
            "model_type": "clip_vision_model",
            "num_attention_heads": V_HEADS,
            "num_channels": 3,
            "num_hidden_layers": V_LAYERS,
            "patch_size": V_PATCH,
            "projection_dim": 768,
            "vocab_size": 32000,
        },
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
    }


def tensors(text_layers):
    """(name, shape, kind) in save order; kind: w (normal), one (norm weight), zero (bias)."""
    v = "vision_tower.vision_model."
    out = [(v + "embeddings.class_embedding", [V_HIDDEN], "w"),
           (v + "embeddings.patch_embedding.weight", [V_HIDDEN, 3, V_PATCH, V_PATCH], "w"),
           (v + "embeddings.position_embedding.weight", [(V_IMAGE // V_PATCH) ** 2 + 1, V_HIDDEN], "w"),
           (v + "pre_layrnorm.weight", [V_HIDDEN], "one"), (v + "pre_layrnorm.bias", [V_HIDDEN], "zero")]
    for i in range(V_LAYERS):
        p = f"{v}encoder.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += [(p + f"self_attn.{n}.weight", [V_HIDDEN, V_HIDDEN], "w"),
                    (p + f"self_attn.{n}.bias", [V_HIDDEN], "zero")]
        out += [(p + "layer_norm1.weight", [V_HIDDEN], "one"), (p + "layer_norm1.bias", [V_HIDDEN], "zero"),
                (p + "layer_norm2.weight", [V_HIDDEN], "one"), (p + "layer_norm2.bias", [V_HIDDEN], "zero"),
                (p + "mlp.fc1.weight", [V_MLP, V_HIDDEN], "w"), (p + "mlp.fc1.bias", [V_MLP], "zero"),
                (p + "mlp.fc2.weight", [V_HIDDEN, V_MLP], "w"), (p + "mlp.fc2.bias", [V_HIDDEN], "zero")]
    out += [(v + "post_layernorm.weight", [V_HIDDEN], "one"), (v + "post_layernorm.bias", [V_HIDDEN], "zero"),
            ("multi_modal_projector.linear_1.weight", [T_HIDDEN, V_HIDDEN], "w"),
            ("multi_modal_projector.linear_1.bias", [T_HIDDEN], "zero"),
            ("multi_modal_projector.linear_2.weight", [T_HIDDEN, T_HIDDEN], "w"),
            ("multi_modal_projector.linear_2.bias", [T_HIDDEN], "zero"),
            ("image_newline", [T_HIDDEN], "w"),
            ("language_model.model.embed_tokens.weight", [VOCAB, T_HIDDEN], "w")]
    for i in range(text_layers):
        p = f"language_model.model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out.append((p + f"self_attn.{n}.weight", [T_HIDDEN, T_HIDDEN], "w"))
        out += [(p + "mlp.gate_proj.weight", [T_MLP, T_HIDDEN], "w"),
                (p + "mlp.up_proj.weight", [T_MLP, T_HIDDEN], "w"),
                (p + "mlp.down_proj.weight", [T_HIDDEN, T_MLP], "w"),
                (p + "input_layernorm.weight", [T_HIDDEN], "one"),
                (p + "post_attention_layernorm.weight", [T_HIDDEN], "one")]
    out += [("language_model.model.norm.weight", [T_HIDDEN], "one"),
            ("language_model.lm_head.weight", [VOCAB, T_HIDDEN], "w")]
    return out


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output directory (created; must not exist or be empty)")
    ap.add_argument("--text-layers", type=int, default=2, help="LLaMA decoder layers (1..32, default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-mb", type=int, default=1000, help="shard size in MB (default 1000)")
    a = ap.parse_args()
    if not 1 <= a.text_layers <= 32:
        sys.exit("--text-layers must be in 1..32")
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit(f"{a.out} exists and is not empty")
    os.makedirs(a.out, exist_ok=True)

    specs = tensors(a.text_layers)
    limit = a.shard_mb * 1000 * 1000
    shards, cur, size = [], [], 0  # group tensors into shards of at most `limit` bytes
    for s in specs:
        b = 2 * numel(s[1])
        if cur and size + b > limit:
            shards.append(cur)
            cur, size = [], 0
        cur.append(s)
        size += b
    shards.append(cur)

    g = np.random.Generator(np.random.PCG64(a.seed))
    weight_map, total = {}, 0
    for i, group in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        sd = {}
        for name, shape, kind in group:
            if kind == "w":
                t = (g.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).astype(np.float16)
            elif kind == "one":
                t = np.ones(shape, dtype=np.float16)
            else:
                t = np.zeros(shape, dtype=np.float16)
            sd[name] = t
            weight_map[name] = fname
            total += 2 * t.size
        save_file(sd, os.path.join(a.out, fname), metadata={"format": "pt"})
        print(f"{fname}: {len(group)} tensors", flush=True)
        del sd

    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config(a.text_layers), f, indent=2)
    shutil.copy(os.path.join(TINY, "preprocessor_config.json"), a.out)
    for t in TOKENIZER_FILES:
        src = os.path.join(TINY, t)
        if os.path.exists(src):
            shutil.copy(src, a.out)
    params = sum(numel(s[1]) for s in specs)
    print(f"{a.out}: {params / 1e9:.2f} B parameters, {total / 1e9:.2f} GB of F16 weights "
          f"in {len(shards)} shards, {a.text_layers} text layers")


if __name__ == "__main__":
    main()
