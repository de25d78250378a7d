"""Training augmentation (medbench_core.augment): the light pipeline reproduces the loader's earlier batches; the
papers' pipelines draw per image, move masks with images, keep mask values, and are reproducible and resumable."""
import numpy as np
import pytest
import torch

from medbench_core.augment import DEVIATIONS, DISTORTIONS, PaperSeg, get_augmentation
from medbench_core.data import BatchLoader, SplitData
from medbench_core.targets import IGNORE

PAPER = ("paper_cls", "paper_seg")
# every step of paper_seg on every image, one distortion at a time (the registered pipeline applies each rarely)
ALWAYS = {"intensity": PaperSeg(p_intensity=1, p_distort=0, p_crop=0),
          **{d: PaperSeg(p_intensity=0, p_distort=1, p_crop=0, distortions=(d,)) for d in DISTORTIONS},
          "crop": PaperSeg(p_intensity=0, p_distort=0, p_crop=1),
          "all": PaperSeg(p_intensity=1, p_distort=1, p_crop=1)}
WARPS = ("paper_cls", *DISTORTIONS, "crop")


def _pipeline(name):
    return ALWAYS.get(name) or get_augmentation(name)


def _old_light(x, y, gen):
    """BatchLoader._augment before medbench_core.augment existed, verbatim (is_mask from the targets)."""
    flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device).view(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(-1), x)
    if y.ndim == 4:
        y = torch.where(flip, y.flip(-1), y)
    m = max(1, x.shape[-1] // 16)
    dy, dx = (int(v) for v in torch.randint(-m, m + 1, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    if y.ndim == 4:
        y = torch.roll(y, shifts=(dy, dx), dims=(-2, -1))
    return x, y


def _data(n=20, s=32, masks=True, seed=0):
    rng = np.random.default_rng(seed)
    targets = (rng.integers(0, 3, (n, 1, s, s)).astype(np.uint8) if masks
               else rng.integers(0, 2, (n, 3)).astype(np.float32))
    return SplitData(rng.integers(0, 256, (n, 1, s, s), dtype=np.uint8), targets)


def _blobs(n=12, s=64):
    """Two-level images (0.1 / 0.9, so intensity steps keep them on their side of 0.5) with a mask equal to the
    thresholded image, IGNORE outside a circular field of view in every other image."""
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    g = torch.Generator().manual_seed(1)
    masks = []
    for i in range(n):
        cy, cx = torch.randint(s // 4, 3 * s // 4, (2,), generator=g).tolist()
        m = (((yy - cy) ** 2 + (xx - cx) ** 2) < (s // 5) ** 2) | ((xx // 8 + yy // 8) % 3 == 0)
        masks.append(m.float())
    y = torch.stack(masks)[:, None]
    x = (0.1 + 0.8 * y).expand(-1, 3, -1, -1)
    fov = ((yy - s / 2 + 0.5) ** 2 + (xx - s / 2 + 0.5) ** 2) > (0.45 * s) ** 2
    y[1::2, :, fov] = IGNORE
    return x, y


@pytest.mark.parametrize("masks", [False, True])
def test_light_gives_the_loaders_earlier_batches(masks):
    data = _data(masks=masks)
    loader = BatchLoader(data, 8, train=True, seed=5)
    assert loader.augment == "light"
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        order = torch.randperm(len(data), generator=gen)
        batches = list(loader)
        assert len(batches) == 2
        for b, (x, y) in enumerate(batches):
            idx = order[b * 8:(b + 1) * 8].numpy()
            x0 = torch.from_numpy(data.images[idx]).float().div(255).expand(-1, 3, -1, -1)
            x0, y0 = _old_light(x0, torch.from_numpy(data.targets[idx]).float(), gen)
            assert torch.equal(x, (x0 - 0.5) / 0.5) and torch.equal(y, y0)


def test_unknown_augmentation_lists_the_valid_ones():
    with pytest.raises(ValueError, match="light, paper_cls, paper_seg"):
        BatchLoader(_data(), 8, train=True, augment="paper")
    assert {d["aspect"] for d in DEVIATIONS} and all(set(d) == {"aspect", "original", "medbench", "why"}
                                                     for d in DEVIATIONS)


@pytest.mark.parametrize("name", ["light", *PAPER])
@pytest.mark.parametrize("masks", [False, True])
def test_loader_trains_at_out_size_and_evaluates_at_the_stored_side(name, masks):
    data = _data(s=40, masks=masks)
    train = BatchLoader(data, 4, train=True, augment=name, out_size=32)
    x, y = next(iter(train))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == ((4, 1, 32, 32) if masks else (4, 3))
    x, y = next(iter(BatchLoader(data, 4, train=False, augment=name, out_size=32)))
    assert x.shape == (4, 3, 40, 40)
    assert torch.equal(x, torch.from_numpy(data.images[:4]).float().div(255).sub(0.5).div(0.5).expand(-1, 3, -1, -1))


@pytest.mark.parametrize("name", [*PAPER, *ALWAYS])
def test_parameters_are_drawn_per_image(name):
    x = torch.rand(1, 3, 48, 48).expand(8, -1, -1, -1)  # eight copies of one image
    out, _ = _pipeline(name)(x, torch.zeros(8, 1), 48, torch.Generator().manual_seed(0))
    assert out.shape == (8, 3, 48, 48)
    distinct = {tuple(o.flatten()[::97].tolist()) for o in out}
    # the registered paper_seg leaves about 3 in 8 images untouched; the others must still differ among themselves
    assert len(distinct) >= (4 if name == "paper_seg" else 7)


@pytest.mark.parametrize("name", [*PAPER, *ALWAYS])
def test_masks_move_with_images_and_keep_their_values(name):
    x, y = _blobs()
    gen = torch.Generator().manual_seed(3)
    out = 56 if name in ("paper_cls", "crop") else 64
    xs, ys = _pipeline(name)(x, y, out, gen)
    assert xs.shape == (12, 3, out, out) and ys.shape == (12, 1, out, out) and ys.dtype == y.dtype
    assert set(ys.unique().tolist()) <= {0.0, 1.0, float(IGNORE)}
    if name == "intensity":
        assert torch.equal(ys, y) and not torch.equal(xs, x)
    counted = ys != IGNORE
    if name in ("intensity", "all", "paper_seg"):
        # intensity steps move the two levels but keep them on their side of 0.5: the thresholded image is the
        # mask, exactly without a warp, and along edges (where the image is interpolated) with one
        disagree = ((ys == 1) != (xs[:, :1] > 0.5)) & counted
        assert disagree.float().mean() <= (0 if name == "intensity" else 0.05)
    else:  # where the bilinear image is pure (all neighbours on one side) the nearest-neighbour mask agrees
        fg, bg = xs[:, :1] > 0.9 - 1e-4, xs[:, :1] < 0.1 + 1e-4
        assert torch.all((ys == 1) | ~fg | ~counted) and torch.all((ys == 0) | ~bg | ~counted)
        assert (fg & counted).any() and (bg & counted).any()
    if name in WARPS:
        assert not torch.equal(ys, y)


def test_rotation_pads_masks_with_ignore_only_where_there_is_a_field_of_view():
    x, y = torch.full((16, 3, 64, 64), 0.9), torch.ones(16, 1, 64, 64)
    y[8:, :, :2] = IGNORE  # a field of view in the last eight masks
    xs, ys = get_augmentation("paper_cls")(x, y, 64, torch.Generator().manual_seed(0))
    padded = xs[:, 0] == 0  # black padding from the rotation (the image is 0.9 everywhere else)
    assert padded[:8].any() and padded[8:].any()
    assert torch.all(ys[:8, 0][padded[:8]] == 0) and torch.all(ys[8:, 0][padded[8:]] == IGNORE)


@pytest.mark.parametrize("name", ["light", *PAPER, "all"])
def test_same_seed_same_batches_and_the_global_rng_is_untouched(name):
    x, y = _blobs(6, 48)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = _pipeline(name)(x, y, 48, torch.Generator().manual_seed(9))
    b = _pipeline(name)(x, y, 48, torch.Generator().manual_seed(9))
    c = _pipeline(name)(x, y, 48, torch.Generator().manual_seed(10))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", PAPER)
def test_a_restored_generator_gives_the_same_next_epoch(name):
    data = _data(n=12, s=32)
    full = BatchLoader(data, 4, train=True, seed=2, augment=name)
    first = [b for _ in range(2) for b in full]
    part = BatchLoader(data, 4, train=True, seed=2, augment=name)
    list(part)  # one epoch, then "checkpoint" the generator as fit() does
    resumed = BatchLoader(data, 4, train=True, seed=99, augment=name)
    resumed.gen.set_state(part.gen.get_state())
    torch.manual_seed(0)  # the global RNG at resume time does not matter
    for (x0, y0), (x1, y1) in zip(first[3:], resumed, strict=True):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)


@pytest.mark.parametrize("name", ["light", *PAPER, "all"])
def test_grey_images_augmented_before_repeating_channels_give_the_same_batch(name):
    x, y = _blobs(6, 48)  # BatchLoader augments grey images with one channel, then repeats it
    one = _pipeline(name)(x[:, :1].contiguous(), y, 40, torch.Generator().manual_seed(4))
    three = _pipeline(name)(x, y, 40, torch.Generator().manual_seed(4))
    assert torch.allclose(one[0].expand(-1, 3, -1, -1), three[0], atol=1e-6) and torch.equal(one[1], three[1])
