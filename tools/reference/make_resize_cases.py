#!/usr/bin/env python3
"""Writes tests/fixtures/resize/: Pillow's own outputs that the C code must reproduce bit for bit.

  resize cases  small seeded RGB images and their Image.resize((w, h), Image.BICUBIC) results
                (up/down, each axis alone and both, extreme ratios 1->7, 500->3, 336->337,
                335->336), checked by tests/unit/test_resize.c;
  decode cases  files written by Pillow — JPEG (4:2:0, 4:2:2, 4:4:4, progressive, grayscale, odd
                sizes), PNG (palette, gray+alpha, RGBA, 1-bit), GIF, BMP — and Pillow's
                convert("RGB") of each as PNG, checked by tests/unit/test_image.c.

Every image is stored as PNG (lossless, decoded by stb_image in the tests). index.txt lists the
cases, one per line, after a magic/version line:
  hired-resize-cases 1
  # comment lines
  resize <src.png> <out.png> <out_w> <out_h>
  decode <file.jpg|png|gif|bmp> <pil_decode.png>
Run with /work/venv/bin/python (Pillow 11, numpy); the build and tests never need Python.
Deterministic: same Pillow version -> same files.
"""
import os
import sys

import numpy as np
from PIL import Image, features

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "resize")


def make_image(w, h, seed):
    """Half the rows uniform noise (worst case: overshoot and clipping in both passes), the
    rest a smooth gradient with mild noise and saturated 0/255 bars (ringing at hard edges)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=(h, w, 3), dtype=np.int64)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([(xx * 255) // max(w - 1, 1), (yy * 255) // max(h - 1, 1), ((xx + yy) * 7) % 256], axis=-1)
    smooth = smooth + rng.integers(-12, 13, size=(h, w, 3))
    smooth[:, (xx[0] // 3) % 4 == 0] = 255
    smooth[(yy[:, 0] // 2) % 5 == 0, :] = 0
    mix = np.where((yy % 2 == 0)[..., None], a, smooth)
    return Image.fromarray(np.clip(mix, 0, 255).astype(np.uint8), "RGB")


# (src_w, src_h, out_w, out_h)
RESIZE = [
    (40, 30, 80, 30),    # horizontal up only
    (40, 30, 40, 75),    # vertical up only
    (40, 30, 17, 30),    # horizontal down only
    (40, 30, 40, 11),    # vertical down only
    (40, 30, 97, 64),    # both up
    (40, 30, 17, 11),    # both down
    (61, 47, 29, 113),   # down x, up y
    (47, 61, 113, 29),   # up x, down y
    (64, 48, 32, 24),    # exact 2x down
    (200, 150, 112, 84), # 640x480-like ratio
    (1, 1, 7, 7),        # 1 -> 7
    (1, 5, 7, 3),
    (3, 2, 1, 1),        # down to a single pixel
    (500, 4, 3, 4),      # 500 -> 3
    (4, 500, 4, 3),
    (500, 3, 7, 2),
    (336, 6, 337, 6),    # 336 -> 337 (the §1.3 ceil case)
    (335, 6, 336, 6),    # 335 -> 336 (old odd-padding tiles)
    (6, 336, 6, 337),
    (6, 335, 6, 336),
    (337, 5, 336, 9),
    (2, 2, 1, 9),
]

# (w, h, mode, format, save kwargs): files Pillow writes, decoded by Pillow as convert("RGB").
DECODE = [
    (96, 80, "RGB", "JPEG", dict(quality=90, subsampling=2)),                   # 4:2:0
    (97, 61, "RGB", "JPEG", dict(quality=90, subsampling=2)),                   # 4:2:0, odd sizes
    (96, 80, "RGB", "JPEG", dict(quality=90, subsampling=1)),                   # 4:2:2
    (97, 61, "RGB", "JPEG", dict(quality=75, subsampling=1)),                   # 4:2:2, odd sizes
    (96, 80, "RGB", "JPEG", dict(quality=95, subsampling=0)),                   # 4:4:4
    (97, 61, "RGB", "JPEG", dict(quality=85, subsampling=2, progressive=True)), # progressive 4:2:0
    (97, 61, "L", "JPEG", dict(quality=90)),                                    # grayscale
    (33, 17, "RGB", "JPEG", dict(quality=50, subsampling=2, optimize=True)),    # optimised Huffman tables
    (37, 23, "P", "PNG", {}),                                                   # palette PNG
    (37, 23, "LA", "PNG", {}),                                                  # gray + alpha
    (37, 23, "RGBA", "PNG", {}),                                                # alpha dropped
    (37, 23, "1", "PNG", {}),                                                   # 1-bit
    (37, 23, "P", "GIF", {}),                                                   # GIF, no transparency
    (37, 23, "RGB", "BMP", {}),                                                 # 24-bit BMP
    (37, 23, "P", "BMP", {}),                                                   # 8-bit palette BMP
]
EXT = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp"}


def convert(img, mode, seed):
    if mode == "P":
        return img.quantize(colors=200)
    if mode in ("LA", "RGBA"):
        alpha = Image.fromarray(np.random.default_rng(seed).integers(0, 256, size=img.size[::-1], dtype=np.uint8), "L")
        out = img.convert("L" if mode == "LA" else "RGB")
        out.putalpha(alpha)
        return out
    return img.convert(mode)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".png", ".jpg", ".gif", ".bmp")) or f == "index.txt":
            os.remove(os.path.join(OUT, f))
    lines = [
        "hired-resize-cases 1",
        f"# Pillow {Image.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}, "
        f"numpy {np.__version__}; generated by tools/reference/make_resize_cases.py",
    ]
    for i, (sw, sh, ow, oh) in enumerate(RESIZE):
        src = make_image(sw, sh, seed=1000 + i)
        out = src.resize((ow, oh), Image.BICUBIC)
        sname, oname = f"r{i:02d}_src_{sw}x{sh}.png", f"r{i:02d}_out_{ow}x{oh}.png"
        src.save(os.path.join(OUT, sname))
        out.save(os.path.join(OUT, oname))
        lines.append(f"resize {sname} {oname} {ow} {oh}")
    for i, (w, h, mode, fmt, kw) in enumerate(DECODE):
        img = make_image(w, h, seed=2000 + i)
        # Pure noise is unrepresentative of photos; blur the noise rows a little first.
        img = convert(img.resize((w * 2, h * 2), Image.BICUBIC).resize((w, h), Image.BILINEAR), mode, 3000 + i)
        fname, pname = f"d{i:02d}_{w}x{h}_{mode}.{EXT[fmt]}", f"d{i:02d}_{w}x{h}_{mode}_{EXT[fmt]}_pil.png"
        img.save(os.path.join(OUT, fname), fmt, **kw)
        with Image.open(os.path.join(OUT, fname)) as j:
            dec = j.convert("RGB")
        dec.save(os.path.join(OUT, pname))
        lines.append(f"decode {fname} {pname}")
    with open(os.path.join(OUT, "index.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(RESIZE)} resize and {len(DECODE)} decode cases to {OUT} ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
