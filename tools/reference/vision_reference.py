"""Reference vision-tower outputs for every (tiny model, test image) pair.

transformers in float32 (weights upcast from the F16 checkpoint), eager
attention, the slow PIL image processors. For each pair this writes, under
tests/fixtures/reference/<model-dir>/:

  <stem>.json         geometry and bookkeeping (format "hired-ref", version 1)
  <stem>.tiles.png    the n partitions' uint8 pixels stacked vertically (RGB, 336 x n*336)
  <stem>.safetensors  F32: pixel_lut [3,256], features [n,576,32],
                      cls_attn_l0 / _l22 / _l23 [n,576], cls_attn_heads_l22 [n,16,577]

pixel_values[p,c,y,x] == pixel_lut[c][tile_p[y][x][c]] holds bit for bit; the
generator asserts it. Every processor output is also cross-checked against the
independent geometry in anyres.py (docs/numerics.md §1.2-1.5, §1.8).
"""

import json
import os
import struct

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoImageProcessor, LlavaForConditionalGeneration, LlavaNextForConditionalGeneration

import anyres

TILE = 336
ATTN_LAYERS = (0, 22, 23)
META = {"format": "hired-ref", "version": "1"}


def load(kind, model_dir):
    cls = LlavaNextForConditionalGeneration if kind == "next" else LlavaForConditionalGeneration
    model = cls.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
    assert model.vision_tower.config._attn_implementation == "eager"
    proc = AutoImageProcessor.from_pretrained(model_dir, use_fast=False)
    want = "LlavaNextImageProcessor" if kind == "next" else "CLIPImageProcessor"
    if type(proc).__name__ != want:
        raise RuntimeError(f"got {type(proc).__name__}, want the slow {want}")
    return model, proc


# ---------------------------------------------------------------------------------------------
# uint8 <-> float32 pixel lookup


def pixel_lut(proc):
    """lut[c][v] = normalize(rescale(v)) with exactly the processor's numpy operations:
    uint8 -> float64 * rescale_factor -> float32, then (x - mean_f32) / std_f32 in float32."""
    v = np.arange(256, dtype=np.uint8)
    x = (v.astype(np.float64) * proc.rescale_factor).astype(np.float32)
    mean = np.array(proc.image_mean, dtype=np.float32)
    std = np.array(proc.image_std, dtype=np.float32)
    lut = (x[None, :] - mean[:, None]) / std[:, None]
    assert lut.dtype == np.float32
    # Same values through the processor's own methods (channels-last 1 x 256 x 3 image).
    img = np.broadcast_to(v[None, :, None], (1, 256, 3)).copy()
    r = proc.rescale(img, scale=proc.rescale_factor, input_data_format="channels_last")
    r = proc.normalize(r, mean=proc.image_mean, std=proc.image_std, input_data_format="channels_last")
    assert r.dtype == np.float32
    assert np.array_equal(r[0].T.view(np.uint32), lut.view(np.uint32)), "LUT differs from the processor"
    assert all(np.all(np.diff(lut[c]) > 0) for c in range(3))  # strictly increasing: invertible
    return lut


def invert(pixel_values, lut):
    """float32 [n,3,336,336] -> uint8 [n,336,336,3]; raises unless every value is a LUT entry."""
    pv = pixel_values.numpy()
    out = np.empty((pv.shape[0], 3, TILE, TILE), np.uint8)
    for c in range(3):
        idx = np.clip(np.searchsorted(lut[c], pv[:, c]), 0, 255)
        hit = lut[c][idx].view(np.uint32) == pv[:, c].view(np.uint32)
        if not hit.all():
            raise AssertionError(f"channel {c}: {np.count_nonzero(~hit)} values are not in the LUT")
        out[:, c] = idx
    back = np.stack([lut[c][out[:, c]] for c in range(3)], axis=1)
    assert np.array_equal(back.view(np.uint32), pv.view(np.uint32))
    return out.transpose(0, 2, 3, 1).copy()


# ---------------------------------------------------------------------------------------------


def write_safetensors(path, tensors, metadata):
    """F32 safetensors with a byte-stable header (the library's writer orders __metadata__
    keys from a hash map, so two runs could differ). Tensors sorted by name, data packed in
    that order, header padded with spaces to a multiple of 8 bytes."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        assert t.dtype == torch.float32 and t.is_contiguous()
        b = t.numpy().astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    back = load_file(path)
    with safe_open(path, "pt") as f:
        assert f.metadata() == metadata
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)


def _check_padding(tiles, geo):
    """Padding bands are exactly zero and the picture starts right after them, i.e. the odd
    pixel of padding goes bottom/right (transformers >= 4.52)."""
    rows, cols = geo["rows"], geo["cols"]
    grid = tiles[1:].reshape(rows, cols, TILE, TILE, 3).transpose(0, 2, 1, 3, 4)
    canvas = grid.reshape(rows * TILE, cols * TILE, 3)
    top, bottom, left, right = geo["pad"]
    H, W = canvas.shape[:2]
    assert not canvas[:top].any() and not canvas[H - bottom:].any()
    assert not canvas[:, :left].any() and not canvas[:, W - right:].any()
    if top or bottom:
        assert canvas[top].any() and canvas[H - bottom - 1].any(), "picture edge row is all zero"
    if left or right:
        assert canvas[:, left].any() and canvas[:, W - right - 1].any(), "picture edge column is all zero"


def run_one(kind, model, proc, lut, image_path, model_name, out_dir):
    pil = Image.open(image_path)       # no EXIF transpose, on purpose
    rgb_img = pil.convert("RGB")
    rgb = np.asarray(rgb_img)
    h, w = rgb.shape[:2]
    batch = proc(images=rgb_img, return_tensors="pt")
    pv = batch["pixel_values"]
    assert pv.dtype == torch.float32
    if kind == "next":
        assert pv.dim() == 5 and pv.shape[0] == 1
        assert batch["image_sizes"].tolist() == [[h, w]]
        mine, geo = anyres.next_tiles(rgb)
        rows, cols = geo["rows"], geo["cols"]
    else:
        assert pv.dim() == 4 and pv.shape[0] == 1
        mine, geo = anyres.clip_tile(rgb)
        rows, cols = 1, 1
    pv = pv.reshape(-1, 3, TILE, TILE).contiguous()
    n = pv.shape[0]
    assert n == (rows * cols + 1 if kind == "next" else 1), (n, rows, cols)

    tiles = invert(pv, lut)
    if not np.array_equal(tiles, mine):
        bad = [p for p in range(n) if not np.array_equal(tiles[p], mine[p])]
        raise AssertionError(f"{image_path}: processor tiles {bad} differ from anyres.py")
    if kind == "next":
        _check_padding(tiles, geo)

    with torch.no_grad():
        out = model.vision_tower(pv, output_hidden_states=True, output_attentions=True)
    hs, att = out.hidden_states, out.attentions
    assert len(hs) == 25 and len(att) == 24
    for t in hs[:24]:
        assert torch.isfinite(t).all()
    features = hs[-2][:, 1:].contiguous()                       # [n, 576, 32], output of layer 22
    tensors = {"pixel_lut": torch.from_numpy(lut).contiguous(), "features": features}
    for L in ATTN_LAYERS:
        a = att[L]                                              # [n, 16, 577, 577]
        assert torch.allclose(a.sum(-1), torch.ones(()), atol=1e-5)
        tensors[f"cls_attn_l{L}"] = a[:, :, 0, 1:].sum(dim=1).contiguous()
    tensors["cls_attn_heads_l22"] = att[22][:, :, 0, :].contiguous()

    with torch.no_grad():
        if kind == "next":
            packed = model.model.get_image_features(pv[None], torch.tensor([[h, w]]))
            n_tokens = packed[0].shape[0]
            assert n_tokens == anyres.next_token_count(h, w), (n_tokens, anyres.next_token_count(h, w))
            proj = model.model.multi_modal_projector(features)
            assert torch.allclose(packed[0][:576], proj[0], rtol=0, atol=1e-6)  # base tile goes first
        else:
            n_tokens = 576
            proj = model.model.get_image_features(pv, vision_feature_layer=-2,
                                                  vision_feature_select_strategy="default")
            assert torch.allclose(proj[0], model.model.multi_modal_projector(features)[0], rtol=0, atol=1e-6)

    stem = os.path.splitext(os.path.basename(image_path))[0]
    meta = {
        "format": "hired-ref",
        "version": 1,
        "image": os.path.basename(image_path),
        "model": model_name,
        "orig_h": h,
        "orig_w": w,
        "rows": rows,
        "cols": cols,
        "n": n,
        "hidden": features.shape[-1],
        "image_tokens": n_tokens,
    }
    if kind == "next":
        meta.update({"pinpoint": geo["pinpoint"], "resized": geo["resized"], "pad": geo["pad"]})
    else:
        meta.update({"resized": geo["resized"], "crop": geo["crop"]})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    Image.fromarray(tiles.reshape(n * TILE, TILE, 3), "RGB").save(
        os.path.join(out_dir, stem + ".tiles.png"), "PNG", optimize=True)
    write_safetensors(os.path.join(out_dir, stem + ".safetensors"), tensors, META)

    return {
        "image": os.path.basename(image_path),
        "size": f"{w}x{h}",
        "grid": f"{rows}x{cols}",
        "n": n,
        "tokens": n_tokens,
        "stats": attention_stats(tensors, hs),
    }


def attention_stats(tensors, hs):
    """Numbers that show the random model is not degenerate (printed in the summary)."""
    s = {}
    for L in ATTN_LAYERS:
        a = tensors[f"cls_attn_l{L}"]                          # sums to <= 16 per row
        s[f"l{L}_max_x_uniform"] = round(float(a.max() / (16.0 / 577.0)), 1)
        s[f"l{L}_median_x_uniform"] = round(float(a.median() / (16.0 / 577.0)), 2)
    s["max_abs_hidden"] = round(max(float(t.abs().max()) for t in hs[:24]), 2)
    s["feature_std"] = round(float(tensors["features"].std()), 3)
    return s
