"""The original code's protocol, fact by fact, and the check that holds the ``paper`` profile to it.

``data/original_protocol.csv`` has one row per fact of the authors' code (``ORIGINAL_REPOSITORY`` at
``ORIGINAL_COMMIT``): the scope it applies to, the field, its value in medbench's vocabulary, what the original code
does there, and the file and line. It was written by reading that code, line by line, not from our profiles: a
field of a paper-profile run that differs from it is either covered by a listed deviation
(``protocols.DEVIATIONS``, which names the scope and field it covers) or a bug (``check_config``).

Scopes: which of the original's scripts a run of ours corresponds to (``scope_of``):

- ``classification``: Version 1 (DART 2021) ``main_classification.py``, every classification task of the DART
  sections;
- ``classification_v2``: Version 2 (MedIA 2025) ``main_classification.py``, the MedIA sections' classification;
- ``segmentation_v1``: Version 1 ``main_segmentation.py`` (U-Net, ResNet-50), the DART sections' segmentation;
- ``drive``: DRIVE in Version 1 (its own dataset class, loss and size);
- ``segmentation_v2``: Version 2 ``main_segmentation.py`` (UPerNet on ConvNeXt and Swin), the MedIA sections'
  segmentation; ``segmentation_v2:ARCH`` rows hold a fact of one architecture;
- ``assumed``: a task the original code has no script for (RSNA PE): its protocol is ours, and said so.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

from .tasks import ASSUMED_TASKS, CLASSIFICATION, get_task_spec

ORIGINAL_REPOSITORY = "MR-HosseinzadehTaher/BenchmarkTransferLearning"
ORIGINAL_COMMIT = "5656fec7234bf671cbb4454f5d6a7500df29f233"
ORIGINAL_LICENCE = "ASU GitHub Project License (non-commercial use only; Version1/LICENSE)"
SCOPES = ("classification", "classification_v2", "segmentation_v1", "drive", "segmentation_v2", "assumed")


@dataclass(frozen=True)
class Fact:
    scope: str
    field: str
    value: str  # in medbench's vocabulary (the protocol field's own values)
    original: str  # what the original code does, in words
    file: str
    line: str  # "69" or "116-122"

    @property
    def url(self) -> str:
        a, _, b = self.line.partition("-")
        return (f"https://github.com/{ORIGINAL_REPOSITORY}/blob/{ORIGINAL_COMMIT}/{self.file}#L{a}"
                + (f"-L{b}" if b else ""))

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"


@lru_cache(maxsize=1)
def facts() -> tuple[Fact, ...]:
    """Every row of ``data/original_protocol.csv``."""
    with resources.files("medbench_core").joinpath("data/original_protocol.csv").open(encoding="utf-8") as f:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    return tuple(Fact(**r) for r in df.to_dict("records"))


def facts_table() -> pd.DataFrame:
    """The facts as a table, with a link to each line (the methods page)."""
    return pd.DataFrame([{"scope": f.scope, "field": f.field, "original": f.value, "what the code does": f.original,
                          "source": f.source, "url": f.url} for f in facts()])


def scope_of(cfg) -> str:
    """Which of the original code's scripts run ``cfg`` (a RunConfig) corresponds to (the module docstring lists
    the scopes).

    Example:
        >>> from medbench_core.experiments import make_run_config
        >>> scope_of(make_run_config("architectures", "siim_ptx", "imagenet", "convnext_base", 0, "paper"))
        'segmentation_v2'
    """
    from .sections.registry import get_section

    task = get_task_spec(cfg.task)
    if cfg.task in ASSUMED_TASKS:
        return "assumed"
    v2 = get_section(cfg.section).paper == "MedIA 2025"
    if task.kind == CLASSIFICATION:
        return "classification_v2" if v2 else "classification"
    if task.source == "drive":
        return "drive"
    return "segmentation_v2" if v2 else "segmentation_v1"


def facts_for(scope: str, arch: str) -> list[Fact]:
    """The facts of ``scope`` and those of ``scope`` for ``arch`` alone (``segmentation_v2:convnext_base``)."""
    return [f for f in facts() if f.scope in (scope, f"{scope}:{arch}")]


def ours(cfg, field: str):
    """What run ``cfg`` does for ``field``: a RunConfig field, or a fact of the model it builds (its segmentation
    head and stochastic depth, ``head_facts``)."""
    if field in cfg.to_dict():
        return cfg.to_dict()[field]
    return head_facts(cfg).get(field, "not set")


def head_facts(cfg) -> dict:
    """What the model of run ``cfg`` does for the original's facts about the segmentation head and stochastic depth
    (``original.ours`` reads them).

    Example:
        >>> from medbench_core.experiments import make_run_config
        >>> cfg = make_run_config("architectures", "siim_ptx", "imagenet", "convnext_base", 0, "paper")
        >>> head_facts(cfg)["head_bins"]  # segmentation-models-pytorch's head
        (1, 2, 3, 6)
        >>> head_facts(cfg.__class__(**{**cfg.to_dict(), "upernet": "original"}))  # as the architectures section sets
        {'head_bins': (1, 2, 4, 6), 'head_dropout': 0.1, 'head_channels': 128, 'drop_path_rate': 0.4}
    """
    from .models import get_arch
    from .upernet import SMP_UPERNET, head_spec, timm_default_drop_path

    arch = get_arch(cfg.arch)
    if get_task_spec(cfg.task).kind == CLASSIFICATION or arch.decoder != "upernet":
        return {"drop_path_rate": timm_default_drop_path(arch.timm_name)}
    if cfg.upernet == "original":
        h = head_spec(cfg.arch)
        return {"head_bins": h.bins, "head_dropout": h.dropout, "head_channels": h.width or "the first level's",
                "drop_path_rate": h.drop_path_rate}
    return {**SMP_UPERNET, "drop_path_rate": timm_default_drop_path(arch.timm_name)}


def same(fact_value: str, value) -> bool:
    """A fact's value (text) against ours: numbers as numbers, lists element by element, words exactly.

    Example:
        >>> same("0.0002", 2e-4), same("1,2,4,6", (1, 2, 4, 6)), same("adam", "adamw")
        (True, True, False)
    """
    if isinstance(value, (tuple, list)):
        parts = [p.strip() for p in fact_value.split(",")]
        return len(parts) == len(value) and all(same(p, v) for p, v in zip(parts, value))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return fact_value == str(value)
    try:
        return abs(float(fact_value) - float(value)) <= 1e-9 * max(1.0, abs(float(value)))
    except ValueError:
        return False


@dataclass(frozen=True)
class Difference:
    """A field of one of our runs that is not the original code's value."""

    scope: str
    field: str
    original: Fact
    ours: object
    deviation: str | None  # the listed deviation that covers it (its aspect), or None: a bug

    def __str__(self) -> str:
        why = f"listed: {self.deviation}" if self.deviation else "NOT LISTED"
        return (f"{self.scope}.{self.field}: the original has {self.original.value} ({self.original.source}), "
                f"we have {self.ours} [{why}]")


def check_config(cfg) -> list[Difference]:
    """Every fact of ``cfg``'s scope that ``cfg`` does not follow, each with the deviation that covers it (or None).
    A run on a scope without facts (``assumed``) has nothing to check: ``protocols.DEVIATIONS`` says so."""
    from .protocols import covering_deviation

    scope = scope_of(cfg)
    out = []
    for fact in facts_for(scope, cfg.arch):
        value = ours(cfg, fact.field)
        if not same(fact.value, value):
            dev = covering_deviation(scope, fact.field, cfg.arch)
            out.append(Difference(scope, fact.field, fact, value, dev.aspect if dev else None))
    return out
