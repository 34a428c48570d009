"""Independent re-statement of the LLaVA image preprocessing geometry.

Written from docs/numerics.md §1.2-1.5 and §1.8 (not from
transformers' code). make_fixtures.py uses it to *cross-check* what the
transformers image processors produce, so a disagreement between the design
document and the library fails the generator loudly instead of silently
ending up in the fixtures.

All arithmetic follows the documented Python double-precision order.
"""

import math

import numpy as np
from PIL import Image

PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]  # (h, w)
TILE = 336


def select_grid(h, w, pinpoints=PINPOINTS):
    """Best pinpoint (ph, pw) for an image of h x w pixels (docs/numerics.md §1.2)."""
    best = None
    best_eff = 0
    best_waste = math.inf
    for ph, pw in pinpoints:
        scale = min(pw / w, ph / h)
        dw = int(w * scale)
        dh = int(h * scale)
        eff = min(dw * dh, w * h)
        waste = ph * pw - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (ph, pw), eff, waste
    return best


def fit_size(h, w, th, tw):
    """Aspect-preserving size inside the (th, tw) box (docs/numerics.md §1.3)."""
    sw = tw / w
    sh = th / h
    if sw < sh:
        return min(math.ceil(h * sw), th), tw
    return th, min(math.ceil(w * sh), tw)


def next_geometry(h, w):
    """Everything the LLaVA-NeXT preprocessing decides for an h x w image.

    Padding follows transformers >= 4.52: the odd pixel goes bottom/right.
    """
    ph, pw = select_grid(h, w)
    nh, nw = fit_size(h, w, ph, pw)
    dy, dx = ph - nh, pw - nw
    return {
        "pinpoint": [ph, pw],
        "rows": ph // TILE,
        "cols": pw // TILE,
        "n": (ph // TILE) * (pw // TILE) + 1,
        "resized": [nh, nw],
        "pad": [dy // 2, dy - dy // 2, dx // 2, dx - dx // 2],  # top, bottom, left, right
    }


def next_tiles(rgb):
    """uint8 tiles [n, 336, 336, 3] for an RGB uint8 array [h, w, 3]: base first."""
    h, w = rgb.shape[:2]
    g = next_geometry(h, w)
    img = Image.fromarray(rgb)
    nh, nw = g["resized"]
    resized = np.asarray(img.resize((nw, nh), Image.BICUBIC))
    top, bottom, left, right = g["pad"]
    canvas = np.zeros((g["pinpoint"][0], g["pinpoint"][1], 3), np.uint8)
    canvas[top:top + nh, left:left + nw] = resized
    tiles = [np.asarray(img.resize((TILE, TILE), Image.BICUBIC))]
    for r in range(g["rows"]):
        for c in range(g["cols"]):
            tiles.append(canvas[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE])
    return np.stack(tiles), g


def clip_geometry(h, w):
    """Shortest-edge-336 resize then centre crop (docs/numerics.md §1.8)."""
    if h <= w:
        nh, nw = TILE, int(TILE * w / h)
    else:
        nh, nw = int(TILE * h / w), TILE
    return {"resized": [nh, nw], "crop": [(nh - TILE) // 2, (nw - TILE) // 2]}


def clip_tile(rgb):
    """uint8 tile [1, 336, 336, 3] for LLaVA-1.5's CLIPImageProcessor."""
    h, w = rgb.shape[:2]
    g = clip_geometry(h, w)
    nh, nw = g["resized"]
    img = Image.fromarray(rgb)
    if (nh, nw) != (h, w):
        img = img.resize((nw, nh), Image.BICUBIC)
    arr = np.asarray(img)
    top, left = g["crop"]
    return arr[top:top + TILE, left:left + TILE][None], g


def next_token_count(h, w):
    """Packed LLaVA-NeXT image tokens (base + unpadded grid + one newline per row),
    transformers >= 4.47 exact-integer unpad rule (docs/numerics.md §4.1/4.2)."""
    g = next_geometry(h, w)
    ch, cw = g["rows"] * 24, g["cols"] * 24
    if w * ch > cw * h:
        nh = (h * cw) // w
        p = (ch - nh) // 2
        hc, wc = ch - 2 * p, cw
    else:
        nw = (w * ch) // h
        p = (cw - nw) // 2
        hc, wc = ch, cw - 2 * p
    return 576 + hc * (wc + 1)
