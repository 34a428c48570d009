#!/usr/bin/env python3
"""Regenerate tests/fixtures/llm/: language-model reference outputs for tests/fidelity/test_llm.c.

    /work/venv/bin/python tools/reference/make_llm_fixtures.py [--fixtures tests/fixtures]

For both tiny fixture models (models/llava-next-tiny: LLaVA-NeXT with a Mistral-style GQA text
model; models/llava15-tiny: LLaVA-1.5 with a LLaMA-style one), loaded in float32 with eager
attention and the slow image processor, and every image under images/, one fixed question
through the model's default template (mistral: "[INST] <image>\\n{q} [/INST]", vicuna:
"USER: <image>\\n{q} ASSISTANT:"), this records:

  case "full_hf"       budget 1.0, stock transformers: model(**inputs) / model.generate(**inputs)
                       with the processor expanding <image> (LLaVA-NeXT: newline after every row);
  case "hired02_hf"    HiRED r = 0.2, alpha 0.5, reference split, newline policy hf;
  case "hired02_none"  the same with no newlines (LLaVA-NeXT only: LLaVA-1.5 has no newlines,
                       its single HiRED case is called "hired02").
The HiRED cases take the kept [part, row, col] list of the matching case in
selection/<model>/<stem>.json (written by make_selection_fixtures.py), project the kept features
(hidden_states[-2] of HF's vision tower) with HF's projector, pack them per the policy (HF's own
unpad_image decides which mosaic rows/cols survive), splice them into the prompt embeddings at
the <image> position and run the model with inputs_embeds.  As a cross-check of that path, the
same construction with every token kept must reproduce the stock full_hf logits.

Per case: the logits of the merged prompt and 32 greedy tokens from generate(do_sample=False,
max_new_tokens=32, min_new_tokens=32: EOS is masked for all 32 steps, as HF's
MinNewTokensLengthLogitsProcessor does), with the top-1/top-2 logit gap of every step.

Size: a full logits row is 32064 floats (128 KB), so the file stores a subset:
  * positions: every text position, every 32nd image position, the last image position
    (all positions of the merged prompt are still compared implicitly through generation);
  * vocabulary columns: ids 0, 125, 250, ..., 32000 (257 columns). The text models' hidden
    width is 32, so 257 random projections of the final hidden state determine it completely:
    an error anywhere in the hidden state shows up in these columns. The argmax over the whole
    vocabulary is checked by the greedy tokens.
Integers are stored as F32 tensors (exact below 2^24) because hired's safetensors reader takes
F32/F16/BF16 only.

Layout: llm/<model>/<stem>.safetensors with
  prompt_ids [T]            the tokenized prompt, <image> (32000) once
  cols [C]                  vocabulary ids of the stored logit columns
  <case>.positions [P]      merged-sequence positions of the stored rows
  <case>.logits [P, C]      float32 logits
  <case>.tokens [32]        greedy tokens
  <case>.margins [32]       top-1 minus top-2 logit at each greedy step (EOS masked)
  <case>.kept [K, 3]        HiRED cases: the kept (part, row, col) list used
and __metadata__: format "hired-llm", version "1", model, image, question, prompt, cases
(comma-separated), and per case "<case>.n_image" (packed visual tokens) and "<case>.length"
(merged prompt length).

The C build and tests never run this; they only read its committed output.
"""

import argparse
import glob
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

MODELS = [("llava-next-tiny", "next"), ("llava15-tiny", "v15")]
QUESTION = "What is shown in this image?"
TEMPLATES = {"next": "[INST] <image>\n{q} [/INST]", "v15": "USER: <image>\n{q} ASSISTANT:"}
IMAGE_ID = 32000
GRID = 24
N_NEW = 32
COL_STRIDE = 125
IMAGE_POS_STRIDE = 32
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SIZE_LIMIT = 8e6


def load(model_dir, kind):
    from transformers import (AutoTokenizer, CLIPImageProcessor, LlavaForConditionalGeneration,
                              LlavaNextForConditionalGeneration, LlavaNextImageProcessor, LlavaNextProcessor,
                              LlavaProcessor)

    tok = AutoTokenizer.from_pretrained(model_dir)
    if kind == "next":
        model = LlavaNextForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                                  attn_implementation="eager").eval()
        ip = LlavaNextImageProcessor.from_pretrained(model_dir)
        proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=14,
                                  vision_feature_select_strategy="default", num_additional_image_tokens=1)
    else:
        model = LlavaForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                              attn_implementation="eager").eval()
        ip = CLIPImageProcessor.from_pretrained(model_dir)
        proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=14,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1)
    assert type(ip).__name__ in ("LlavaNextImageProcessor", "CLIPImageProcessor"), "want the slow processor"
    assert model.config.vision_feature_layer == -2
    return model, proc, tok


def greedy(model, **kw):
    """32 greedy tokens with EOS masked (min_new_tokens), and the top-1/top-2 gap per step."""
    out = model.generate(**kw, do_sample=False, max_new_tokens=N_NEW, min_new_tokens=N_NEW,
                         output_scores=True, return_dict_in_generate=True, pad_token_id=0,
                         temperature=None, top_p=None, top_k=None)
    seq = out.sequences[0, -N_NEW:].tolist()
    margins = []
    for step, sc in enumerate(out.scores):
        s = sc[0].float()
        top = torch.topk(s, 2).values
        assert int(torch.argmax(s)) == seq[step]
        margins.append(float(top[0] - top[1]))
    assert len(seq) == N_NEW and len(margins) == N_NEW
    return seq, margins


def vision_features(model, pixel_values):
    """hidden_states[-2] without CLS: [n, 576, d] float32."""
    vt = model.model.vision_tower
    hs = vt(pixel_values, output_hidden_states=True).hidden_states[-2]
    return hs[:, 1:]


def pack(model, kind, kept, feats, rows, cols, orig_h, orig_w, newline):
    """Packed visual embeddings [N, D] for the kept (part, row, col) list, per the policy."""
    from transformers.models.llava_next.modeling_llava_next import unpad_image

    kept = [tuple(int(v) for v in p) for p in kept]
    x = torch.stack([feats[p, r * GRID + c] for p, r, c in kept])
    proj = model.model.multi_modal_projector(x)                  # [K, D]
    if kind == "v15":
        return proj
    index = {p: i for i, p in enumerate(kept)}
    out = [proj[index[p]] for p in kept if p[0] == 0]           # the base, selection (raster) order
    # mosaic of token indices (-1 = dropped), unpadded with HF's own function
    ch, cw = rows * GRID, cols * GRID
    mosaic = torch.full((1, ch, cw), -1, dtype=torch.long)
    for (p, r, c), i in index.items():
        if p > 0:
            mosaic[0, (p - 1) // cols * GRID + r, (p - 1) % cols * GRID + c] = i
    mosaic = unpad_image(mosaic, (orig_h, orig_w))[0]
    nl = model.model.image_newline
    for y in range(mosaic.shape[0]):
        row = [int(i) for i in mosaic[y] if int(i) >= 0]
        out.extend(proj[i] for i in row)
        if newline == "hf" and row:
            out.append(nl)
    return torch.stack(out)


def merged_embeds(model, prompt_ids, image_embeds):
    emb = model.get_input_embeddings()
    ids = torch.tensor(prompt_ids)
    at = prompt_ids.index(IMAGE_ID)
    text = emb(ids[None])[0]
    return torch.cat([text[:at], image_embeds, text[at + 1:]])[None]


def stored_positions(n_before, n_image, length):
    pos = set(range(n_before)) | set(range(n_before + n_image, length))
    pos |= set(range(n_before, n_before + n_image, IMAGE_POS_STRIDE))
    pos.add(n_before + n_image - 1)
    return sorted(pos)


def selection_case(sel_doc, kind):
    for c in sel_doc["cases"]:
        if (c["strategy"] == "hired" and abs(c["budget"] - 0.2) < 1e-12 and c["spatial"] == 0
                and c.get("split", "reference") == "reference" and abs(c["alpha"] - 0.5) < 1e-12):
            return c
    raise KeyError("no hired r=0.2 reference case")


def run_image(model, proc, tok, kind, model_name, path, fixtures):
    from PIL import Image

    stem = os.path.splitext(os.path.basename(path))[0]
    img = Image.open(path)
    img.load()
    rgb = img.convert("RGB")
    orig_w, orig_h = rgb.size
    prompt = TEMPLATES[kind].format(q=QUESTION)
    prompt_ids = tok(prompt).input_ids
    assert prompt_ids.count(IMAGE_ID) == 1, prompt_ids
    n_before = prompt_ids.index(IMAGE_ID)
    cols_t = torch.arange(0, model.config.text_config.vocab_size, COL_STRIDE)
    tensors = {"prompt_ids": torch.tensor(prompt_ids, dtype=torch.float32), "cols": cols_t.float()}
    meta = {"format": "hired-llm", "version": "1", "model": model_name, "image": os.path.basename(path),
            "question": QUESTION, "prompt": prompt}
    cases = []

    def record(name, logits, n_image, seq, margins, kept=None):
        L = logits.shape[0]
        pos = stored_positions(n_before, n_image, L)
        tensors[name + ".positions"] = torch.tensor(pos, dtype=torch.float32)
        tensors[name + ".logits"] = logits[pos][:, cols_t].contiguous().float()
        tensors[name + ".tokens"] = torch.tensor(seq, dtype=torch.float32)
        tensors[name + ".margins"] = torch.tensor(margins, dtype=torch.float32)
        if kept is not None:
            tensors[name + ".kept"] = torch.tensor(kept, dtype=torch.float32).reshape(-1, 3)
        meta[name + ".n_image"] = str(n_image)
        meta[name + ".length"] = str(L)
        cases.append(name)
        return min(margins)

    with torch.no_grad():
        # (a) stock HF at budget 1.0
        inputs = proc(images=rgb, text=prompt, return_tensors="pt")
        ids = inputs["input_ids"][0].tolist()
        n_image = ids.count(IMAGE_ID)
        assert ids[:n_before] == prompt_ids[:n_before] and ids[n_before + n_image:] == prompt_ids[n_before + 1:]
        full = model(**inputs).logits[0]
        seq, margins = greedy(model, **inputs)
        mm = record("full_hf", full, n_image, seq, margins)

        # geometry and features for the inputs_embeds path
        pv = inputs["pixel_values"]
        if kind == "next":
            pv = pv[0]
            from transformers.image_processing_utils import select_best_resolution
            bh, bw = select_best_resolution((orig_h, orig_w), model.config.image_grid_pinpoints)
            rows, cols = bh // 336, bw // 336
            assert pv.shape[0] == rows * cols + 1
        else:
            rows, cols = 1, 1
        feats = vision_features(model, pv)
        n_parts = feats.shape[0]

        # cross-check: our packing with every token kept reproduces stock HF
        every = [(0, j // GRID, j % GRID) for j in range(GRID * GRID)]
        if kind == "next":
            for y in range(rows * GRID):
                for x in range(cols * GRID):
                    every.append((1 + (y // GRID) * cols + x // GRID, y % GRID, x % GRID))
        packed = pack(model, kind, every, feats, rows, cols, orig_h, orig_w, "hf")
        assert packed.shape[0] == n_image, (packed.shape, n_image)
        again = model(inputs_embeds=merged_embeds(model, prompt_ids, packed)).logits[0]
        rel = float((again - full).norm() / full.norm())
        assert rel < 1e-5, "inputs_embeds path differs from stock HF: %g" % rel

        # (b) HiRED r = 0.2 from the selection fixture's kept list
        with open(os.path.join(fixtures, "selection", model_name, stem + ".json")) as f:
            sel = json.load(f)
        assert sel["n"] == n_parts and sel["rows"] == (rows if kind == "next" else 1)
        assert (sel["orig_h"], sel["orig_w"]) == (orig_h, orig_w)
        kept = selection_case(sel, kind)["kept"]
        policies = ["hf", "none"] if kind == "next" else [None]
        for nl in policies:
            name = "hired02" if nl is None else "hired02_" + nl
            img_emb = pack(model, kind, kept, feats, rows, cols, orig_h, orig_w, nl or "none")
            embeds = merged_embeds(model, prompt_ids, img_emb)
            logits = model(inputs_embeds=embeds).logits[0]
            seq, margins = greedy(model, inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2],
                                                                                         dtype=torch.long))
            mm = min(mm, record(name, logits, img_emb.shape[0], seq, margins, kept))
    meta["cases"] = ",".join(cases)
    return stem, tensors, meta, mm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "tests", "fixtures"))
    ap.add_argument("--out", default=None, help="output directory (default FIXTURES/llm)")
    args = ap.parse_args()
    from safetensors.torch import save_file

    fixtures = os.path.normpath(args.fixtures)
    out = args.out or os.path.join(fixtures, "llm")
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    images = sorted(p for p in glob.glob(os.path.join(fixtures, "images", "*")) if p.lower().endswith(IMAGE_EXT))
    if not images:
        raise SystemExit("no images under %s/images" % fixtures)
    for model_name, kind in MODELS:
        model, proc, tok = load(os.path.join(fixtures, "models", model_name), kind)
        os.makedirs(os.path.join(out, model_name), exist_ok=True)
        for path in images:
            stem, tensors, meta, mm = run_image(model, proc, tok, kind, model_name, path, fixtures)
            save_file(tensors, os.path.join(out, model_name, stem + ".safetensors"), metadata=meta)
            print("%s/%s: cases %s, lengths %s, smallest greedy margin %.3g"
                  % (model_name, stem, meta["cases"],
                     [int(meta[c + ".length"]) for c in meta["cases"].split(",")], mm))
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out, "**", "*"), recursive=True)
                if os.path.isfile(p))
    print("wrote %s: %.2f MB" % (out, total / 1e6))
    assert total < SIZE_LIMIT, "llm fixtures exceed 8 MB"


if __name__ == "__main__":
    main()
