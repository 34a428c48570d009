"""The two tiny random LLaVA checkpoints (llava-next-tiny, llava15-tiny).

Real llava-hf geometry where the C code must take the real paths (CLIP
336/14, 24 layers, 16 heads, vocab 32064, GQA for Mistral), tiny widths
everywhere else (hidden 32) so the fixtures stay small.

Weights are drawn by our own seeded initialiser (not transformers' init),
in float32, then rounded to float16 for saving. The q/k projections of the
vision tower are deliberately large so the CLS attention rows are peaky and
HiRED's token ranking is meaningful.

Key layouts (docs/numerics.md §7.2 / 7.3): transformers 4.57's save_pretrained
writes the pre-4.52 layout ("language_model.model.*", ...). llava-next-tiny
keeps it (sharded); llava15-tiny is rewritten to the >= 4.52 layout
("model.language_model.*", top-level "lm_head.weight", single file).
"""

import copy
import json
import math
import os
import re
import shutil
import zlib

import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AddedToken,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaTokenizerFast,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    MistralConfig,
)

import mistral_common
from anyres import PINPOINTS

NEXT_DIR = "llava-next-tiny"
V15_DIR = "llava15-tiny"
HIDDEN = 32

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# ---------------------------------------------------------------------------------------------
# configs


def vision_config():
    return CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        num_channels=3,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        projection_dim=HIDDEN,
    )


def next_config():
    text = MistralConfig(
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        rope_theta=1e6,
        sliding_window=None,
        vocab_size=32064,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlavaNextConfig(
        vision_config=vision_config(),
        text_config=text,
        image_token_index=32000,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_grid_pinpoints=PINPOINTS,
        tie_word_embeddings=False,
        use_image_newline_parameter=True,
        torch_dtype="float16",
    )


def v15_config():
    text = LlamaConfig(
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        vocab_size=32064,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=32001,
    )
    return LlavaConfig(
        vision_config=vision_config(),
        text_config=text,
        image_token_index=32000,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
        pad_token_id=32001,
        torch_dtype="float16",
    )


# ---------------------------------------------------------------------------------------------
# initialisation: one generator per tensor, seeded from (model seed, tensor name), so the
# values do not depend on module construction order or on transformers' own init.


def _gen(seed, name):
    g = torch.Generator()
    g.manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return g


def _randn(shape, g, std):
    return torch.randn(shape, generator=g, dtype=torch.float32) * std


def init_value(name, shape, seed):
    """float32 initial value for the parameter `name` (state_dict naming of transformers 4.57)."""
    g = _gen(seed, name)
    leaf = name.rsplit(".", 1)[-1]
    fan_in = shape[-1] if len(shape) >= 2 else 1

    if "vision_tower" in name:
        if name.endswith("class_embedding"):
            return _randn(shape, g, 1.0)
        if "patch_embedding" in name:                       # [hidden, 3, 14, 14], no bias
            return _randn(shape, g, 1.0 / math.sqrt(3 * 14 * 14))
        if "position_embedding" in name:                    # [577, hidden]
            return _randn(shape, g, 0.5)
        if "layrnorm" in name or "layer_norm" in name or "post_layernorm" in name:
            return 1.0 + _randn(shape, g, 0.1) if leaf == "weight" else _randn(shape, g, 0.05)
        if "q_proj" in name or "k_proj" in name:
            # Large on purpose: head_dim is 2, so logits need big q/k for a peaky softmax.
            return _randn(shape, g, 0.35) if leaf == "weight" else _randn(shape, g, 0.1)
        if "v_proj" in name:
            return _randn(shape, g, 1.0 / math.sqrt(fan_in)) if leaf == "weight" else _randn(shape, g, 0.05)
        if "out_proj" in name:
            return _randn(shape, g, 0.5 / math.sqrt(fan_in)) if leaf == "weight" else _randn(shape, g, 0.02)
        if "fc1" in name:
            return _randn(shape, g, 1.0 / math.sqrt(fan_in)) if leaf == "weight" else _randn(shape, g, 0.1)
        if "fc2" in name:
            return _randn(shape, g, 0.5 / math.sqrt(fan_in)) if leaf == "weight" else _randn(shape, g, 0.02)
        raise KeyError(name)

    if "multi_modal_projector" in name:
        return _randn(shape, g, 1.0 / math.sqrt(fan_in)) if leaf == "weight" else _randn(shape, g, 0.05)
    if name.endswith("image_newline"):
        return _randn(shape, g, 1.0)

    # language model
    if "embed_tokens" in name:
        return _randn(shape, g, 1.0)
    if "norm" in name:                                       # RMSNorm weights (no biases)
        return 1.0 + _randn(shape, g, 0.1)
    if "lm_head" in name:
        return _randn(shape, g, 3.0 / math.sqrt(fan_in))    # logits with a spread of a few units
    if re.search(r"(q|k|v|o|gate|up|down)_proj\.weight$", name):
        return _randn(shape, g, 1.0 / math.sqrt(fan_in))
    raise KeyError(name)


def build(kind, seed):
    """A float32 model whose parameters hold float16-representable values."""
    if kind == "next":
        cfg, cls = next_config(), LlavaNextForConditionalGeneration
    else:
        cfg, cls = v15_config(), LlavaForConditionalGeneration
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    model.set_attn_implementation("eager")
    with torch.no_grad():
        for name, p in model.named_parameters():
            v = init_value(name, tuple(p.shape), seed)
            p.copy_(v.to(torch.float16).to(torch.float32))  # round once, round-to-nearest-even
    return model


# ---------------------------------------------------------------------------------------------
# files next to the weights


def next_preprocessor_config():
    return {
        "aspect_ratio_setting": "anyres",
        "crop_size": {"height": 336, "width": 336},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_pad": True,
        "do_rescale": True,
        "do_resize": True,
        "image_grid_pinpoints": PINPOINTS,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "LlavaNextImageProcessor",
        "image_std": CLIP_STD,
        "processor_class": "LlavaNextProcessor",
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": 336},
    }


def v15_preprocessor_config():
    return {
        "crop_size": {"height": 336, "width": 336},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "processor_class": "LlavaProcessor",
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": 336},
    }


def mistral_v1_sp_model():
    path = os.path.join(os.path.dirname(mistral_common.__file__), "data", "tokenizer.model.v1")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


def make_tokenizer():
    """LlamaTokenizerFast converted from Mistral's v1 SentencePiece model (legacy behaviour)."""
    tok = LlamaTokenizerFast(
        vocab_file=mistral_v1_sp_model(),
        from_slow=True,
        legacy=True,
        add_prefix_space=True,      # -> normalizer Prepend("▁") + Replace, decoder Strip(1)
        add_bos_token=True,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
    )
    n = tok.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    n += tok.add_special_tokens({"pad_token": AddedToken("<pad>", special=True, normalized=False)})
    assert n == 2
    ids = tok.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<image>", "<pad>"])
    assert ids == [0, 1, 2, 32000, 32001], ids
    return tok


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_side_files(model_dir, kind, tok):
    pp = next_preprocessor_config() if kind == "next" else v15_preprocessor_config()
    _write_json(os.path.join(model_dir, "preprocessor_config.json"), pp)
    tok.save_pretrained(model_dir)
    # The SentencePiece original is not needed (tokenizer.json is complete) and costs 0.5 MB.
    os.remove(os.path.join(model_dir, "tokenizer.model"))
    # add_prefix_space=true would make LlamaTokenizerFast re-convert from tokenizer.model on
    # load; the Prepend("▁") normalizer it asked for is already in tokenizer.json. null is what
    # the llava-hf repos carry.
    path = os.path.join(model_dir, "tokenizer_config.json")
    with open(path) as f:
        tc = json.load(f)
    tc["add_prefix_space"] = None
    _write_json(path, tc)


# ---------------------------------------------------------------------------------------------
# key layouts

NEW_LAYOUT = [  # pre-4.52 prefix -> >= 4.52 prefix (docs/numerics.md §7.3), anchored at the start
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
    ("vision_tower.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
    ("image_newline", "model.image_newline"),
]


def is_old_layout_key(k):
    return k.startswith(("language_model.", "vision_tower.", "multi_modal_projector.")) or k == "image_newline"


def to_new_layout(k):
    for old, new in NEW_LAYOUT:
        if k.startswith(old):
            return new + k[len(old):]
    raise KeyError(k)


def saved_keys(model_dir):
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        return sorted(wm), sorted(set(wm.values()))
    return sorted(load_file(os.path.join(model_dir, "model.safetensors"))), ["model.safetensors"]


def rewrite_new_layout(model_dir):
    """Single-file checkpoint in the >= 4.52 key layout."""
    path = os.path.join(model_dir, "model.safetensors")
    sd = load_file(path)
    assert all(is_old_layout_key(k) for k in sd), "save_pretrained no longer writes the old layout"
    new = {to_new_layout(k): v.contiguous() for k, v in sd.items()}
    save_file(new, path, metadata={"format": "pt"})


def _old_style_config(model_dir):
    """transformers >= 4.56 writes "dtype"; the llava-hf repos (older) say "torch_dtype".
    The old-layout fixture gets the old spelling so loaders see both."""
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = cfg.pop("dtype")
    _write_json(path, cfg)


def save(model, kind, model_dir, tok):
    """Write one model directory; returns a description of what was written."""
    if os.path.isdir(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)
    # A copy: .to(float16) in place would also round float32 buffers (rotary inv_freq).
    half = copy.deepcopy(model).to(torch.float16)
    shard = "2MB" if kind == "next" else "100MB"
    half.save_pretrained(model_dir, max_shard_size=shard, safe_serialization=True)
    del half
    keys, files = saved_keys(model_dir)
    written_layout = "old" if all(is_old_layout_key(k) for k in keys) else "new"
    if kind == "next":
        assert written_layout == "old" and len(files) >= 2, (written_layout, files)
    else:
        assert files == ["model.safetensors"], files
        rewrite_new_layout(model_dir)
        keys, files = saved_keys(model_dir)
        assert not any(is_old_layout_key(k) for k in keys)
    if kind == "next":
        _old_style_config(model_dir)
    write_side_files(model_dir, kind, tok)
    return {"save_pretrained_layout": written_layout, "files": files, "n_tensors": len(keys)}


def reload(kind, model_dir):
    cls = LlavaNextForConditionalGeneration if kind == "next" else LlavaForConditionalGeneration
    model, info = cls.from_pretrained(
        model_dir, torch_dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise RuntimeError(f"{model_dir}: loading info not clean: {bad}")
    return model.eval()


def check_reload(built, reloaded):
    """Same parameters bit for bit and same logits for a small multimodal forward."""
    a = dict(built.named_parameters())
    b = dict(reloaded.named_parameters())
    assert a.keys() == b.keys(), set(a) ^ set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    g = torch.Generator().manual_seed(7)
    is_next = isinstance(built, LlavaNextForConditionalGeneration)
    if is_next:
        # 336x336 image: grid 1x2, base + 2 tiles; packed 576 + 24*(24+1) tokens
        pv = torch.randn(1, 3, 3, 336, 336, generator=g)
        sizes = torch.tensor([[336, 336]])
        n_img = 576 + 24 * 25
        kw = {"pixel_values": pv, "image_sizes": sizes}
    else:
        pv = torch.randn(1, 3, 336, 336, generator=g)
        n_img = 576
        kw = {"pixel_values": pv}
    ids = torch.tensor([[1, 733, 16289, 28793, 28705] + [32000] * n_img + [28705, 13, 3195, 349]])
    with torch.no_grad():
        la = built(input_ids=ids, **kw).logits
        lb = reloaded(input_ids=ids, **kw).logits
    assert torch.isfinite(la).all()
    assert torch.equal(la, lb), (la - lb).abs().max()
    return float(la.std())
