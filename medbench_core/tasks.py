"""Task registry: a short name maps to a TaskSpec holding the task and its fine-tuning protocol as data.

The embedded tasks run on generated (synthetic) chest-radiograph-like images; each names the paper task it stands
in for (``analog_of``). Real datasets register here too, with their own protocol (paper section 5 of REPORTED.md).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ._registry import Registry
from .profiles import get_profile

CLASSIFICATION = "multilabel_classification"
SEGMENTATION = "binary_segmentation"
IGNORE = 2  # segmentation target value of pixels that neither loss nor metric counts (outside a field of view)


@dataclass(frozen=True)
class Protocol:
    """Fine-tuning protocol of a task (paper values for real tasks). Scaled by a profile in ``create_task``."""

    optimizer: str = "adam"  # adam | adamw
    lr: float = 2e-4
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 200
    patience: int = 10  # early stopping on validation loss, in epochs
    scheduler: str = "plateau"  # plateau (ReduceLROnPlateau on val loss) | cosine
    lr_factor: float = 0.5  # plateau: multiply lr by this
    lr_patience: int = 5  # plateau: epochs without improvement before reducing
    loss: str = "bce"  # bce | dice | bce_dice
    num_runs: int = 5  # independent runs (seeds) per (task, init)
    image_size: int = 224  # px


@dataclass(frozen=True)
class TaskSpec:
    """A target task. ``sizes`` are (train, val, test) image counts for generated data.

    Example:
        >>> create_task("syn_dxc", profile="smoke").protocol.max_epochs
        2
    """

    name: str
    title: str
    kind: str  # CLASSIFICATION | SEGMENTATION
    metric: str  # mean_auc | dice
    classes: tuple[str, ...]
    protocol: Protocol
    analog_of: str  # the paper's task code this stands for
    synthetic: bool
    description: str
    source: str = "generated"  # generator or dataset name
    sizes: tuple[int, int, int] = (0, 0, 0)
    # generator settings: site, prevalence, seed, and optionally target (a finding with its own
    # target_prevalence) and mask (the segmentation target: lungs | pneumothorax | vessels)
    generator: dict = field(default_factory=dict)
    profile: str = "paper"

    @property
    def metric_label(self) -> str:
        return {"mean_auc": "mean AUC (%)", "dice": "Dice (%)"}[self.metric]

    @property
    def display_name(self) -> str:
        return f"{self.title} (synthetic)" if self.synthetic else self.title


FINDINGS = ("nodule", "effusion", "cardiomegaly", "consolidation", "pneumothorax")

_TASKS: Registry[TaskSpec] = Registry("task")

_CLS = Protocol(optimizer="adam", lr=1e-3, batch_size=32, max_epochs=60, patience=8, scheduler="plateau",
                lr_factor=0.5, lr_patience=3, loss="bce", num_runs=5, image_size=48)
_SEG = dataclasses.replace(_CLS, loss="bce_dice")

for _t in (
    TaskSpec("syn_dxc", "Thorax findings, 5 labels", CLASSIFICATION, "mean_auc", FINDINGS, _CLS, "DXC5", True,
             "Multi-label classification of five findings on generated chest radiographs from a second 'site' "
             "(different contrast, noise and positioning than the pre-training chest set).",
             source="synthetic_chest", sizes=(500, 150, 400),
             generator=dict(site="B", prevalence=0.3, seed=11)),
    TaskSpec("syn_txc", "Tuberculosis-like cavity detection", CLASSIFICATION, "mean_auc", ("cavity",), _CLS, "TXC",
             True,
             "Binary detection of an upper-lobe cavity with satellite specks, a finding the pre-training chest set "
             "never labels; a few hundred images, like the Shenzhen set.",
             source="synthetic_chest", sizes=(200, 60, 200),
             generator=dict(site="B", prevalence=0.15, target="cavity", target_prevalence=0.5, seed=12)),
    TaskSpec("syn_pxs", "Pneumothorax segmentation", SEGMENTATION, "dice", ("pneumothorax",), _SEG, "PXS", True,
             "Segmentation of a pneumothorax rim (a small structure without lung markings); every image has one.",
             source="synthetic_chest", sizes=(300, 80, 200),
             generator=dict(site="B", prevalence=0.2, target="pneumothorax", target_prevalence=1.0, seed=13,
                            mask="pneumothorax")),
    TaskSpec("syn_lxs", "Lung segmentation", SEGMENTATION, "dice", ("lungs",), _SEG, "LXS", True,
             "Segmentation of both lungs (heart shadow excluded); about as many images as the Montgomery set.",
             source="synthetic_chest", sizes=(100, 40, 100),
             generator=dict(site="B", prevalence=0.2, seed=14, mask="lungs")),
    TaskSpec("syn_vxs", "Retinal vessel segmentation", SEGMENTATION, "dice", ("vessels",),
             dataclasses.replace(_SEG, loss="bce", batch_size=16), "VFS", True,
             "Segmentation of a branching vessel tree on generated colour fundus images; Dice inside the field of "
             "view only, BCE loss and batch size 16 as in the paper for DRIVE; a small set of whole images.",
             source="synthetic_fundus", sizes=(120, 30, 60), generator=dict(seed=15, mask="vessels")),
):
    _TASKS.register(_t.name, _t)


def list_tasks() -> list[str]:
    """Names of all registered tasks, e.g. ``['syn_dxc', 'syn_txc', 'syn_pxs', 'syn_lxs']``."""
    return _TASKS.names()


def get_task_spec(name: str) -> TaskSpec:
    """The unscaled TaskSpec; an unknown name raises and lists the valid ones."""
    return _TASKS.get(name)


def create_task(name: str, profile: str = "demo") -> TaskSpec:
    """The TaskSpec for ``name`` with its protocol and sizes scaled by ``profile``.

    Example:
        >>> create_task("syn_txc", profile="demo").sizes
        (200, 60, 200)
    """
    spec = _TASKS.get(name)
    prof = get_profile(profile)
    p = spec.protocol
    protocol = dataclasses.replace(
        p,
        image_size=prof.image_size or p.image_size,
        max_epochs=min(p.max_epochs, prof.max_epochs) if prof.max_epochs else p.max_epochs,
        patience=min(p.patience, prof.patience) if prof.patience else p.patience,
        lr_patience=min(p.lr_patience, max(1, (prof.patience or p.patience) // 2)),
        num_runs=prof.num_runs or p.num_runs,
    )
    sizes = spec.sizes
    if spec.synthetic:
        # at least 8 images per split so every split can hold both labels
        sizes = tuple(max(8, int(math.ceil(n * prof.data_scale))) for n in spec.sizes)
    return dataclasses.replace(spec, protocol=protocol, sizes=sizes, profile=profile)
