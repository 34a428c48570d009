"""Test images for tests/fixtures/images, cut from scikit-image's bundled photos.

The photos are public domain / CC0 (see skimage.data docstrings). Every image
is chosen so that, together, they reach every LLaVA-NeXT grid (1x2, 2x1, 2x2,
1x3, 3x1), odd and even padding on both axes, the <=336 tie-break, a large
(>= 2000 px) input, and each container flavour the C decoder must handle:
JPEG 4:2:0, JPEG 4:4:4, PNG RGB, PNG L (grayscale), PNG RGBA (alpha dropped,
not composited) and a JPEG with an EXIF orientation tag that must be ignored.
"""

import io
import os

import numpy as np
from PIL import Image
from skimage import data as skdata

from anyres import clip_geometry, next_geometry, next_token_count


def _crop(a, x, y, w, h):
    assert 0 <= x and 0 <= y and x + w <= a.shape[1] and y + h <= a.shape[0], (a.shape, x, y, w, h)
    return np.ascontiguousarray(a[y:y + h, x:x + w])


def _resize(a, w, h):
    return np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC))


def _rgba(rgb):
    """Add a synthetic alpha: a diagonal ramp with a fully transparent band, so a decoder
    that composites over black/white instead of dropping alpha gets different pixels."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = ((xx + yy) * 255 // (w + h - 2)).astype(np.uint8)
    alpha[:, w // 3: w // 3 + 40] = 0
    return np.dstack([rgb, alpha])


# name, source, builder, save format, save options, what it exercises
SPECS = [
    ("astronaut.png", "astronaut", lambda: skdata.astronaut(), "PNG", {},
     "square 512, 2x2, no padding"),
    ("coffee_wide.jpg", "coffee", lambda: _crop(skdata.coffee(), 0, 52, 600, 296), "JPEG", {"quality": 90, "subsampling": 2},
     "1x2, even vertical padding 2/2, JPEG 4:2:0"),
    ("rocket_odd.jpg", "rocket", lambda: skdata.rocket(), "JPEG", {"quality": 90, "subsampling": 2},
     "2x2, odd vertical padding 111/112, odd height, JPEG 4:2:0"),
    ("chelsea_rgba.png", "chelsea", lambda: _rgba(skdata.chelsea()), "PNG", {},
     "1x2, even horizontal padding 83/83, RGBA (alpha dropped)"),
    ("camera_gray.png", "camera", lambda: _crop(skdata.camera(), 136, 0, 240, 512), "PNG", {},
     "2x1, odd horizontal padding 10/11, grayscale L"),
    ("hubble_wide.jpg", "hubble_deep_field", lambda: _crop(skdata.hubble_deep_field(), 0, 271, 1000, 330),
     "JPEG", {"quality": 90, "subsampling": 0}, "1x3, odd vertical padding 1/2, JPEG 4:4:4"),
    ("retina_tall.jpg", "retina", lambda: _crop(skdata.retina(), 515, 105, 380, 1200), "JPEG",
     {"quality": 90, "subsampling": 0, "exif_orientation": 6},
     "3x1, even horizontal padding 8/8, JPEG 4:4:4, EXIF Orientation=6 (must be ignored)"),
    ("astronaut_tall.jpg", "astronaut", lambda: _crop(skdata.astronaut(), 100, 0, 360, 512), "JPEG",
     {"quality": 90, "subsampling": 0}, "2x2, odd horizontal padding 99/100, JPEG 4:4:4"),
    ("tiny.png", "coffee", lambda: _resize(skdata.coffee(), 200, 150)[:, :, :3], "PNG", {},
     "200x150 fits in one tile: every pinpoint ties, first listed (1x2) wins; odd padding 111/112"),
    ("large.jpg", "chelsea", lambda: _resize(_crop(skdata.chelsea(), 0, 0, 450, 300), 2400, 1600), "JPEG",
     {"quality": 85, "subsampling": 2}, "2400x1600 (downscale x0.28), 2x2, odd vertical padding, JPEG 4:2:0"),
]


def _exif_orientation(value):
    ex = Image.Exif()
    ex[0x0112] = value
    return ex.tobytes()


def write_images(out_dir):
    """Write every image; returns rows for the README (checked against our own geometry)."""
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for name, source, build, fmt, opts, what in SPECS:
        arr = build()
        mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
        img = Image.fromarray(arr, mode)
        path = os.path.join(out_dir, name)
        opts = dict(opts)
        if fmt == "JPEG":
            orient = opts.pop("exif_orientation", None)
            if orient is not None:
                opts["exif"] = _exif_orientation(orient)
            img.save(path, "JPEG", optimize=True, **opts)
        else:
            img.save(path, "PNG", optimize=True)
        rows.append(describe(path, source, fmt, opts, what))
    return rows


def describe(path, source, fmt, opts, what):
    im = Image.open(path)
    w, h = im.size
    g = next_geometry(h, w)
    c = clip_geometry(h, w)
    if fmt == "JPEG":
        fmt_s = "JPEG q%d %s" % (opts["quality"], {2: "4:2:0", 0: "4:4:4"}[opts["subsampling"]])
    else:
        fmt_s = "PNG " + im.mode
    return {
        "file": os.path.basename(path),
        "source": "skimage.data." + source,
        "w": w,
        "h": h,
        "mode": im.mode,
        "format": fmt_s,
        "grid": "%dx%d" % (g["rows"], g["cols"]),
        "n": g["n"],
        "resized": g["resized"],
        "pad": g["pad"],
        "tokens": next_token_count(h, w),
        "clip_resized": c["resized"],
        "clip_crop": c["crop"],
        "bytes": os.path.getsize(path),
        "what": what,
    }
