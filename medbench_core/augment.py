"""Training augmentation on the device: batched pipelines whose random parameters are drawn per image.

``AUGMENTATIONS`` maps a name to a pipeline, a callable ``(x, y, out_size, gen) -> (x, y)``:

- ``x``: float images (n, C, S, S) in [0, 1], before normalisation; ``BatchLoader`` augments grey images before
  repeating them to 3 channels (every step treats channels alike, so the result is the same for a third of the work);
- ``y``: labels (n, K), passed through, or masks (n, 1, S, S) with values 0, 1 and ``IGNORE`` (outside a field of
  view), moved with the image by nearest-neighbour sampling so they keep exactly those values;
- ``out_size``: the side of the returned batch (px);
- ``gen``: the loader's CPU ``torch.Generator``, checkpointed with the training state every epoch.

The pipelines:

- ``light`` (every profile but ``paper``): a random horizontal flip per image and one circular shift of up to
  ``S // 16`` px per batch, images and masks alike. It draws from ``gen`` exactly as ``BatchLoader`` did before this
  module existed, so earlier runs give the same batches. At another ``out_size`` the batch is centre-cropped (as
  evaluation's centre crop) or, if larger, resized.
- ``paper_cls``, the papers' classification transform (torchvision): RandomResizedCrop to ``out_size`` (scale
  0.08-1, ratio 3/4-4/3), RandomHorizontalFlip, RandomRotation(7 degrees).
- ``paper_seg``, the papers' segmentation transform (Version 1, albumentations): OneOf(RandomBrightnessContrast,
  RandomGamma) p=0.3 on the image; OneOf(ElasticTransform(alpha=120, sigma=6, alpha_affine=3.6), GridDistortion,
  OpticalDistortion(distort_limit=2, shift_limit=0.5)) p=0.3 and RandomSizedCrop((156, 224) of 224) p=0.25 on image
  and mask.

The papers' pipelines use kornia, which draws from torch's global (CPU) RNG: each batch draws one seed from ``gen``
and runs inside ``torch.random.fork_rng`` seeded with it. A run is then reproducible from its seed and resumable from
its checkpoint, and the caller's global RNG is left as it was. Random streams are not those of the original code
(Python's ``random`` and NumPy): the distributions are. ``DEVIATIONS`` lists what else differs from the original
code; the book renders it.

Padding: the paper_seg warps reflect at the border, as albumentations does (BORDER_REFLECT_101), images and masks
alike, so a mask's padding comes from the mask itself (IGNORE beyond an IGNORE border, background beyond
background). paper_cls rotates with zero padding (black, as torchvision); a mask (if one is given) is padded with
IGNORE where the mask has a field of view (holds any IGNORE pixel) and with 0 otherwise.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F

from .targets import IGNORE

Pipeline = Callable[[torch.Tensor, torch.Tensor, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

PAPER_SIDE = 224  # px: the side the original segmentation pipeline's pixel parameters were set for
DISTORTIONS = ("elastic", "grid", "optical")  # paper_seg's OneOf: ElasticTransform, GridDistortion, OpticalDistortion

DEVIATIONS = [
    {"aspect": "random numbers",
     "original": "Python's random and NumPy, a fresh stream per DataLoader worker",
     "medbench": "torch's RNG, seeded per batch from the loader's generator",
     "why": "reproducible and resumable runs; the distributions of every parameter are the original's"},
    {"aspect": "arithmetic",
     "original": "8-bit images on the CPU (PIL, OpenCV), rounded to 8 bits after each step",
     "medbench": "float32 on the training device, never rounded to 8 bits",
     "why": "batched on the device; differences are below one grey level per step"},
    {"aspect": "RandomResizedCrop resampling (classification)",
     "original": "PIL bilinear with antialiasing",
     "medbench": "bilinear without antialiasing (kornia, align_corners=False)",
     "why": "only crops larger than the output (scale above 0.77 of a 256 px image) are shrunk, by at most 256/224"},
    {"aspect": "border of the segmentation warps",
     "original": "OpenCV BORDER_REFLECT_101 (the edge pixel is not repeated)",
     "medbench": "grid_sample 'reflection' (BORDER_REFLECT: the edge pixel is repeated)",
     "why": "grid_sample has no reflect-101; the reflected content is shifted by one pixel"},
    {"aspect": "ElasticTransform",
     "original": "an affine warp, then a second resampling by the smoothed random displacement",
     "medbench": "one resampling through the composition of both maps (the same maps: scipy's Gaussian smoothing, "
                 "4 sigma, symmetric border, re-implemented in torch)",
     "why": "one interpolation instead of two, so slightly less blur; kornia's RandomElasticTransform has no "
            "affine part and sets its strength in other units"},
    {"aspect": "GridDistortion, OpticalDistortion",
     "original": "albumentations' maps applied with cv2.remap",
     "medbench": "the same maps (steps, radial k, principal point, the shift of 0.5 px rounding to 0) built in "
                 "torch and applied with grid_sample",
     "why": "kornia has neither (its RandomThinPlateSpline is a different, smoother deformation)"},
    {"aspect": "nearest-neighbour resizing of masks (RandomSizedCrop)",
     "original": "cv2 INTER_NEAREST: source pixel floor(u * scale), half a pixel off the image's bilinear map",
     "medbench": "the pixel nearest to the image's own sampling point",
     "why": "mask and image stay aligned; edges may move by one pixel"},
    {"aspect": "segmentation at a side other than 224 px",
     "original": "pixel parameters fixed for 224 px images",
     "medbench": "scaled with the side s: crop heights 156-224 as fractions of s, elastic sigma and alpha_affine "
                 "times s/224, alpha times (s/224)^2 (same displacement relative to the image)",
     "why": "the same deformation at every resolution; identical at 224 px"},
]


def light(x: torch.Tensor, y: torch.Tensor, out_size: int, gen: torch.Generator):
    """A random horizontal flip per image and one circular shift per batch, images and masks alike.

    Example:
        >>> x, y = light(torch.rand(2, 3, 32, 32), torch.zeros(2, 1), 32, torch.Generator().manual_seed(0))
        >>> tuple(x.shape)
        (2, 3, 32, 32)
    """
    is_mask = y.ndim == 4
    flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device).view(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(-1), x)
    if is_mask:
        y = torch.where(flip, y.flip(-1), y)
    m = max(1, x.shape[-1] // 16)
    dy, dx = (int(v) for v in torch.randint(-m, m + 1, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))  # one shift per batch keeps this vectorised
    if is_mask:
        y = torch.roll(y, shifts=(dy, dx), dims=(-2, -1))
    return _fit(x, y, out_size)


def paper_cls(x: torch.Tensor, y: torch.Tensor, out_size: int, gen: torch.Generator):
    """The papers' classification training transform: RandomResizedCrop(out_size, scale 0.08-1, ratio 3/4-4/3),
    RandomHorizontalFlip, RandomRotation(7 degrees), parameters drawn per image.

    Example:
        >>> x, y = paper_cls(torch.rand(2, 3, 64, 64), torch.zeros(2, 1), 56, torch.Generator().manual_seed(0))
        >>> tuple(x.shape)
        (2, 3, 56, 56)
    """
    crop, flip, rotate, with_masks = _cls_ops(out_size)
    with _seeded(gen):
        if y.ndim != 4:
            return rotate(flip(crop(x))), y  # without kornia's container: a quarter less host time
        fill = _mask_fill(y)  # rotation pads with zeros: shift the mask so that its padding lands on `fill`
        x, m = with_masks(x, y.float() - fill)
        return x, (m + fill).to(y.dtype)


class PaperSeg:
    """The papers' segmentation training transform (Version 1, albumentations), parameters drawn per image:

    1. with probability ``p_intensity`` one of RandomBrightnessContrast (limits 0.2) and RandomGamma (80-120), on
       the image only;
    2. with probability ``p_distort`` one of ``distortions``: ElasticTransform(alpha=120, sigma=6,
       alpha_affine=3.6), GridDistortion(5 steps, limit 0.3), OpticalDistortion(distort_limit=2, shift_limit=0.5);
    3. with probability ``p_crop`` RandomSizedCrop: a square of side 156-224 (of 224) resized back to ``out_size``.

    As albumentations' OneOf with its children's default probabilities, the member is chosen uniformly and then
    always applied. The registered instance (``AUGMENTATIONS["paper_seg"]``) has the original probabilities; tests
    raise them to exercise every step.

    Example:
        >>> seg = PaperSeg(p_distort=1.0)
        >>> x, y = seg(torch.rand(2, 3, 64, 64), torch.zeros(2, 1, 64, 64), 64, torch.Generator().manual_seed(0))
        >>> tuple(y.shape)
        (2, 1, 64, 64)
    """

    def __init__(self, p_intensity: float = 0.3, p_distort: float = 0.3, p_crop: float = 0.25,
                 distortions: tuple[str, ...] = DISTORTIONS):
        unknown = set(distortions) - set(DISTORTIONS)
        if unknown:
            raise ValueError(f"unknown distortions {sorted(unknown)}; valid: {', '.join(DISTORTIONS)}")
        self.p_intensity, self.p_distort, self.p_crop = p_intensity, p_distort, p_crop
        self.distortions = tuple(distortions)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, out_size: int, gen: torch.Generator):
        masks = y.ndim == 4
        n, s, dev = len(x), x.shape[-1], x.device
        with _seeded(gen):
            rbc, gamma = _intensity_ops()
            which = _one_of(n, 2, self.p_intensity)
            x = _apply_to(x, which == 0, rbc)
            x = _apply_to(x, which == 1, gamma)
            which = _one_of(n, len(self.distortions), self.p_distort)
            for k, name in enumerate(self.distortions):
                idx = (which == k).nonzero().flatten()
                if len(idx):
                    x, y = _remap(x, y, idx, _DISTORTIONS[name](len(idx), s, dev), masks)
            # RandomSizedCrop: side randint(156, 224) of 224, top-left uniform; images not cropped keep (0, 0, s)
            crop = torch.rand(n) < self.p_crop
            side = torch.randint(round(156 * s / PAPER_SIDE), s + 1, (n,))
            start = (torch.rand(n, 2) * (s - side).unsqueeze(1)).long()  # int((s - side) * u), as albumentations
            side, start = torch.where(crop, side, s), torch.where(crop.unsqueeze(1), start, 0)
            idx = torch.arange(n) if out_size != s else crop.nonzero().flatten()
            if len(idx):
                x, y = _remap(x, y, idx, _crop_grid(start[idx], side[idx], out_size, dev), masks, out_size)
        return x, y


def none(x: torch.Tensor, y: torch.Tensor, out_size: int, gen: torch.Generator):
    """No online augmentation: the images as stored, at ``out_size`` (the original code on DRIVE, whose training
    set is augmented offline, ``Version1/main_segmentation.py`` 88-90).

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> bool((none(x, torch.zeros(2, 1), 32, torch.Generator())[0] == x).all())
        True
    """
    return _fit(x, y, out_size)


AUGMENTATIONS: dict[str, Pipeline] = {"light": light, "paper_cls": paper_cls, "paper_seg": PaperSeg(), "none": none}


def list_augmentations() -> list[str]:
    """Names of the training augmentation pipelines.

    Example:
        >>> list_augmentations()
        ['light', 'paper_cls', 'paper_seg', 'none']
    """
    return list(AUGMENTATIONS)


def get_augmentation(name: str) -> Pipeline:
    """The pipeline registered as ``name``; an unknown name raises ValueError listing the valid ones.

    Example:
        >>> get_augmentation("light") is light
        True
    """
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; valid: {', '.join(AUGMENTATIONS)}")
    return AUGMENTATIONS[name]


# --- helpers -------------------------------------------------------------------------------------------------------

@contextmanager
def _seeded(gen: torch.Generator):
    """Run the block on torch's global CPU RNG seeded from one draw of ``gen``, restoring the RNG afterwards.
    Every random parameter below is drawn on the CPU (kornia's default), so results do not depend on the device's
    RNG and no draw waits for the device."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


@lru_cache(maxsize=None)
def _cls_ops(out_size: int):
    """paper_cls's steps, and the same steps applied to images and masks (masks by nearest neighbour)."""
    import kornia.augmentation as K

    steps = (K.RandomResizedCrop((out_size, out_size), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), align_corners=False,
                                 p=1.0),
             K.RandomHorizontalFlip(p=0.5),
             # torchvision's RandomRotation resamples by nearest neighbour unless told otherwise; the papers' code
             # did not tell it
             K.RandomRotation(7.0, resample="nearest", align_corners=False, p=1.0))
    return (*steps, K.AugmentationSequential(*steps, data_keys=["input", "mask"]))


@lru_cache(maxsize=None)
def _intensity_ops():
    import kornia.augmentation as K

    # albumentations' RandomBrightnessContrast: x * (1 + U(-0.2, 0.2)) + U(-0.2, 0.2) (brightness_by_max), then clip
    contrast = K.RandomContrast((0.8, 1.2), clip_output=False, p=1.0)
    brightness = K.RandomBrightness((0.8, 1.2), clip_output=False, p=1.0)
    return (lambda t: brightness(contrast(t)).clamp(0, 1)), K.RandomGamma((0.8, 1.2), p=1.0)  # gamma: x ** U(0.8, 1.2)


def _one_of(n: int, k: int, p: float) -> torch.Tensor:
    """Per image: -1 (nothing, probability 1 - p) or the index of one of ``k`` members, uniformly."""
    apply = torch.rand(n) < p
    return torch.where(apply, torch.randint(k, (n,)), -1)


def _apply_to(x: torch.Tensor, chosen: torch.Tensor, fn) -> torch.Tensor:
    """``x`` with ``fn`` applied to the images where ``chosen`` (a CPU bool vector) holds."""
    idx = chosen.nonzero().flatten()
    if not len(idx):
        return x
    idx = idx.to(x.device)
    return x.index_copy(0, idx, fn(x[idx]))


def _mask_fill(y: torch.Tensor) -> torch.Tensor:
    """Per mask, the value padding takes: IGNORE where the mask has a field of view (any IGNORE pixel), else 0."""
    fov = (y == IGNORE).flatten(1).any(1).view(-1, 1, 1, 1)
    return torch.where(fov, float(IGNORE), 0.0)


def _fit(x: torch.Tensor, y: torch.Tensor, out_size: int):
    """``x`` (and masks ``y``) at side ``out_size``: centre-cropped if smaller, resized if larger."""
    s = x.shape[-1]
    if out_size == s:
        return x, y
    if out_size < s:
        a = (s - out_size) // 2
        crop = (..., slice(a, a + out_size), slice(a, a + out_size))
        return x[crop], (y[crop] if y.ndim == 4 else y)
    x = F.interpolate(x, size=(out_size, out_size), mode="bilinear", align_corners=False)
    if y.ndim == 4:
        y = F.interpolate(y.float(), size=(out_size, out_size), mode="nearest-exact").to(y.dtype)
    return x, y


def _pixels(s: int, device) -> torch.Tensor:
    """(s, s, 2) pixel coordinates (x, y) of every pixel; pixel centres are integers, as in OpenCV's maps."""
    r = torch.arange(s, device=device, dtype=torch.float32)
    return torch.stack(torch.meshgrid(r, r, indexing="xy"), -1)


def _remap(x, y, idx, grid, masks: bool, size: int | None = None):
    """Resample images ``idx`` (CPU indices) at ``grid`` (m, size, size, 2), pixel coordinates into the input:
    images bilinearly, masks by the nearest pixel, both reflected at the border. With ``size`` != the input side
    every image must be in ``idx`` (in order) and the batch changes side."""
    s = x.shape[-1]
    g = (2 * grid + 1) / s - 1  # to grid_sample's [-1, 1], pixel centres at (2i + 1) / s - 1 (align_corners=False)
    dev = idx.to(x.device)
    xs = F.grid_sample(x[dev], g, mode="bilinear", padding_mode="reflection", align_corners=False)
    ys = None
    if masks:
        ys = F.grid_sample(y[dev].float(), g, mode="nearest", padding_mode="reflection", align_corners=False)
        ys = ys.to(y.dtype)
    if size is not None and size != s:
        return xs, (ys if masks else y)
    return x.index_copy(0, dev, xs), (y.index_copy(0, dev, ys) if masks else y)


def _elastic_grid(m: int, s: int, device) -> torch.Tensor:
    """albumentations' ElasticTransform(alpha=120, sigma=6, alpha_affine=3.6) as one map (pixel coordinates).

    The original warps by a random affine (three points at side // 3 from the centre, each moved by up to
    alpha_affine px) and then samples at ``p + d(p)``, ``d`` = alpha * gaussian_filter(U(-1, 1), sigma) per axis:
    the composition samples the input at ``A^-1 (p + d(p))``.
    """
    f = s / PAPER_SIDE
    alpha, sigma, alpha_affine = 120.0 * f * f, 6.0 * f, 3.6 * f  # displacement ~ alpha / sigma: scales with s
    c, q = float(s // 2), float(s // 3)
    pts1 = torch.tensor([[c + q, c + q], [c + q, c - q], [c - q, c - q]])
    pts2 = pts1 + (torch.rand(m, 3, 2) * 2 - 1) * alpha_affine
    # the inverse of the affine taking pts1 to pts2 takes pts2 to pts1: [x, y, 1] @ inv = source (x, y)
    inv = torch.linalg.solve(torch.cat([pts2, torch.ones(m, 3, 1)], -1), pts1.expand(m, 3, 2)).to(device)
    noise = (torch.rand(m, 2, s, s) * 2 - 1).to(device)
    p = _pixels(s, device) + (_gaussian_filter(noise, sigma) * alpha).permute(0, 2, 3, 1)
    return p[..., :1] * inv[:, None, None, 0] + p[..., 1:] * inv[:, None, None, 1] + inv[:, None, None, 2]


def _gaussian_filter(t: torch.Tensor, sigma: float) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter(t, sigma) over the last two axes: truncated at 4 sigma, symmetric border
    (scipy's "reflect": the edge pixel repeats, which neither kornia's nor torch's reflect padding does)."""
    r = int(4 * sigma + 0.5)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=t.dtype, device=t.device) ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    n, c, h, w = t.shape
    t = t.reshape(n * c, 1, h, w)
    t = torch.cat([t[..., :r].flip(-1), t, t[..., w - r:].flip(-1)], -1)
    t = F.conv2d(t, k.view(1, 1, 1, -1))
    t = torch.cat([t[..., :r, :].flip(-2), t, t[..., h - r:, :].flip(-2)], -2)
    return F.conv2d(t, k.view(1, 1, -1, 1)).reshape(n, c, h, w)


def _grid_distortion_grid(m: int, s: int, device, num_steps: int = 5, limit: float = 0.3) -> torch.Tensor:
    """albumentations' GridDistortion(num_steps=5, distort_limit=0.3): the side is cut into cells of s // 5 px, each
    cell's length scaled by 1 + U(-0.3, 0.3) (x and y separately, a separable piecewise-linear map); a last, partial
    cell ends at the border."""
    step = s // num_steps
    starts = torch.arange(0, s, step)
    cells = len(starts)
    full = starts + step <= s
    scale = 1 + (torch.rand(m, 2, max(cells, num_steps + 1)) * 2 - 1) * limit
    cur = torch.cumsum(torch.where(full, step * scale[..., :cells], 0.0), -1)
    cur = torch.where(full, cur, float(s))  # (m, 2, cells): where each cell ends in the input
    prev = F.pad(cur[..., :-1], (1, 0))
    j = torch.arange(s)
    c = j // step
    length = (torch.clamp(starts + step, max=s) - starts)[c]
    t = (j - starts[c]) / (length - 1).clamp(min=1)  # np.linspace(prev, cur, length) within each cell
    maps = (prev[..., c] + (cur[..., c] - prev[..., c]) * t).to(device)  # (m, 2, s): source x per column, y per row
    return torch.stack([maps[:, 0, None, :].expand(m, s, s), maps[:, 1, :, None].expand(m, s, s)], -1)


def _optical_grid(m: int, s: int, device, limit: float = 2.0) -> torch.Tensor:
    """albumentations' OpticalDistortion(distort_limit=2, shift_limit=0.5): cv2's undistortion map with
    fx = fy = s, radial k1 = k2 = k ~ U(-2, 2). The output's principal point is (s - 1) / 2 (cv2's default new camera
    matrix), the input's s / 2 + shift, and the shift, drawn in (-0.5, 0.5) and rounded to whole pixels, is 0."""
    k = ((torch.rand(m) * 2 - 1) * limit).to(device).view(m, 1, 1, 1)
    u = (_pixels(s, device) - (s - 1) / 2) / s  # normalised camera coordinates
    r2 = (u * u).sum(-1, keepdim=True)
    return u * (1 + k * r2 + k * r2 * r2) * s + s / 2


def _crop_grid(start: torch.Tensor, side: torch.Tensor, out: int, device) -> torch.Tensor:
    """Maps resizing the squares ``start`` (m, 2: x, y), ``side`` (m,) to ``out`` px: source = start + (u + 0.5) *
    side / out - 0.5, cv2.resize's (and PIL's) pixel-centre convention."""
    u = torch.arange(out, dtype=torch.float32) + 0.5
    a = start.float().unsqueeze(1) + u.view(1, -1, 1) * (side.float() / out).view(-1, 1, 1) - 0.5  # (m, out, 2)
    m = len(side)
    return torch.stack([a[:, None, :, 0].expand(m, out, out), a[:, :, None, 1].expand(m, out, out)], -1).to(device)


_DISTORTIONS = {"elastic": _elastic_grid, "grid": _grid_distortion_grid, "optical": _optical_grid}

__all__ = ["AUGMENTATIONS", "DEVIATIONS", "PaperSeg", "none", "get_augmentation", "light", "list_augmentations", "paper_cls"]
