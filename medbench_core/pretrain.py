"""Pre-training stage in miniature, on SYNTHETIC data, and the registry of initialisations it produces.

An init is a recipe of pre-training stages run in order, each starting from the previous stage's weights:

=======================  ==================  ========================================================
init                     stages              stands for (paper)
=======================  ==================  ========================================================
scratch                  (none)              random initialisation
synth_imagenet           natural             supervised ImageNet (coarse-grained labels)
synth_inat               natural_fine        supervised iNat2021 (fine-grained labels)
synth_chest              chest               in-domain ChestX-ray14 / CheXpert (trained from scratch)
synth_imagenet_chest     natural -> chest    domain-adapted ImageNet -> ChestX-ray14 (continual)
ssl_<method>             ssl:<method>        a self-supervised ImageNet model (see ``medbench_core.ssl``)
=======================  ==================  ========================================================

``natural`` and ``natural_fine``: the same natural-like colour images with 4 coarse or 16 fine classes
(cross-entropy); ``ssl:<method>``: the same images without labels. ``chest``: a large chest set from site A with five
findings (multi-label BCE); target tasks come from site B. Every stage exists for every architecture. Checkpoints
are cached by a hash of the stage config (including its parent's hash), so every section reuses them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import synthetic
from ._registry import Registry
from .data import BatchLoader, SplitData, get_cache_dir, load_pretrain_data
from .engine import make_loss, make_optimizer, progress_enabled, resolve_device, seed_everything
from .metrics import mean_auc
from .models import build_classifier, classifier_head_prefixes, load_backbone, load_mapped, read_checkpoint
from .profiles import get_profile
from .ssl import get_ssl_method, list_ssl_methods, pretrain_ssl
from .paths import cleaned_on_failure

log = logging.getLogger("medbench")


@dataclass(frozen=True)
class InitSpec:
    """A named initialisation: the pre-training recipe and what it stands for in the papers."""

    key: str
    label: str  # shown in tables
    paper_analog: str  # the papers' name for it
    stages: tuple[str, ...]  # pre-training sources, in order
    description: str
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # input normalisation the weights expect
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    family: str = "supervised"  # supervised | an SSL family
    granularity: str = ""  # coarse | fine, for supervised natural-image pre-training
    weights: str = ""  # real pre-trained weights: the tag of ``medbench_core.zoo`` records (``<arch>.<tag>``)


_INITS: Registry[InitSpec] = Registry("init")
for _i in (
    InitSpec("scratch", "Scratch", "Scratch", (), "random initialisation (timm defaults)"),
    InitSpec("synth_imagenet", "ImageNet-like", "ImageNet", ("natural",),
             "supervised on SYNTHETIC natural-like colour images, 4 coarse classes", granularity="coarse"),
    InitSpec("synth_inat", "iNat-like", "iNat2021", ("natural_fine",),
             "supervised on the same SYNTHETIC natural-like images with 16 fine classes (shape x size x texture)",
             granularity="fine"),
    InitSpec("synth_chest", "Chest (in-domain)", "ChestX-ray14", ("chest",),
             "supervised from scratch on a large SYNTHETIC chest set (site A, five findings)"),
    InitSpec("synth_imagenet_chest", "ImageNet-like → chest", "ImageNet→ChestX-ray14", ("natural", "chest"),
             "ImageNet-like weights, then supervised on the SYNTHETIC chest set (continual pre-training)"),
):
    _INITS.register(_i.key, _i)
for _k in list_ssl_methods():
    _sm = get_ssl_method(_k)
    _INITS.register(f"ssl_{_k}", InitSpec(
        f"ssl_{_k}", _sm.label, _sm.paper_analog, (f"ssl:{_k}",),
        f"self-supervised ({_sm.family}) on the same SYNTHETIC natural-like images, labels unused",
        family=_sm.family))


# the papers' real initialisations: one init per weights tag, resolved per architecture in medbench_core.zoo
def _register_zoo_inits() -> None:
    from .zoo import records

    seen = {}
    for rec in records._RECORDS:
        if rec.source != "user":  # your models are registered under their own names (register_user)
            seen.setdefault(rec.tag, rec)
    for tag, rec in seen.items():
        archs = ", ".join(r.arch for r in records.records_for_tag(tag))
        _INITS.register(tag, InitSpec(tag, rec.label.split(" (")[0] if rec.arch == "resnet50" else rec.paper_analog,
                                      rec.paper_analog, (), f"real pre-trained weights ({rec.family}); for {archs}",
                                      mean=rec.mean, std=rec.std, family=rec.family, weights=tag,
                                      granularity="fine" if tag.startswith("inat") else
                                      "coarse" if tag == "imagenet" else ""))


_register_zoo_inits()


def user_init(name: str, entry: dict) -> InitSpec:
    """The initialisation of your model ``name`` (``user_models``): its weights are the record ``<arch>.user_<name>``
    (ImageNet's input normalisation, as most released weights expect)."""
    from pathlib import Path as _Path

    from .zoo.records import IMAGENET_MEAN, IMAGENET_STD

    return InitSpec(name, entry.get("label") or name, "–", (),
                    f"your model: {entry['arch']} weights from {_Path(entry['file']).name} (sha256 "
                    f"{entry['sha256'][:12]})", mean=IMAGENET_MEAN, std=IMAGENET_STD, family="yours",
                    weights=f"user_{name}")


def register_user(name: str, entry: dict, *, replace: bool = False) -> None:
    if replace:
        unregister_user(name)
    _INITS.register(name, user_init(name, entry))


def unregister_user(name: str) -> None:
    _INITS.unregister(name)


def _register_user_inits() -> None:
    from .user_models import user_models

    for name, entry in user_models().items():
        register_user(name, entry)


_register_user_inits()


SSL_FAMILIES = ("instance discrimination", "clustering", "redundancy reduction", "variance-covariance regularisation")


def is_self_supervised(init: str) -> bool:
    """True for self-supervised inits, synthetic (``ssl_*``) or real (``moco_v2``, ``swav``, ...)."""
    spec = get_init(init)
    return bool(spec.stages and spec.stages[0].startswith("ssl:")) or (bool(spec.weights) and
                                                                       spec.family in SSL_FAMILIES)


def reported_name(init: str) -> str | None:
    """The papers' name of an init in their tables (``MoCo-v2``); None where the papers have no such model."""
    spec = get_init(init)
    if spec.stages and spec.stages[0].startswith("ssl:"):
        return get_ssl_method(spec.stages[0][4:]).reported_as
    return spec.paper_analog


def list_inits() -> list[str]:
    """Names of all initialisations, e.g. ``['scratch', 'synth_imagenet', 'synth_inat', 'synth_chest', ...]``."""
    return _INITS.names()


def get_init(key: str) -> InitSpec:
    """The InitSpec called ``key``; an unknown key raises and lists the valid ones."""
    return _INITS.get(key)


@dataclass(frozen=True)
class StageConfig:
    """One pre-training stage. Its dict (with the parent's hash) is the cache key."""

    source: str  # natural | natural_fine | chest | ssl:<method>
    arch: str
    image_size: int
    n_images: int
    epochs: int
    lr: float
    batch_size: int
    seed: int
    parent: str | None  # hash of the stage whose weights this one starts from
    data_version: int = synthetic.GENERATOR_VERSION

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


# Demo-sized stages; the profile's pretrain_scale multiplies images and epochs.
# natural, natural_fine and every ssl: stage share seed and size, so they see the same images.
_NATURAL = dict(n_images=4000, epochs=10, lr=2e-3, batch_size=64, seed=101)
_STAGE_BASE = {
    "natural": _NATURAL,
    "natural_fine": _NATURAL,
    "chest": dict(n_images=4000, epochs=10, lr=2e-3, batch_size=64, seed=202),
}
_SSL_BASE = dict(_NATURAL, epochs=4, lr=2e-3, batch_size=64)


def _stage_base(source: str) -> dict:
    if source.startswith("ssl:"):
        get_ssl_method(source[4:])  # raises with the valid names
        return _SSL_BASE
    return _STAGE_BASE[source]


def stage_configs(init: str, arch: str, profile: str) -> list[StageConfig]:
    """The chain of stage configs behind ``init`` for ``arch`` on ``profile`` (empty for ``scratch``)."""
    spec, prof = get_init(init), get_profile(profile)
    size = prof.image_size or 224
    chain, parent = [], None
    for source in spec.stages:
        b = _stage_base(source)
        cfg = StageConfig(source=source, arch=arch, image_size=size,
                          n_images=max(64, int(b["n_images"] * prof.pretrain_scale)),
                          epochs=max(1, int(round(b["epochs"] * min(1.0, prof.pretrain_scale * 4)))),
                          lr=b["lr"], batch_size=b["batch_size"], seed=b["seed"], parent=parent)
        chain.append(cfg)
        parent = cfg.config_hash()
    return chain


def zoo_key(init: str, arch: str) -> str:
    """The weights key of a real init for ``arch`` (``resnet50.moco_v2``); raises, naming the archs it exists for."""
    from ._registry import UnknownNameError
    from .zoo import list_records, records_for_tag

    spec = get_init(init)
    key = f"{arch}.{spec.weights}"
    if key not in list_records():
        archs = ", ".join(r.arch for r in records_for_tag(spec.weights))
        raise UnknownNameError(f"init {init!r} has pre-trained weights for {archs}, not for {arch!r}")
    return key


def require_weights(pairs, cache_dir=None) -> None:
    """Fetch (or find in the cache) the real weights of every (arch, init) in ``pairs`` before any run starts;
    raise one ``WeightsUnavailableError`` that lists every missing one with how to get it."""
    from .zoo import WeightsUnavailableError, fetch

    problems = []
    for arch, init in dict.fromkeys(pairs):
        if get_init(init).weights:
            try:
                fetch(zoo_key(init, arch), cache_dir=cache_dir)
            except WeightsUnavailableError as e:
                problems.append(f"  - {e}")
    if problems:
        raise WeightsUnavailableError("pre-trained weights are missing (nothing was run):\n" + "\n".join(problems))


def init_normalisation(init: str, arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean and std the init's weights expect (ImageNet's for most real weights, [0, 1] for SimCLR)."""
    spec = get_init(init)
    if spec.weights:
        from .zoo import get_record

        rec = get_record(zoo_key(init, arch))
        return rec.mean, rec.std
    return spec.mean, spec.std


def init_fingerprint(init: str, arch: str, profile: str) -> str | None:
    """Hash of the checkpoint an init resolves to (``None`` for scratch); part of every fine-tuning run's key.
    Real weights are named by their key and pin (``zoo:resnet50.moco_v2:unpinned``)."""
    if get_init(init).weights:
        from .zoo import get_record

        key = zoo_key(init, arch)
        rec = get_record(key)
        return f"zoo:{key}:{rec.sha256 or rec.sha256_prefix or 'unpinned'}"
    chain = stage_configs(init, arch, profile)
    return chain[-1].config_hash() if chain else None


def get_init_checkpoint(init: str, arch: str, profile: str, *, cache_dir=None, device: str = "auto",
                        progress: bool | None = None) -> Path | None:
    """Path of the checkpoint for ``init`` (``None`` for scratch), pre-training any missing stage first.

    Example:
        >>> get_init_checkpoint("scratch", "test_resnet", "smoke") is None
        True
    """
    if get_init(init).weights:  # real weights: fetched (or imported) and audited by medbench_core.zoo
        from .zoo import fetch

        return fetch(zoo_key(init, arch), cache_dir=cache_dir, progress=bool(progress))
    path = None
    for cfg in stage_configs(init, arch, profile):
        path = _run_stage(cfg, path, cache_dir=cache_dir, device=device, progress=progress)
    return path


def find_init_checkpoint(init: str, arch: str, profile: str, *, cache_dir=None) -> Path | None:
    """The cached checkpoint of ``init`` for ``arch``, or ``None`` when there is none (scratch, or not made or
    imported on this machine). Never trains and never downloads: for readers of the caches, such as the report."""
    if get_init(init).weights:
        from .zoo import converted_path

        path = converted_path(zoo_key(init, arch), cache_dir)
        return path if path.is_file() else None
    chain = stage_configs(init, arch, profile)
    if not chain:
        return None
    path = _stage_path(chain[-1], cache_dir)
    return path if path.is_file() else None


def _stage_path(cfg: StageConfig, cache_dir) -> Path:
    return get_cache_dir(cache_dir) / "pretrain" / f"{cfg.source.replace(':', '-')}-{cfg.arch}-{cfg.config_hash()}.pt"


def _run_stage(cfg: StageConfig, parent_path: Path | None, *, cache_dir, device, progress) -> Path:
    path = _stage_path(cfg, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path
    # one process makes a stage: chains that share it (ImageNet-like, then chest) may run in parallel workers
    from .claims import claimed

    with claimed(path.parent, cfg.config_hash(), done=path.exists,
                 what=f"pre-training {cfg.arch} on {cfg.source}") as mine:
        if not mine or path.exists():
            return path
        return _make_stage(cfg, parent_path, path, device=device, cache_dir=cache_dir, progress=progress)


def _make_stage(cfg: StageConfig, parent_path: Path | None, path: Path, *, cache_dir, device, progress) -> Path:
    t0 = time.perf_counter()
    dev = resolve_device(device)
    seed_everything(cfg.seed)
    if cfg.source.startswith("ssl:"):
        model, meta = _ssl_stage(cfg, parent_path, dev, cache_dir, progress)
    else:
        model, meta = _supervised_stage(cfg, parent_path, dev, cache_dir, progress)
    meta.update({"arch": cfg.arch, "source": cfg.source, "config": dataclasses.asdict(cfg),
                 "seconds": time.perf_counter() - t0, "torch": torch.__version__})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with cleaned_on_failure(tmp, path):
        torch.save({"arch": cfg.arch, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                    "meta_json": json.dumps(meta)}, tmp)
        os.replace(tmp, path)
    log.info("pre-trained %s on %s in %.0f s (%s)", cfg.arch, cfg.source, meta["seconds"], meta["score"])
    return path


def _supervised_stage(cfg: StageConfig, parent_path, dev, cache_dir, progress):
    data = load_pretrain_data(cfg.source, cfg.n_images, cfg.image_size, cfg.seed, cache_dir)
    n_val = max(16, len(data) // 10)
    train = SplitData(data.images[n_val:], data.targets[n_val:])
    val = SplitData(data.images[:n_val], data.targets[:n_val])
    multilabel = cfg.source == "chest"
    num_classes = data.targets.shape[1] if multilabel else int(data.targets.max()) + 1
    model = build_classifier(cfg.arch, num_classes, cfg.image_size)
    if parent_path is not None:
        load_backbone(model, read_checkpoint(parent_path, arch=cfg.arch),
                      head_prefixes=classifier_head_prefixes(cfg.arch), source=str(parent_path))
    model.to(dev)
    tdtype = torch.float32 if multilabel else torch.int64
    train_loader = BatchLoader(train, cfg.batch_size, train=True, seed=cfg.seed, target_dtype=tdtype)
    val_loader = BatchLoader(val, 256, train=False, target_dtype=tdtype)
    loss_fn = make_loss("bce" if multilabel else "ce")
    opt = make_optimizer("adam", model.parameters(), cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * len(train_loader))
    history = []
    for epoch in tqdm(range(cfg.epochs), desc=f"pre-train {cfg.arch} {cfg.source}", leave=False,
                      disable=not progress_enabled(progress)):
        model.train()
        for x, y in train_loader:
            loss = loss_fn(model(x.to(dev)), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        history.append({"epoch": epoch, "val": _pretrain_score(model, val_loader, multilabel, dev)})
    score_name = "val_mean_auc" if multilabel else "val_accuracy"
    return model, {"history": history, score_name: history[-1]["val"],
                   "score": f"{score_name} {history[-1]['val']:.3f}"}


def _ssl_stage(cfg: StageConfig, parent_path, dev, cache_dir, progress):
    """Self-supervised stage on the natural-like images (labels unused for training). A k-nearest-neighbour
    accuracy on the coarse labels of held-out images records what the features learned."""
    if parent_path is not None:
        raise ValueError("self-supervised stages start from random weights in this build")
    data = load_pretrain_data("natural", cfg.n_images, cfg.image_size, cfg.seed, cache_dir)
    n_val = max(16, len(data) // 10)
    backbone = build_classifier(cfg.arch, 0, cfg.image_size)
    bar = lambda n: tqdm(range(n), desc=f"pre-train {cfg.arch} {cfg.source}", leave=False,  # noqa: E731
                         disable=not progress_enabled(progress))
    history = pretrain_ssl(cfg.source[4:], backbone, data.images[n_val:], image_size=cfg.image_size,
                           epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed, device=dev,
                           progress_bar=bar)
    knn = knn_accuracy(backbone, SplitData(data.images[n_val:], data.targets[n_val:]),
                       SplitData(data.images[:n_val], data.targets[:n_val]), dev)
    return backbone, {"history": history, "val_knn_accuracy": knn, "score": f"val_knn_accuracy {knn:.3f}"}


@torch.no_grad()
def knn_accuracy(backbone, bank: SplitData, query: SplitData, device, k: int = 20) -> float:
    """Accuracy of a cosine k-nearest-neighbour vote (``k`` neighbours) of ``query`` labels among ``bank``
    features: a label-free check of what a backbone's features separate."""
    def feats(d):
        backbone.eval()
        out = [backbone(x.to(device)).float().cpu() for x, _ in BatchLoader(d, 256, train=False,
                                                                          target_dtype=torch.int64)]
        return torch.nn.functional.normalize(torch.cat(out), dim=1)

    fb, fq = feats(bank), feats(query)
    nn_idx = (fq @ fb.T).topk(min(k, len(fb)), dim=1).indices
    votes = torch.from_numpy(np.asarray(bank.targets))[nn_idx]
    pred = torch.mode(votes, dim=1).values
    return float((pred == torch.from_numpy(np.asarray(query.targets))).float().mean())


@torch.no_grad()
def _pretrain_score(model, loader, multilabel: bool, dev) -> float:
    model.eval()
    outs, ys = [], []
    for x, y in loader:
        outs.append(model(x.to(dev)).float().cpu())
        ys.append(y)
    out, y = torch.cat(outs), torch.cat(ys)
    if multilabel:
        return mean_auc(torch.sigmoid(out).numpy(), y.numpy())[0]
    return float((out.argmax(1) == y).float().mean())


def checkpoint_meta(path: str | Path) -> dict:
    """Provenance of a cached initialisation: for a pre-training stage its config, history and final validation
    score; for imported real weights their key, source sha256, converter and audited tensor count."""
    ck = load_mapped(path)  # metadata only: the tensors are not read
    if "meta_json" in ck:
        return json.loads(ck["meta_json"])
    return {k: v for k, v in ck.items() if k != "state_dict"}


def describe_inits(arch: str, profile: str) -> list[dict]:
    """One record per init for tables: label, analogue, recipe, and the stage settings on ``profile``."""
    rows = []
    for key in list_inits():
        spec = get_init(key)
        if spec.weights:  # real weights have no stages here; medbench_core.zoo describes them
            continue
        chain = stage_configs(key, arch, profile)
        rows.append({"init": key, "label": spec.label, "stands for": spec.paper_analog,
                     "recipe": " → ".join(spec.stages) or "none", "description": spec.description,
                     "images per stage": ", ".join(str(c.n_images) for c in chain) or "–",
                     "epochs per stage": ", ".join(str(c.epochs) for c in chain) or "–"})
    return rows


__all__ = ["InitSpec", "StageConfig", "list_inits", "get_init", "stage_configs", "get_init_checkpoint",
           "find_init_checkpoint",
           "init_fingerprint", "checkpoint_meta", "describe_inits", "zoo_key", "init_normalisation",
           "is_self_supervised", "reported_name", "require_weights"]
