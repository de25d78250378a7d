"""The second round of hostile input (issue 24): no user's file replaced, no setting turned into code, no row
mislabelled, no value spelled differently trained again, every command on every profile. Table-driven: each case
is a row."""
from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench_core.cli import main
from medbench_core.paths import replace_output
from medbench_core.results import COLUMNS, ResultsStore
from medbench_core.sections import Results, load_grid_results, validate_section_params

from test_bad_input import constructed_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "store"
    constructed_store(root, validate_section_params("domain-adaptation", profile="smoke"))
    return root


def _reader(path: Path, got: list):
    with open(path, "rb") as f:
        got.append(f.read())


# -- 1. writes never replace what is not ours ------------------------------------------------------------------------

def _new(tmp):
    return tmp / "new.csv", None


def _regular(tmp):
    (tmp / "old.csv").write_text("old")
    return tmp / "old.csv", None


def _symlink(tmp):
    (tmp / "target.csv").write_text("old")
    (tmp / "link.csv").symlink_to(tmp / "target.csv")
    return tmp / "link.csv", tmp / "target.csv"


def _dangling(tmp):
    (tmp / "link.csv").symlink_to(tmp / "later.csv")
    return tmp / "link.csv", tmp / "later.csv"


def _fifo(tmp):
    os.mkfifo(tmp / "pipe")
    return tmp / "pipe", None


OUTPUTS = {"a new name": _new, "a regular file": _regular, "a symlink": _symlink, "a dangling symlink": _dangling,
           "a FIFO": _fifo}


@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_an_export_never_replaces_what_is_not_ours(kind, store, tmp_path, capsys):
    path, target = OUTPUTS[kind](tmp_path)
    got, reader = [], None
    if kind == "a FIFO":
        reader = threading.Thread(target=_reader, args=(path, got))
        reader.start()
    assert main(["results", "export", str(path), "--results-dir", str(store)]) == 0
    if reader:
        reader.join(30)
        assert got and got[0].startswith(b"section,") and stat.S_ISFIFO(path.lstat().st_mode)  # still a FIFO
    elif target is not None:
        assert path.is_symlink() and target.read_text().startswith("section,")  # the link kept, its target written
    else:
        assert path.read_text().startswith("section,")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_device_is_written_into_and_never_replaced(store):
    dev = Path("/dev/null")
    before = dev.stat()
    assert main(["results", "export", str(dev), "--results-dir", str(store)]) == 0
    after = dev.stat()
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_a_socket_is_refused_with_one_line(tmp_path, capsys):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s"))
    try:
        tmp = tmp_path / ".t"
        tmp.write_text("x")
        with pytest.raises(Exception, match="is a socket"):
            replace_output(tmp, tmp_path / "s")
        assert not tmp.exists() and stat.S_ISSOCK((tmp_path / "s").lstat().st_mode)
    finally:
        sock.close()


def test_an_executed_notebook_follows_a_symlinked_output(tmp_path):
    """`run --output` and the book write executed notebooks through `replace_output` (book.execute_notebook)."""
    (tmp_path / "mine.ipynb").write_text("{}")
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "mine.ipynb")
    (tmp_path / ".x.tmp.ipynb").write_text('{"cells": []}')
    replace_output(tmp_path / ".x.tmp.ipynb", tmp_path / "link.ipynb")
    assert (tmp_path / "link.ipynb").is_symlink() and (tmp_path / "mine.ipynb").read_text() == '{"cells": []}'


# -- 2. settings are data, never code --------------------------------------------------------------------------------

BAD_URLS = ['https://github.com/o/r?x=";__import__("os").getpid();#', 'https://github.com/o/r"\nimport os',
            "https://github.com/o/r\\x", "https://github.com/o/r;rm -rf ~", "https://github.com/o/$(id)",
            "https://github.com/o/`id`", "https://github.com/o/r#frag", "javascript:alert(1)", "https:///no-host",
            "https://github.com/o/r'x"]
BAD_RELEASES = ['main"; import os; "', "v1\nimport os", "-e", "a..b", "x\\y", "/etc"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_repository_that_is_not_a_plain_url_is_refused(url, book_copy):
    from medbench_core.launch import book_setting

    with pytest.raises(ValueError, match="is not a clone URL") as e:
        book_setting(book_copy, url=url)
    assert "\n" not in str(e.value).replace("\\n", "")


@pytest.mark.parametrize("ref", BAD_RELEASES)
def test_a_release_that_is_not_a_git_ref_is_refused(ref, book_copy):
    from medbench_core.launch import book_setting

    with pytest.raises(ValueError, match="is not a branch, tag or commit name"):
        book_setting(book_copy, url="https://github.com/ORG/medbench", release=ref)


def test_the_setup_cell_gets_literals_only(book_copy):
    import ast
    import json

    from medbench_core.launch import BookSetting, read_setup_line, sync_setup_cells

    changed = sync_setup_cells(book_copy, BookSetting("https://github.com/ORG/med-bench_2", "v1.0"))
    assert changed
    for nb in changed:
        assert read_setup_line(nb) == ("https://github.com/ORG/med-bench_2", "v1.0")
        cell = next(c for c in json.loads(nb.read_text())["cells"] if "setup" in c["metadata"].get("tags", []))
        line = next(x for x in "".join(cell["source"]).splitlines() if x.startswith("repository, release ="))
        value = ast.parse(line.split("#")[0]).body[0].value
        assert all(isinstance(e, ast.Constant) for e in value.elts)  # two literals, nothing to execute
    with pytest.raises(ValueError):  # a setting made by hand, past book_setting, is checked again where it is written
        sync_setup_cells(book_copy, BookSetting('https://x.org/a";b', "v1.0"))


# -- 4. one value, one hash ------------------------------------------------------------------------------------------

SPELLINGS = {"lr": (1, 1.0), "weight_decay": (0, 0.0, 0e0), "lr_factor": (0.5, 5e-1), "eval_crop": (1, 1.0),
             "batch_size": (8, 8.0), "max_epochs": (3, 3.0), "patience": (2, 2.0), "lr_patience": (1, 1.0),
             "test_crops": (10, 10.0), "warmup_epochs": (0, 0.0), "image_size": (32, 32.0), "workers": (0, 0.0)}


@pytest.mark.parametrize("field", list(SPELLINGS))
def test_a_value_spelled_differently_is_one_run(field):
    from medbench_core.experiments import _FIELD_TYPES, make_run_config

    cfgs = [make_run_config("granularity", "syn_txc", "scratch", "test_resnet", 0, "smoke", **{field: v})
            for v in SPELLINGS[field]]
    assert len({c.config_hash() for c in cfgs}) == 1, field
    assert len({repr(getattr(c, field)) for c in cfgs}) == 1  # stored in the field's own type
    assert type(getattr(cfgs[0], field)).__name__ == _FIELD_TYPES[field]


def test_every_numeric_protocol_field_has_its_spellings_tested():
    import dataclasses

    from medbench_core.experiments import SPEED_FIELDS, _FIELD_TYPES
    from medbench_core.tasks import Protocol

    numeric = {f.name for f in dataclasses.fields(Protocol) if str(f.type) in ("int", "float")} - {"num_runs"}
    numeric |= {f for f in SPEED_FIELDS if _FIELD_TYPES.get(f) in ("int", "float")}
    assert numeric == set(SPELLINGS)


# -- 3. a stored row is what its hash says ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A store of constructed runs with their whole configurations (as training writes them), exported."""
    root = tmp_path_factory.mktemp("identity")
    grid = validate_section_params("domain-adaptation", profile="smoke")
    store = ResultsStore(root / "store")
    for cfg in grid.configs:
        h = cfg.config_hash()
        row = {"section": cfg.section, "task": cfg.task, "init": cfg.init, "arch": cfg.arch, "seed": cfg.seed,
               "fraction": cfg.fraction, "profile": cfg.profile, "split": "test",
               "metric": "dice" if cfg.task == "syn_pxs" else "mean_auc", "value": 0.7, "config_hash": h,
               "medbench_version": "test", "git_sha": "unknown", "torch_version": "-", "device": "cpu",
               "wall_seconds": 1.0, "finished_at": "2026-12-03T00:00:00+00:00", "synthetic": True}
        store.write_run(h, pd.DataFrame([row])[COLUMNS], cfg.to_dict(), {})
    assert main(["results", "export", str(root / "all.csv"), "--results-dir", str(store.root)]) == 0
    return pd.read_csv(root / "all.csv", dtype=str, keep_default_na=False), grid


def _tamper_task(df, grid):
    other = next(t for t in grid.tasks if t != df.loc[0, "task"])
    df = df.copy()
    df.loc[df["config_hash"] == df.loc[0, "config_hash"], "task"] = other
    return df


def _tamper_config(df, grid):
    import json

    df = df.copy()
    cfg = json.loads(df.loc[0, "run_config"])
    cfg["lr"] = cfg["lr"] * 10
    df.loc[df["config_hash"] == df.loc[0, "config_hash"], "run_config"] = json.dumps(cfg)
    return df


IDENTITY_CASES = {
    "the task column changed, configuration kept": (_tamper_task, "is task"),
    "the task column changed, no configuration column": (lambda d, g: _tamper_task(d, g).drop(columns="run_config"),
                                                         "is task"),
    "the configuration changed": (_tamper_config, "hashes to"),
}


@pytest.mark.parametrize("case", list(IDENTITY_CASES))
def test_an_import_refuses_a_run_that_is_not_what_its_hash_says(case, exported, tmp_path, capsys):
    df, grid = exported
    change, needle = IDENTITY_CASES[case]
    change(df, grid).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["results", "import", str(tmp_path / "bad.csv"), "--results-dir", str(tmp_path / "store")]) == 4
    err = capsys.readouterr().err
    assert needle in err and "line 2" in err and err.count("\n") == 1
    assert not (tmp_path / "store").exists()  # nothing written


def test_an_untouched_export_imports_whole(exported, tmp_path):
    df, _ = exported
    df.to_csv(tmp_path / "ok.csv", index=False)
    assert main(["results", "import", str(tmp_path / "ok.csv"), "--results-dir", str(tmp_path / "store")]) == 0
    assert len(ResultsStore(tmp_path / "store").hashes()) == df["config_hash"].nunique()


# -- 0. an undefined metric is a missing value, not a broken store ---------------------------------------------------

def test_an_undefined_score_is_stored_read_and_left_out_with_a_count(tmp_path):
    from medbench_core.scores import summarize

    grid = validate_section_params("domain-adaptation", profile="smoke")
    store = constructed_store(tmp_path / "store", grid)
    h = grid.configs[0].config_hash()
    rows = store.rows(h)
    rows.loc[rows["split"] == "test", "value"] = np.nan  # an AUC on a test split with one label value
    (store.root / "runs" / f"{h}.csv").write_text(rows.to_csv(index=False))
    assert ",," in (store.root / "runs" / f"{h}.csv").read_text()  # stored as an empty cell
    df = store.load()
    assert df["value"].isna().sum() == 1  # read as NaN, the rest of the store intact
    s = summarize(df, baseline="scratch")
    assert s.attrs["undefined"] == 1 and s["n"].sum() == len(grid.configs) - 1
    res = Results(grid, load_grid_results(grid, store.root), results_dir=str(store.root))
    assert res.caption().endswith("1 run left out: its test score is undefined (one label value in the test split).")
    assert "left out" in res.caption(grid.configs[0].task) and "left out" not in res.caption(
        next(t for t in grid.tasks if t != grid.configs[0].task))
    assert "left out" in res.section.table(res)._repr_html_()  # the section's table says it


def test_an_undefined_value_travels_through_export_and_import(tmp_path, capsys):
    grid = validate_section_params("domain-adaptation", profile="smoke")
    store = constructed_store(tmp_path / "a", grid)
    h = grid.configs[0].config_hash()
    rows = store.rows(h)
    rows.loc[rows["split"] == "test", "value"] = np.nan
    (store.root / "runs" / f"{h}.csv").write_text(rows.to_csv(index=False))
    assert main(["results", "export", str(tmp_path / "x.csv"), "--results-dir", str(store.root)]) == 0
    for _ in range(2):  # imported, then found identical (undefined equals undefined)
        assert main(["results", "import", str(tmp_path / "x.csv"), "--results-dir", str(tmp_path / "b")]) == 0
    assert "1 were already there" not in capsys.readouterr().out
    back = ResultsStore(tmp_path / "b").load()
    assert back["value"].isna().sum() == 1 and len(back) == len(store.load())
    # an undefined count is no metric a run can leave undefined: still refused
    bad = pd.read_csv(tmp_path / "x.csv", dtype=str, keep_default_na=False)
    bad.loc[1, "split"], bad.loc[1, "metric"], bad.loc[1, "value"] = "train", "n_images", ""
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["results", "import", str(tmp_path / "bad.csv"), "--results-dir", str(tmp_path / "c")]) == 4
    assert "line 3: column 'value' is not a number (value '')" in capsys.readouterr().err


# -- 10. the import streams; interrupted, it keeps complete runs only ---------------------------------------------------

def test_an_interrupted_import_keeps_complete_runs_only_and_the_rest_come_when_repeated(exported, tmp_path,
                                                                                          monkeypatch, capsys):
    df, _ = exported
    df.to_csv(tmp_path / "all.csv", index=False)
    real, commits = os.replace, []

    def interrupted(src, dst):  # Ctrl-C after the fifth run's commit point
        if str(dst).endswith(".csv") and Path(dst).parent.name == "runs":
            if len(commits) == 5:
                raise KeyboardInterrupt
            commits.append(dst)
        real(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    assert main(["results", "import", str(tmp_path / "all.csv"), "--results-dir", str(tmp_path / "store")]) == 130
    monkeypatch.undo()
    store = ResultsStore(tmp_path / "store")
    assert len(store.hashes()) == 5 and all(len(store.rows(h)) for h in store.hashes())  # complete, readable
    assert not [p for p in (tmp_path / "store").rglob("*") if ".tmp" in p.name]  # no temporary file left
    assert main(["results", "import", str(tmp_path / "all.csv"), "--results-dir", str(store.root)]) == 0
    n = df["config_hash"].nunique()
    assert f"imported {n - 5} runs" in capsys.readouterr().out and len(store.hashes()) == n


def test_a_full_disk_names_the_path_and_leaves_no_temporary_file(store, tmp_path, monkeypatch, capsys):
    from medbench_core.paths import atomic_write_bytes

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as e:
        atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert e.value.filename == str(tmp_path / "a.json") and e.value.errno == 28
    assert main(["results", "export", str(tmp_path / "out.csv"), "--results-dir", str(store)]) == 3
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'out.csv'}: No space left on device" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file, no half-written output


# -- 8. every command on every profile -------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["smoke", "demo", "colab", "paper"])
def test_the_plan_works_on_every_profile(profile, capsys):
    from medbench_core.profiles import get_profile

    assert main(["sweep", "granularity", "--profile", profile, "--plan"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"plan: granularity on {profile}")
    assert ("light (not the original's)" in out) == get_profile(profile).light


# -- 7. validation covers what the run needs; a divergent run is one line ----------------------------------------------

OUT_OF_RANGE = {"lr_factor=1.5": "lr_factor must be a number > 0.0 and < 1", "lr=1e300": "lr must be a number > 0.0 "
                "and <= 10", "lr=1e8": "lr must be", "weight_decay=2": "weight_decay must be",
                "eval_crop=abc": "eval_crop must be a number", "test_crops=0": "test_crops must be"}


@pytest.mark.parametrize("setting", list(OUT_OF_RANGE))
def test_a_value_the_engine_cannot_train_with_is_refused_by_name(setting, tmp_path, capsys):
    code = main(["run", "granularity", "--profile", "smoke", "--set", setting, "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and OUT_OF_RANGE[setting] in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_a_divergent_run_is_one_line_not_a_crash():
    import torch

    from medbench_core.data import BatchLoader, load_task_data
    from medbench_core.engine import fit
    from medbench_core.errors import DivergedError
    from medbench_core.models import create_model
    from medbench_core.tasks import create_task

    task = create_task("syn_txc", "smoke")
    data = load_task_data(task)
    torch.manual_seed(0)
    with pytest.raises(DivergedError, match="diverged; lower the learning rate") as e:
        fit(create_model("test_resnet", task), BatchLoader(data["train"], 8, train=True, seed=0),
            BatchLoader(data["val"], 8, train=False), task, device=torch.device("cpu"), optimizer="sgd", lr=1e8,
            weight_decay=0.0, max_epochs=3, patience=3, scheduler="cosine", lr_factor=0.5, lr_patience=1,
            loss="bce")
    assert e.value.exit_code == 6 and "\n" not in str(e.value)


# -- 9. the smaller items: each one line, its own code, nothing written -------------------------------------------------

def _bom(tmp):
    (tmp / "bom.csv").write_bytes(b"\xef\xbb\xbf")
    return tmp / "bom.csv"


SMALL = {
    "a --set field given twice": (["run", "granularity", "--profile", "smoke", "--set", "lr=1e-3", "--set", "lr=2e-3"],
                                  2, "--set lr is given twice"),
    "an empty item in --fractions": (["run", "data-size", "--profile", "smoke", "--fractions", "0.1,,0.2"], 2,
                                     "without empty items"),
    "a BOM-only results file (import)": (["results", "import", "{bom}"], 4, "holds no header and no rows"),
    "a BOM-only results file (check)": (["check", "{bom}", "--section", "data-size"], 1, "holds no header"),
    "weights import of a device": (["weights", "import", "resnet50.moco_v2", "/dev/null"], 3,
                                   "not a regular file (a device or pipe)"),
    "sweep --status of no store": (["sweep", "granularity", "--profile", "smoke", "--status"], 3,
                                   "no results store at"),
    "a speed option given as --set": (["run", "granularity", "--profile", "smoke", "--set", "workers=2"], 2,
                                      "give workers with `medbench sweep --loader-workers N`"),
}


@pytest.mark.parametrize("case", list(SMALL))
def test_each_small_case_is_one_line_with_its_code(case, tmp_path, capsys):
    argv, code, needle = SMALL[case]
    argv = [a.replace("{bom}", str(_bom(tmp_path))) for a in argv]
    if argv[0] in ("run", "sweep", "results"):
        argv += ["--results-dir", str(tmp_path / "store")]
    try:
        got = main(argv)
    except SystemExit as e:  # argparse's own errors: one line, exit 2
        got = e.code
    assert got == code, case
    out = capsys.readouterr()
    text = out.err if code != 1 else out.out + out.err
    assert needle in text and "Traceback" not in text, text
    assert not (tmp_path / "store").exists()


def test_a_run_file_cut_short_is_named_not_a_parse_error(tmp_path, capsys):
    grid = validate_section_params("domain-adaptation", profile="smoke")
    store = constructed_store(tmp_path / "store", grid)
    h = store.hashes()[0]
    path = store.root / "runs" / f"{h}.csv"
    path.write_text(path.read_text()[:40])
    assert main(["results", "export", str(tmp_path / "out.csv"), "--results-dir", str(store.root)]) == 4
    err = capsys.readouterr().err
    assert f"{h}.csv cannot be read" in err and "delete it to train run" in err and err.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()


# -- 0. --data-root prepares what the run will read ------------------------------------------------------------------

@pytest.mark.parametrize("profile,task,setting,side", [
    ("colab", "pneumoniamnist", {"image_size": 32}, 32),  # a MedMNIST+ resolution changed: ordinary use
    ("paper", "shenzhen", {"image_size": 32}, 37),        # resize-and-crop: the stored side is 32 / (224 / 256)
    ("paper", "shenzhen", {}, 256),
])
def test_data_root_prepares_at_the_side_the_runs_read(profile, task, setting, side, tmp_path):
    from medbench_core.cli import _grid_data_roots

    grid = validate_section_params("granularity", profile=profile, tasks=[task], protocol=setting)
    assert _grid_data_roots([str(tmp_path)], grid) == [(task, str(tmp_path), side)]
    with pytest.raises(Exception, match="which this run does not train"):
        _grid_data_roots([f"chexpert={tmp_path}"], grid)


# -- 5. claims that survive a pause ------------------------------------------------------------------------------------

HOLDER = """
import sys, time
from medbench_core.claims import claimed
with claimed(sys.argv[1], "0123456789abcdef") as mine:
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_paused_owner_keeps_its_claim_and_a_reused_pid_does_not(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from medbench_core import claims

    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        path = claims.claim_path(tmp_path, "0123456789abcdef")
        proc.send_signal(signal.SIGSTOP)  # a suspended laptop, a swapped job
        old = time.time() - 10 * claims.STALE_AFTER
        os.utime(path, (old, old))  # its heartbeat long stopped
        seen = claims.read_claim(path)
        assert not claims.is_stale(path, seen)  # alive, only paused: never broken
        assert claims.clear_stale(tmp_path) == 0 and path.exists()
        # the same pid with another start time is a reused pid: its owner is gone
        assert claims.is_stale(path, {**seen, "pid_start": (seen["pid_start"] or 0) + 1})
        # an owner on another host, which cannot be asked: its heartbeat decides
        assert claims.is_stale(path, {**seen, "host": "elsewhere"})
        proc.send_signal(signal.SIGCONT)
    finally:
        proc.kill()
        proc.wait()
    assert claims.is_stale(path, seen)  # gone now


def test_an_owner_whose_claim_was_broken_writes_nothing(tmp_path):
    from medbench_core import claims

    with claims.claimed(tmp_path, "0123456789abcdef") as mine:
        assert mine and claims.still_held(tmp_path, "0123456789abcdef")
        path = claims.claim_path(tmp_path, "0123456789abcdef")
        path.write_text('{"host": "elsewhere", "pid": 1}')  # taken over while this process was paused
        assert not claims.still_held(tmp_path, "0123456789abcdef")


def test_trained_runs_export_and_import_with_their_configurations(tmp_path, capsys):
    """Real smoke runs, one at a training fraction below 1 (whose stored configuration records the subset's size):
    the hash recomputed on import is the run's."""
    from medbench_core.experiments import run_grid

    grid = validate_section_params("data-size", profile="smoke", tasks=["syn_txc"], fractions=[0.5, 1.0],
                                   num_seeds=2)
    run_grid(grid, tmp_path / "a")
    assert main(["results", "export", str(tmp_path / "a.csv"), "--results-dir", str(tmp_path / "a")]) == 0
    assert main(["results", "import", str(tmp_path / "a.csv"), "--results-dir", str(tmp_path / "b")]) == 0, \
        capsys.readouterr().err


# -- 6. a trained run is never lost ----------------------------------------------------------------------------------

def test_a_store_that_cannot_take_a_run_is_refused_before_training(tmp_path):
    from medbench_core.errors import BadPathError
    from medbench_core.experiments import run_grid

    grid = validate_section_params("granularity", profile="smoke", tasks=["syn_txc"], num_seeds=2)
    store = ResultsStore(tmp_path / "store")
    (store.root / "claims").write_text("a file where a folder belongs")
    with pytest.raises(BadPathError, match="claims/ folder .* is a file"):
        run_grid(grid, store.root)
    assert not store.hashes()


def test_a_run_that_cannot_be_stored_is_kept_where_the_error_says(tmp_path, monkeypatch):
    import re

    from medbench_core.errors import BadPathError
    from medbench_core.experiments import run_grid

    grid = validate_section_params("granularity", profile="smoke", tasks=["syn_txc"], num_seeds=2)

    def full_disk(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ResultsStore, "write_run", full_disk)
    monkeypatch.setenv("MEDBENCH_WORKERS", "1")
    with pytest.raises(BadPathError, match="trained but cannot be stored") as e:
        run_grid(grid, tmp_path / "store")
    kept = Path(re.search(r"kept in (\S+\.csv)", str(e.value)).group(1))
    monkeypatch.undo()
    assert main(["results", "import", str(kept), "--results-dir", str(tmp_path / "store")]) == 0
    assert len(ResultsStore(tmp_path / "store").hashes()) == 1  # the first run trained, was kept, came back


@pytest.mark.slow
def test_ctrl_c_is_one_line_saying_what_was_kept(tmp_path, repo_root):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "medbench_core.cli", "run", "granularity", "--profile", "smoke",
                             "--results-dir", str(tmp_path / "store")], cwd=repo_root, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "store" / "executed").exists():
        time.sleep(0.5)  # the notebook's kernel is up
    time.sleep(4)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group, the kernel too
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "ZMQError" not in err, err
    assert err.strip().splitlines()[-1].startswith("medbench: interrupted; finished runs are kept")


@pytest.mark.parametrize("argv", [["data", "prepare", "shenzhen", "--root", "{empty}"],
                                  ["weights", "import", "resnet50.moco_v2", "{notweights}"],
                                  ["data", "fetch", "chestmnist"]])
def test_a_refused_command_leaves_no_empty_cache_folder(argv, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notweights").write_text("hello")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "cache" / "kept").mkdir(parents=True)  # what was there stays
    argv = [a.replace("{empty}", str(tmp_path / "empty")).replace("{notweights}", str(tmp_path / "notweights"))
            for a in argv] + ["--cache-dir", str(tmp_path / "cache")]
    assert main(argv) in (3, 4)
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*")) == ["kept"]
