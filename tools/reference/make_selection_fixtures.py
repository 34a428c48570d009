#!/usr/bin/env python3
"""Regenerate tests/fixtures/selection/: token-selection expectations for the C tests.

    python tools/reference/make_selection_fixtures.py [--fixtures tests/fixtures]

For both tiny fixture models (tests/fixtures/models/{llava-next-tiny,llava15-tiny}) and every
image in tests/fixtures/images/, runs the vision tower with transformers in float32 (eager
attention, the slow image processor) and collects:
  * alloc / select attention: CLS->patch attention of encoder layers 0 and 22 from
    output_attentions=True, summed over the heads (in float64)  -> [n, 576] each;
  * features: hidden_states[-2][:, 1:]                           -> [n, 576, d];
  * PruMerge attention: layer 23's raw q_proj / k_proj outputs (forward hooks, bias included),
    softmax(q_cls . K^T / sqrt(d)) over all 577 keys in float64, patch columns -> [n, 576];
    keys = the k_proj output without the CLS row                 -> [n, 576, d].
Then runs every strategy of select_ref.py and writes
tests/fixtures/selection/<model>/<image-stem>.json (see the README.md written next to them).

The C build and tests never run this; they only read its committed output.
"""

import argparse
import glob
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, HERE)

import select_ref as sr  # noqa: E402

MODELS = [("llava-next-tiny", "next"), ("llava15-tiny", "v15")]
BUDGETS = [0.1, 0.2, 0.4, 1.0]
ALPHA = 0.5
SPATIAL_WITH_HIRED = (0.2, 0.1)  # hired (reference split) at r = 0.2 plus spatial s = 0.1
MARGIN_WARN = 1e-5       # relative top-k gap below which float32 C could order differently
SPLIT_MARGIN_WARN = 1e-2  # paper split: quota rounding closer than this (tokens) to flipping
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def g9(x):
    """Compact float for JSON (9 significant digits: float32 round-trips)."""
    return float("%.9g" % float(x))


# ---------------------------------------------------------------------------------------------
# transformers side


def load(model_dir, kind):
    import torch
    from transformers import AutoImageProcessor, LlavaForConditionalGeneration, LlavaNextForConditionalGeneration

    cls = LlavaNextForConditionalGeneration if kind == "next" else LlavaForConditionalGeneration
    model = cls.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    proc = AutoImageProcessor.from_pretrained(model_dir, use_fast=False)
    want = "LlavaNextImageProcessor" if kind == "next" else "CLIPImageProcessor"
    if type(proc).__name__ != want:
        raise RuntimeError("%s: got %s, want the slow %s" % (model_dir, type(proc).__name__, want))
    vt = model.vision_tower
    if vt.config._attn_implementation != "eager":
        raise RuntimeError("vision tower attention is %s, want eager" % vt.config._attn_implementation)
    if model.config.vision_feature_layer != -2 or model.config.vision_feature_select_strategy != "default":
        raise RuntimeError("fixture model must use vision_feature_layer -2 and the default strategy")
    return model, proc


def vision_inputs(model, proc, kind, path):
    """Everything select_ref needs for one image, as float64 numpy arrays, plus geometry."""
    import torch
    from PIL import Image
    from transformers.image_processing_utils import select_best_resolution

    img = Image.open(path)
    img.load()
    rgb = img.convert("RGB")
    orig_w, orig_h = rgb.size
    enc = proc(images=rgb, return_tensors="pt")
    pv = enc["pixel_values"]
    vt = model.vision_tower
    vcfg = vt.config
    s, patch = vcfg.image_size, vcfg.patch_size
    grid = s // patch
    if kind == "next":
        assert pv.ndim == 5 and pv.shape[0] == 1, pv.shape
        pv = pv[0]
        assert [int(v) for v in enc["image_sizes"][0]] == [orig_h, orig_w]
        ph, pw = select_best_resolution((orig_h, orig_w), model.config.image_grid_pinpoints)
        rows, cols = ph // s, pw // s
        assert pv.shape[0] == 1 + rows * cols, (pv.shape, rows, cols)
        check_geometry(proc, pv.numpy(), rows, cols, orig_h, orig_w, s)
    else:
        assert pv.ndim == 4 and pv.shape[0] == 1, pv.shape
        rows = cols = 1
    n = pv.shape[0]

    layers = vt.vision_model.encoder.layers
    assert len(layers) == 24, len(layers)
    grabbed = {}
    hooks = [layers[23].self_attn.q_proj.register_forward_hook(lambda m, i, o: grabbed.__setitem__("q", o.detach())),
             layers[23].self_attn.k_proj.register_forward_hook(lambda m, i, o: grabbed.__setitem__("k", o.detach()))]
    try:
        with torch.no_grad():
            out = vt(pv, output_hidden_states=True, output_attentions=True)
    finally:
        for h in hooks:
            h.remove()
    assert len(out.attentions) == 24 and out.attentions[0].shape == (n, vcfg.num_attention_heads, grid * grid + 1,
                                                                      grid * grid + 1)
    alloc = out.attentions[0][:, :, 0, 1:].double().sum(1).numpy()
    select = out.attentions[22][:, :, 0, 1:].double().sum(1).numpy()
    feats = out.hidden_states[-2][:, 1:].double().numpy()
    q = grabbed["q"].double().numpy()
    k = grabbed["k"].double().numpy()
    d = q.shape[-1]
    assert d == vcfg.hidden_size and feats.shape == (n, grid * grid, d)
    logits = np.einsum("nd,njd->nj", q[:, 0], k) / math.sqrt(d)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    pm_attn = (e / e.sum(axis=1, keepdims=True))[:, 1:]
    pm_keys = k[:, 1:]
    # the hooks caught the right tensors: the head-split recomputation from them reproduces
    # CLIP's own layer-23 probabilities
    nh = vcfg.num_attention_heads
    hd = d // nh
    qh = q.reshape(n, -1, nh, hd).transpose(0, 2, 1, 3)
    kh = k.reshape(n, -1, nh, hd).transpose(0, 2, 1, 3)
    lh = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(hd)
    lh = np.exp(lh - lh.max(-1, keepdims=True))
    lh /= lh.sum(-1, keepdims=True)
    err = float(np.max(np.abs(lh - out.attentions[23].double().numpy())))
    assert err < 1e-5, "layer-23 q/k hooks do not reproduce CLIP's attention (%.2e)" % err
    return {"n": n, "rows": rows, "cols": cols, "orig_h": orig_h, "orig_w": orig_w, "grid": grid, "d": d,
            "alloc": alloc, "select": select, "feats": feats, "pm_attn": pm_attn, "pm_keys": pm_keys,
            "heads": nh}


def check_geometry(proc, pv, rows, cols, orig_h, orig_w, s):
    """select_ref's paper-split geometry (resized size, top/left padding) against what the
    processor actually did: outside the image the tiles hold the pad value, inside not
    everywhere (so a wrong offset is caught)."""
    import transformers.image_processing_utils as ipu

    th, tw = rows * s, cols * s
    nh, nw = sr.patch_output_size(orig_h, orig_w, th, tw)
    assert (nh, nw) == ipu.get_patch_output_size(np.zeros((orig_h, orig_w, 3)), (th, tw), "channels_last")
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas = np.zeros((3, th, tw), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            canvas[:, r * s:(r + 1) * s, c * s:(c + 1) * s] = pv[1 + r * cols + c]
    padv = ((0.0 - np.array(proc.image_mean, np.float32)) / np.array(proc.image_std, np.float32))[:, None, None]
    is_pad = np.all(np.abs(canvas - padv) < 1e-6, axis=0)
    outside = np.ones((th, tw), dtype=bool)
    outside[top:top + nh, left:left + nw] = False
    assert is_pad[outside].all(), "padding where select_ref does not expect it"
    inside = ~outside
    # each edge row/column of the image region must carry some non-pad pixel, unless the
    # image itself is black there (then this check cannot see the offset; warn only)
    for name, sl in [("top", (top, slice(left, left + nw))), ("bottom", (top + nh - 1, slice(left, left + nw))),
                     ("left", (slice(top, top + nh), left)), ("right", (slice(top, top + nh), left + nw - 1))]:
        if is_pad[sl].all():
            print("  note: image edge '%s' is black; geometry offset not confirmed there" % name)
    assert inside.sum() == nh * nw


# ---------------------------------------------------------------------------------------------
# cases


def margin_summary(case, info_margins, extra_warn):
    ms = [(name, m) for name, m in info_margins if m is not None]
    case["min_margin"] = g9(min(m for _, m in ms)) if ms else None
    case["margins"] = [[name, g9(m)] for name, m in ms]
    near = [[name, g9(m)] for name, m in ms if m < MARGIN_WARN] + extra_warn
    if near:
        case["near_ties"] = near
    return near


def mask_case(strategy, mask, rows, cols, budget, alpha, spatial, split=None, info=None):
    pos = sr.kept_positions(mask, rows, cols)
    assert len(set(pos)) == len(pos) == int(mask.sum()), "duplicate kept position"
    case = {"strategy": strategy}
    if split is not None:
        case["split"] = split
    case.update(budget=budget, alpha=alpha, spatial=spatial, k=len(pos),
                per_part=[int(v) for v in mask.sum(axis=1)])
    if info is not None:
        case.update(budget_total=info["budget_total"], budget_base=info["budget_base"],
                    budget_sub=info["budget_sub"])
        if "b" in info and strategy == "hired" and mask.shape[0] > 1:
            case["sub_budgets"] = [int(v) for v in info["b"]]
    else:
        case.update(budget_total=len(pos), budget_base=None, budget_sub=None)
    case["kept"] = [list(p) for p in pos]
    return case


def hired_cases(x):
    n, rows, cols = x["n"], x["rows"], x["cols"]
    out = []
    plan = []
    if n > 1:
        for split in ("reference", "paper"):
            for r in BUDGETS:
                plan.append((split, r, 0.0))
    else:
        for r in BUDGETS:
            plan.append(("reference", r, 0.0))  # split is irrelevant for n == 1
    plan.append(("reference",) + SPATIAL_WITH_HIRED)
    for split, r, s in plan:
        info = {}
        if n > 1:
            mask = sr.hired_next(x["alloc"], x["select"], rows, cols, x["orig_h"], x["orig_w"], r, ALPHA,
                                 split, spatial_s=s, grid=x["grid"], info=info)
        else:
            mask = sr.hired_single(x["select"], r, spatial_s=s, info=info)
        case = mask_case("hired", mask, rows, cols, r, ALPHA, s, split=split, info=info)
        # the budget arithmetic, independently of select_ref's bookkeeping
        if n > 1:
            tot, bf, bs = sr.budgets(n, sr.P, r, ALPHA)
            assert (case["budget_total"], case["budget_base"], case["budget_sub"]) == (tot, bf, bs)
            if s == 0:
                if split == "reference" and r >= 1.0:
                    assert mask.all(), "reference r = 1 keeps everything"
                else:
                    assert case["per_part"][0] == bf
                    assert sum(case["per_part"][1:]) == sum(info["b"])
                    if split == "reference":
                        assert sum(case["per_part"][1:]) <= bs
                        counts = info["counts"]
                        if n == 5 and abs(r - 0.2) < 1e-12:
                            assert info["b"] == counts, (info["b"], counts)  # docs/selection.md §1.6 example
                    else:
                        assert sum(case["per_part"][1:]) == bs
                    assert case["k"] <= tot
        else:
            k = sr.single_budget(sr.P, r)
            if s == 0:
                assert case["k"] == k
        extra = []
        sm = info.get("split_margin")
        if sm is not None:
            case["split_margin"] = g9(sm)
            if sm < SPLIT_MARGIN_WARN:
                extra.append(["paper_split_rounding", g9(sm)])
        margin_summary(case, info["margins"], extra)
        out.append(case)
    return out


def other_cases(x):
    n, rows, cols = x["n"], x["rows"], x["cols"]
    out = []
    for r in BUDGETS:
        mask = sr.spatial(n, sr.P, r)
        case = mask_case("spatial", mask, rows, cols, r, ALPHA, 0.0)
        assert case["per_part"] == [len(sr.spatial_indices(sr.P, r))] * n
        case["min_margin"] = None
        case["margins"] = []
        out.append(case)
    mask = sr.none_mask(n)
    case = mask_case("none", mask, rows, cols, 1.0, ALPHA, 0.0)
    assert case["k"] == n * sr.P
    case["min_margin"] = None
    case["margins"] = []
    out.append(case)
    for plus in (False, True):
        pos, merged, per_part, infos = sr.prumerge(x["pm_attn"].astype(np.float32), x["pm_keys"], x["feats"], plus,
                                                   grid=x["grid"])
        assert len(set(pos)) == len(pos)
        name = "prumerge+" if plus else "prumerge"
        case = {"strategy": name, "budget": 1.0, "alpha": ALPHA, "spatial": 0.0, "k": len(pos),
                "per_part": per_part, "budget_total": len(pos), "budget_base": None, "budget_sub": None,
                "kept": [list(p) for p in pos]}
        pm = []
        off = 0
        for q, cnt in enumerate(per_part):
            blk = merged[off:off + cnt]
            off += cnt
            pm.append({"outliers": infos[q]["outliers"], "supplement": infos[q]["supplement"],
                       "sum": g9(blk.sum()), "sumsq": g9((blk * blk).sum()),
                       "summary4": [g9(v) for v in blk[-1, :4]]})
        case["pm"] = pm
        case["feat_sum"] = g9(merged.sum())
        case["feat_sumsq"] = g9((merged * merged).sum())
        fm = min(i["fence_margin"] for i in infos)
        mm = [i["merge_margin"] for i in infos if i["merge_margin"] is not None]
        case["merge_tie_dsum"] = g9(sum(i["merge_tie_dsum"] for i in infos))
        case["merge_tie_dsumsq"] = g9(sum(i["merge_tie_dsumsq"] for i in infos))
        case["fence_margin"] = g9(fm)
        case["merge_margin"] = g9(min(mm)) if mm else None
        extra = []
        if fm < MARGIN_WARN:
            extra.append(["iqr_fence", g9(fm)])
        if mm and min(mm) < MARGIN_WARN:
            # affects merged values only, and merge_tie_dsum/_dsumsq quantify it: not a near_tie
            print("  warning: %s %s: 32nd/33rd key similarities within %.2g relative; swapping them "
                  "moves feat_sum by <= %.3g, feat_sumsq by <= %.3g (recorded)"
                  % (x["name"], name, min(mm), case["merge_tie_dsum"], case["merge_tie_dsumsq"]))
        margins = [("part%d_%s" % (q, nm), m) for q, i in enumerate(infos) for nm, m in i["margins"]]
        margin_summary(case, margins, extra)
        out.append(case)
    return out


# ---------------------------------------------------------------------------------------------


def cross_check_reference(fixtures, model_name, stem, x):
    """If the fixture owner's reference tensors exist, compare our attention / features."""
    notes = []
    jpath = os.path.join(fixtures, "reference", model_name, stem + ".json")
    if os.path.exists(jpath) and x["n"] > 1:
        with open(jpath) as f:
            ref = json.load(f)
        assert (ref["n"], ref["rows"], ref["cols"], ref["orig_h"], ref["orig_w"]) == (
            x["n"], x["rows"], x["cols"], x["orig_h"], x["orig_w"]), "geometry differs from reference/"
        th, tw = x["rows"] * sr.IMAGE_SIZE, x["cols"] * sr.IMAGE_SIZE
        nh, nw = sr.patch_output_size(x["orig_h"], x["orig_w"], th, tw)
        assert list(ref["resized"]) == [nh, nw] and ref["pad"][0] == (th - nh) // 2 and ref["pad"][2] == (tw - nw) // 2
        notes.append("geometry ok")
    path = os.path.join(fixtures, "reference", model_name, stem + ".safetensors")
    if not os.path.exists(path):
        return ", ".join(notes + ["no reference tensors"])
    from safetensors.numpy import load_file

    t = load_file(path)
    for key, ours in [("cls_attn_l0", x["alloc"]), ("cls_attn_l22", x["select"]), ("features", x["feats"])]:
        if key in t:
            theirs = t[key].astype(np.float64)
            if theirs.shape != ours.shape:
                notes.append("%s shape %s vs %s" % (key, theirs.shape, ours.shape))
                continue
            err = float(np.max(np.abs(theirs - ours)) / max(np.max(np.abs(ours)), 1e-30))
            notes.append("%s rel %.1e" % (key, err))
            assert err < 1e-4, "our %s disagrees with reference/%s" % (key, key)
    return ", ".join(notes) if notes else "reference tensors have none of our keys"


README = """# Token-selection fixtures

Expected outputs of `model/select.{h,c}` for every (tiny model, test image) pair, made by
`tools/reference/make_selection_fixtures.py` with the independent numpy reference
`tools/reference/select_ref.py` (written from docs/selection.md and the select.h contract,
not from select.c). Regenerate with

    /work/venv/bin/python tools/reference/make_selection_fixtures.py

## Inputs (how the generator obtained them)

transformers %(tf)s, torch %(torch)s, float32 weights (upcast), eager attention, the slow image
processor (`use_fast=False`), one vision-tower forward over all partitions of the image:

* allocation attention `[n,576]`: `output_attentions` of encoder layer 0, query row 0 (CLS),
  patch columns 1..576, summed over the heads (in float64);
* selection attention `[n,576]`: the same at layer 22;
* features `[n,576,d]`: `hidden_states[-2][:, 1:]`;
* PruMerge attention `[n,576]`: forward hooks on layer 23's `q_proj` / `k_proj` (raw outputs, bias
  included), `softmax(q_cls . K^T / sqrt(d))` over all 577 keys in float64, patch columns, handed
  to the reference as float32; keys `[n,576,d]` = the k_proj output without the CLS row.

## Layout

`<model>/<image-stem>.json`, `<model>` in {llava-next-tiny, llava15-tiny}, compact JSON:

```
{"format": "hired-sel", "version": 1, "model", "image" (file name under tests/fixtures/images),
 "n" (partitions, base first), "rows", "cols" (anyres grid; 1, 1 for llava15), "orig_h", "orig_w",
 "inputs": {"alloc_sum", "select_sum", "pm_sum": [n] sums of the input attention rows,
            "feat_sum": [n] sums of the features}  -- to confirm the C side fed the same inputs,
 "cases": [ {
   "strategy": "hired" | "spatial" | "none" | "prumerge" | "prumerge+",
   "split": "reference" | "paper"          (hired only; for llava15 irrelevant, "reference"),
   "budget": r, "alpha": 0.5, "spatial": s  (spatial alone: s = budget, "spatial" 0 as in
        sel_opts_t; none/prumerge: budget 1.0, ignored),
   "k": total kept, "per_part": [n] kept per partition (prumerge: incl. the summary token),
   "budget_total", "budget_base", "budget_sub": hired NeXT: N, B_full, B_sub (docs/selection.md §1.4);
        hired llava15: k, k, 0; others: budget_total = k, the other two null,
   "sub_budgets": [n-1] b_i (hired NeXT, except the reference r >= 1 bypass, where it is 576 each),
   "kept": [[part, row, col], ...] in select.h's output order (prumerge summary token: row = col = -1),
   "min_margin": smallest relative gap (v_k - v_{k+1}) / v_k over every top-k boundary of the
        case (hired: base top-B_full, the reference split's top-int(576(1-alpha)) of the base
        allocation attention, each sub-image's top-b_i; llava15 top-k; prumerge each partition's
        top-#outliers); null when no top-k has a boundary,
   "margins": [[what, margin], ...] the same gap for each top-k boundary separately, named
        "base_top<k>", "alloc_top<m>", "sub<i>_top<b_i>" (i = partition), "top<k>" (llava15),
        "part<q>_top<k>" (prumerge), so a test can skip exactly the near-tied ones,
   "near_ties": [[what, margin], ...]  only when something is closer than 1e-5 (paper split:
        1e-2 tokens); the C test should skip exactly those comparisons, not the whole file,
   "split_margin" (paper split): the gap (in tokens) between the last fractional quota that
        got a token and the first that did not; null when there was no such cut,
   prumerge only: "pm": [n] {"outliers", "supplement", "sum", "sumsq", "summary4": first 4
        values of the summary token} of the merged features [per_part, d] (float64 sums),
        "feat_sum", "feat_sumsq" over all output features, "fence_margin" (smallest relative
        distance of an attention value from the IQR fence), "merge_margin" (smallest relative
        gap at the 32-nearest-keys boundary; affects merged values only), "merge_tie_dsum",
        "merge_tie_dsumsq": how much feat_sum / feat_sumsq would change if every near-tied
        (< 1e-5) 32nd/33rd neighbour pair were swapped -- add them to the tolerance
 } ... ]}
```

## Cases per image

* llava-next-tiny: hired reference split at r = 0.1, 0.2, 0.4, 1.0; hired paper split at the same
  budgets; hired reference r = 0.2 + spatial 0.1; spatial alone at s = 0.1, 0.2, 0.4, 1.0; none;
  prumerge; prumerge+ (alpha 0.5 throughout).
* llava15-tiny: hired at r = 0.1, 0.2, 0.4, 1.0; hired r = 0.2 + spatial 0.1; spatial alone at the
  four budgets; none; prumerge; prumerge+.

## Decisions the reference makes where select.h is silent

* hired, reference split, r >= 1: the authors' forward skips selection and keeps every token
  (their `if token_budget_rate < 1.0`); the reference does the same (budget fields still hold the
  arithmetic). The formula alone would keep fewer (b_i = min(576, int(8 count_i)) for n = 5).
* hired, paper split, cap: capped sub-images are fixed at 576 and the rest of B_sub is
  re-apportioned (largest remainder) over the others, repeated until nothing exceeds 576.
  (At alpha 0.5 and these budgets the cap only binds at r = 1, where the result is forced.)
* reference split chunks: n-1 chunks (one per sub-image) of 576/(n-1) raster tokens.
* PruMerge IQR: the authors' numpy operations (np.percentile on float32, fence compared as
  float32); "fence_margin" says how far every case is from that detail mattering.
* PruMerge: every kept token's 32 neighbours come from all 575 other tokens (kept or not),
  ties -> lower patch index; merged = x_i + sum a_j x_j with the original (unmerged) features;
  the summary token is sum over the complement, a zero vector when the complement is empty
  (PruMerge+ with stride 1 can keep all 576). Near ties at the 32nd neighbour only move the
  merged values, so they are not in "near_ties"; merge_tie_dsum/_dsumsq bound their effect.
* "alloc_top<m>" margins are conservative: a swap across that boundary changes nothing unless
  the two tokens lie in different raster chunks.
* spatial with int(576 s) == 0 adds nothing (the authors' code would divide by zero); not in
  these fixtures.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "tests", "fixtures"))
    ap.add_argument("--images", nargs="*", help="only these image file names")
    args = ap.parse_args()
    fixtures = os.path.normpath(args.fixtures)
    import torch
    import transformers

    torch.manual_seed(0)
    images = sorted(p for p in glob.glob(os.path.join(fixtures, "images", "*"))
                    if p.lower().endswith(IMAGE_EXT))
    if args.images:
        images = [p for p in images if os.path.basename(p) in args.images]
    if not images:
        raise SystemExit("no images under %s/images" % fixtures)
    outdir = os.path.join(fixtures, "selection")
    os.makedirs(outdir, exist_ok=True)
    stats = []
    for model_name, kind in MODELS:
        mdir = os.path.join(fixtures, "models", model_name)
        model, proc = load(mdir, kind)
        os.makedirs(os.path.join(outdir, model_name), exist_ok=True)
        for path in images:
            stem = os.path.splitext(os.path.basename(path))[0]
            x = vision_inputs(model, proc, kind, path)
            x["name"] = "%s/%s" % (model_name, stem)
            note = cross_check_reference(fixtures, model_name, stem, x)
            cases = hired_cases(x) + other_cases(x)
            doc = {"format": "hired-sel", "version": 1, "model": model_name, "image": os.path.basename(path),
                   "n": x["n"], "rows": x["rows"], "cols": x["cols"], "orig_h": x["orig_h"], "orig_w": x["orig_w"],
                   "inputs": {"alloc_sum": [g9(v) for v in x["alloc"].sum(1)],
                              "select_sum": [g9(v) for v in x["select"].sum(1)],
                              "pm_sum": [g9(v) for v in x["pm_attn"].sum(1)],
                              "feat_sum": [g9(v) for v in x["feats"].sum((1, 2))]},
                   "cases": cases}
            with open(os.path.join(outdir, model_name, stem + ".json"), "w") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.write("\n")
            mm = [c["min_margin"] for c in cases if c.get("min_margin") is not None]
            print("%s/%s: n=%d grid %dx%d %dx%d, %d cases, min margin %.2e (%s)"
                  % (model_name, stem, x["n"], x["rows"], x["cols"], x["orig_h"], x["orig_w"], len(cases),
                     min(mm) if mm else float("nan"), note))
            for c in cases:
                for what, m in c.get("near_ties", []):
                    print("  WARNING near tie: %s %s r=%s s=%s: %s margin %.3g"
                          % (c["strategy"], c.get("split", ""), c["budget"], c["spatial"], what, m))
                stats.append((model_name, stem, c))
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write(README % {"tf": transformers.__version__, "torch": torch.__version__})
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(outdir, "**", "*"), recursive=True)
                if os.path.isfile(p))
    print("wrote %s: %.2f MB" % (outdir, total / 1e6))
    assert total < 3e6, "selection fixtures exceed 3 MB"
    summarize(stats)


def summarize(stats):
    """Margin statistics per model and strategy."""
    groups = {}
    for model, stem, c in stats:
        key = (model, c["strategy"] + ("/" + c["split"] if "split" in c else ""))
        g = groups.setdefault(key, {"min": [], "fence": [], "merge": [], "split": []})
        if c.get("min_margin") is not None:
            g["min"].append(c["min_margin"])
        if "fence_margin" in c:
            g["fence"].append(c["fence_margin"])
        if c.get("merge_margin") is not None:
            g["merge"].append(c["merge_margin"])
        if c.get("split_margin") is not None:
            g["split"].append(c["split_margin"])
    print("margins (smallest / median over cases):")
    for key in sorted(groups):
        g = groups[key]
        parts = []
        for name in ("min", "fence", "merge", "split"):
            if g[name]:
                parts.append("%s %.2e / %.2e" % (name, min(g[name]), float(np.median(g[name]))))
        print("  %-16s %-20s %s" % (key[0], key[1], "; ".join(parts) if parts else "-"))


if __name__ == "__main__":
    main()
