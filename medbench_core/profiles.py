"""Profiles scale a task's fine-tuning protocol to a machine: smoke (tests), demo (laptop CPU), colab, paper.

Every behaviour that differs by profile reads a field of ``Profile`` named for what it means; no code outside this
registry compares a profile's name. A lab's own profile is one ``register_profile(Profile(...))``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ._registry import Registry

# What the sections run on (``Profile.runs_on``): the section as it is (generated tasks, miniature models, their
# miniature pre-training), MedMNIST+ with the tiny models and released weights, or the papers' own experiments.
GENERATED, MEDMNIST, PAPERS = "generated", "medmnist", "papers"


@dataclass(frozen=True)
class Job:
    """What one run asks a scheduler (Slurm) for on a profile."""

    minutes: int  # time limit of a classification run
    segmentation_minutes: int  # of a segmentation run (more epochs, a longer patience)
    cpus: int
    gpus: int
    mem_gb: int
    mem_gb_512: int  # at 512 px and more (DRIVE)


@dataclass(frozen=True)
class Profile:
    """How far to scale the paper's protocol, and what the sections run on. ``None`` keeps the task's own value.

    Example:
        >>> get_profile("demo").image_size
        48
    """

    name: str
    description: str
    image_size: int | None = None  # px, square
    data_scale: float = 1.0  # multiplies the synthetic split sizes
    max_epochs: int | None = None
    patience: int | None = None
    num_runs: int | None = None  # seeds per (task, init)
    pretrain_scale: float = 1.0  # multiplies pre-training images and epochs
    synthetic_ok: bool = True  # the generated tasks may run on it
    light: bool = True  # light augmentation, no resize-and-crop, plain early stopping (False: the original code's)
    runs_on: str = GENERATED  # GENERATED | MEDMNIST | PAPERS: what a section's grid becomes (``Section.for_profile``)
    manual_downloads: bool = True  # False: extra candidates whose weights need a manual download are left out
    large_set_protocol: tuple[tuple[str, object], ...] = ()  # protocol fields for the large sets (``TaskSpec.large``)
    reference: str = ""  # a frozen reference run's score ranges (a file in medbench_core/data) `medbench check` uses
    auto_on: str = ""  # "gpu" or "cpu": the profile ``auto`` picks on such a machine
    job: Job = field(default_factory=lambda: Job(120, 120, 2, 0, 4, 4))

    @property
    def real_data(self) -> bool:
        """Its sections run on real datasets and released weights (not the generated stand-ins)."""
        return self.runs_on != GENERATED


_PROFILES: Registry[Profile] = Registry("profile")


def register_profile(profile: Profile, *, replace: bool = False) -> Profile:
    """Add ``profile`` to the registry (a lab's own: ``Profile("lab", "...", runs_on=PAPERS, ...)``); a name
    already taken raises unless ``replace``. Returns it."""
    if profile.runs_on not in (GENERATED, MEDMNIST, PAPERS):
        raise ValueError(f"Profile.runs_on must be one of {GENERATED}, {MEDMNIST}, {PAPERS}; got {profile.runs_on!r}")
    if profile.auto_on not in ("", "cpu", "gpu"):
        raise ValueError(f"Profile.auto_on must be '', 'cpu' or 'gpu'; got {profile.auto_on!r}")
    if replace:
        _PROFILES.unregister(profile.name)
    return _PROFILES.register(profile.name, profile)


def unregister_profile(name: str) -> None:
    """Remove a profile registered with ``register_profile`` (a test's, a lab's experiment)."""
    _PROFILES.unregister(name)


for _p in (
    Profile("smoke", "seconds-long runs for the test suite; numbers are meaningless", image_size=32, data_scale=0.15,
            max_epochs=2, patience=1, num_runs=2, pretrain_scale=0.06, job=Job(30, 30, 2, 0, 4, 4)),
    Profile("demo", "the embedded default: generated data, a 2-core laptop CPU, six seeds per cell so that each "
            "verdict is checked on two disjoint halves of them", image_size=48, max_epochs=20, patience=5,
            num_runs=6, reference="demo_reference.csv", auto_on="cpu", job=Job(120, 120, 2, 0, 4, 4)),
    Profile("colab", "MedMNIST+ and real pre-trained weights on a free GPU", image_size=64, max_epochs=100,
            patience=10, num_runs=3, runs_on=MEDMNIST, manual_downloads=False, auto_on="gpu",
            large_set_protocol=(("max_epochs", 8), ("patience", 3), ("lr_patience", 1)),
            job=Job(120, 120, 4, 1, 12, 48)),
    Profile("paper", "the papers' full protocol on the real datasets (lab GPU or Slurm)", light=False,
            runs_on=PAPERS, job=Job(720, 1440, 8, 1, 32, 48)),
):
    register_profile(_p)

DEFAULT = "demo"  # what `medbench book`, `run` and the notebooks use when no profile is given: offline, a CPU
ORIGINAL = "paper"  # the original protocol at full size: an unscaled task's, and what `data prepare` prepares for


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``; an unknown name raises and lists the valid ones."""
    return _PROFILES.get(name)


def list_profiles() -> list[str]:
    """Names of all profiles, e.g. ``['smoke', 'demo', 'colab', 'paper']``."""
    return _PROFILES.names()


def profile_for(*, runs_on: str | None = None, auto_on: str | None = None) -> str:
    """The first registered profile with these facts (``runs_on=PAPERS``: the one whose grids are the papers'
    own experiments); raises when none has them."""
    for name in list_profiles():
        p = get_profile(name)
        if (runs_on is None or p.runs_on == runs_on) and (auto_on is None or p.auto_on == auto_on):
            return name
    raise LookupError(f"no registered profile runs on {runs_on!r} / is picked on {auto_on!r}")
