"""A section's grid: every name of a section run checked and every run config built, before any work; and the
stored rows of exactly that grid's runs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._registry import UnknownNameError
from ..errors import BadValueError
from ..engine import resolve_device
from ..experiments import SPEED_FIELDS, RunConfig, make_run_config
from ..models import get_arch, list_archs
from ..pretrain import is_self_supervised, list_inits
from ..profiles import get_profile, list_profiles
from ..request import SPEED_OPTIONS, GridRequest
from ..results import ResultsStore
from ..stats import unique_runs
from ..tasks import CLASSIFICATION, create_task
from .base import Section
from .registry import get_section


def group_key(arch: str, init: str, compare: str) -> str:
    """The row key of a run in a section's table: the init, or ``"arch/init"`` when architectures are compared."""
    return init if compare == "init" else f"{arch}/{init}"


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
    request: GridRequest | None = None  # what it was made from

    @classmethod
    def of(cls, request: GridRequest) -> "Grid":
        """Check every name and value of ``request`` (unknown names raise with the list of valid ones) and build
        every run's configuration, before any work: the one validation of a request."""
        return _resolve(request)

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


MAX_SEEDS = 1000  # runs per cell; the papers use ten
def _check_names(kind: str, names, valid) -> None:
    bad = [n for n in names if n not in valid]
    if bad:
        raise UnknownNameError(f"unknown {kind} {bad[0]!r}; valid {kind}s: {', '.join(valid)}")


def given_names(kind: str, values, default, valid=None) -> tuple:
    """The names of one list parameter (``tasks``, ``inits``, ``archs``, ``fractions``) as a set in the given order:
    ``None`` means the section's ``default``; an empty list and a name given twice are refused (an empty list
    never means "everything", and a run listed twice would be counted twice), naming the valid names.

    Example:
        >>> given_names("tasks", None, ("a", "b"))
        ('a', 'b')
        >>> given_names("tasks", ["a", "a"], ("a", "b"))
        Traceback (most recent call last):
        ...
        medbench_core.errors.BadValueError: tasks lists 'a' twice; give each name once
    """
    if values is None:
        return tuple(default)
    if isinstance(values, (str, int, float)):
        values = (values,)
    values = tuple(values)
    if not values:
        valid = default if valid is None else valid
        raise BadValueError(f"{kind} is empty; give at least one (valid {kind}: {', '.join(map(str, valid))}), or "
                            "leave it out for the section's")
    seen = set()
    for v in values:
        key = float(v) if kind == "fractions" else v
        if key in seen:
            raise BadValueError(f"{kind} lists {v!r} twice; give each name once" if kind != "fractions" else
                                f"fractions lists {float(v):g} twice; give each share once")
        seen.add(key)
    return values


def validate_section_params(section: str, **request) -> Grid:
    """``Grid.of(GridRequest(section, **request))``: check every name of a section run and build its run configs,
    before any work; unknown names raise with the list of valid ones. ``protocol`` overrides fields of every task's
    protocol (e.g. ``{"max_epochs": 1}``); the overrides are part of each run's hash.

    Example:
        >>> len(validate_section_params("domain-adaptation", profile="smoke").configs)
        24
    """
    return Grid.of(GridRequest(section, **request))


def _resolve(request: GridRequest) -> Grid:
    """The validation behind ``Grid.of``: the profile, the names, the section's roles, the seeds and the
    settings, then every run's configuration."""
    profile = _profile(request.profile)
    sec = get_section(request.section).for_profile(profile)
    tasks, inits, archs, fractions = _names(request, sec, profile)
    _check_roles(sec, request.section, archs, inits)
    seeds = tuple(range(_num_seeds(request.num_seeds, profile, tasks)))
    resolve_device(request.device)
    speed, overrides = _settings(request.speed, request.protocol)
    # a grid of listed cells (the papers' experiments) stays so unless models or fractions are chosen
    cells = set(sec.cells) if sec.cells and not (request.inits is not None or request.arch or
                                                  request.archs is not None or request.fractions is not None) else None
    seg_only = [a for a in archs if not get_arch(a).segmentation]
    configs = tuple(make_run_config(request.section, t, i, a, s, profile, fraction=f, device=request.device,
                                    **speed, **(sec.protocol_for(t, profile) | overrides))
                    for t in tasks for a in archs for i in inits for f in fractions for s in seeds
                    if not (a in seg_only and create_task(t, profile).kind != CLASSIFICATION)
                    and (cells is None or (t, a, i, f) in cells))
    if not configs:
        raise ValueError(f"no run of section {request.section!r} on profile {profile!r} has these tasks: "
                         f"{', '.join(tasks)}; its tasks are {', '.join(sec.tasks)}")
    hashes = [c.config_hash() for c in configs]
    if len(set(hashes)) != len(hashes):  # the names are sets, so this is a bug, not a user's mistake
        raise AssertionError(f"the grid of {request.section!r} holds a run twice")
    return Grid(sec, profile, tasks, inits, archs, fractions, seeds, configs, request)


def _profile(name: str) -> str:
    from ..runtime import AUTO, resolve_profile

    profile = resolve_profile(name)
    if profile not in list_profiles():
        from ..profiles import profile_for

        auto = f"{profile_for(auto_on='gpu')} on a GPU, else {profile_for(auto_on='cpu')}"
        raise UnknownNameError(f"unknown profile {profile!r}; valid profiles: {AUTO} ({auto}), "
                               f"{', '.join(list_profiles())}")
    return profile


def _names(request: GridRequest, sec: Section, profile: str) -> tuple[tuple, tuple, tuple, tuple]:
    """The request's tasks, inits, architectures and fractions (the section's where not given), each checked."""
    arch, fractions = request.arch, request.fractions
    tasks = given_names("tasks", request.tasks, sec.tasks)
    inits = given_names("inits", request.inits, sec.inits, list_inits())
    if arch is not None and request.archs is not None:
        raise BadValueError("give arch (one architecture) or archs (several), not both")
    if arch is not None and not (isinstance(arch, str) and arch):
        raise BadValueError(f"arch must be one architecture name; got {arch!r} (valid archs: {', '.join(list_archs())})")
    archs = given_names("archs", request.archs, (arch,) if arch else sec.all_archs, list_archs())
    try:
        fractions = tuple(float(f) for f in given_names("fractions", fractions, sec.fractions, sec.fractions))
    except (TypeError, ValueError) as e:
        raise BadValueError(str(e) if isinstance(e, BadValueError) else
                            f"fractions must be numbers in (0, 1], got {fractions!r}") from None
    for t in tasks:
        create_task(t, profile)  # raises with the valid names
    _check_names("init", inits, list_inits())
    _check_names("arch", archs, list_archs())
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise ValueError(f"fractions must be in (0, 1], got {bad}")
    return tasks, inits, archs, fractions


def _check_roles(sec: Section, section: str, archs: tuple, inits: tuple) -> None:
    """The grid holds what the section's verdict compares: its baseline, candidate and rival."""
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


def _num_seeds(num_seeds, profile: str, tasks: tuple) -> int:
    if num_seeds is None:
        num_seeds = get_profile(profile).num_runs or min(create_task(t, profile).protocol.num_runs for t in tasks)
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or not 2 <= num_seeds <= MAX_SEEDS:
        raise BadValueError(f"num_seeds (--seeds) must be a whole number from 2 (a t-test needs two runs per group) "
                            f"to {MAX_SEEDS}, got {num_seeds!r}")
    return num_seeds


def _settings(speed: dict | None, protocol: dict | None) -> tuple[dict, dict]:
    """The speed options and the protocol overrides, each in its own place."""
    bad = [k for k in (speed or {}) if k not in SPEED_FIELDS]
    if bad:
        raise ValueError(f"unknown speed options {bad}; valid: {', '.join(SPEED_FIELDS)}")
    overrides = dict(protocol or {})
    clash = [k for k in overrides if k in SPEED_FIELDS]
    if clash:
        options = ", ".join(f"{k} with `medbench sweep {SPEED_OPTIONS[k]}`" for k in clash)
        raise BadValueError(f"{', '.join(clash)} {'is a speed option' if len(clash) == 1 else 'are speed options'} "
                            f"(not part of a run's hash), not a protocol field: give {options}, or speed="
                            f"{{{', '.join(repr(k) + ': ...' for k in clash)}}} in Python")
    return dict(speed or {}), overrides


def load_grid_results(grid: Grid, results_dir: str | Path) -> pd.DataFrame:
    """The stored rows of exactly this grid's runs (selected by config hash), labelled with this section."""
    hashes = list(dict.fromkeys(grid.hashes))  # each run once, whatever the grid lists
    df = unique_runs(ResultsStore(results_dir).load(hashes))
    missing = len(hashes) - df["config_hash"].nunique() if len(df) else len(hashes)
    if missing:
        raise RuntimeError(f"{missing} of {len(hashes)} runs of this grid are not in {results_dir}; "
                           "run the grid first")
    df = df.assign(section=grid.section.key)
    df["group"] = [group_key(a, i, grid.section.compare) for a, i in zip(df["arch"], df["init"])]
    return df
