"""Independent numpy reference for model/select.{h,c}: visual-token selection.

Written from docs/selection.md (§1.4-1.7, §2, §3) and the contract comment in
model/select.h, deliberately without reading select.c, so that comparing the two
catches bugs in either. make_selection_fixtures.py runs it on the tiny fixture models.

Conventions (select.h):
  * every top-k: higher value first, ties -> lower index (a stable argsort of -x);
  * P = grid*grid = 576 tokens per partition, n partitions (base first), patch j at
    (row, col) = divmod(j, grid);
  * output order, none / hired / spatial: base partition in raster order, then the sub-images
    in raster order of the stitched (rows*grid) x (cols*grid) mosaic (row by row across
    sub-image boundaries); prumerge: per partition, kept tokens by descending score, the
    strided supplement ascending, then the summary token (row = col = -1).

Run `python select_ref.py` for the self-checks on synthetic inputs.
"""

import math

import numpy as np

GRID = 24
P = GRID * GRID
IMAGE_SIZE = 336
PM_NEIGHBOURS = 32  # PruMerge: kept tokens merge their 32 most key-similar others


# ---------------------------------------------------------------------------------------------
# top-k with the contract's tie rule, and the near-tie margin


def topk_indices(x, k):
    """Indices of the k largest values of x, largest first, ties -> lower index."""
    x = np.asarray(x)
    assert x.ndim == 1 and 0 <= k <= x.shape[0], (x.shape, k)
    return np.argsort(-x, kind="stable")[:k]


def topk_margin(x, k):
    """Relative gap between the k-th and (k+1)-th largest values of x (how far the top-k set
    is from changing), or None when there is no boundary (k == 0 or k == len(x))."""
    x = np.asarray(x, dtype=np.float64)
    if k <= 0 or k >= x.shape[0]:
        return None
    s = -np.sort(-x)
    hi, lo = s[k - 1], s[k]
    scale = max(abs(hi), abs(lo), 1e-300)
    return float((hi - lo) / scale)


def _min_margin(ms):
    ms = [m for m in ms if m is not None]
    return min(ms) if ms else None


# ---------------------------------------------------------------------------------------------
# HiRED budgets (docs/selection.md §1.4)


def budgets(n, p, r, alpha):
    """(N, B_full, B_sub) for n partitions of p tokens: Python int() of double products."""
    total = int((n * p) * r)
    base = min(int(total * alpha), p)
    sub = min(total - base, (n - 1) * p)
    return total, base, sub


def single_budget(p, r):
    """LLaVA-1.5 (n == 1, docs/selection.md §2): k = min(p, int(p*r))."""
    return min(p, int(p * r))


# ---------------------------------------------------------------------------------------------
# Sub-image budget split, reference variant (docs/selection.md §1.6, the authors' code)


def split_reference(base_alloc, p, n_sub, alpha, b_sub, info=None):
    """b[0..n_sub-1] from the base partition's allocation-layer attention [p].

    Indicator of the top-int(p*(1-alpha)) base tokens, counted over n_sub consecutive raster
    chunks of p/n_sub tokens; b_i = min(p, int(float32(count_i)/float32(sum) * B_sub)) in
    float32 like torch (int64 / int64 true division -> float32, times a Python int);
    remainders dropped. sum == 0 (alpha = 1): int(B_sub / n_sub) each (select.h)."""
    assert p % n_sub == 0, "the authors' reshape needs n_sub | p"
    if b_sub <= 0:
        return [0] * n_sub
    m = int(p * (1.0 - alpha))
    ind = np.zeros(p, dtype=np.int64)
    ind[topk_indices(base_alloc, m)] = 1
    if info is not None:
        info.setdefault("margins", []).append(("alloc_top%d" % m, topk_margin(base_alloc, m)))
    chunk = p // n_sub
    counts = [int(ind[i * chunk:(i + 1) * chunk].sum()) for i in range(n_sub)]
    total = sum(counts)
    if info is not None:
        info["counts"] = counts
    if total == 0:
        return [b_sub // n_sub] * n_sub
    out = []
    for c in counts:
        ratio = np.float32(c) / np.float32(total)
        v = np.float32(ratio * np.float32(b_sub))
        out.append(min(p, int(v)))
    return out


# ---------------------------------------------------------------------------------------------
# Sub-image budget split, paper variant (select.h "paper")


def patch_output_size(h, w, th, tw):
    """Aspect-preserving resize of an h x w image into the (th, tw) box (docs/numerics.md §1.3):
    the short side gets ceil of a double product, capped at the box."""
    sw = tw / w
    sh = th / h
    if sw < sh:
        return min(math.ceil(h * sw), th), tw
    return th, min(math.ceil(w * sh), tw)


def _overlap_1d(lo, hi, grid):
    """Length of [j, j+1] ∩ [lo, hi] for j = 0..grid-1 (patch units; fraction of a patch)."""
    j = np.arange(grid, dtype=np.float64)
    return np.clip(np.minimum(j + 1.0, hi) - np.maximum(j, lo), 0.0, None)


def region_weights(grid, rows, cols, orig_h, orig_w, image_size=IMAGE_SIZE):
    """w[i, y, x]: fraction of base patch (y, x)'s area that shows what sub-image i shows.

    The anyres canvas is rows*S x cols*S; the image, resized to (nh, nw) by
    patch_output_size, sits at (top, left) = (floor(dy/2), floor(dx/2)) (transformers >= 4.52);
    tile (r, c) covers canvas [r*S, (r+1)*S) x [c*S, (c+1)*S). The base image is the whole
    original squashed to the grid, so canvas row y maps to base-grid row (y - top)/nh * grid
    (columns alike). Padding maps to nothing. Over all tiles the weights of every base patch
    sum to 1."""
    s = image_size
    th, tw = rows * s, cols * s
    nh, nw = patch_output_size(orig_h, orig_w, th, tw)
    top, left = (th - nh) // 2, (tw - nw) // 2
    out = np.zeros((rows * cols, grid, grid), dtype=np.float64)
    for r in range(rows):
        y0, y1 = max(r * s, top), min((r + 1) * s, top + nh)
        for c in range(cols):
            x0, x1 = max(c * s, left), min((c + 1) * s, left + nw)
            if y1 <= y0 or x1 <= x0:
                continue  # tile entirely padding
            oy = _overlap_1d((y0 - top) / nh * grid, (y1 - top) / nh * grid, grid)
            ox = _overlap_1d((x0 - left) / nw * grid, (x1 - left) / nw * grid, grid)
            out[r * cols + c] = np.outer(oy, ox)
    return out


def largest_remainder(total, weights):
    """Apportion the integer total over weights (>= 0, sum > 0): floors of the exact quotas,
    then one more each to the largest fractional remainders, ties -> lower index.
    Returns (b, margin): margin = how far (in tokens) the rounding is from flipping: the
    gap between the last remainder that got +1 and the first that did not (None when every
    or no remainder gets one). A quota that sits at an integer is not fragile: if it lands
    just below instead, its remainder ~1 wins the token back."""
    w = np.asarray(weights, dtype=np.float64)
    q = total * w / w.sum()
    b = np.floor(q).astype(np.int64)
    frac = q - b
    rem = int(total - b.sum())
    order = np.argsort(-frac, kind="stable")
    b[order[:rem]] += 1
    margin = None
    if 0 < rem < len(w):
        margin = float(frac[order[rem - 1]] - frac[order[rem]])
    return [int(v) for v in b], margin


def split_paper(base_alloc, grid, rows, cols, orig_h, orig_w, b_sub, image_size=IMAGE_SIZE,
                cap=None, info=None):
    """b[0..rows*cols-1]: B_sub apportioned by the base's allocation-layer attention mass over
    each sub-image's base-grid region (largest remainder, ties -> lower index), each capped at
    cap (= grid^2) with the excess moved to the sub-images with room: the capped ones are fixed
    at cap and what remains of B_sub is re-apportioned over the others by the same rule,
    repeated until no quota exceeds the cap. Sigma b_i = B_sub exactly (B_sub <= n_sub*cap).
    A zero total mass (not reachable with softmax attention) splits evenly, remainder to the
    lower indices."""
    p = grid * grid
    cap = p if cap is None else cap
    n_sub = rows * cols
    assert 0 <= b_sub <= n_sub * cap
    wts = region_weights(grid, rows, cols, orig_h, orig_w, image_size)
    a = np.asarray(base_alloc, dtype=np.float64).reshape(grid, grid)
    mass = (wts * a[None]).sum(axis=(1, 2))
    if info is not None:
        info["mass"] = [float(v) for v in mass]
    if b_sub <= 0:
        return [0] * n_sub
    if not (mass > 0).any():
        mass = np.ones(n_sub)
    fixed = np.zeros(n_sub, dtype=bool)
    margins = []
    while True:
        free = np.flatnonzero(~fixed)
        left = b_sub - cap * int(fixed.sum())
        sub, m = largest_remainder(left, mass[free]) if mass[free].sum() > 0 else (
            largest_remainder(left, np.ones(len(free))))
        b = np.full(n_sub, cap, dtype=np.int64)
        b[free] = sub
        margins.append(m)
        over = (b > cap) & ~fixed
        if not over.any():
            break
        fixed |= over
    if info is not None:
        info["split_margin"] = _min_margin(margins)
    return [int(v) for v in b]


# ---------------------------------------------------------------------------------------------
# Spatial (docs/selection.md §1.7)


def spatial_indices(p, s):
    """k_s = int(p*s), gap = p // k_s, indices 0, gap, 2*gap, ... < p-1. Empty when k_s == 0."""
    ks = int(p * s)
    if ks <= 0:
        return np.zeros(0, dtype=np.int64)
    gap = p // ks
    return np.arange(0, p - 1, gap, dtype=np.int64)


def spatial(n, p, s):
    """Spatial baseline alone: the strided indices in every partition. mask [n, p]."""
    mask = np.zeros((n, p), dtype=bool)
    mask[:, spatial_indices(p, s)] = True
    return mask


# ---------------------------------------------------------------------------------------------
# HiRED


def hired_next(alloc_attn, select_attn, rows, cols, orig_h, orig_w, r, alpha, split="reference",
               spatial_s=0.0, grid=GRID, image_size=IMAGE_SIZE, info=None):
    """HiRED on LLaVA-NeXT. alloc_attn, select_attn: [n, P] head-summed CLS attention at the
    allocation (0) and selection (22) layers, partition 0 = base. Returns mask [n, P].

    split = "reference": the authors' code, including its r >= 1 path, which skips selection
    altogether and keeps every token (docs/selection.md §1.10; modeling_llava_next forward). split =
    "paper": select.h's paper variant, arithmetic only (with alpha = 0.5 and r = 1 it keeps
    everything anyway). info (a dict) receives budgets, b_i and the top-k margins."""
    alloc_attn = np.asarray(alloc_attn)
    select_attn = np.asarray(select_attn)
    n, p = select_attn.shape
    assert p == grid * grid and n == 1 + rows * cols and n >= 2
    n_sub = n - 1
    total, b_full, b_sub = budgets(n, p, r, alpha)
    info = {} if info is None else info
    info.update(budget_total=total, budget_base=b_full, budget_sub=b_sub)
    info.setdefault("margins", [])
    mask = np.zeros((n, p), dtype=bool)
    if split == "reference" and r >= 1.0:
        mask[:] = True
        info["b"] = [p] * n_sub
        info["bypass"] = True
    else:
        mask[0, topk_indices(select_attn[0], b_full)] = True
        info["margins"].append(("base_top%d" % b_full, topk_margin(select_attn[0], b_full)))
        if split == "reference":
            b = split_reference(alloc_attn[0], p, n_sub, alpha, b_sub, info=info)
        elif split == "paper":
            b = split_paper(alloc_attn[0], grid, rows, cols, orig_h, orig_w, b_sub,
                            image_size=image_size, info=info)
        else:
            raise ValueError("split must be 'reference' or 'paper'")
        info["b"] = b
        for i, bi in enumerate(b):
            mask[i + 1, topk_indices(select_attn[i + 1], bi)] = True
            info["margins"].append(("sub%d_top%d" % (i + 1, bi), topk_margin(select_attn[i + 1], bi)))
    if spatial_s > 0:
        mask[:, spatial_indices(p, spatial_s)] = True
    return mask


def hired_single(select_attn, r, spatial_s=0.0, info=None):
    """HiRED on LLaVA-1.5 (n == 1, docs/selection.md §2): top-min(P, int(P*r)) of the selection-layer
    attention [1, P] (or [P]). No split; alpha ignored. Returns mask [1, P]."""
    a = np.asarray(select_attn).reshape(-1)
    p = a.shape[0]
    k = single_budget(p, r)
    info = {} if info is None else info
    info.update(budget_total=k, budget_base=k, budget_sub=0)
    info.setdefault("margins", []).append(("top%d" % k, topk_margin(a, k)))
    mask = np.zeros((1, p), dtype=bool)
    mask[0, topk_indices(a, k)] = True
    if spatial_s > 0:
        mask[0, spatial_indices(p, spatial_s)] = True
    return mask


def kept_positions(mask, rows, cols, grid=GRID):
    """[(part, row, col)] in select.h's output order for none / hired / spatial."""
    mask = np.asarray(mask, dtype=bool)
    n, p = mask.shape
    out = [(0, int(j) // grid, int(j) % grid) for j in np.flatnonzero(mask[0])]
    if n == 1:
        return out
    assert n == 1 + rows * cols
    for y in range(rows * grid):
        tr, row = divmod(y, grid)
        for x in range(cols * grid):
            tc, col = divmod(x, grid)
            part = 1 + tr * cols + tc
            if mask[part, row * grid + col]:
                out.append((part, row, col))
    return out


# ---------------------------------------------------------------------------------------------
# PruMerge / PruMerge+ (docs/selection.md §3)


def iqr_outliers(a):
    """Number of a_j > Q3 + 1.5*IQR with the authors' numpy operations (float32 values,
    np.percentile linear interpolation, numpy 1.x comparison of a float32 array with a float64
    scalar, which rounds the fence to float32). Returns (count, fence, margin): margin = the
    smallest |a_j - fence| relative to the fence (how close a value is to flipping sides)."""
    x = np.asarray(a, dtype=np.float32).reshape(-1)
    q1 = np.percentile(x, 25)
    q3 = np.percentile(x, 75)
    fence = q3 + 1.5 * (q3 - q1)
    count = int(np.count_nonzero(x > fence))
    # the same count in plain double arithmetic (what a C port in double does); equal unless
    # a value lies within float32 rounding of the fence
    xd = np.sort(x.astype(np.float64))
    def pct(q):
        h = (len(xd) - 1) * q
        lo = int(math.floor(h))
        return xd[lo] + (h - lo) * (xd[min(lo + 1, len(xd) - 1)] - xd[lo])
    fd = pct(0.75) + 1.5 * (pct(0.75) - pct(0.25))
    count_d = int(np.count_nonzero(x.astype(np.float64) > fd))
    margin = float(np.min(np.abs(x.astype(np.float64) - fd)) / max(abs(fd), 1e-300))
    if count_d != count:
        margin = 0.0
    return count, float(fence), margin


def prumerge_partition(attn, keys, feats, plus, neighbours=PM_NEIGHBOURS, tie_warn=1e-5):
    """One partition. attn [P]: single-head full-width CLS->patch attention of the last layer;
    keys [P, d]: that layer's k_proj output without the CLS row; feats [P, d]: feature layer
    without CLS. Returns (kept, merged, info): kept = patch indices in output order (top by
    descending score, then the supplement ascending); merged = [len(kept)+1, d] float64, the
    last row the summary token. For every kept token whose 32nd and 33rd most similar keys are
    closer than tie_warn (relative), info accumulates how much swapping them would change the
    sum and the sum of squares of the merged features (merge_tie_dsum, merge_tie_dsumsq)."""
    a64 = np.asarray(attn, dtype=np.float64).reshape(-1)
    p = a64.shape[0]
    keys = np.asarray(keys, dtype=np.float64)
    feats = np.asarray(feats, dtype=np.float64)
    count, fence, fence_margin = iqr_outliers(attn)
    info = {"outliers": count, "fence_margin": fence_margin, "margins": []}
    if count == 0:
        ratio = 1.0 / p  # select.h: no outlier -> keep the single most-attended token
    else:
        ratio = count / p
    k = int(p * ratio)
    top = [int(i) for i in topk_indices(a64, k)]
    info["margins"].append(("top%d" % k, topk_margin(a64, k)))
    kept = list(top)
    supplement = []
    if plus:
        step = int(1 / ratio)
        stride = int(step / 3)
        assert stride >= 1, "ratio > 1/3 cannot happen (select.h)"
        have = set(top)
        supplement = [j for j in range(0, p - 1, stride) if j not in have]
        kept += supplement
    info["supplement"] = len(supplement)
    kept_set = set(kept)
    rest = np.array([j for j in range(p) if j not in kept_set], dtype=np.int64)
    norm = np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    kn = keys / norm
    d = feats.shape[1]
    merged = np.zeros((len(kept) + 1, d), dtype=np.float64)
    merge_margins = []
    tie_dsum = tie_dsumsq = 0.0
    for t, i in enumerate(kept):
        # every other token is a candidate (the other kept ones and the complement)
        others = np.array([j for j in range(p) if j != i], dtype=np.int64)
        sim = kn[others] @ kn[i]
        nb = min(neighbours, len(others))
        pick = others[topk_indices(sim, nb)]
        mm = topk_margin(sim, nb)
        merge_margins.append(mm)
        merged[t] = feats[i] + (a64[pick, None] * feats[pick]).sum(axis=0)
        if mm is not None and mm < tie_warn:
            # what a float32 port that swaps the nb-th and (nb+1)-th neighbour would get
            order = others[np.argsort(-sim, kind="stable")]
            alt = merged[t] + a64[order[nb]] * feats[order[nb]] - a64[order[nb - 1]] * feats[order[nb - 1]]
            tie_dsum += abs(alt.sum() - merged[t].sum())
            tie_dsumsq += abs((alt * alt).sum() - (merged[t] * merged[t]).sum())
    if len(rest):
        merged[-1] = (a64[rest, None] * feats[rest]).sum(axis=0)
    info["merge_margin"] = _min_margin(merge_margins)
    info["merge_tie_dsum"], info["merge_tie_dsumsq"] = tie_dsum, tie_dsumsq
    return kept, merged, info


def prumerge(pm_attn, pm_keys, feats, plus, grid=GRID):
    """Every partition independently, base first. Returns (positions, merged, per_part, infos):
    positions = [(part, row, col)], the summary token as (part, -1, -1)."""
    pm_attn = np.asarray(pm_attn)
    n = pm_attn.shape[0]
    positions, blocks, per_part, infos = [], [], [], []
    for q in range(n):
        kept, merged, info = prumerge_partition(pm_attn[q], pm_keys[q], feats[q], plus)
        positions += [(q, j // grid, j % grid) for j in kept] + [(q, -1, -1)]
        blocks.append(merged)
        per_part.append(len(kept) + 1)
        infos.append(info)
    return positions, np.concatenate(blocks, axis=0), per_part, infos


def none_mask(n, p=P):
    return np.ones((n, p), dtype=bool)


# ---------------------------------------------------------------------------------------------
# Self-checks on synthetic inputs


def _softmaxish(rng, n, p, peak=3.0):
    x = rng.standard_normal((n, p)) * peak
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _selftest():
    rng = np.random.default_rng(7)

    # budgets: the values listed in docs/selection.md §1.4
    for n, r, want in [(5, 0.2, (576, 288, 288)), (5, 0.1, (288, 144, 144)), (5, 0.4, (1152, 576, 576)),
                       (4, 0.2, (460, 230, 230)), (3, 0.2, (345, 172, 173)), (3, 0.4, (691, 345, 346))]:
        assert budgets(n, P, r, 0.5) == want, (n, r, budgets(n, P, r, 0.5), want)
    assert single_budget(P, 0.2) == 115 and single_budget(P, 0.4) == 230 and single_budget(P, 1.0) == 576

    # top-k ties: lower index first
    assert list(topk_indices(np.array([1, 3, 3, 2, 3], np.float32), 3)) == [1, 2, 4]
    assert topk_margin(np.array([3, 3, 1.0]), 1) == 0.0 and topk_margin(np.array([4, 2.0]), 1) == 0.5

    # reference split: n=5, r=0.2 -> b_i = count_i (docs/selection.md §1.6); r=0.1 -> floor(count/2)
    for _ in range(20):
        a = _softmaxish(rng, 1, P)[0]
        info = {}
        b = split_reference(a, P, 4, 0.5, 288, info=info)
        assert b == info["counts"] and sum(b) == 288
        b = split_reference(a, P, 4, 0.5, 144, info=info)
        assert b == [c // 2 for c in info["counts"]], (b, info["counts"])
    # float32 emulation equals torch's int64/int64 -> float32, * int, .int() on a sweep
    try:
        import torch
        for n_sub in (2, 3, 4):
            for b_sub in (57, 144, 172, 173, 288, 345, 346, 576, 1152, 2304):
                for _ in range(200):
                    c = rng.multinomial(288, np.ones(n_sub) / n_sub)
                    t = torch.tensor(c, dtype=torch.int64)
                    want = torch.clamp(((t / t.sum()) * b_sub).int(), max=P).tolist()
                    got = [min(P, int(np.float32(np.float32(v) / np.float32(c.sum()) * np.float32(b_sub))))
                           for v in c]
                    assert got == want, (c, b_sub, got, want)
    except ImportError:
        print("torch not available: float32 split emulation not cross-checked")
    # alpha = 1: m = 0 -> even split
    assert split_reference(_softmaxish(rng, 1, P)[0], P, 4, 1.0, 100) == [25] * 4
    # all the top tokens in one stripe
    a = np.zeros(P, np.float32)
    a[:288] = 1.0 + np.arange(288, dtype=np.float32) * 1e-3
    assert split_reference(a, P, 4, 0.5, 288) == [144, 144, 0, 0]
    assert split_reference(a, P, 2, 0.5, 576) == [576, 0]

    # region weights: cover every base patch exactly once; square image -> quadrants
    for h, w, rows, cols in [(600, 600, 2, 2), (480, 640, 2, 2), (400, 900, 1, 3), (900, 400, 3, 1),
                             (336, 336, 1, 2), (300, 300, 1, 2), (1000, 333, 3, 1), (77, 1001, 1, 3)]:
        wts = region_weights(GRID, rows, cols, h, w)
        assert np.allclose(wts.sum(axis=0), 1.0), (h, w)
        assert (wts >= 0).all() and (wts <= 1 + 1e-12).all()
    wts = region_weights(GRID, 2, 2, 600, 600)
    assert np.allclose(wts[0, :12, :12], 1) and np.allclose(wts[0, 12:, :], 0) and np.allclose(wts[3, 12:, 12:], 1)
    # 336x336 in a 1x2 grid: resized 336x672?? no: box 336x672, image keeps aspect -> 336x336
    # centred, left pad 168: tile 0 shows the left half, tile 1 the right half
    wts = region_weights(GRID, 1, 2, 336, 336)
    assert np.allclose(wts[0][:, :12], 1) and np.allclose(wts[1][:, 12:], 1)
    # 300x300 -> resized 336x337 (ceil of 300*1.12), pad left 167: tile 0 covers canvas x in
    # [167, 336): (336-167)/337*24 = 12.0356 base columns
    wts = region_weights(GRID, 1, 2, 300, 300)
    assert abs(wts[0][0].sum() - (336 - 167) / 337 * 24) < 1e-9

    # paper split: sums to B_sub, proportional to mass, caps respected
    for _ in range(50):
        a = _softmaxish(rng, 1, P)[0]
        for rows, cols, h, w in [(2, 2, 600, 600), (1, 3, 400, 900), (3, 1, 900, 400), (1, 2, 336, 336)]:
            for b_sub in (0, 1, 57, 288, 576, rows * cols * 576 - 7, rows * cols * 576):
                info = {}
                b = split_paper(a, GRID, rows, cols, h, w, b_sub, info=info)
                assert sum(b) == b_sub and max(b) <= P and min(b) >= 0, (b, b_sub)
                if b_sub and max(b) < P:
                    q = b_sub * np.array(info["mass"]) / sum(info["mass"])
                    assert np.all(np.abs(np.array(b) - q) < 1.0), (b, q)
    # even mass, uneven remainder -> lower indices get the extra tokens
    assert largest_remainder(7, [1, 1, 1, 1])[0] == [2, 2, 2, 1]
    # cap with redistribution: one region dominating
    a = np.full(P, 1e-6, np.float32)
    a.reshape(GRID, GRID)[:12, :12] = 1.0
    b = split_paper(a, GRID, 2, 2, 600, 600, 1000)
    assert b[0] == 576 and sum(b) == 1000 and b[1:] == [142, 141, 141], b

    # spatial (docs/selection.md §1.7)
    assert len(spatial_indices(P, 0.1)) == 58 and spatial_indices(P, 0.1)[-1] == 570
    assert len(spatial_indices(P, 0.2)) == 115
    assert len(spatial_indices(P, 0.4)) == 288 and spatial_indices(P, 0.4)[-1] == 574
    assert len(spatial_indices(P, 1.0)) == 575  # index 575 never included
    assert len(spatial_indices(P, 0.001)) == 0

    # hired_next: counts, uniqueness, r = 1 bypass, output order
    for rows, cols, h, w in [(2, 2, 600, 600), (1, 3, 400, 900), (3, 1, 900, 400), (1, 2, 336, 336)]:
        n = 1 + rows * cols
        al, se = _softmaxish(rng, n, P), _softmaxish(rng, n, P)
        for r in (0.1, 0.2, 0.4, 1.0):
            for split in ("reference", "paper"):
                info = {}
                m = hired_next(al, se, rows, cols, h, w, r, 0.5, split, info=info)
                tot, bf, bs = budgets(n, P, r, 0.5)
                pos = kept_positions(m, rows, cols)
                assert len(set(pos)) == len(pos) == int(m.sum())
                if split == "reference" and r >= 1:
                    assert m.all()
                    continue
                assert int(m[0].sum()) == bf
                if split == "reference":
                    assert int(m[1:].sum()) <= bs
                else:
                    assert int(m[1:].sum()) == bs
                if r == 1.0:
                    assert m.all()  # alpha 0.5: B_full = 576, B_sub = (n-1)*576
        m = hired_next(al, se, rows, cols, h, w, 0.1, 0.5, "reference", spatial_s=0.1)
        m0 = hired_next(al, se, rows, cols, h, w, 0.1, 0.5, "reference")
        assert (m == (m0 | spatial(n, P, 0.1))).all()
    # mosaic order for 1x2: row 0 of tile 1 then row 0 of tile 2, ...
    pos = kept_positions(none_mask(3), 1, 2)
    assert pos[576] == (1, 0, 0) and pos[576 + 24] == (2, 0, 0) and pos[576 + 48] == (1, 1, 0)
    assert len(pos) == 3 * 576
    pos = kept_positions(none_mask(5), 2, 2)
    assert pos[576 + 48 * 24] == (3, 0, 0)
    # single partition
    a = _softmaxish(rng, 1, P)
    assert hired_single(a, 0.2).sum() == 115 and hired_single(a, 1.0).all()

    # prumerge
    for _ in range(5):
        d = 32
        att = _softmaxish(rng, 1, P + 1, peak=1.0)[0, 1:]
        att[rng.choice(P, 9, replace=False)] *= 50  # some outliers
        keys = rng.standard_normal((P, d)).astype(np.float32)
        feats = rng.standard_normal((P, d)).astype(np.float32)
        cnt = iqr_outliers(att)[0]
        assert cnt >= 9
        kept, merged, info = prumerge_partition(att, keys, feats, plus=False)
        assert kept == list(topk_indices(att, cnt)) and merged.shape == (cnt + 1, d)
        # merged row 0 by brute force
        i = kept[0]
        kn = keys / np.linalg.norm(keys, axis=1, keepdims=True)
        sim = kn.astype(np.float64) @ kn[i].astype(np.float64)
        sim[i] = -np.inf
        nb = np.argsort(-sim, kind="stable")[:32]
        want = feats[i].astype(np.float64) + (att[nb, None].astype(np.float64) * feats[nb]).sum(0)
        assert np.allclose(merged[0], want)
        rest = sorted(set(range(P)) - set(kept))
        assert np.allclose(merged[-1], (att[rest, None].astype(np.float64) * feats[rest]).sum(0))
        kp, mp, infop = prumerge_partition(att, keys, feats, plus=True)
        stride = int(int(1 / (cnt / P)) / 3)
        sup = [j for j in range(0, P - 1, stride) if j not in set(kept)]
        assert kp == kept + sup and mp.shape[0] == len(kp) + 1
        assert len(set(kp)) == len(kp)
    # no outlier: flat attention -> top 1; PruMerge+ stride int(576/3) = 192
    att = np.full(P, 1.0 / (P + 1), np.float32)
    assert iqr_outliers(att)[0] == 0
    kept, merged, _ = prumerge_partition(att, keys, feats, plus=False)
    assert kept == [0] and merged.shape[0] == 2
    kept, merged, _ = prumerge_partition(att, keys, feats, plus=True)
    assert kept == [0, 192, 384]
    pos, mf, per, _ = prumerge(np.stack([att, att]), np.stack([keys, keys]), np.stack([feats, feats]), True)
    assert per == [4, 4] and pos[3] == (0, -1, -1) and pos[4] == (1, 0, 0) and mf.shape[0] == 8
    print("select_ref self-checks: ok")


if __name__ == "__main__":
    _selftest()
