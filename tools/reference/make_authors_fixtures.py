#!/usr/bin/env python3
"""Write tests/fixtures/compat/llava-next-tiny.json: what the HiRED authors' transformers fork
(4.42.0.dev0, vendored in hasanar1f/HiRED) feeds the language model, for `--compat authors`.

    tools/reference/.venv/bin/python tools/reference/make_authors_fixtures.py \\
        [--hired-repo /work/.mirror/hasanar1f+HiRED/repo] [--fixtures tests/fixtures]

The authors' own code is run, read from a checkout of their repository at generation time (it
is not copied into hired):
  * their LlavaNextImageProcessor (transformers/src/.../image_processing_llava_next.py, executed
    inside the installed transformers package so its relative imports resolve to 4.57's helpers:
    resize, pad, center_crop and select_best_resolution behave the same in both versions) gives
    the pixel values: padding one pixel short on odd margins, then the shortest-edge resize and
    centre crop of the short last tiles;
  * their unpad_image, get_anyres_image_grid_shape and LlavaNextForConditionalGeneration.
    pack_HiRED_image_features (taken out of their modeling_llava_next.py with ast and executed
    on their own, with a stand-in `self` holding the config) give the packed order: the old grid
    orientation and float32 unpadding, no image_newline (their call passes None).
The kept sets come from the vision tower of the tiny model (transformers 4.57 CLIP, the same
module as 4.42's) on the authors' pixel values, then select_ref.py's HiRED (an independent
restatement of the authors' selection, checked against it by make_selection_fixtures.py) at
r = 0.2, alpha 0.5, reference split; and r = 1.0 (every token).

Per image: geometry, FNV-1a-64 of the uint8 tiles ([n, 336, 336, 3]) and of the float32
pixel_values ([n, 3, 336, 336], little-endian), per-tile byte sums (diagnostics), and per budget
the kept (part, row, col) list in hired's selection order and the packed (part, row, col) list
in the order the authors' code feeds the model. The C tests never run this.
"""

import argparse
import ast
import glob
import json
import os
import subprocess
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)

import select_ref as sr  # noqa: E402
from make_selection_fixtures import load  # noqa: E402

FORK = "transformers/src/transformers/models/llava_next/"
IMAGE_EXT = (".png", ".jpg", ".jpeg")


def fork_source(repo, name):
    return subprocess.run(["git", "-C", repo, "show", "HEAD:" + FORK + name], capture_output=True, text=True,
                          check=True).stdout


def authors_image_processor(repo, model_dir):
    import transformers.models.llava_next  # noqa: F401  (the package the module is executed in)
    mod = types.ModuleType("transformers.models.llava_next._hired_authors_image_processing")
    mod.__package__ = "transformers.models.llava_next"
    exec(compile(fork_source(repo, "image_processing_llava_next.py"), "HiRED:image_processing_llava_next.py", "exec"),
         mod.__dict__)
    with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
        return mod.LlavaNextImageProcessor.from_dict(json.load(f))


def authors_packing(repo):
    """unpad_image, get_anyres_image_grid_shape and pack_HiRED_image_features from the fork."""
    from transformers.image_processing_utils import select_best_resolution

    src = fork_source(repo, "modeling_llava_next.py")
    tree = ast.parse(src)
    wanted = {"unpad_image", "get_anyres_image_grid_shape"}
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        nodes += [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "pack_HiRED_image_features"]
    assert len(nodes) == 3, [n.name for n in nodes]
    ns = {"torch": torch, "np": np, "select_best_resolution": select_best_resolution}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), "HiRED:modeling_llava_next.py", "exec"), ns)
    return ns["pack_HiRED_image_features"]


def fnv64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def fnv64_np(arr):
    """FNV-1a 64 over the bytes of arr (vectorised in chunks would not keep the order; plain loop
    over a bytes object is fast enough for a few MB)."""
    return fnv64(np.ascontiguousarray(arr).tobytes())


def vision(model, pv):
    vt = model.vision_tower
    with torch.no_grad():
        out = vt(torch.from_numpy(pv), output_hidden_states=True, output_attentions=True)
    alloc = out.attentions[0][:, :, 0, 1:].double().sum(1).numpy()
    select = out.attentions[22][:, :, 0, 1:].double().sum(1).numpy()
    return alloc, select


def packed_order(pack, model, mask, image_size):
    """The authors' pack on (part, row, col) "features": the order their code feeds the LLM."""
    n, p = mask.shape
    grid = int(round(p ** 0.5))
    feats = torch.zeros(n, p, 3)
    for part in range(n):
        for j in range(p):
            feats[part, j] = torch.tensor([part, j // grid, j % grid], dtype=torch.float32)
    self = types.SimpleNamespace(config=model.config)
    out, lens = pack(self, [feats], torch.tensor([image_size]), image_newline=None,
                     image_features_masks=[torch.from_numpy(mask.astype(np.float32))])
    return [[int(v) for v in row] for row in out.tolist()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hired-repo", default="/work/.mirror/hasanar1f+HiRED/repo")
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "tests", "fixtures"))
    args = ap.parse_args()
    fx = os.path.normpath(args.fixtures)
    mdir = os.path.join(fx, "models", "llava-next-tiny")
    model, _ = load(mdir, "next")
    ip = authors_image_processor(args.hired_repo, mdir)
    pack = authors_packing(args.hired_repo)
    commit = subprocess.run(["git", "-C", args.hired_repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    from PIL import Image

    records = []
    for path in sorted(glob.glob(os.path.join(fx, "images", "*"))):
        if not path.lower().endswith(IMAGE_EXT):
            continue
        im = Image.open(path)
        im.load()
        rgb = im.convert("RGB")
        w, h = rgb.size
        enc = ip(rgb, return_tensors="np")
        raw = ip(rgb, do_rescale=False, do_normalize=False, return_tensors="np")
        pv = enc["pixel_values"][0].astype(np.float32)         # [n, 3, 336, 336]
        tiles = raw["pixel_values"][0]                          # [n, 3, 336, 336] uint8
        assert tiles.dtype == np.uint8 and [int(v) for v in enc["image_sizes"][0]] == [h, w]
        tiles_hwc = np.ascontiguousarray(tiles.transpose(0, 2, 3, 1))
        n = pv.shape[0]
        from transformers.image_processing_utils import select_best_resolution
        bh, bw = select_best_resolution((h, w), model.config.image_grid_pinpoints)
        rows, cols = bh // 336, bw // 336
        assert n == rows * cols + 1
        alloc, select = vision(model, pv)
        rec = {"image": os.path.basename(path), "orig_h": h, "orig_w": w, "rows": rows, "cols": cols, "n": n,
               "tiles_fnv": fnv64_np(tiles_hwc), "pixels_fnv": fnv64_np(pv.astype("<f4")),
               "tile_sums": [int(t.sum(dtype=np.int64)) for t in tiles_hwc], "cases": []}
        for r in (1.0, 0.2):
            mask = sr.hired_next(alloc, select, rows, cols, h, w, r, 0.5, split="reference")
            kept = sr.kept_positions(mask, rows, cols)
            order = packed_order(pack, model, mask, (h, w))
            rec["cases"].append({"budget": r, "kept": kept, "packed": order})
        records.append(rec)
        print("%s: %dx%d grid %dx%d, packed %s" % (rec["image"], w, h, rows, cols,
                                                   [len(c["packed"]) for c in rec["cases"]]))
    out = {"about": "HiRED authors' fork (transformers 4.42.0.dev0) reference for --compat authors; written by "
                    "tools/reference/make_authors_fixtures.py",
           "hired_commit": commit, "model": "llava-next-tiny", "alpha": 0.5, "split": "reference",
           "newline": "none", "images": records}
    dst = os.path.join(fx, "compat", "llava-next-tiny.json")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d bytes)" % (dst, os.path.getsize(dst)))


if __name__ == "__main__":
    main()
