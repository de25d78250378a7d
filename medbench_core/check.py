"""`medbench check`: is a student's results file complete and plausible for a section?

The file is the long table `medbench results export` writes. The check reads it with the same validation as an
import (a malformed line is named), compares its runs with the section's grid on the profile (task, architecture,
initialisation, fraction, seed), and, on a profile with a frozen reference run (``Profile.reference``: the demo's
``data/demo_reference.csv``), compares each test score with the range that run gave for the same run group (its
seeds' minimum to maximum, widened by twice their standard deviation or 2 points). Every finding is a sentence a student can act on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from .profiles import DEFAULT, get_profile

KEY = ["task", "arch", "init", "fraction", "seed"]


@dataclass
class CheckResult:
    ok: bool = True
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = "All good." if self.ok and not self.warnings else ("Complete, with things to look at." if self.ok
                                                                  else "Not yet.")
        return "\n".join([head] + self.lines + [f"  ✗ {p}" for p in self.problems]
                         + [f"  ! {w}" for w in self.warnings])


def reference_ranges(name: str) -> pd.DataFrame:
    """A frozen reference run's score ranges (``Profile.reference``: a file in ``medbench_core/data``)."""
    return pd.read_csv(resources.files("medbench_core") / "data" / name, comment="#")


def _run_name(r) -> str:
    frac = f", {float(r['fraction']):.0%} of the training data" if float(r["fraction"]) < 1 else ""
    return f"{r['task']} · {r['arch']} · {r['init']}{frac} · seed {int(r['seed'])}"


def check_results(path: str | Path, section: str, profile: str = DEFAULT) -> CheckResult:
    """Check the results file ``path`` against ``section`` on ``profile``; never raises for a bad file."""
    from .errors import BadFileError, BadPathError
    from .sections import known_names, validate_section_params
    from .results_file import read_results_file

    res = CheckResult()
    try:
        runs = read_results_file(path, known=known_names())
    except (BadFileError, BadPathError, FileNotFoundError) as e:  # a folder, binary or latin-1 file is a finding too
        res.ok = False
        res.problems.append(f"the file cannot be read as medbench results: {e}. Write it with "
                            "`medbench results export FILE` rather than by hand.")
        return res
    grid = validate_section_params(section, profile=profile)
    rows = pd.concat(runs.values(), ignore_index=True)
    main = rows[(rows["split"] == "test") & rows["metric"].isin(["mean_auc", "dice"])].copy()
    main["fraction"] = main["fraction"].astype(float)
    main["seed"] = main["seed"].astype(int)
    expected = pd.DataFrame([{k: getattr(c, k) for k in KEY} | {"config_hash": c.config_hash()}
                             for c in grid.configs])
    got = main.drop_duplicates(KEY).set_index(KEY)
    want = expected.set_index(KEY)
    present = want.index.isin(got.index)
    res.lines.append(f"  ✓ {int(present.sum())} of {len(want)} runs of section {section!r} ({profile} profile) "
                     "are in the file")
    for key in want.index[~present]:
        res.problems.append(f"missing run {_run_name(dict(zip(KEY, key)))}: run it with `medbench run {section} "
                            f"--profile {profile}` (finished runs are kept, only missing ones are trained)")
    other = got.index[got.index.isin(want.index)]
    changed = [k for k in other if got.loc[[k], "config_hash"].iloc[0] != want.loc[[k], "config_hash"].iloc[0]]
    for key in changed:
        res.warnings.append(f"{_run_name(dict(zip(KEY, key)))} was run with other settings than the section's "
                            "(a changed parameter or medbench version): fine for an exercise, but not comparable "
                            "with the reference")
    extra = [k for k in got.index if k not in want.index]
    if extra:
        res.lines.append(f"  ({len(extra)} other run(s) in the file belong to other sections or settings; not "
                         "checked here)")
    reference = get_profile(profile).reference
    if reference:
        ref = reference_ranges(reference)
        ref["fraction"] = ref["fraction"].astype(float)
        ref = ref.set_index(["task", "arch", "init", "fraction"])
        outside = checked = 0
        for key, r in got.iterrows():
            if key not in want.index or key[:4] not in ref.index:
                continue
            checked += 1
            g = ref.loc[key[:4]]
            margin = max(2 * (g["std"] if pd.notna(g["std"]) else 0), 0.02)
            lo, hi = max(0.0, g["min"] - margin), min(1.0, g["max"] + margin)
            if not lo <= r["value"] <= hi:
                outside += 1
                res.warnings.append(
                    f"{_run_name(dict(zip(KEY, key)))}: {r['metric']} {100 * r['value']:.1f} % is outside the range "
                    f"the reference {profile} gave ({100 * lo:.1f}–{100 * hi:.1f} %). Check that it ran on the "
                    f"{profile} profile with the section's settings; a score far below often means training stopped "
                    "early.")
        res.lines.append(f"  ✓ all {checked} test scores inside the reference {profile}'s ranges" if not outside
                         else f"  {outside} of {checked} test scores outside the reference {profile}'s ranges")
    else:
        res.lines.append(f"  (no reference ranges for the {profile} profile: plausibility not checked)")
    res.ok = not res.problems
    return res
