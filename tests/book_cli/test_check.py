"""`medbench check` on results files like a student's: complete, incomplete, implausible, malformed."""
from __future__ import annotations

import pandas as pd

from medbench_core import validate_section_params
from medbench_core.check import reference_ranges
from medbench_core.profiles import get_profile
from medbench_core.cli import main
from medbench_core.results import COLUMNS


def _student_file(path, section="domain-adaptation", drop=0, shift=None):
    """A results file holding the section's demo runs with the reference demo's mean scores."""
    ref = reference_ranges(get_profile("demo").reference).set_index(["task", "arch", "init", "fraction"])
    rows = []
    for cfg in validate_section_params(section, profile="demo").configs[drop:]:
        g = ref.loc[(cfg.task, cfg.arch, cfg.init, cfg.fraction)]
        value = g["mean"] + (shift if shift and cfg.seed == 0 and cfg.init == "scratch" else 0)
        metric = "mean_auc" if cfg.task in ("syn_dxc", "syn_txc") else "dice"
        rows.append({c: "x" for c in COLUMNS} | {
            "section": section, "task": cfg.task, "init": cfg.init, "arch": cfg.arch, "seed": cfg.seed,
            "fraction": cfg.fraction, "profile": "demo", "split": "test", "metric": metric, "value": value,
            "config_hash": cfg.config_hash(), "wall_seconds": 1.0, "synthetic": True})
    pd.DataFrame(rows)[COLUMNS].to_csv(path, index=False)
    return path


def test_a_complete_plausible_file_passes(tmp_path, capsys):
    assert main(["check", str(_student_file(tmp_path / "r.csv")), "--section", "domain-adaptation"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("All good.") and "72 of 72 runs" in out and "inside the reference demo's ranges" in out


def test_missing_runs_and_odd_scores_are_named_with_what_to_do(tmp_path, capsys):
    path = _student_file(tmp_path / "r.csv", drop=2, shift=-0.4)
    assert main(["check", str(path), "--section", "domain-adaptation"]) == 1
    out = capsys.readouterr().out
    assert "70 of 72 runs" in out and out.count("✗ missing run") == 2
    assert "medbench run domain-adaptation --profile demo" in out
    assert "outside the range the reference demo gave" in out and "training stopped early" in out


def test_a_malformed_file_is_explained(tmp_path, capsys):
    path = _student_file(tmp_path / "r.csv")
    text = path.read_text().splitlines()
    text[3] = text[3].replace(",test,", ",tset,")
    path.write_text("\n".join(text) + "\n")
    assert main(["check", str(path), "--section", "domain-adaptation"]) == 1
    out = capsys.readouterr().out
    assert "cannot be read as medbench results" in out and "line 4" in out and "tset" in out
