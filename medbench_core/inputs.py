"""What runs need before they start, resolved once for ``run``, ``sweep`` and ``book``: prepared data, present
weights and made pre-training stages; and, for one run, its inputs already resolved (data, checkpoint,
normalisation), so that training never reaches back into pre-training, the zoo or dataset preparation."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .data import SplitData, load_task_data, require_prepared
from .engine import resolve_device
from .pretrain import (find_init_checkpoint, get_init, get_init_checkpoint, init_normalisation, require_weights,
                       stage_configs)
from .tasks import TaskSpec, create_task
from .workers import resolve_workers, run_parallel


def _downloadable(task: TaskSpec) -> bool:
    """A real task whose dataset medbench may download itself (MedMNIST+, the colab profile's)."""
    from .datasets import catalog

    return not task.synthetic and task.source in catalog.MEDMNIST


def check_inputs(configs, cache_dir=None, *, fetchable: bool = False) -> None:
    """Raise before any work, with one list each, when the data of a real task is not prepared or the weights of
    a real initialisation are not available (fetched or imported) for ``configs`` (RunConfigs). ``fetchable``:
    datasets medbench downloads itself (MedMNIST+) count as available; the run fetches them."""
    configs = list(configs)
    tasks = {}
    for c in configs:
        tasks.setdefault((c.task, c.profile, c.image_size, c.eval_crop), c)
    require_prepared([t for t in map(task_of, tasks.values()) if not (fetchable and _downloadable(t))], cache_dir)
    require_weights([(c.arch, c.init) for c in configs], cache_dir)


def fetch_downloadable(configs, cache_dir=None) -> None:
    """Download and prepare the MedMNIST+ data of ``configs`` that is not prepared yet (a notebook opened on a
    fresh Colab runtime needs no command first); offline, the download fails at once, naming the file."""
    from .datasets import catalog, prepare
    from .datasets.prepare import prepared_dir

    for c in {(c.task, c.profile, c.image_size, c.eval_crop): c for c in configs}.values():
        t = task_of(c)
        size = t.protocol.stored_size
        if _downloadable(t) and not (prepared_dir(t, size, cache_dir) / "meta.json").is_file():
            prepare(c.task, catalog.fetch_medmnist(t.source, size, cache_dir), profile=c.profile, size=size,
                    cache_dir=cache_dir)


def prepare_inputs(configs, cache_dir=None, *, progress: bool | None = None) -> None:
    """Fetch what medbench may download (MedMNIST+ data; released weights), ``check_inputs``, then make every
    missing pre-training stage (once per architecture and initialisation)."""
    configs = list(configs)
    fetch_downloadable(configs, cache_dir)
    check_inputs(configs, cache_dir)
    chains = list(dict.fromkeys((c.arch, c.init, c.profile) for c in configs))
    made_here = [c for c in chains if get_init(c[1]).weights or not stage_configs(c[1], c[0], c[2])
                 or find_init_checkpoint(c[1], c[0], c[2], cache_dir=cache_dir) is not None]
    for arch, init, profile in made_here:  # released weights (a download is one at a time), scratch, made ones
        get_init_checkpoint(init, arch, profile, cache_dir=cache_dir, progress=progress)
    todo = [c for c in chains if c not in made_here]
    device = "auto"  # as pre-training always ran: on the GPU when there is one, whatever device the runs name
    workers, threads = resolve_workers(len(todo), str(resolve_device(device)))
    # chains that share a stage (ImageNet-like, then chest) wait on its claim: each stage is made once
    run_parallel(_make_chain, [(arch, init, profile, cache_dir, device, progress if workers == 1 else False)
                               for arch, init, profile in todo], workers=workers, threads=threads)


def _make_chain(job) -> str | None:
    arch, init, profile, cache_dir, device, progress = job
    path = get_init_checkpoint(init, arch, profile, cache_dir=cache_dir, device=device, progress=progress)
    return str(path) if path else None


@dataclass
class RunInputs:
    """Everything one run reads, resolved: its task (protocol at the run's image size), data splits, the
    checkpoint of its initialisation (``None`` for scratch) and the input normalisation its weights expect."""

    task: TaskSpec
    data: dict[str, SplitData]
    checkpoint: Path | None
    mean: tuple[float, ...]
    std: tuple[float, ...]


def resolve_inputs(cfg, cache_dir=None) -> RunInputs:
    """The inputs of run ``cfg`` (a RunConfig), from the caches that ``prepare_inputs`` filled. Raises, naming the
    command, if the initialisation's checkpoint is not there."""
    task = task_of(cfg)
    ckpt = find_init_checkpoint(cfg.init, cfg.arch, cfg.profile, cache_dir=cache_dir)
    if ckpt is None and get_init(cfg.init).weights:
        from .pretrain import zoo_key
        from .zoo import WeightsUnavailableError

        key = zoo_key(cfg.init, cfg.arch)
        raise WeightsUnavailableError(f"the weights {key} are not in the cache (nothing was run): "
                                      f"`medbench weights fetch {key}` or `medbench weights import {key} FILE`")
    if ckpt is None and get_init(cfg.init).stages:
        raise FileNotFoundError(f"the pre-training checkpoint of {cfg.init} for {cfg.arch} is not in the cache; "
                                "prepare the grid first (medbench run and sweep do; in code: "
                                "medbench_core.inputs.prepare_inputs)")
    mean, std = input_normalisation(cfg)
    return RunInputs(task, load_task_data(task, cache_dir), ckpt, mean, std)


def input_normalisation(cfg) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std run ``cfg``'s inputs are normalised with: those its initialisation's weights expect
    (``normalization="init"``, the light profiles), ImageNet's whatever the initialisation (the original code's
    classification and DRIVE, and Version 2 segmentation), or none: inputs in [0, 1] (Version 1 segmentation).

    Example:
        >>> from types import SimpleNamespace as C
        >>> input_normalisation(C(normalization="none", init="scratch", arch="test_resnet"))
        ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    """
    how = getattr(cfg, "normalization", "init")
    if how == "imagenet":
        from .zoo.records import IMAGENET_MEAN, IMAGENET_STD

        return IMAGENET_MEAN, IMAGENET_STD
    if how == "none":
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return init_normalisation(cfg.init, cfg.arch)


def task_of(cfg) -> TaskSpec:
    """The task of run ``cfg`` as it trains: the profile's protocol at the run's image size and with its UPerNet
    head (and, for generated data, the run's split sizes)."""
    task = create_task(cfg.task, cfg.profile)
    p = task.protocol
    upernet = getattr(cfg, "upernet", p.upernet)
    if (cfg.image_size, cfg.eval_crop, upernet) != (p.image_size, p.eval_crop, p.upernet) or (
            task.synthetic and (cfg.n_train, cfg.n_val, cfg.n_test) != task.sizes):
        task = dataclasses.replace(task, protocol=dataclasses.replace(p, image_size=cfg.image_size,
                                                                      eval_crop=cfg.eval_crop, upernet=upernet),
                                   sizes=(cfg.n_train, cfg.n_val, cfg.n_test) if task.synthetic else task.sizes)
    return task
