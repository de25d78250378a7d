"""Runs and grids: one flat RunConfig per fine-tuning run, cached in the results store by its hash, and the
registry of paper sections with their default grids."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from . import __version__
from ._registry import Registry, UnknownNameError
from .data import BatchLoader, data_version, load_task_data, require_prepared, train_subset
from .engine import evaluate, fit, make_loss, resolve_device, resolve_speed, seed_everything
from .models import create_model, get_arch, list_archs
from .pretrain import (get_init, get_init_checkpoint, init_fingerprint, init_normalisation, is_self_supervised,
                       list_inits, require_weights)
from .profiles import get_profile, list_profiles
from .results import ResultsStore, git_sha
from .tasks import CLASSIFICATION, create_task

log = logging.getLogger("medbench")

# Fields that say where or why a run happened, not what it computes: left out of the hash so the same run is
# shared by every section and device that asks for it.
_NOT_HASHED = ("section", "device", "workers")
_HASHED_UNLESS_DEFAULT = {"test_crops": 1, "amp": "auto", "channels_last": "auto", "compile": False}


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
    amp: str = "auto"  # auto | off | bf16 | fp16 (auto: bf16 or fp16 on a GPU, off on a CPU)
    channels_last: str = "auto"  # auto | on | off (auto: on a GPU)
    compile: bool = False  # torch.compile the model
    workers: int = -1  # data-loader processes (-1: none on a CPU, up to 8 on a GPU); never changes results

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        d = {k: v for k, v in self.to_dict().items()
             if k not in _NOT_HASHED and not (k in _HASHED_UNLESS_DEFAULT and v == _HASHED_UNLESS_DEFAULT[k])}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


SPEED_FIELDS = ("amp", "channels_last", "compile", "workers")


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
    resolve_speed(torch.device("cpu"), p.get("amp", "auto"), p.get("channels_last", "auto"))  # bad values: now
    if p.get("test_crops", 1) not in (1, 10):
        raise ValueError(f"test_crops must be 1 or 10, got {p['test_crops']}")
    n_train, n_val, n_test = spec.sizes
    return RunConfig(section=section, task=task, init=init, arch=arch, seed=int(seed), fraction=float(fraction),
                     profile=profile, init_checkpoint=init_fingerprint(init, arch, profile),
                     n_train=n_train, n_val=n_val, n_test=n_test, device=device,
                     data_version=data_version(spec), **p)


def run_one(cfg: RunConfig, store: ResultsStore, *, cache_dir=None, progress: bool | None = None,
            on_epoch=None) -> tuple[pd.DataFrame, bool]:
    """Run ``cfg`` unless the store already has it; returns (its rows, whether they came from the store).

    The training state is saved after every epoch (``partial/<hash>.pt``): a run killed midway resumes there and
    ends with the numbers an uninterrupted run gives; the partial state is removed once the run is stored."""
    h = cfg.config_hash()
    if store.has(h):
        return store.rows(h), True
    t0 = time.perf_counter()
    task = create_task(cfg.task, cfg.profile)
    task = dataclasses.replace(task, protocol=dataclasses.replace(task.protocol, image_size=cfg.image_size),
                               sizes=(cfg.n_train, cfg.n_val, cfg.n_test))
    data = load_task_data(task, cache_dir)
    ckpt = get_init_checkpoint(cfg.init, cfg.arch, cfg.profile, cache_dir=cache_dir, device=cfg.device,
                               progress=progress)
    device = resolve_device(cfg.device)
    speed = resolve_speed(device, cfg.amp, cfg.channels_last, cfg.compile)
    seed_everything(cfg.seed)
    model = create_model(cfg.arch, task, checkpoint=ckpt)
    model.to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if speed.compile else model
    train = train_subset(data["train"], cfg.fraction)  # validation and test are never subsampled
    norm = dict(zip(("mean", "std"), init_normalisation(cfg.init, cfg.arch)))  # what the init's weights expect
    io = dict(device=device, workers=cfg.workers, **norm)  # decoded and augmented on the device
    loaders = {
        "train": BatchLoader(train, cfg.batch_size, train=True, seed=cfg.seed, **io),
        "val": BatchLoader(data["val"], 256, train=False, **io),
        "test": BatchLoader(data["test"], 256, train=False, **io),
    }
    result = fit(model, loaders["train"], loaders["val"], task, device=device, optimizer=cfg.optimizer, lr=cfg.lr,
                 weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs, patience=cfg.patience,
                 scheduler=cfg.scheduler, lr_factor=cfg.lr_factor, lr_patience=cfg.lr_patience, loss=cfg.loss,
                 progress=progress, desc=f"{cfg.task} {cfg.init} seed {cfg.seed}", speed=speed, forward=forward,
                 checkpoint_path=store.partial_path(h), on_epoch=on_epoch)  # a killed run resumes from its epoch
    loss_fn = make_loss(cfg.loss)
    metric = task.metric
    values, cases = [], {}
    for split in ("val", "test"):
        ev = evaluate(model, loaders[split], loss_fn, task, device, speed=speed, forward=forward,
                      crops=cfg.test_crops if task.kind == CLASSIFICATION else 1)
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
    store.save_checkpoint(h, {"arch": cfg.arch, "state_dict": model.state_dict()})
    config = cfg.to_dict() | {"config_hash": h, "history": result.history, "speed": speed.describe(),
                              "load_report": str(model.load_report) if model.load_report else None}
    store.write_run(h, rows, config, cases)
    store.partial_path(h).unlink(missing_ok=True)
    return rows, False


# ----------------------------------------------------------------------------------------------------------------
# Sections of the paper


@dataclass(frozen=True)
class Section:
    """A section of the paper as a notebook with a default grid: tasks x archs x inits x fractions x seeds.

    ``compare`` says what the rows of its table are: ``init`` (one architecture, initialisations compared) or
    ``arch`` (architecture x initialisation, rows keyed ``"arch/init"``). ``baseline`` and ``candidate`` are row
    keys: the significance marks compare every row with ``baseline``; the claim is about ``candidate``.
    """

    key: str
    number: int
    notebook: str  # file name in notebooks/
    title: str
    question: str
    claim: str
    tasks: tuple[str, ...]
    inits: tuple[str, ...]
    baseline: str
    candidate: str
    rival: str = ""  # the row the candidate is compared with pairwise (architectures: Swin of the same size)
    arch: str = "test_resnet"
    archs: tuple[str, ...] = ()  # several architectures (compare="arch"); empty: just ``arch``
    fractions: tuple[float, ...] = (1.0,)  # shares of the training split
    compare: str = "init"  # init | arch
    paper_tasks: tuple[tuple[str, str], ...] = ()  # (our task, the paper's task) where not the task's analog_of

    @property
    def all_archs(self) -> tuple[str, ...]:
        return self.archs or (self.arch,)

    def all_archs_on(self, profile: str) -> tuple[str, ...]:
        return tuple(REAL_ARCHS[profile][a] for a in self.all_archs) if profile in REAL_ARCHS else self.all_archs

    def for_profile(self, profile: str) -> "Section":
        """The section as it runs on ``profile``. On ``paper`` and ``colab`` each generated task, miniature
        architecture and synthetic initialisation is replaced by the papers' own (the real dataset, ResNet-50 /
        ConvNeXt / Swin / DeiT, the released weights); ``colab`` uses MedMNIST+ (classification only), the tiny
        variants, and leaves out extra candidates whose weights need a manual download (never the baseline or the
        compared models). Other profiles keep the section as is.
        """
        if profile not in REAL_TASKS:
            return self

        roles = {g.split("/")[-1] for g in (self.baseline, self.candidate, self.rival) if g}

        def init(i: str) -> str | None:
            real = REAL_INITS.get(i)
            if real is None:
                return None
            if profile == "colab" and i not in roles and any(_manual_weights(real, a) for a in self.all_archs_on(
                    profile)):
                return None  # an extra candidate that needs a manual download: left out on Colab
            return real

        def arch(a: str) -> str:
            return REAL_ARCHS[profile][a]

        def group(g: str) -> str:
            if g in ("", "ssl"):
                return g
            if "/" in g:
                a, i = g.split("/")
                return f"{arch(a)}/{init(i)}"
            return init(g) or ""

        tasks = tuple(dict.fromkeys(REAL_TASKS[profile][t] for t in self.tasks if REAL_TASKS[profile].get(t)))
        return dataclasses.replace(
            self, tasks=tasks, inits=tuple(dict.fromkeys(x for x in map(init, self.inits) if x)),
            arch=arch(self.arch), archs=tuple(arch(a) for a in self.archs), baseline=group(self.baseline),
            candidate=group(self.candidate), rival=group(self.rival),
            paper_tasks=tuple((REAL_TASKS[profile][t], p) for t, p in self.paper_tasks if REAL_TASKS[profile].get(t)))


# What a section's stand-ins become on the profiles that run the papers' own data, models and weights.
REAL_TASKS = {
    "paper": {"syn_dxc": "chexpert", "syn_txc": "shenzhen", "syn_pxs": "siim_ptx", "syn_lxs": "jsrt_clavicle",
              "syn_vxs": "drive"},
    "colab": {"syn_dxc": "chestmnist", "syn_txc": "pneumoniamnist"},  # MedMNIST+ has no segmentation sets
}
REAL_INITS = {"scratch": "scratch", "synth_imagenet": "imagenet", "synth_inat": "inat2021",
              "synth_chest": "chestxray14", "synth_imagenet_chest": "imagenet_chestxray14", "ssl_simclr": "simclr_v1",
              "ssl_moco_v2": "moco_v2", "ssl_byol": "byol", "ssl_swav": "swav", "ssl_barlow_twins": "barlow_twins"}
REAL_ARCHS = {
    "paper": {"test_resnet": "resnet50", "mini_convnext": "convnext_base", "mini_swin": "swin_base",
              "mini_vit": "deit_base"},
    "colab": {"test_resnet": "resnet50", "mini_convnext": "convnext_tiny", "mini_swin": "swin_tiny",
              "mini_vit": "deit_tiny"},
}


def _manual_weights(init: str, arch: str) -> bool:
    from .zoo import get_record, list_records

    spec = get_init(init)
    if not spec.weights:
        return False
    key = f"{arch}.{spec.weights}"
    return key not in list_records() or get_record(key).source == "manual"


def group_key(arch: str, init: str, compare: str) -> str:
    """The row key of a run in a section's table: the init, or ``"arch/init"`` when architectures are compared."""
    return init if compare == "init" else f"{arch}/{init}"


_SECTIONS: Registry[Section] = Registry("section")
for _s in (
    Section(
        key="granularity", number=1, notebook="01_granularity.ipynb",
        title="Fine-grained vs coarse-grained supervised pre-training",
        question="Do fine-grained labels (iNat2021) make better pre-trained features than coarse ones (ImageNet)?",
        claim="Fine-grained pre-training (iNat2021) suits segmentation: it is ahead of coarse-grained ImageNet "
              "pre-training on the segmentation tasks, while coarse-grained pre-training prevails on "
              "classification.",
        tasks=("syn_dxc", "syn_txc", "syn_pxs", "syn_vxs"),
        inits=("scratch", "synth_imagenet", "synth_inat"),
        baseline="synth_imagenet", candidate="synth_inat"),
    Section(
        key="self-supervised", number=2, notebook="02_self_supervised.ipynb",
        title="Self-supervised vs supervised ImageNet pre-training",
        question="Do self-supervised ImageNet models transfer better than the supervised ImageNet model?",
        claim="Top self-supervised models (SimCLR, BYOL, SwAV, Barlow Twins, ...) are significantly better than "
              "supervised ImageNet pre-training on segmentation (and on RSNA PE), while on the chest "
              "classification tasks most are not significantly different; they learn more holistic features "
              "that attend to larger image regions.",
        tasks=("syn_txc", "syn_pxs"),
        inits=("synth_imagenet", "ssl_simclr", "ssl_moco_v2", "ssl_byol", "ssl_swav", "ssl_barlow_twins",
               "ssl_vicreg"),
        baseline="synth_imagenet", candidate="ssl"),
    Section(
        key="domain-adaptation", number=3, notebook="03_domain_adaptation.ipynb",
        title="Domain-adaptive (continual) pre-training",
        question="Does continually pre-training an ImageNet model on medical images close the domain gap?",
        claim="Continual pre-training (ImageNet → a large annotated chest X-ray set) bridges the domain gap between "
              "natural and medical images: the domain-adapted models are the best, or equivalent to the best, on "
              "the target tasks, ahead of both ImageNet and in-domain pre-training alone.",
        tasks=("syn_dxc", "syn_txc", "syn_pxs"),
        inits=("scratch", "synth_imagenet", "synth_chest", "synth_imagenet_chest"),
        baseline="synth_imagenet", candidate="synth_imagenet_chest"),
    Section(
        key="architectures", number=4, notebook="04_architectures.ipynb",
        title="ConvNets vs vision transformers",
        question="Do ConvNets transfer better to medical tasks than vision transformers of the same size?",
        claim="ConvNets transfer better than vision transformers: ImageNet-pre-trained ConvNeXt is ahead of Swin "
              "of the same size on every task, most of all on the small target sets (clavicle, tuberculosis).",
        tasks=("syn_lxs", "syn_txc"),
        inits=("scratch", "synth_imagenet"),
        archs=("test_resnet", "mini_convnext", "mini_swin", "mini_vit"), compare="arch",
        baseline="test_resnet/synth_imagenet", candidate="mini_convnext/synth_imagenet",
        rival="mini_swin/synth_imagenet",
        paper_tasks=(("syn_lxs", "CXS"), ("syn_txc", "TXC"))),
    Section(
        key="data-size", number=5, notebook="05_data_size.ipynb",
        title="Transfer as labelled data shrink",
        question="How do ConvNets and vision transformers behave as the labelled training set shrinks?",
        claim="ConvNets are more annotation-efficient than vision transformers: ImageNet-pre-trained Swin trails "
              "ConvNeXt when labelled data are few, and the gap closes as they grow; from scratch, Swin trails "
              "far more at every size.",
        tasks=("syn_dxc",),
        inits=("scratch", "synth_imagenet"),
        archs=("mini_convnext", "mini_swin"), compare="arch",
        fractions=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0),
        baseline="mini_convnext/synth_imagenet", candidate="mini_swin/synth_imagenet"),
):
    _SECTIONS.register(_s.key, _s)


def list_sections() -> list[str]:
    """Names of the paper sections in the paper's order, e.g. ``['granularity', 'self-supervised', ...]``."""
    return sorted(_SECTIONS.names(), key=lambda k: _SECTIONS.get(k).number)


def get_section(name: str) -> Section:
    """The Section called ``name``; an unknown name raises and lists the valid ones."""
    return _SECTIONS.get(name)


@dataclass(frozen=True)
class Grid:
    """A validated section grid: every name checked, every run config built, nothing run yet."""

    section: Section
    profile: str
    tasks: tuple[str, ...]
    inits: tuple[str, ...]
    archs: tuple[str, ...]
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    configs: tuple[RunConfig, ...]

    @property
    def arch(self) -> str:
        """The architecture, or all of them joined with ', ' for sections that compare several."""
        return ", ".join(self.archs)

    @property
    def hashes(self) -> list[str]:
        return [c.config_hash() for c in self.configs]

    @property
    def groups(self) -> tuple[str, ...]:
        """Row keys of the section's table, in order (inits, or ``arch/init`` pairs)."""
        c = self.section.compare
        return tuple(dict.fromkeys(group_key(a, i, c) for a in self.archs for i in self.inits))


def _check_names(kind: str, names, valid) -> None:
    bad = [n for n in names if n not in valid]
    if bad:
        raise UnknownNameError(f"unknown {kind} {bad[0]!r}; valid {kind}s: {', '.join(valid)}")


def validate_section_params(section: str, *, profile: str = "demo", tasks=None, inits=None, arch=None,
                            archs=None, fractions=None, num_seeds: int | None = None, device: str = "auto",
                            speed: dict | None = None) -> Grid:
    """Check every name of a section run and build its run configs, before any work; unknown names raise with the
    list of valid ones.

    Example:
        >>> len(validate_section_params("domain-adaptation", profile="smoke").configs)
        24
    """
    if profile not in list_profiles():
        raise UnknownNameError(f"unknown profile {profile!r}; valid profiles: {', '.join(list_profiles())}")
    sec = get_section(section).for_profile(profile)
    tasks = tuple(tasks or sec.tasks)
    inits = tuple(inits or sec.inits)
    if arch and archs:
        raise ValueError("give arch (one architecture) or archs (several), not both")
    archs = tuple(archs or ((arch,) if arch else sec.all_archs))
    fractions = tuple(float(f) for f in (fractions or sec.fractions))
    for t in tasks:
        create_task(t, profile)  # raises with the valid names
    _check_names("init", inits, list_inits())
    _check_names("arch", archs, list_archs())
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise ValueError(f"fractions must be in (0, 1], got {bad}")
    if sec.compare == "init" and len(archs) != 1:
        raise ValueError(f"section {section!r} compares initialisations of one architecture; got archs {archs}")
    groups = {group_key(a, i, sec.compare) for a in archs for i in inits}
    for role, key in (("baseline", sec.baseline), ("candidate", sec.candidate), ("rival", sec.rival)):
        if not key:
            continue
        if key == "ssl":
            if not any(is_self_supervised(i) for i in inits):
                raise ValueError("inits must include at least one self-supervised init, the section's "
                                 f"candidates; got {', '.join(inits)}")
        elif key not in groups:
            what = "inits" if sec.compare == "init" else "archs and inits"
            raise ValueError(f"{what} must include {key!r}, the section's {role} (the verdict compares it); got "
                             f"{', '.join(sorted(groups))}")
    seg_only = [a for a in archs if not get_arch(a).segmentation]
    if num_seeds is None:
        num_seeds = get_profile(profile).num_runs or min(create_task(t, profile).protocol.num_runs for t in tasks)
    if num_seeds < 2:
        raise ValueError(f"num_seeds must be at least 2 (a t-test needs two runs per group), got {num_seeds}")
    resolve_device(device)
    seeds = tuple(range(num_seeds))
    bad = [k for k in (speed or {}) if k not in SPEED_FIELDS]
    if bad:
        raise ValueError(f"unknown speed options {bad}; valid: {', '.join(SPEED_FIELDS)}")
    configs = tuple(make_run_config(section, t, i, a, s, profile, fraction=f, device=device, **(speed or {}))
                    for t in tasks for a in archs for i in inits for f in fractions for s in seeds
                    if not (a in seg_only and create_task(t, profile).kind != CLASSIFICATION))
    return Grid(sec, profile, tasks, inits, archs, fractions, seeds, configs)


def run_grid(grid: Grid, results_dir: str | Path, *, cache_dir=None, progress: bool | None = None) -> dict:
    """Run every config of ``grid`` not yet in the store; returns counts and wall time.

    Pre-training checkpoints are made first (once per init), then runs go task by task.
    """
    store = ResultsStore(results_dir)
    t0 = time.perf_counter()
    todo = [c for c in grid.configs if not store.has(c.config_hash())]
    require_prepared([create_task(t, grid.profile) for t in dict.fromkeys(c.task for c in todo)], cache_dir)
    require_weights([(c.arch, c.init) for c in todo], cache_dir)
    for arch, init in dict.fromkeys((c.arch, c.init) for c in todo):
        get_init_checkpoint(init, arch, grid.profile, cache_dir=cache_dir, progress=progress)
    trained = 0
    for k, cfg in enumerate(grid.configs, 1):
        rows, cached = run_one(cfg, store, cache_dir=cache_dir, progress=progress)
        trained += not cached
        if not cached:
            main = rows[(rows.split == "test") & rows.metric.isin(["mean_auc", "dice"])].iloc[0]
            log.info("[%d/%d] %s %s %s %g seed %d: %s %.4f (%.1f s)", k, len(grid.configs), cfg.task, cfg.arch,
                     cfg.init, cfg.fraction, cfg.seed, main.metric, main.value, main.wall_seconds)
    return {"runs": len(grid.configs), "trained": trained, "cached": len(grid.configs) - trained,
            "seconds": round(time.perf_counter() - t0, 1)}


def load_grid_results(grid: Grid, results_dir: str | Path) -> pd.DataFrame:
    """The stored rows of exactly this grid's runs (selected by config hash), labelled with this section."""
    df = ResultsStore(results_dir).load(grid.hashes)
    missing = len(set(grid.hashes)) - df["config_hash"].nunique() if len(df) else len(grid.hashes)
    if missing:
        raise RuntimeError(f"{missing} of {len(grid.hashes)} runs of this grid are not in {results_dir}; "
                           "run the grid first")
    df = df.assign(section=grid.section.key)
    df["group"] = [group_key(a, i, grid.section.compare) for a, i in zip(df["arch"], df["init"])]
    return df
