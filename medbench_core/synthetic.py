"""Procedurally generated images for the embedded default (SYNTHETIC data, not medical images).

Two generators, both seeded and vectorised over a batch with numpy:

- ``chest_xrays``: grey chest-radiograph-like images (body, two lungs with markings, ribs, spine, heart) with six
  findings (nodule, effusion, cardiomegaly, consolidation, pneumothorax, cavity) and masks (lungs, pneumothorax).
  A ``site`` changes contrast, noise, blur and positioning, so pre-training and target data differ like two hospitals.
- ``natural_images``: colour images of textured shapes with a two-level label hierarchy (4 coarse shape classes,
  4 fine variants each: size x fill pattern). The "photographic" pre-training source.

Same arguments, same bytes: every random draw comes from one ``numpy.random.Generator`` seeded by the caller, and
images are produced in fixed-size chunks so the result does not depend on memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

CHEST_FINDINGS = ("nodule", "effusion", "cardiomegaly", "consolidation", "pneumothorax", "cavity")
COARSE_CLASSES = ("disk", "ring", "bar", "square")
FINE_VARIANTS = ("small solid", "small striped", "large solid", "large striped")
FINE_CLASSES = tuple(f"{c}: {v}" for c in COARSE_CLASSES for v in FINE_VARIANTS)

_CHUNK = 256  # images generated per vectorised step
# Bump when a generator's output changes: it is part of every cache key and run hash built on generated data.
GENERATOR_VERSION = 3


@dataclass(frozen=True)
class Site:
    """Acquisition differences between two synthetic 'hospitals'."""

    gamma: float  # intensity ** gamma
    noise: float  # std of additive Gaussian noise, intensity units in [0, 1]
    blur: float  # Gaussian blur sigma, in units of image size / 64
    shift_y: float  # vertical offset of the body, in [-1, 1] coordinates
    contrast: float  # scales intensities around mid-grey


SITES = {
    "A": Site(gamma=1.0, noise=0.03, blur=0.7, shift_y=0.0, contrast=1.0),
    "B": Site(gamma=0.8, noise=0.05, blur=1.0, shift_y=0.06, contrast=0.85),
}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return yy[None], xx[None]  # (1, S, S), coordinates in [-1, 1]


def _u(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, size=(n, 1, 1)).astype(np.float32)


def _soft(d: np.ndarray, edge: float) -> np.ndarray:
    """Soft step: 1 where d < 0, 0 where d > 0, over a width ``edge``."""
    return np.clip(0.5 - d / edge, 0.0, 1.0)


def _point_in_lung(rng, n, cx, cy, rx, ry, y_lo=-0.9, y_hi=0.9):
    """Random points inside each image's lung ellipse, restricted to a band of relative height [y_lo, y_hi]."""
    ang = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    rad = np.sqrt(rng.uniform(0, 1, size=(n, 1, 1))).astype(np.float32) * 0.6
    py = np.clip(np.sin(ang) * rad, y_lo, y_hi)
    return cx + np.cos(ang) * rad * rx, cy + py * ry


def chest_xrays(n: int, size: int, seed: int, site: str = "A", prevalence: float = 0.3,
                target: str | None = None, target_prevalence: float | None = None) -> dict[str, np.ndarray]:
    """Generate ``n`` SYNTHETIC chest-radiograph-like images.

    ``prevalence`` is the probability of each of the five main findings; the cavity finding appears only when it is
    the ``target`` (its own ``target_prevalence``). Returns uint8 arrays: ``images`` (n, S, S), ``labels``
    (n, 6) in CHEST_FINDINGS order, ``lungs`` and ``pneumothorax`` masks (n, S, S) with values 0/1.

    Example:
        >>> chest_xrays(4, 32, seed=0)["images"].shape
        (4, 32, 32)
    """
    if site not in SITES:
        raise ValueError(f"unknown site {site!r}; valid sites: {', '.join(SITES)}")
    rng = np.random.default_rng(seed)
    p = np.full(len(CHEST_FINDINGS), prevalence, dtype=np.float64)
    p[CHEST_FINDINGS.index("cavity")] = 0.0
    if target is not None:
        p[CHEST_FINDINGS.index(target)] = prevalence if target_prevalence is None else target_prevalence
    labels = (rng.uniform(size=(n, len(p))) < p).astype(np.uint8)
    out = {k: np.empty((n, size, size), np.uint8) for k in ("images", "lungs", "pneumothorax")}
    for s in range(0, n, _CHUNK):
        e = min(n, s + _CHUNK)
        img, lungs, ptx = _chest_chunk(rng, labels[s:e], size, SITES[site])
        out["images"][s:e], out["lungs"][s:e], out["pneumothorax"][s:e] = img, lungs, ptx
    out["labels"] = labels
    return out


def _chest_chunk(rng, labels, size, site: Site):
    n = len(labels)
    yy, xx = _grid(size)
    px = 2.0 / size  # one pixel in [-1, 1] units
    has = {f: labels[:, i].astype(bool)[:, None, None] for i, f in enumerate(CHEST_FINDINGS)}
    dy = site.shift_y + _u(rng, n, -0.04, 0.04)
    dx = _u(rng, n, -0.04, 0.04)

    body = _soft(np.sqrt(((xx - dx) / _u(rng, n, 0.8, 0.9)) ** 2 + ((yy - dy - 0.05) / 0.98) ** 2) - 1, 0.08)
    img = 0.08 + 0.30 * body

    # ribs: curved bright bands over the chest
    freq, phase, curve = _u(rng, n, 16, 20), _u(rng, n, 0, 2 * np.pi), _u(rng, n, 0.5, 0.8)
    ribs = (np.sin(freq * (yy - dy) + curve * 6 * (xx - dx) ** 2 + phase) > 0.55).astype(np.float32)
    img = img + 0.07 * ribs * body

    # lungs: two dark ellipses with vessel markings (smoothed noise)
    lung_masks, lung_geo = [], []
    for side in (-1, 1):
        cx = dx + side * _u(rng, n, 0.34, 0.42)
        cy = dy + _u(rng, n, -0.12, -0.02)
        rx, ry = _u(rng, n, 0.24, 0.29), _u(rng, n, 0.5, 0.6)
        rho = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        lung_masks.append(_soft(rho - 1, 0.06))
        lung_geo.append((cx, cy, rx, ry, rho, side))
    lung = np.clip(lung_masks[0] + lung_masks[1], 0, 1)
    markings = ndimage.gaussian_filter(rng.standard_normal((n, size, size)).astype(np.float32),
                                       sigma=(0, size / 64, size / 64))
    markings = markings / (markings.std(axis=(1, 2), keepdims=True) + 1e-6)
    img = img * (1 - 0.75 * lung) + lung * 0.10
    unmarked = img.copy()  # lung without vessel markings: what a pneumothorax looks like
    img = img + lung * 0.035 * markings

    # spine / mediastinum and heart (cardiomegaly = larger heart)
    img = np.maximum(img, 0.45 * _soft(np.abs(xx - dx) - 0.07, 0.05) * body)
    hs = np.where(has["cardiomegaly"], _u(rng, n, 1.35, 1.55), _u(rng, n, 0.9, 1.05))
    hcx, hcy = dx + _u(rng, n, 0.04, 0.12), dy + _u(rng, n, 0.22, 0.30)
    heart = _soft(np.sqrt(((xx - hcx) / (0.22 * hs)) ** 2 + ((yy - hcy) / (0.20 * np.sqrt(hs))) ** 2) - 1, 0.06)
    img = img * (1 - heart) + heart * 0.55
    lungs_mask = (lung > 0.5) & (heart < 0.5)

    # findings, each in a randomly chosen lung
    which = rng.integers(0, 2, size=(n, 5))
    ptx_mask = np.zeros((n, size, size), bool)

    def pick(k):
        g0, g1 = lung_geo
        sel = (which[:, k] == 0)[:, None, None]
        return [np.where(sel, a, b) for a, b in zip(g0[:5], g1[:5])] + [np.where(sel[:, 0, 0], g0[5], g1[5])]

    cx, cy, rx, ry, rho, side = pick(0)  # nodule: a small bright disk
    qx, qy = _point_in_lung(rng, n, cx, cy, rx, ry)
    nod = _soft(np.sqrt((xx - qx) ** 2 + (yy - qy) ** 2) - _u(rng, n, 0.05, 0.08), 2 * px)
    img = img + has["nodule"] * 0.35 * nod

    cx, cy, rx, ry, rho, side = pick(1)  # effusion: fluid level with a meniscus at the lung base
    level = cy + ry * _u(rng, n, 0.25, 0.55) - 0.6 * (xx - cx) ** 2
    eff = _soft(rho - 1, 0.06) * _soft(level - yy, 0.04)
    img = img * (1 - has["effusion"] * eff) + has["effusion"] * eff * 0.5

    cx, cy, rx, ry, rho, side = pick(2)  # consolidation: a patchy opacity
    qx, qy = _point_in_lung(rng, n, cx, cy, rx, ry)
    blob = np.exp(-((xx - qx) ** 2 + (yy - qy) ** 2) / (2 * _u(rng, n, 0.08, 0.13) ** 2))
    patch = blob * _soft(rho - 1, 0.06) * (0.6 + 0.4 * np.clip(markings, -1, 1))
    img = img + has["consolidation"] * 0.35 * patch

    cx, cy, rx, ry, rho, side = pick(3)  # pneumothorax: lateral-apical rim with no markings and a pleural line
    depth = _u(rng, n, 0.25, 0.45)
    lateral = ((xx - cx) * side[:, None, None] > -0.1 * rx) & (yy < cy + 0.3 * ry)
    region = (rho < 1.0) & (rho > 1 - depth) & lateral
    ptx = has["pneumothorax"] & region
    img = np.where(ptx, 0.85 * unmarked, img)  # subtle: no markings, slightly darker
    inside = (1 - depth) - rho  # the visceral pleural line runs just medial to the air rim
    pleura = (inside >= 0) & (inside < 1.5 * px / rx) & lateral
    img = img + 0.10 * (has["pneumothorax"] & pleura)
    ptx_mask |= ptx

    cx, cy, rx, ry, rho, side = pick(4)  # cavity (tuberculosis-like): upper-lobe ring with satellite specks
    qx, qy = _point_in_lung(rng, n, cx, cy, rx, ry, y_lo=-0.7, y_hi=-0.2)
    r = _u(rng, n, 0.07, 0.10)
    d = np.sqrt((xx - qx) ** 2 + (yy - qy) ** 2)
    ring = _soft(np.abs(d - r) - 0.022, 2 * px)
    specks = sum(_soft(np.sqrt((xx - qx - _u(rng, n, -0.2, 0.2)) ** 2 + (yy - qy - _u(rng, n, -0.2, 0.2)) ** 2)
                       - 0.025, 2 * px) for _ in range(3))
    img = img + has["cavity"] * (0.35 * ring + 0.25 * np.clip(specks, 0, 1) - 0.05 * (d < r - 0.02))

    # acquisition: blur, noise, contrast, gamma
    img = ndimage.gaussian_filter(img, sigma=(0, site.blur * size / 64, site.blur * size / 64))
    img = img + site.noise * rng.standard_normal(img.shape).astype(np.float32)
    img = 0.5 + (img - 0.5) * site.contrast
    img = np.clip(img, 0, 1) ** site.gamma
    return (np.round(img * 255).astype(np.uint8), lungs_mask.astype(np.uint8), ptx_mask.astype(np.uint8))


def natural_images(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """Generate ``n`` SYNTHETIC colour images of shapes with coarse and fine labels.

    Coarse label = shape family (disk, ring, bar, square); fine label = family x variant (small/large,
    solid/striped), 16 classes. Hue, position, rotation and the background texture are nuisances.
    Returns ``images`` (n, 3, S, S) uint8, ``coarse`` (n,) and ``fine`` (n,) int64.

    Example:
        >>> natural_images(2, 32, seed=0)["fine"].shape
        (2,)
    """
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, len(FINE_CLASSES), size=n)
    images = np.empty((n, 3, size, size), np.uint8)
    for s in range(0, n, _CHUNK):
        e = min(n, s + _CHUNK)
        images[s:e] = _natural_chunk(rng, fine[s:e], size)
    return {"images": images, "coarse": (fine // len(FINE_VARIANTS)).astype(np.int64), "fine": fine.astype(np.int64)}


def _hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB on arrays of shape (n, 1, 1); returns (n, 3, 1, 1)."""
    k = lambda m: (m + h * 6) % 6  # noqa: E731
    f = lambda m: v - v * s * np.clip(np.minimum(k(m), 4 - k(m)), 0, 1)  # noqa: E731
    return np.stack([f(5), f(3), f(1)], axis=1)


def _natural_chunk(rng, fine, size):
    n = len(fine)
    yy, xx = _grid(size)
    px = 2.0 / size
    coarse, variant = fine // 4, fine % 4
    large = (variant >= 2)[:, None, None]
    striped = (variant % 2 == 1)[:, None, None]

    # background: two random low-frequency colour waves
    bg = np.zeros((n, 3, size, size), np.float32)
    for _ in range(2):
        fy, fx, ph = _u(rng, n, -4, 4), _u(rng, n, -4, 4), _u(rng, n, 0, 6.3)
        wave = 0.5 + 0.5 * np.sin(fy * yy + fx * xx + ph)
        bg += 0.25 * _hsv_to_rgb(_u(rng, n, 0, 1), _u(rng, n, 0.2, 0.6), _u(rng, n, 0.4, 0.9)) * wave[:, None]
    img = bg

    n_obj = rng.integers(1, 4, size=n)
    for j in range(3):
        present = (n_obj > j)[:, None, None]
        r = np.where(large, _u(rng, n, 0.30, 0.40), _u(rng, n, 0.13, 0.19))
        cy, cx = _u(rng, n, -0.5, 0.5), _u(rng, n, -0.5, 0.5)
        th = _u(rng, n, 0, np.pi)
        u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
        v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
        d = np.sqrt(u**2 + v**2)
        shape_d = np.select(
            [coarse[:, None, None] == 0, coarse[:, None, None] == 1, coarse[:, None, None] == 2],
            [d - r, np.abs(d - r * 0.8) - r * 0.22, np.maximum(np.abs(u) - r * 1.3, np.abs(v) - r * 0.28)],
            default=np.maximum(np.abs(u), np.abs(v)) - r * 0.85,
        )
        m = _soft(shape_d, 1.5 * px) * present
        stripes = 0.5 + 0.5 * np.sign(np.sin(u * 2 * np.pi / (6 * px)))  # 6-pixel period, a fine texture
        fill = np.where(striped, 0.35 + 0.65 * stripes, 1.0)
        color = _hsv_to_rgb(_u(rng, n, 0, 1), _u(rng, n, 0.5, 1.0), _u(rng, n, 0.7, 1.0))
        img = img * (1 - m[:, None]) + (m * fill)[:, None] * color
    img = img + 0.03 * rng.standard_normal(img.shape).astype(np.float32)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def fundus_images(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """Generate ``n`` SYNTHETIC retinal-fundus-like colour images with a branching vessel tree.

    A dark-red disc (the field of view, black outside) holds a bright optic disc, a darker macula and four vessel
    arcades leaving the optic disc, each a binary tree of tapering, slightly curved segments. Vessel contrast falls
    with width, so the thinnest branches are faint, as in DRIVE. Returns ``images`` (n, 3, S, S) uint8,
    ``vessels`` and ``fov`` masks (n, S, S) with values 0/1.

    Example:
        >>> out = fundus_images(2, 32, seed=0)
        >>> out["images"].shape, bool((out["vessels"] <= out["fov"]).all())
        ((2, 3, 32, 32), True)
    """
    rng = np.random.default_rng(seed)
    yy, xx = (a[0] for a in _grid(size))
    px = 2.0 / size
    images = np.empty((n, 3, size, size), np.uint8)
    vessels = np.empty((n, size, size), np.uint8)
    fovs = np.empty((n, size, size), np.uint8)
    for i in range(n):
        fov_r = rng.uniform(0.88, 0.96)
        fov = np.sqrt(xx**2 + yy**2) < fov_r
        side = rng.choice([-1.0, 1.0])  # left or right eye
        ox, oy = side * rng.uniform(0.35, 0.45), rng.uniform(-0.08, 0.08)
        segs = []  # (x0, y0, x1, y1, width)
        for base in (-0.55, 0.55, -2.0, 2.0):  # two arcades towards the macula, two to the nasal side
            ang = (np.pi if side > 0 else 0.0) + base * (1 if side > 0 else -1) + rng.normal(0, 0.12)
            _vessel_tree(rng, segs, ox, oy, ang, width=rng.uniform(0.055, 0.07), length=rng.uniform(0.28, 0.36),
                         depth=4)
        s = np.asarray(segs, np.float32)
        d = _segment_distance(xx, yy, s)  # (K, S, S)
        half = s[:, 4, None, None] / 2
        vmask = (d < np.maximum(half, 0.6 * px)).any(0) & fov
        # contrast per pixel: the widest vessel covering it
        cover = np.where(d < np.maximum(half, 0.6 * px), s[:, 4, None, None], 0).max(0)
        depth_v = np.clip(cover / 0.06, 0.25, 1.0) * rng.uniform(0.8, 1.0)
        rr = np.sqrt(xx**2 + yy**2)
        shade = 1 - 0.35 * (rr / fov_r) ** 2 + 0.05 * ndimage.gaussian_filter(
            rng.standard_normal((size, size)), size / 12)
        base_col = np.array([rng.uniform(0.75, 0.9), rng.uniform(0.3, 0.4), rng.uniform(0.12, 0.2)])[:, None, None]
        img = base_col * shade
        disc = _soft(np.sqrt((xx - ox) ** 2 + (yy - oy) ** 2) - rng.uniform(0.09, 0.12), 3 * px)
        img = img * (1 - disc) + disc * np.array([1.0, 0.85, 0.55])[:, None, None]
        mx, my = ox - side * rng.uniform(0.75, 0.85), oy + rng.uniform(-0.05, 0.05)
        img = img * (1 - 0.35 * np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / 0.02))
        img = img * (1 - 0.45 * depth_v * vmask)  # vessels: darker, more so the wider they are
        img = ndimage.gaussian_filter(img, sigma=(0, 0.5 * size / 64, 0.5 * size / 64))
        img = img + 0.025 * rng.standard_normal(img.shape)
        img = np.clip(img, 0, 1) * fov
        images[i] = np.round(img * 255).astype(np.uint8)
        vessels[i], fovs[i] = vmask, fov
    return {"images": images, "vessels": vessels, "fov": fovs}


def _vessel_tree(rng, segs, x, y, ang, width, length, depth):
    """Append a tapering vessel from (x, y) at angle ``ang``, two slightly bent segments, then two branches."""
    for _ in range(2):
        ang += rng.normal(0, 0.18)
        x1, y1 = x + np.cos(ang) * length / 2, y + np.sin(ang) * length / 2
        segs.append((x, y, x1, y1, width))
        x, y = x1, y1
    if depth > 0:
        spread = rng.uniform(0.35, 0.7)
        for sgn in (-1, 1):
            _vessel_tree(rng, segs, x, y, ang + sgn * spread, width * rng.uniform(0.68, 0.8),
                         length * rng.uniform(0.7, 0.85), depth - 1)


def _segment_distance(xx, yy, s):
    """Distance of every grid point to each of the K segments ``s`` (K, 5); returns (K, S, S)."""
    x0, y0, x1, y1 = (s[:, k, None, None] for k in range(4))
    vx, vy = x1 - x0, y1 - y0
    t = np.clip(((xx - x0) * vx + (yy - y0) * vy) / np.maximum(vx**2 + vy**2, 1e-9), 0, 1)
    return np.sqrt((xx - x0 - t * vx) ** 2 + (yy - y0 - t * vy) ** 2)
