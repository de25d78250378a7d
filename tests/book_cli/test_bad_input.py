"""No bad input gets through: every mistake a user can make on the command line is one line with its own exit code
and writes nothing; a name given twice can never make a statistic count a run twice."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench_core.cli import main
from medbench_core.errors import BadFileError, BadValueError, DeviceError
from medbench_core.results import COLUMNS, ResultsStore
from medbench_core.scores import summarize
from medbench_core.sections import load_grid_results, validate_section_params


def constructed_store(root: Path, grid, seed: int = 0) -> ResultsStore:
    """A store holding one constructed (not trained) test score per run of ``grid``: the init's offset plus noise."""
    rng = np.random.default_rng(seed)
    store = ResultsStore(root)
    for k, cfg in enumerate(grid.configs):
        metric = "dice" if cfg.task in ("syn_pxs", "syn_lxs", "syn_vxs") else "mean_auc"
        value = float(np.clip(0.7 + 0.05 * grid.inits.index(cfg.init) + rng.normal(0, 0.02), 0, 1))
        h = cfg.config_hash()
        row = {"section": cfg.section, "task": cfg.task, "init": cfg.init, "arch": cfg.arch, "seed": cfg.seed,
               "fraction": cfg.fraction, "profile": cfg.profile, "split": "test", "metric": metric, "value": value,
               "config_hash": h, "medbench_version": "test", "git_sha": "unknown", "torch_version": "-",
               "device": "cpu", "wall_seconds": 1.0, "finished_at": "2026-12-02T00:00:00+00:00", "synthetic": True}
        store.write_run(h, pd.DataFrame([row])[COLUMNS], {"config_hash": h, "constructed": True}, {})
    return store


def p_values(df, baseline) -> pd.Series:
    s = summarize(df, baseline=baseline)
    return s.set_index(["task", "group"])[["mean", "std", "n", "p_vs_best", "p_vs_baseline"]].sort_index()


@pytest.fixture(scope="module")
def grid():
    return validate_section_params("domain-adaptation", profile="smoke")


def test_a_duplicated_grid_or_store_row_cannot_change_a_p_value(grid, tmp_path):
    store = constructed_store(tmp_path / "r", grid)
    base = grid.section.baseline
    clean = p_values(load_grid_results(grid, store.root), base)
    assert (clean["n"] == len(grid.seeds)).all() and clean["p_vs_baseline"].notna().any()
    # the same grid listing every run twice
    twice = dataclasses.replace(grid, configs=grid.configs + grid.configs)
    pd.testing.assert_frame_equal(p_values(load_grid_results(twice, store.root), base), clean)
    # the long rows handed over twice
    df = load_grid_results(grid, store.root)
    pd.testing.assert_frame_equal(p_values(pd.concat([df, df, df.iloc[:5]]), base), clean)
    # a run file with a line repeated (a hand edit, a bad copy)
    h = grid.hashes[0]
    path = store.root / "runs" / f"{h}.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + lines[1:]) + "\n")
    pd.testing.assert_frame_equal(p_values(load_grid_results(grid, store.root), base), clean)
    # two different values for one run: no number drawn from such a store can be trusted
    path.write_text("\n".join(lines + [lines[1].replace(lines[1].split(",")[9], "0.123")]) + "\n")
    with pytest.raises(BadFileError, match=f"run {h} holds two different test"):
        load_grid_results(grid, store.root)


@pytest.mark.parametrize("params,needle", [
    (dict(tasks=["syn_txc", "syn_txc"]), "tasks lists 'syn_txc' twice"),
    (dict(inits=["scratch", "scratch"]), "inits lists 'scratch' twice"),
    (dict(fractions=[0.5, 0.50]), "fractions lists 0.5 twice"),
    (dict(tasks=[]), "tasks is empty; give at least one (valid tasks: syn_dxc"),
    (dict(inits=()), "inits is empty"),
    (dict(fractions=[]), "fractions is empty"),
    (dict(num_seeds=10 ** 20), "num_seeds (--seeds) must be a whole number from 2"),
    (dict(num_seeds=2.5), "num_seeds (--seeds) must be a whole number"),
    (dict(protocol={"max_epochs": 0}), "protocol field max_epochs must be a whole number >= 1"),
    (dict(protocol={"lr": -1e-3}), "protocol field lr must be a number > 0"),
    (dict(protocol={"optimizer": "adagrad"}), "protocol field optimizer must be one of adam, adamw, sgd"),
])
def test_notebook_parameters_are_sets_and_never_empty(params, needle):
    with pytest.raises(BadValueError) as e:
        validate_section_params("domain-adaptation", profile="smoke", **params)
    assert needle in str(e.value)


@pytest.mark.parametrize("device", ["tpu", "cuda", "cuda:3", "gpu0"])
def test_a_device_that_is_not_there_is_refused_by_name(device):
    with pytest.raises(DeviceError, match=repr(device)):
        validate_section_params("domain-adaptation", profile="smoke", device=device)


def files(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def place(tmp_path_factory, grid):
    """A folder with a results store of constructed runs, a plain file, an empty file, bad weights files and a
    results CSV with a formula in it."""
    root = tmp_path_factory.mktemp("bad-input")
    constructed_store(root / "store", grid)
    (root / "a-file").write_text("not a folder\n")
    (root / "empty.pth").write_bytes(b"")
    (root / "random.pth").write_bytes(np.random.default_rng(0).bytes(2048))
    import torch

    torch.save({"state_dict": {"a": torch.zeros(3)}}, root / "whole.pth")
    whole = (root / "whole.pth").read_bytes()
    (root / "truncated.pth").write_bytes(whole[: len(whole) // 2])
    (root / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    (root / "cache").mkdir()
    exported = root / "exported.csv"
    assert main(["results", "export", str(exported), "--results-dir", str(root / "store")]) == 0
    text = exported.read_text().splitlines()
    cols = text[0].split(",")
    first = text[1].split(",")
    first[cols.index("device")] = "=HYPERLINK(\"http://x\";\"y\")"
    (root / "formula.csv").write_text("\n".join([text[0], ",".join(first)] + text[2:]) + "\n")
    (root / "latin1.csv").write_bytes(exported.read_bytes().replace(b"cpu", "cpü".encode("latin-1"), 1))
    (root / "extra-column.csv").write_text("\n".join([text[0] + ",grade"] + [t + ",A" for t in text[1:]]) + "\n")
    exported.unlink()
    return root


R = "{root}"
RUN = ["run", "domain-adaptation", "--profile", "smoke", "--results-dir", "{root}/r", "--cache-dir", "{root}/cache"]
SWEEP = ["sweep", "domain-adaptation", "--profile", "smoke", "--results-dir", "{root}/r", "--cache-dir", "{root}/cache"]
W = ["--cache-dir", "{root}/cache"]

# (argv, exit code, a phrase of the one line)
CASES = [
    # names are sets; an empty list is no list
    (RUN + ["--fractions", "0.5,0.5"], 2, "fractions lists 0.5 twice"),
    (RUN + ["--tasks", "syn_dxc,syn_dxc"], 2, "tasks lists 'syn_dxc' twice"),
    (RUN + ["--inits", "scratch,synth_imagenet,scratch"], 2, "inits lists 'scratch' twice"),
    (SWEEP + ["--tasks", "syn_dxc,syn_dxc", "--plan"], 2, "tasks lists 'syn_dxc' twice"),
    (RUN + ["--fractions", ""], 2, "fractions is empty"),
    (RUN + ["--tasks", ","], 2, "tasks is empty; give at least one (valid tasks: syn_dxc"),
    (RUN + ["--data-root", "syn_dxc={root}", "--data-root", "syn_dxc={root}", "--tasks", "syn_dxc"], 2,
     "--data-root names task 'syn_dxc' twice"),
    # numbers
    (RUN + ["--seeds", "99999999999999999999"], 2, "num_seeds (--seeds) must be a whole number from 2"),
    (RUN + ["--seeds", "1"], 2, "--seeds must be at least 2"),
    (RUN + ["--seeds", "two"], 2, "expected a whole number, got 'two'"),
    (RUN + ["--fractions", "0.5,abc"], 2, "expected comma-separated numbers"),
    (RUN + ["--fractions", "1.5"], 2, "fractions must be in (0, 1]"),
    (RUN + ["--set", "max_epochs=-1"], 2, "protocol field max_epochs must be a whole number >= 1"),
    (RUN + ["--set", "epochs=3"], 2, "unknown protocol fields ['epochs']"),
    (RUN + ["--set", "max_epochs"], 2, "expected FIELD=VALUE"),
    (SWEEP + ["--workers", "0"], 2, "--workers must be at least 1"),
    (["data", "prepare", "shenzhen", "--root", "{root}", "--size", "0"], 2, "--size must be at least 8"),
    # devices
    (RUN + ["--device", "tpu"], 5, "unknown device 'tpu'; use auto, cpu, cuda or cuda:N"),
    (RUN + ["--device", "cuda"], 5, "device 'cuda' requested but this machine has no CUDA GPU"),
    # paths
    (RUN[:4] + ["--results-dir", "{root}/a-file", "--cache-dir", "{root}/cache"], 3,
     "--results-dir {root}/a-file is a file; give a folder"),
    (RUN[:4] + ["--results-dir", "{root}/r", "--cache-dir", "{root}/a-file/c"], 3, "is a file, so no folder can be made"),
    (RUN + ["--output", "{root}"], 3, "--output {root} is a folder"),
    (RUN + ["--data-root", "{root}/nowhere", "--tasks", "syn_dxc"], 3, "dataset folder {root}/nowhere does not exist"),
    (["data", "check", "shenzhen", "--root", "{root}/nowhere"], 3, "dataset folder {root}/nowhere does not exist"),
    (["data", "check", "shenzhen", "--root", "{root}/a-file"], 3, "dataset folder {root}/a-file is a file"),
    (["data", "check", "syn_dxc", "--root", "{root}"], 2,
     "task 'syn_dxc' runs on generated (synthetic) images, not on a dataset on disk"),
    (["data", "fetch", "syn_dxc"] + W, 2, "task 'syn_dxc' runs on generated (synthetic) images"),
    # results: export
    (["results", "export", "{root}/out.csv", "--results-dir", "{root}/stor"], 3, "no results store at {root}/stor"),
    (["results", "export", "{root}", "--results-dir", "{root}/store"], 3, "{root} is a folder"),
    (["results", "export", "{root}/no/such/out.csv", "--results-dir", "{root}/store"], 3, "{root}/no/such"),
    (["results", "export", "{root}/out.csv", "--results-dir", "{root}/store", "--profile", "nosuch"], 2,
     "holds no runs on profile 'nosuch'"),
    (["results", "export", "{root}/out.csv", "--results-dir", "{root}/a-file"], 3, "{root}/a-file"),
    # results: import and check
    (["results", "import", "{root}/formula.csv", "--results-dir", "{root}/r"], 4, "column 'device'"),
    (["results", "import", "{root}/latin1.csv", "--results-dir", "{root}/r"], 4, "not UTF-8"),
    (["results", "import", "{root}/extra-column.csv", "--results-dir", "{root}/r"], 4, "unknown column 'grade'"),
    (["results", "import", "{root}/empty.pth", "--results-dir", "{root}/r"], 4, "empty.pth"),
    (["results", "import", "{root}", "--results-dir", "{root}/r"], 3, "is a folder"),
    (["results", "import", "{root}/missing.csv", "--results-dir", "{root}/r"], 3, "missing.csv"),
    (["results", "import", "{root}/formula.csv", "--results-dir", "{root}/a-file"], 3, "--results-dir {root}/a-file"),
    # weights
    (["weights", "import", "resnet50.moco_v2", "{root}/empty.pth"] + W, 4, "is empty (0 bytes)"),
    (["weights", "import", "resnet50.moco_v2", "{root}/truncated.pth"] + W, 4, "cut off, corrupt or of another format"),
    (["weights", "import", "resnet50.moco_v2", "{root}/random.pth"] + W, 4, "is not a PyTorch checkpoint"),
    (["weights", "import", "resnet50.barlow_twins", "{root}/bad.safetensors"] + W, 4, "SafetensorError"),
    (["weights", "import", "resnet50.moco_v2", "{root}"] + W, 3, "is a folder; give the downloaded weights file"),
    (["weights", "import", "resnet50.moco_v2", "{root}/missing.pth"] + W, 3, "missing.pth"),
    (["weights", "import", "resnet50.moco_v2"] + W, 2, "give the file"),
    (["weights", "fetch", "resnet50.moco_v2", "{root}/whole.pth"] + W, 2, "takes no file"),
    (["weights", "import", "resnet50.mocov2", "{root}/whole.pth"] + W, 2, "unknown weights key 'resnet50.mocov2'"),
    # the parser's own errors are one line too
    (["run"], 2, "the following arguments are required: section"),
    (["list", "everything"], 2, "invalid choice: 'everything'"),
    (["sweep", "domain-adaptation", "--executor", "kubernetes"], 2, "invalid choice: 'kubernetes'"),
]


@pytest.mark.parametrize("argv,code,needle", CASES, ids=[f"{a[0]}: {n[:48]}" for a, _, n in CASES])
def test_every_bad_input_is_one_line_with_its_code_and_writes_nothing(argv, code, needle, place, capsys):
    before = files(place)
    argv = [a.format(root=place) for a in argv]
    try:
        got = main(argv)
    except SystemExit as e:  # argparse's own errors
        got = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert got == code, err
    assert needle.format(root=place) in err
    assert "Traceback" not in err and len([ln for ln in lines if "error:" in ln]) == 1, err
    assert files(place) == before  # nothing written, nothing changed
    assert not (place / "r").exists() and not (place / "out.csv").exists()


def test_forget_says_when_nothing_was_cached(place, capsys):
    assert main(["weights", "forget", "resnet50.moco_v2", "--cache-dir", str(place / "cache")]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_a_bug_shows_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    import medbench_core.cli as cli

    def broken(args):
        raise KeyError("internal")

    monkeypatch.setattr(cli, "_cmd_list", broken)
    assert cli.main(["list", "tasks"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "this is a bug; please report it" in err


def test_console_script_says_one_line_for_a_path_error(tmp_path):
    (tmp_path / "f").write_text("")
    out = subprocess.run([sys.executable, "-m", "medbench_core.cli", "results", "export", str(tmp_path / "o.csv"),
                          "--results-dir", str(tmp_path / "f")], capture_output=True, text=True,
                         env={**os.environ, "MEDBENCH_CACHE": str(tmp_path / "c")})
    assert out.returncode == 3 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr


def test_a_permission_error_anywhere_is_one_line_naming_the_path(monkeypatch, capsys):
    import medbench_core.cli as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/srv/lab/results/runs")

    monkeypatch.setattr(cli, "_cmd_list", denied)
    assert cli.main(["list", "tasks"]) == 3
    err = capsys.readouterr().err
    assert err.strip() == ("medbench: error: Permission denied: /srv/lab/results/runs (check its permissions, or give "
                           "a path you can write to)")
