"""Decode a real dataset once into a uint8 cache at the protocol's resolution, check a copy, and read the cache.

``prepare`` indexes the copy, applies the frozen split manifest, decodes every image (DICOM windowing, 12-bit to
8-bit, mask unions, run-length decoding) in worker processes, resizes it, and writes per split ``images.npy``
(n, C, S, S) and ``targets.npy`` with a ``meta.json`` holding ids, counts, the split digest and the training strata.
It writes into a temporary folder that is renamed into place at the end, so an interrupted run leaves no half cache.
Training then memory-maps the arrays: nothing is decoded in the training loop.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from . import formats, splits
from ..profiles import ORIGINAL
from .catalog import MissingDataError, get_dataset, list_datasets

PREPARE_VERSION = 1


def _task(task):
    """The spec of a task that reads a real dataset; a task on generated data is refused by its own name."""
    from ..errors import BadValueError
    from ..tasks import TaskSpec, get_task_spec, list_tasks

    spec = task if isinstance(task, TaskSpec) else get_task_spec(task)
    if spec.synthetic or spec.source not in list_datasets():
        real = [n for n in list_tasks() if not get_task_spec(n).synthetic]
        raise BadValueError(f"task {spec.name!r} runs on generated (synthetic) images, not on a dataset on disk; "
                            f"`medbench data` takes the tasks that read a real dataset: {', '.join(real)}")
    return spec


def prepared_dir(task, size: int, cache_dir=None) -> Path:
    """Where ``task`` is cached at ``size`` px: ``<cache>/prepared/<task>/<size>px-<manifest sha>-v<version>``."""
    from ..paths import get_cache_dir

    spec = _task(task)
    sha = splits.manifest_sha(splits.load_manifest(spec.source))
    return get_cache_dir(cache_dir) / "prepared" / spec.name / f"{size}px-{sha}-v{PREPARE_VERSION}"


def index_with_splits(task, root: str | os.PathLike, size: int | None = None):
    """Index the copy at ``root``, apply the manifest: (index with a ``split`` column, manifest).

    Raises ``splits.UncleanSplitError`` (a ``ManifestError``) naming the patients a copy would put in two splits, or
    the images in no official list; ``MissingDataError`` for missing files or a copy that does not fit the manifest.
    """
    spec = _task(task)
    root = Path(root).expanduser()
    ds = get_dataset(spec.source)
    if not root.is_dir():
        raise ds.missing([f"--root {root} is not a folder"])
    index = ds.index(root, {"size": size or spec.protocol.stored_size})
    if spec.options.get("frontal_only"):
        index = index[index["frontal"]].reset_index(drop=True)
    manifest = splits.load_manifest(spec.source)
    try:
        index["split"] = splits.assign_splits(index, manifest, lists=ds.split_files).values
    except splits.UncleanSplitError:
        raise  # edited lists, not missing files: its own message says what to restore
    except splits.ManifestError as e:
        raise ds.missing([f"the copy does not fit the frozen split manifest: {e}"]) from None
    return index, manifest


@dataclass
class CheckReport:
    """What ``check`` found. ``ok`` is False when anything is missing, does not fit the manifest or fails to decode."""

    task: str
    dataset: str
    root: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    digest: str = ""

    def __str__(self) -> str:
        head = f"{'OK' if self.ok else 'PROBLEMS'}: task {self.task!r} on dataset {self.dataset!r} at {self.root}"
        return "\n".join([head] + self.lines + [f"problem: {p}" for p in self.problems])


def check(task, root: str | os.PathLike, *, size: int | None = None, sample: int = 2) -> CheckReport:
    """The dataset doctor: layout, counts against the manifest, patient-disjoint splits and a decoded sample.

    Never raises for a bad copy: every finding goes into the report (missing files with where to obtain them, the
    patients an edited official list puts in two splits).
    """
    spec = _task(task)
    ds = get_dataset(spec.source)
    rep = CheckReport(spec.name, ds.name, str(root))
    try:
        index, manifest = index_with_splits(spec, root, size)
    except (MissingDataError, formats.CorruptFileError, splits.ManifestError) as e:
        rep.ok, rep.problems = False, [str(e)]
        return rep
    counts = splits.counts(index["split"])
    rep.counts = counts
    ids = {s: list(index.loc[index["split"] == s, "id"]) for s in splits.SPLITS}
    rep.digest = splits.split_digest(ids)
    rep.lines.append(f"split rule: {splits.describe_split(ds.name)}")
    rep.lines.append(f"{len(index)} images of {index['patient'].nunique()} patients; "
                     + ", ".join(f"{s} {n}" for s, n in counts.items()) + f"; split digest {rep.digest}")
    for s, n in manifest.get("expected", {}).items():
        found = len(index) if s == "total" else counts.get(s)
        if found != n:
            rep.problems.append(f"the manifest expects {n} {s} images, this copy gives {found}: files are missing "
                                f"or the copy is another release ({ds.obtain})")
    for s in splits.SPLITS:
        if counts[s] == 0:
            rep.problems.append(f"the {s} split is empty")
    # decode a few items of every split
    for s in splits.SPLITS:
        rows = index[index["split"] == s].head(sample)
        for _, group in rows.groupby(rows.get("group", rows["id"]), sort=False):
            try:
                for img, target in ds.load(Path(root), group, spec.options):
                    rep.lines.append(f"decoded {s} {group['id'].iloc[0]}: image {img.shape} {img.dtype}, "
                                     f"target {np.asarray(target).shape}")
                    break
            except (formats.CorruptFileError, FileNotFoundError, OSError) as e:
                rep.problems.append(str(e))
    rep.ok = not rep.problems
    return rep


def _to_chw(img: np.ndarray, size: int, channels: int) -> np.ndarray:
    img = formats.resize(img, size)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] != channels:
        img = np.repeat(img.mean(-1, keepdims=True).astype(np.uint8), channels, -1) if channels == 3 else \
            img.mean(-1, keepdims=True).astype(np.uint8)
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def _decode_group(args):
    name, root, rows, opts, size, channels = args
    ds = get_dataset(name)
    out = []
    for img, target in ds.load(Path(root), rows, opts):
        target = np.asarray(target)
        if target.ndim == 2:  # a mask: nearest-neighbour resize keeps 0/1/IGNORE values
            target = formats.resize(target.astype(np.uint8), size, mask=True)[None]
        out.append((_to_chw(img, size, channels), target))
    return out


def prepare(task, root: str | os.PathLike, *, size: int | None = None, profile: str = ORIGINAL, workers=None,
            cache_dir=None, progress: bool | None = None, force: bool = False) -> Path:
    """Decode ``task``'s dataset at ``root`` into the cache at ``size`` px (default: the profile's resolution).

    Idempotent: an existing complete cache is reused (``force`` rebuilds it). Returns the cache folder. Bad or
    missing data raises ``MissingDataError`` before any decoding; an undecodable file raises ``CorruptFileError``
    naming it, and leaves no partial cache behind.
    """
    from ..tasks import create_task
    from ..paths import progress_enabled

    spec = create_task(_task(task).name, profile)
    size = int(size or spec.protocol.stored_size)
    final = prepared_dir(spec, size, cache_dir)
    if (final / "meta.json").is_file() and not force:
        return final
    ds = get_dataset(spec.source)
    t0 = time.perf_counter()
    index, manifest = index_with_splits(spec, root, size)
    for s, n in splits.counts(index["split"]).items():
        if n == 0:
            raise ds.missing([f"the {s} split is empty: run `medbench data check {spec.name} --root {root}`"])
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    workers = workers or min(8, os.cpu_count() or 1)
    meta = {"task": spec.name, "dataset": ds.name, "size": size, "channels": ds.channels,
            "manifest_sha": splits.manifest_sha(manifest), "prepare_version": PREPARE_VERSION,
            "root": str(Path(root).resolve()), "ids": {}, "counts": {}}
    try:
        ctx = get_context("fork" if sys.platform.startswith("linux") else "spawn")  # fork is unsafe on macOS
        pool = ProcessPoolExecutor(workers, mp_context=ctx) if workers > 1 else None
        for s in splits.SPLITS:
            rows = index[index["split"] == s].reset_index(drop=True)
            groups = [g for _, g in rows.groupby(rows["group"] if "group" in rows else rows.index, sort=False)]
            jobs = [(ds.name, str(root), g, spec.options, size, ds.channels) for g in groups]
            results = pool.map(_decode_group, jobs, chunksize=8) if pool else map(_decode_group, jobs)
            images = targets = None
            ids, i = [], 0
            from tqdm.auto import tqdm

            bar = tqdm(total=len(rows), desc=f"prepare {spec.name} {s}", disable=not progress_enabled(progress))
            for g, decoded in zip(groups, results):
                for rid, (img, target) in zip(g["id"], decoded):
                    if images is None:
                        images = np.lib.format.open_memmap(tmp / f"{s}_images.npy", "w+", np.uint8,
                                                           (len(rows),) + img.shape)
                        targets = np.lib.format.open_memmap(tmp / f"{s}_targets.npy", "w+", target.dtype,
                                                            (len(rows),) + target.shape)
                    images[i], targets[i] = img, target
                    ids.append(str(rid))
                    i += 1
                bar.update(len(g))
            bar.close()
            images.flush()
            targets.flush()
            del images, targets
            meta["ids"][s] = ids
            meta["counts"][s] = len(ids)
        if pool:
            pool.shutdown()
        train = index[index["split"] == "train"]
        meta["train_strata"] = dict(zip(train["id"].astype(str), train["stratum"].astype(str)))
        meta["split_digest"] = splits.split_digest(meta["ids"])
        meta["fractions"] = splits.fraction_ids(train, manifest)
        splits.check_nested(meta["fractions"], meta["ids"]["train"])
        meta["seconds"] = round(time.perf_counter() - t0, 1)
        meta["prepared_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        (tmp / "meta.json").write_text(json.dumps(meta))
        if final.exists():  # prepared meanwhile by another process, or --force
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def load_prepared(task, cache_dir=None) -> tuple[dict, dict]:
    """The prepared arrays of a (profile-scaled) task, memory-mapped: ({split: (images, targets)}, meta).

    Raises ``MissingDataError`` with the command to run when the task has not been prepared at its resolution, and
    ``splits.UncleanSplitError`` when the prepared copy holds an image in two splits (prepared before splits were
    checked, from edited lists). Meta holds image ids, not patient ids: a patient split across images is caught when
    the copy is prepared, not here.
    """
    spec = _task(task)
    size = spec.protocol.stored_size
    folder = prepared_dir(spec, size, cache_dir)
    if not (folder / "meta.json").is_file():
        ds = get_dataset(spec.source)
        raise MissingDataError(
            f"task {spec.name!r} reads {ds.title}, which is not prepared at {size} px (looked in {folder}).\n"
            f"Run: medbench data prepare {spec.name} --root PATH --profile {spec.profile}\n"
            f"(or pass --data-root PATH to `medbench run`). Obtain the data from {ds.obtain} ({ds.licence}).")
    meta = read_meta(folder)
    seen: dict[str, str] = {}
    twice = sorted({i for s in splits.SPLITS for i in meta["ids"].get(s, []) if seen.setdefault(i, s) != s})
    if twice:
        raise splits.UncleanSplitError(
            f"the prepared copy of task {spec.name!r} in {folder} has {len(twice)} image(s) in two splits, e.g. "
            f"{', '.join(twice[:5])}; restore the dataset's official split files, then run: medbench data prepare "
            f"{spec.name} --root PATH --profile {spec.profile} --force")
    arrays = {s: (np.load(folder / f"{s}_images.npy", mmap_mode="r"), np.load(folder / f"{s}_targets.npy",
                                                                             mmap_mode="r"))
              for s in splits.SPLITS}
    return arrays, meta


def fraction_ids_of(meta: dict, fraction: float, dataset: str) -> list[str]:
    """Training ids kept at ``fraction`` under the dataset's manifest (nested, stratified)."""
    if fraction >= 1:
        return list(meta["ids"]["train"])
    key = f"{fraction:g}"
    if key in meta.get("fractions", {}):
        return meta["fractions"][key]
    train = pd.DataFrame({"id": list(meta["train_strata"]), "stratum": list(meta["train_strata"].values())})
    return splits.fraction_ids(train, splits.load_manifest(dataset), (fraction,))[key]
