"""Profiles scale a task's fine-tuning protocol to a machine: smoke (tests), demo (laptop CPU), colab, paper."""
from __future__ import annotations

from dataclasses import dataclass

from ._registry import Registry


@dataclass(frozen=True)
class Profile:
    """How far to scale the paper's protocol. ``None`` keeps the task's own value.

    Example:
        >>> get_profile("demo").image_size
        48
    """

    name: str
    description: str
    image_size: int | None  # px, square
    data_scale: float  # multiplies the synthetic split sizes
    max_epochs: int | None
    patience: int | None
    num_runs: int | None  # seeds per (task, init)
    pretrain_scale: float  # multiplies pre-training images and epochs
    synthetic_ok: bool = True  # profiles that run on the embedded generated data
    light: bool = True  # light augmentation, no resize-and-crop, plain early stopping (False: the original code's)


_PROFILES: Registry[Profile] = Registry("profile")
for _p in (
    Profile("smoke", "seconds-long runs for the test suite; numbers are meaningless", 32, 0.15, 2, 1, 2, 0.06),
    Profile("demo", "the embedded default: generated data, a 2-core laptop CPU, six seeds per cell so that each "
            "verdict is checked on two disjoint halves of them", 48, 1.0, 20, 5, 6, 1.0),
    Profile("colab", "MedMNIST+ and real pre-trained weights on a free GPU", 64, 1.0, 100, 10, 3, 1.0,
            synthetic_ok=True),
    Profile("paper", "the papers' full protocol on the real datasets (lab GPU or Slurm)", None, 1.0, None, None, None,
            1.0, synthetic_ok=True, light=False),
):
    _PROFILES.register(_p.name, _p)


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``; an unknown name raises and lists the valid ones."""
    return _PROFILES.get(name)


def list_profiles() -> list[str]:
    """Names of all profiles, e.g. ``['smoke', 'demo', 'colab', 'paper']``."""
    return _PROFILES.names()
