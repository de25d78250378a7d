"""Task data: cached uint8 arrays on disk, in-memory batch loaders with train-only augmentation.

Preparation is offline and idempotent: generated (synthetic) splits are written once to the cache as ``.npz``
(atomically) and only read afterwards.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import synthetic
from .augment import get_augmentation
from .labels import MEDMNIST
from .paths import atomic_save_npz, atomic_write_bytes, get_cache_dir  # noqa: F401 (atomic_save_npz re-exported)
from .tasks import CLASSIFICATION, IGNORE, TaskSpec

SPLITS = ("train", "val", "test")


def _cached(cache: Path, kind: str, params: dict, make) -> dict[str, np.ndarray]:
    params = {"kind": kind, "generator_version": synthetic.GENERATOR_VERSION, **params}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = cache / "data" / f"{kind}-{key}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_npz(path, **make())
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@dataclass
class SplitData:
    """One split: uint8 ``images`` (n, C, S, S) and ``targets`` (labels (n, K) or masks (n, 1, S, S)), in memory or
    memory-mapped from the prepared cache. Real datasets carry their image ``ids`` and the manifest's rule for
    training fractions (``fraction_ids``)."""

    images: np.ndarray
    targets: np.ndarray
    ids: list[str] | None = None
    fraction_ids: Callable[[float], list[str]] | None = None

    def __len__(self) -> int:
        return len(self.images)


def load_task_data(task: TaskSpec, cache_dir=None) -> dict[str, SplitData]:
    """Train/val/test arrays of a task, generated once and cached. Each split uses its own seed, so splits never
    share an image.

    Example:
        >>> from medbench_core.tasks import create_task
        >>> len(load_task_data(create_task("syn_txc", "smoke"))["train"])
        30
    """
    if not task.synthetic:
        return _load_real(task, cache_dir)
    cache = get_cache_dir(cache_dir)
    g = task.generator
    size = task.protocol.image_size
    out = {}
    for i, split in enumerate(SPLITS):
        if task.source == "synthetic_fundus":
            params = dict(n=task.sizes[i], size=size, seed=g["seed"] * 1000 + i)
            arr = _cached(cache, "fundus", params, lambda p=params: synthetic.fundus_images(**p))
            # pixels outside the field of view are IGNORE: neither loss nor Dice counts them
            targets = np.where(arr["fov"] > 0, arr[g["mask"]], IGNORE).astype(np.uint8)[:, None]
            out[split] = SplitData(arr["images"], targets)
            continue
        params = dict(n=task.sizes[i], size=size, seed=g["seed"] * 1000 + i, site=g["site"],
                      prevalence=g["prevalence"], target=g.get("target"), target_prevalence=g.get("target_prevalence"))
        arr = _cached(cache, "chest", params, lambda p=params: synthetic.chest_xrays(**p))
        images = arr["images"][:, None]  # (n, 1, S, S)
        if task.kind == CLASSIFICATION:
            idx = [synthetic.CHEST_FINDINGS.index(c) for c in task.classes]
            targets = arr["labels"][:, idx]
        else:
            targets = arr[g["mask"]][:, None]
        out[split] = SplitData(images, targets)
    return out


def data_version(task: TaskSpec) -> str:
    """What a run's data depends on: the generator version, or the dataset, its frozen split manifest and the
    loader options (e.g. CheXpert's uncertainty policy)."""
    if task.synthetic:
        return f"generated-v{synthetic.GENERATOR_VERSION}"
    from .datasets.splits import load_manifest, manifest_sha

    opts = ",".join(f"{k}={v}" for k, v in sorted(task.options.items()))
    return f"{task.source}:manifest-{manifest_sha(load_manifest(task.source))}" + (f":{opts}" if opts else "")


def _load_real(task: TaskSpec, cache_dir=None) -> dict[str, SplitData]:
    """A real task's splits from the prepared cache (memory-mapped; raises with the prepare command if absent)."""
    from .datasets.catalog import apply_uncertainty
    from .datasets.prepare import fraction_ids_of, load_prepared

    arrays, meta = load_prepared(task, cache_dir)
    out = {}
    for split, (images, targets) in arrays.items():
        ids = meta["ids"][split]
        if task.kind == CLASSIFICATION:
            targets = np.asarray(targets, np.float32)
            if "uncertainty" in task.options:  # CheXpert: -1 = uncertain, mapped by the task's policy
                targets = apply_uncertainty(targets, task.options["uncertainty"], ids)
        out[split] = SplitData(images, targets, ids)
    out["train"].fraction_ids = lambda f: fraction_ids_of(meta, f, task.source)
    return out


def require_prepared(tasks, cache_dir=None) -> None:
    """Raise ``MissingDataError`` naming every real task (profile-scaled TaskSpecs) whose data is not prepared, with
    the command that prepares it: called before any training starts."""
    from .datasets.catalog import MissingDataError, get_dataset
    from .datasets.prepare import prepared_dir

    missing = []
    for t in tasks:
        if not t.synthetic and not (prepared_dir(t, t.protocol.stored_size, cache_dir) / "meta.json").is_file():
            ds = get_dataset(t.source)
            how = (f"`medbench data fetch {t.name} --profile {t.profile}` downloads and prepares it" if
                   t.source in MEDMNIST else f"obtain it from {ds.obtain}")
            from .tasks import create_task

            size = t.protocol.stored_size
            flag = "" if size == create_task(t.name, t.profile).protocol.stored_size else f" --size {size}"
            missing.append(f"  - {t.name}: {ds.title} at {size} px; run `medbench data prepare "
                           f"{t.name} --root PATH --profile {t.profile}{flag}` ({how})")
    if missing:
        raise MissingDataError("these tasks read real datasets that are not prepared (nothing was run):\n"
                               + "\n".join(missing) + "\n`medbench data check TASK --root PATH` says what a copy "
                               "lacks; `medbench run ... --data-root PATH` prepares and runs in one go.")


def train_subset(data: SplitData, fraction: float) -> SplitData:
    """The training images kept at ``fraction``: for real datasets the manifest's nested, stratified ids; for
    generated data the first ceil(fraction * n) of one fixed permutation. Independent of the run's seed."""
    if fraction >= 1:
        return data
    if data.fraction_ids is not None:
        keep_ids = set(data.fraction_ids(fraction))
        keep = np.array([i for i, x in enumerate(data.ids) if x in keep_ids])
    else:
        keep = fraction_indices(len(data), fraction)
    return SplitData(data.images[keep], data.targets[keep], [data.ids[i] for i in keep] if data.ids else None)


def load_pretrain_data(source: str, n: int, size: int, seed: int, cache_dir=None) -> SplitData:
    """Pre-training images: ``natural`` (coarse labels, "ImageNet-like"), ``natural_fine`` (fine labels,
    "iNat-like") or ``chest`` (five findings, site A, the in-domain source). All SYNTHETIC."""
    cache = get_cache_dir(cache_dir)
    if source in ("natural", "natural_fine"):
        arr = _cached(cache, "natural", dict(n=n, size=size, seed=seed),
                      lambda: synthetic.natural_images(n, size, seed))
        return SplitData(arr["images"], arr["coarse" if source == "natural" else "fine"])
    if source == "chest":
        params = dict(n=n, size=size, seed=seed, site="A", prevalence=0.3, target=None, target_prevalence=None)
        arr = _cached(cache, "chest", params, lambda: synthetic.chest_xrays(**params))
        return SplitData(arr["images"][:, None], arr["labels"][:, :5])
    raise ValueError(f"unknown pre-training source {source!r}; valid: natural, natural_fine, chest")


def fraction_indices(n_train: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Training-split indices kept at ``fraction``: the first ceil(fraction * n) of one fixed permutation, so the
    subsets are nested (5 % inside 10 % inside 25 % ...) and the same for every run seed. Validation and test
    splits are never subsampled.

    Example:
        >>> set(fraction_indices(100, 0.05)) <= set(fraction_indices(100, 0.1))
        True
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    order = np.random.default_rng(seed).permutation(n_train)
    return np.sort(order[: max(1, math.ceil(fraction * n_train))])


def fraction_manifest(task: TaskSpec, fractions, cache_dir=None) -> dict:
    """The nested training subsets of ``task`` (sized by its profile) as a manifest: image ids per fraction.

    Ids name the split and the image (``train/00042`` for generated data, ``train/CHNCXR_0001_0`` for a real
    dataset), so a manifest says exactly which images a run saw. Real tasks read their prepared cache.
    """
    if not task.synthetic:
        from .datasets.prepare import fraction_ids_of, load_prepared

        _, meta = load_prepared(task, cache_dir)
        return {"task": task.name, "profile": task.profile, "split": "train", "n_train": meta["counts"]["train"],
                "n_val": meta["counts"]["val"], "n_test": meta["counts"]["test"], "data_version": data_version(task),
                "split_digest": meta["split_digest"],
                "rule": "the dataset's frozen manifest: stratified prefixes of one seeded order (nested)",
                "fractions": {f"{f:g}": [f"train/{i}" for i in sorted(fraction_ids_of(meta, f, task.source))]
                              for f in sorted(fractions)}}
    n = task.sizes[0]
    return {"task": task.name, "profile": task.profile, "split": "train", "n_train": n, "n_val": task.sizes[1],
            "n_test": task.sizes[2], "data_version": data_version(task),
            "rule": "first ceil(fraction * n_train) images of one fixed permutation (seed 0): nested",
            "fractions": {f"{f:g}": [f"train/{i:05d}" for i in fraction_indices(n, f)] for f in sorted(fractions)}}


def write_fraction_manifest(task: TaskSpec, fractions, directory: str | os.PathLike, cache_dir=None) -> Path:
    """Write ``fraction_manifest`` to ``directory/<task>-<profile>-fractions.json`` (atomically); returns the path."""
    path = Path(directory) / f"{task.name}-{task.profile}-fractions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(fraction_manifest(task, fractions, cache_dir), indent=1).encode())
    return path


class BatchLoader:
    """Seeded mini-batches from uint8 arrays (in memory or memory-mapped), as float tensors normalised with
    ``mean``/``std`` on ``device``.

    Grey images are repeated to 3 channels (as the papers feed X-rays to ImageNet models). With ``train=True`` the
    order is shuffled each epoch and each batch goes through the training augmentation ``augment``, a name in
    ``augment.AUGMENTATIONS``: ``light`` (default) flips each image horizontally at random and shifts the batch by up
    to ``size // 16`` px, images and masks alike; ``paper_cls`` and ``paper_seg`` are the papers' pipelines, drawn
    per image. Training batches come out at side ``out_size`` (None: the stored side); validation and test data are
    never augmented and keep the stored side. Every random draw comes from the loader's seeded generator ``gen``
    (checkpointed with the training state), so a run is reproducible and resumable. Batches travel to the device as
    uint8 and are converted, augmented and normalised there (on a GPU, where it pays). With ``workers > 0`` (default
    on a GPU: up to 8) persistent DataLoader processes read the batches ahead into pinned memory; every random draw
    stays in this process, so the batches are the same with or without workers.
    """

    def __init__(self, data: SplitData, batch_size: int, *, train: bool, seed: int = 0,
                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), target_dtype=torch.float32, device=None,
                 workers: int = -1, augment: str = "light", out_size: int | None = None):
        self.data, self.batch_size, self.train = data, batch_size, train
        self.augment, self.out_size = augment, out_size
        self._augment = get_augmentation(augment)  # an unknown name fails here, listing the valid ones
        self.gen = torch.Generator().manual_seed(seed)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        cuda = self.device.type == "cuda"
        self.workers = (min(8, os.cpu_count() or 1) if cuda else 0) if workers is None or workers < 0 else workers
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1).to(self.device)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1).to(self.device)
        self.images = data.images  # numpy, possibly memory-mapped: only the batch is read and converted
        self.targets, self.target_dtype = data.targets, target_dtype
        self.is_mask = data.targets.ndim == 4
        self._loader = None

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.train and n >= self.batch_size else -(-n // self.batch_size)

    def batches(self):
        """Index batches of one epoch (the shuffle is drawn here, in this process)."""
        n = len(self.data)
        order = torch.randperm(n, generator=self.gen) if self.train else torch.arange(n)
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size]

    def __iter__(self):
        if self.workers > 0:
            if self._loader is None:
                self._loader = torch.utils.data.DataLoader(
                    _BatchReader(self), sampler=_EpochBatches(self), batch_size=None, num_workers=self.workers,
                    persistent_workers=True, pin_memory=self.device.type == "cuda", prefetch_factor=4)
            source = iter(self._loader)
        else:
            source = (_read_batch(self.images, self.targets, self.target_dtype, idx) for idx in self.batches())
        for x, y in source:
            x = x.to(self.device, non_blocking=True).float().div_(255)
            y = y.to(self.device, non_blocking=True)
            if self.train:  # before grey images are repeated to 3 channels: the same result for a third of the work
                x, y = self._augment(x, y, self.out_size or x.shape[-1], self.gen)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            yield (x - self.mean) / self.std, y


def _read_batch(images, targets, dtype, idx: torch.Tensor):
    """uint8 images and targets of ``idx``, read in sorted order (faster from a memory map), returned in ``idx``
    order."""
    rows = np.sort(idx.numpy())
    x = torch.from_numpy(np.ascontiguousarray(images[rows]))
    y = torch.from_numpy(np.ascontiguousarray(targets[rows])).to(dtype)
    if not bool((idx[1:] >= idx[:-1]).all()):
        back = torch.argsort(torch.argsort(idx))
        x, y = x[back], y[back]
    return x, y


class _BatchReader(torch.utils.data.Dataset):
    """Reads a whole batch (an index tensor) in a DataLoader worker; holds only the arrays (no device tensors)."""

    def __init__(self, loader: BatchLoader):
        self.images, self.targets, self.dtype = loader.images, loader.targets, loader.target_dtype

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx):
        return _read_batch(self.images, self.targets, self.dtype, idx)


class _EpochBatches(torch.utils.data.Sampler):
    """The loader's index batches, drawn anew each epoch in the main process."""

    def __init__(self, loader: BatchLoader):
        self.loader = loader

    def __iter__(self):
        return self.loader.batches()

    def __len__(self) -> int:
        return len(self.loader)
