"""Runs: one flat RunConfig per fine-tuning run, trained from inputs resolved beforehand
(``medbench_core.inputs``) and cached in the results store by its hash. Sections and their grids are in
``medbench_core.sections``."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from . import __version__
from ._registry import UnknownNameError
from .augment import get_augmentation
from .claims import claimed, still_held
from .errors import BadValueError
from .data import BatchLoader, data_version, train_subset
from .engine import (LOSSES, OPTIMIZERS, SCHEDULERS, check_stop_rule, evaluate, fit, make_loss, resolve_device,
                     resolve_speed, seed_everything)
from .inputs import RunInputs, prepare_inputs, resolve_inputs
from .models import create_model, list_archs
from .paths import remove_orphan_temps
from .pretrain import init_fingerprint, list_inits
from .results import ResultsStore, git_sha
from .tasks import CLASSIFICATION, NORMALIZATIONS, UPERNETS, create_task
from .workers import resolve_workers, run_parallel

log = logging.getLogger("medbench")

# Fields that say where or why a run happened, not what it computes: left out of the hash so the same run is
# shared by every section and device that asks for it.
_NOT_HASHED = ("section", "device", "workers")
_HASHED_UNLESS_DEFAULT = {"test_crops": 1, "amp": "auto", "channels_last": "auto", "compile": False,
                          "augment": "light", "eval_crop": 1.0, "stop_rule": "patience", "warmup_epochs": 0,
                          "normalization": "init", "upernet": "smp"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one fine-tuning run, as plain values (its dict is hashed, stored and shown)."""

    section: str
    task: str
    init: str
    arch: str
    seed: int
    fraction: float
    profile: str
    init_checkpoint: str | None  # hash of the pre-training checkpoint (None for scratch)
    image_size: int
    n_train: int
    n_val: int
    n_test: int
    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    scheduler: str
    lr_factor: float
    lr_patience: int
    loss: str
    data_version: str  # "generated-vN" for synthetic tasks; the dataset's manifest version otherwise
    device: str = "auto"
    # speed options (medbench_core.engine.resolve_speed): recorded with every run; part of the hash only when set
    # away from their defaults, so runs made before they existed keep their hashes
    test_crops: int = 1  # 10: ten-crop test-time averaging (the papers' classification protocol)
    # the original code's conventions (tasks.Protocol); hashed only when set away from the light defaults
    augment: str = "light"
    eval_crop: float = 1.0
    stop_rule: str = "patience"
    warmup_epochs: int = 0
    normalization: str = "init"  # init | imagenet | none (tasks.Protocol)
    upernet: str = "smp"  # smp | original (tasks.Protocol)
    amp: str = "auto"  # auto | off | bf16 | fp16 (auto: bf16 or fp16 on a GPU, off on a CPU)
    channels_last: str = "auto"  # auto | on | off (auto: on a GPU)
    compile: bool = False  # torch.compile the model
    workers: int = -1  # data-loader processes (-1: none on a CPU, up to 8 on a GPU); never changes results

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        d = {k: v for k, v in canonical_values(self.to_dict()).items()
             if k not in _NOT_HASHED and not (k in _HASHED_UNLESS_DEFAULT and v == _HASHED_UNLESS_DEFAULT[k])}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


SPEED_FIELDS = ("amp", "channels_last", "compile", "workers")


def canonical_values(d: dict) -> dict:
    """``d`` (RunConfig fields) with each number in its field's own type: one value, one hash, however it was spelled
    (``weight_decay=0``, ``0.0`` and ``0e0`` are one weight decay; ``test_crops=10.0`` is 10). A float given for a
    whole-number field stays as it is when it is not whole, so validation names it.

    Example:
        >>> canonical_values({"weight_decay": 0, "lr": 1, "test_crops": 10.0, "image_size": 32.5, "loss": "bce"})
        {'weight_decay': 0.0, 'lr': 1.0, 'test_crops': 10, 'image_size': 32.5, 'loss': 'bce'}
    """
    out = {}
    for k, v in d.items():
        kind = _FIELD_TYPES.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            out[k] = v
        elif kind == "float":
            out[k] = float(v)
        elif kind == "int" and isinstance(v, float) and v.is_integer():
            out[k] = int(v)
        else:
            out[k] = v
    return out


# protocol fields a user may set (``--set``, ``protocol=``): their type and the least value allowed
_PROTOCOL_RANGES = {"lr": (float, 0.0, False), "weight_decay": (float, 0.0, True), "batch_size": (int, 1, True),
                    "max_epochs": (int, 1, True), "patience": (int, 0, True), "lr_factor": (float, 0.0, False),
                    "lr_patience": (int, 0, True), "image_size": (int, 8, True), "warmup_epochs": (int, 0, True),
                    "workers": (int, -1, True), "eval_crop": (float, 0.0, False), "test_crops": (int, 1, True)}
# ... and the most the engine can train with: ReduceLROnPlateau needs a factor below 1; no optimiser here trains at a
# learning rate above 10 (the papers' are 2e-4 and 1e-3) or with a weight decay above 1; a crop is at most the side
_PROTOCOL_MAX = {"lr": (10.0, True), "lr_factor": (1.0, False), "weight_decay": (1.0, True), "eval_crop": (1.0, True)}
_PROTOCOL_CHOICES = {"optimizer": tuple(OPTIMIZERS), "scheduler": SCHEDULERS, "loss": tuple(LOSSES),
                     "normalization": NORMALIZATIONS, "upernet": UPERNETS}


def _check_protocol_values(p: dict, overrides: dict) -> None:
    """A changed protocol field of the wrong type or out of range is refused by name, before any run starts."""
    for key in overrides:
        v = p[key]
        if key in _PROTOCOL_RANGES:
            kind, least, inclusive = _PROTOCOL_RANGES[key]
            ok_type = (isinstance(v, int) and not isinstance(v, bool)) if kind is int else \
                (isinstance(v, (int, float)) and not isinstance(v, bool))
            most, most_inclusive = _PROTOCOL_MAX.get(key, (math.inf, True))
            if not ok_type or not math.isfinite(v) or not (v >= least if inclusive else v > least) or \
                    not (v <= most if most_inclusive else v < most):
                what = "a whole number" if kind is int else "a number"
                top = "" if most == math.inf else f" and {'<=' if most_inclusive else '<'} {most:g}"
                raise BadValueError(f"protocol field {key} must be {what} {'>=' if inclusive else '>'} {least}{top}; "
                                    f"got {v!r}")
        elif key in _PROTOCOL_CHOICES and v not in _PROTOCOL_CHOICES[key]:
            raise BadValueError(f"protocol field {key} must be one of {', '.join(_PROTOCOL_CHOICES[key])}; got {v!r}")


_FIELD_TYPES = {f.name: str(f.type) for f in dataclasses.fields(RunConfig)}


def make_run_config(section: str, task: str, init: str, arch: str, seed: int, profile: str, *,
                    fraction: float = 1.0, device: str = "auto", **overrides) -> RunConfig:
    """The RunConfig of one run, with the task's protocol scaled by ``profile``; ``overrides`` replace protocol
    fields (e.g. ``lr=1e-3``).

    Example:
        >>> make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", 0, "smoke").max_epochs
        2
    """
    spec = create_task(task, profile)
    if init not in list_inits():
        raise UnknownNameError(f"unknown init {init!r}; valid inits: {', '.join(list_inits())}")
    if arch not in list_archs():
        raise UnknownNameError(f"unknown arch {arch!r}; valid archs: {', '.join(list_archs())}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    p = dataclasses.asdict(spec.protocol)
    p.pop("num_runs")
    bad = [k for k in overrides if k not in p and k not in SPEED_FIELDS]
    if bad:
        raise ValueError(f"unknown protocol fields {bad}; valid fields: {', '.join(list(p) + list(SPEED_FIELDS))}")
    p.update(overrides)
    p = canonical_values(p)
    _check_protocol_values(p, overrides)
    resolve_speed(torch.device("cpu"), p.get("amp", "auto"), p.get("channels_last", "auto"))  # bad values: now
    if p.get("test_crops", 1) not in (1, 10):
        raise ValueError(f"test_crops must be 1 or 10, got {p['test_crops']}")
    get_augmentation(p["augment"])  # an unknown name raises, listing the valid ones
    check_stop_rule(p["stop_rule"])
    if not 0 < float(p["eval_crop"]) <= 1:
        raise ValueError(f"eval_crop must be in (0, 1] (the share of the stored side the model sees), got "
                         f"{p['eval_crop']}")
    n_train, n_val, n_test = spec.sizes
    return RunConfig(section=section, task=task, init=init, arch=arch, seed=int(seed), fraction=float(fraction),
                     profile=profile, init_checkpoint=init_fingerprint(init, arch, profile),
                     n_train=n_train, n_val=n_val, n_test=n_test, device=device,
                     data_version=data_version(spec), **p)


def run_one(cfg: RunConfig, store: ResultsStore, inputs: RunInputs | None = None, *, cache_dir=None,
            progress: bool | None = None, on_epoch=None) -> tuple[pd.DataFrame, bool]:
    """Run ``cfg`` unless the store already has it; returns (its rows, whether they came from the store).

    ``inputs`` are the run's resolved data, checkpoint and normalisation (``inputs.resolve_inputs``; resolved here
    from the caches when not given, which needs the grid prepared: ``inputs.prepare_inputs``). The training state
    is saved after every epoch (``partial/<hash>.pt``): a run killed midway resumes there and ends with the numbers
    an uninterrupted run gives; the partial state is removed once the run is stored."""
    h = cfg.config_hash()
    if store.has(h):
        return store.rows(h), True
    # one process trains a run: another one asking for it (a second `run`, a sweep worker, a book) waits for its rows
    with claimed(store.root, h, done=lambda: store.has(h),
                 what=f"{cfg.task} {cfg.arch} {cfg.init} {cfg.fraction:g} seed {cfg.seed}") as mine:
        if not mine or store.has(h):
            return store.rows(h), True
        return _train(cfg, h, store, inputs, cache_dir=cache_dir, progress=progress, on_epoch=on_epoch), False


def _train(cfg: RunConfig, h: str, store: ResultsStore, inputs: RunInputs | None, *, cache_dir, progress,
           on_epoch) -> pd.DataFrame:
    """Train, evaluate and store run ``cfg`` (its claim held by the caller); returns its rows."""
    t0 = time.perf_counter()
    inputs = inputs or resolve_inputs(cfg, cache_dir)
    task, data = inputs.task, inputs.data
    device = resolve_device(cfg.device)
    speed = resolve_speed(device, cfg.amp, cfg.channels_last, cfg.compile)
    seed_everything(cfg.seed)
    model = create_model(cfg.arch, task, checkpoint=inputs.checkpoint)
    model.to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if speed.compile else model
    train = train_subset(data["train"], cfg.fraction)  # validation and test are never subsampled
    io = dict(device=device, workers=cfg.workers, mean=inputs.mean, std=inputs.std)  # decoded, augmented on device
    loaders = {
        "train": BatchLoader(train, cfg.batch_size, train=True, seed=cfg.seed, augment=cfg.augment,
                             out_size=cfg.image_size, **io),
        "val": BatchLoader(data["val"], 256, train=False, **io),
        "test": BatchLoader(data["test"], 256, train=False, **io),
    }
    result = fit(model, loaders["train"], loaders["val"], task, device=device, optimizer=cfg.optimizer, lr=cfg.lr,
                 weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs, patience=cfg.patience,
                 scheduler=cfg.scheduler, lr_factor=cfg.lr_factor, lr_patience=cfg.lr_patience, loss=cfg.loss,
                 stop_rule=cfg.stop_rule, warmup_epochs=cfg.warmup_epochs, input_size=cfg.image_size,
                 progress=progress, desc=f"{cfg.task} {cfg.init} seed {cfg.seed}", speed=speed, forward=forward,
                 checkpoint_path=store.partial_path(h), on_epoch=on_epoch)  # a killed run resumes from its epoch
    loss_fn = make_loss(cfg.loss)
    metric = task.metric
    values, cases = [], {}
    for split in ("val", "test"):
        ev = evaluate(model, loaders[split], loss_fn, task, device, speed=speed, forward=forward,
                      crops=cfg.test_crops if task.kind == CLASSIFICATION else 1,
                      input_size=cfg.image_size)
        values += [(split, metric, ev[metric]), (split, "loss", ev["loss"])]
        if task.kind == CLASSIFICATION and len(task.classes) > 1:
            values += [(split, f"auc:{c}", v) for c, v in ev["per_class"].items()]
        cases.update({f"{split}_{k}": v for k, v in ev["cases"].items()})
    values += [("train", "epochs_run", result.epochs_run), ("train", "best_epoch", result.best_epoch),
               ("train", "n_images", len(train))]
    wall = time.perf_counter() - t0
    rows = pd.DataFrame([{
        "section": cfg.section, "task": cfg.task, "init": cfg.init, "arch": cfg.arch, "seed": cfg.seed,
        "fraction": cfg.fraction, "profile": cfg.profile, "split": split, "metric": m, "value": float(v),
        "config_hash": h, "medbench_version": __version__, "git_sha": git_sha(), "torch_version": torch.__version__,
        "device": str(device), "wall_seconds": round(wall, 3),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "synthetic": task.synthetic,
    } for split, m, v in values])
    if not still_held(store.root, h):  # paused past a broken claim: another process trains this run
        from .errors import ClaimLostError

        raise ClaimLostError(f"run {h} ({cfg.task} {cfg.arch} {cfg.init} seed {cfg.seed}): its claim was broken "
                             "while this process was paused, and another process trains it; this copy wrote nothing")
    # the split sizes the run saw (a real dataset's come from its prepared copy, not from the hashed config)
    sizes = {"n_train": len(data["train"]), "n_val": len(data["val"]), "n_test": len(data["test"])}
    config = cfg.to_dict() | sizes | {"config_hash": h, "history": result.history, "speed": speed.describe(),
                                      "load_report": str(model.load_report) if model.load_report else None}
    try:
        store.save_checkpoint(h, {"arch": cfg.arch, "state_dict": model.state_dict()})
        store.write_run(h, rows, config, cases)
    except OSError as e:
        _rescue(h, rows, config, store, e)
    store.partial_path(h).unlink(missing_ok=True)
    return rows


def _rescue(h: str, rows: pd.DataFrame, config: dict, store: ResultsStore, error: OSError) -> None:
    """A run that trained but cannot be stored (a full disk, a folder made read-only meanwhile) is kept, as a results
    file with its configuration, where the one-line error says; `medbench results import` brings it back."""
    import tempfile

    from .errors import BadPathError
    from .results import RUN_CONFIG, config_cell

    folder = Path(tempfile.gettempdir()) / "medbench-rescued"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{h}.csv"
    kept = rows.assign(**{RUN_CONFIG: config_cell(config)})
    kept.to_csv(path, index=False)
    raise BadPathError(f"run {h} trained but cannot be stored in {store.root} ({error.strerror or error}); its "
                       f"results are kept in {path}: free the space or fix the folder, then `medbench results import "
                       f"{path} --results-dir {store.root}`") from None


def run_grid(grid, results_dir: str | Path, *, cache_dir=None, progress: bool | None = None) -> dict:
    """Run every config of ``grid`` (a ``sections.Grid``) not yet in the store; returns counts and wall time.

    The grid's inputs are prepared first (data checked, weights present, pre-training stages made once per
    architecture and initialisation, independent chains in parallel), then the runs the store lacks train in
    parallel worker processes sized to the machine (``workers.resolve_workers``: on a CPU one single-threaded
    process per core; ``MEDBENCH_WORKERS=1`` trains them here, one after the other). Claims keep each run to one
    process, so a second command on the same store waits for the first's result instead of training it again."""
    store = ResultsStore(results_dir)
    t0 = time.perf_counter()
    if any(not store.has(c.config_hash()) for c in grid.configs):
        store.check_writable()  # a run that trains must be storable: checked before any training
    for sub in ("runs", "cases", "checkpoints", "partial"):  # temporary files of runs killed while writing
        if (store.root / sub).is_dir():
            remove_orphan_temps(store.root / sub)
    todo = [c for c in grid.configs if not store.has(c.config_hash())]
    prepare_inputs(todo, cache_dir, progress=progress)
    device = str(resolve_device(todo[0].device)) if todo else "cpu"
    workers, threads = resolve_workers(len(todo), device)
    total, count = len(grid.configs), [len(grid.configs) - len(todo)]

    def done(job, out) -> None:
        cfg, (cached, metric, value, wall) = job[0], out
        count[0] += 1
        if not cached:
            log.info("[%d/%d] %s %s %s %g seed %d: %s %.4f (%.1f s)", count[0], total, cfg.task, cfg.arch,
                     cfg.init, cfg.fraction, cfg.seed, metric, value, wall)

    outs = run_parallel(_run_job, [(cfg, str(store.root), cache_dir, progress if workers == 1 else False)
                                   for cfg in todo], workers=workers, threads=threads, on_done=done)
    trained = sum(not cached for cached, *_ in outs)
    return {"runs": total, "trained": trained, "cached": total - trained,
            "seconds": round(time.perf_counter() - t0, 1)}


def _run_job(job) -> tuple[bool, str, float, float]:
    """One run in a worker (or here): (read from the store?, main metric, its test value, wall seconds)."""
    cfg, root, cache_dir, progress = job
    rows, cached = run_one(cfg, ResultsStore(root), cache_dir=cache_dir, progress=progress)
    main = rows[(rows.split == "test") & rows.metric.isin(["mean_auc", "dice"])].iloc[0]
    return cached, str(main.metric), float(main.value), float(main.wall_seconds)
