"""Sweeps: local and on a real single-node Slurm cluster, with cancellation, re-submission and failures; the results
store under many concurrent writers."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from medbench_core import ResultsStore, validate_section_params
from medbench_core.cli import main
from medbench_core.sweep import SweepDir, status, summary_line

from slurm_cluster import missing_binaries, slurm_cluster

SMALL = ["--profile", "smoke", "--tasks", "syn_txc", "--inits", "synth_imagenet,synth_imagenet_chest"]


def _grid():
    return validate_section_params("domain-adaptation", profile="smoke", tasks=["syn_txc"],
                                   inits=["synth_imagenet", "synth_imagenet_chest"])


def _exactly_once(results, grid) -> None:
    store = ResultsStore(results)
    assert sorted(store.hashes()) == sorted(grid.hashes)  # every run, nothing else
    df = store.load()
    main_rows = df[(df["split"] == "test") & (df["metric"] == "mean_auc")]
    assert len(main_rows) == len(grid.configs) and main_rows["config_hash"].is_unique
    assert not list((results / "sweeps" / "running").iterdir())


def test_stale_markers_and_failures_decide_the_state(tmp_path):
    grid = _grid()
    sd = SweepDir(tmp_path / "r")
    h = sd.save_config(grid.configs[0])
    assert sd.state(h)[0] == "pending"
    dead = subprocess.Popen(["true"])
    dead.wait()
    sd.marker_path(h).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    assert sd.state(h)[0] == "pending"  # its process is gone: runs again
    sd.marker_path(h).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    assert sd.state(h)[0] == "running"  # alive: not started twice
    sd.marker_path(h).unlink()
    sd.failed_path(h).write_text(json.dumps({"error": "RuntimeError: boom"}))
    assert sd.state(h) == ("failed", {"error": "RuntimeError: boom"})


@pytest.mark.slow
def test_local_sweep_resumes_lists_failures_and_retries_them_alone(tmp_path, smoke_cache, capsys, monkeypatch):
    results = tmp_path / "r"
    base = ["sweep", "domain-adaptation", *SMALL, "--results-dir", str(results), "--cache-dir", str(smoke_cache),
            "--root", str(tmp_path)]
    grid = _grid()
    # one run fails: its stored config was edited by hand and no longer matches its hash
    sd = SweepDir(results)
    bad = grid.configs[1]
    sd.save_config(bad)
    cfg = json.loads(sd.config_path(bad.config_hash()).read_text())
    sd.config_path(bad.config_hash()).write_text(json.dumps(cfg | {"lr": 0.5}))
    assert main(base + ["--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "3 done / 0 running / 1 failed / 0 pending" in out and "does not match its hash" in out
    # re-submitted as is: nothing runs again; the failure stays listed
    t0 = time.perf_counter()
    assert main(base) == 1
    assert "local: 0 runs submitted" in capsys.readouterr().out and time.perf_counter() - t0 < 30
    # fixed and retried alone
    sd.config_path(bad.config_hash()).write_text(json.dumps(cfg))
    assert main(base + ["--retry-failed"]) == 0
    out = capsys.readouterr().out
    assert "local: 1 runs submitted" in out and "4 done / 0 running / 0 failed / 0 pending" in out
    _exactly_once(results, grid)
    assert not list((results / "sweeps" / "failed").iterdir())


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_sweep_with_a_cancelled_job_completes_without_duplicates(tmp_path, smoke_cache, capsys, monkeypatch):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)}); `make test` installs slurm-wlm and munge on "
                    "Debian as root")
    results = tmp_path / "r"
    grid = _grid()
    argv = ["sweep", "domain-adaptation", *SMALL, "--executor", "slurm", "--results-dir", str(results),
            "--cache-dir", str(smoke_cache), "--root", str(tmp_path)]
    with slurm_cluster(tmp_path / "slurm") as env:
        monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])
        main(argv)
        out = capsys.readouterr().out
        assert "4 runs submitted" in out and "submitted 4 runs as array" in out
        # cancel one job midway: the array's last task while it waits (one job at a time fits the node) and, if one
        # is running by then, that one too
        queue = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True,
                               text=True).stdout.split("\n")
        jobs = [line.split() for line in queue if line.strip()]
        assert jobs, "nothing queued"
        cancelled = [j for j, state in jobs if state == "RUNNING"][:1] + [max((j for j, _ in jobs),
                                                                              key=lambda j: j.split("_")[-1])]
        subprocess.run(["scancel", *cancelled], check=True)
        deadline = time.time() + 240
        while time.time() < deadline and subprocess.run(["squeue", "-h"], capture_output=True,
                                                        text=True).stdout.strip():
            time.sleep(1)
        df = status(grid, results)
        assert (df["state"] == "pending").sum() >= 1 and not (df["state"] == "running").any(), summary_line(df)
        done_before = set(df.loc[df["state"] == "done", "hash"])
        mtimes = {h: (results / "runs" / f"{h}.csv").stat().st_mtime_ns for h in done_before}
        # re-submission runs only what is missing
        main(argv + ["--wait"])
        out = capsys.readouterr().out
        assert f"{len(grid.configs) - len(done_before)} runs submitted" in out
        assert "4 done / 0 running / 0 failed / 0 pending" in out
        _exactly_once(results, grid)
        assert mtimes == {h: (results / "runs" / f"{h}.csv").stat().st_mtime_ns for h in done_before}
        # a third submission has nothing to do
        main(argv)
        assert "0 runs submitted" in capsys.readouterr().out
    assert subprocess.run(["pgrep", "-f", str(tmp_path / "slurm")], capture_output=True).returncode != 0


# -- the results store under concurrent writers ---------------------------------------------------------------------

def _writer(root: str, worker: int, n: int, shared: int) -> None:
    from medbench_core.results import COLUMNS

    store = ResultsStore(root)
    for k in list(range(n)) + [-1] * shared:  # own runs, then one run every writer writes (same content)
        h = f"{worker:04d}{k:012d}" if k >= 0 else "ffffffffffffffff"
        rows = pd.DataFrame([{c: "x" for c in COLUMNS} | {
            "config_hash": h, "task": "syn_txc", "split": "test", "metric": "mean_auc", "value": 0.5, "seed": 0,
            "fraction": 1.0, "wall_seconds": 1.0, "synthetic": True}])
        store.write_run(h, rows, {"config_hash": h}, {"test_probs": np.zeros(3)})


def test_many_concurrent_writers_lose_and_corrupt_nothing(tmp_path):
    root = tmp_path / "store"
    procs = [mp.get_context("fork").Process(target=_writer, args=(str(root), w, 25, 3)) for w in range(12)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = ResultsStore(root)
    assert len(store.hashes()) == 12 * 25 + 1
    df = store.load()
    assert len(df) == 12 * 25 + 1 and df["config_hash"].is_unique  # every row, once, readable
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]  # no half-written files left


# -- speed options ----------------------------------------------------------------------------------------------------

def test_loader_workers_give_the_same_batches(tmp_path):
    import torch

    from medbench_core.data import BatchLoader, SplitData

    rng = np.random.default_rng(0)
    data = SplitData(rng.integers(0, 255, (70, 1, 16, 16), dtype=np.uint8),
                     rng.integers(0, 2, (70, 1, 16, 16)).astype(np.uint8))
    plain = BatchLoader(data, 8, train=True, seed=3, workers=0)
    ahead = BatchLoader(data, 8, train=True, seed=3, workers=2)
    for _ in range(2):  # two epochs: the persistent workers are reused
        for (x0, y0), (x1, y1) in zip(plain, ahead, strict=True):
            assert torch.equal(x0, x1) and torch.equal(y0, y1)


def test_ten_crop_is_batched_and_grouped_by_image():
    import torch

    from medbench_core.engine import ten_crop

    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    crops = ten_crop(x)
    assert crops.shape == (20, 3, 32, 32)
    assert torch.allclose(crops[5], crops[0].flip(-1))  # the flipped corner follows the five crops
    assert torch.equal(ten_crop(torch.ones(1, 3, 8, 8)), torch.ones(10, 3, 8, 8))


@pytest.mark.slow
def test_speed_options_are_recorded_and_hashed_only_when_set(tmp_path, smoke_cache):
    from medbench_core.experiments import make_run_config, run_one

    base = make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", 0, "smoke")
    assert base.config_hash() == make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", 0,
                                                 "smoke", workers=2).config_hash()  # workers never change results
    fast = make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", 0, "smoke", amp="bf16",
                           channels_last="on", test_crops=10)
    assert fast.config_hash() != base.config_hash()
    store = ResultsStore(tmp_path / "r")
    rows, _ = run_one(fast, store, cache_dir=smoke_cache, progress=False)
    assert 0 <= rows[(rows.split == "test") & (rows.metric == "mean_auc")].value.iloc[0] <= 1
    config = store.config(fast.config_hash())
    assert config["speed"] == {"amp": "bfloat16", "channels_last": True, "compile": False}
    assert config["test_crops"] == 10 and "data_wait_share" in config["history"][0]
    with pytest.raises(ValueError, match="amp must be one of"):  # refused when the config is made, before any work
        make_run_config("domain-adaptation", "syn_txc", "scratch", "test_resnet", 1, "smoke", amp="fp8")


class _Killed(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("task", ["syn_txc", "syn_pxs"])
def test_a_run_killed_midway_resumes_from_its_last_epoch_with_the_same_numbers(task, tmp_path, smoke_cache,
                                                                                monkeypatch):
    from medbench_core import engine
    from medbench_core.experiments import make_run_config, run_one

    monkeypatch.setattr(engine, "STATE_EVERY_S", 0.0)  # save after every epoch (a real run: every 30 s)

    cfg = make_run_config("domain-adaptation", task, "synth_imagenet", "test_resnet", 0, "smoke", max_epochs=4,
                          patience=10)
    whole, _ = run_one(cfg, ResultsStore(tmp_path / "a"), cache_dir=smoke_cache, progress=False)

    def kill_after_two(epoch):
        if epoch == 1:
            raise _Killed  # as a job killed after its second epoch

    store = ResultsStore(tmp_path / "b")
    with pytest.raises(_Killed):
        run_one(cfg, store, cache_dir=smoke_cache, progress=False, on_epoch=kill_after_two)
    assert store.partial_path(cfg.config_hash()).exists() and not store.has(cfg.config_hash())
    seen = []
    resumed, cached = run_one(cfg, store, cache_dir=smoke_cache, progress=False, on_epoch=seen.append)
    assert not cached and seen == [2, 3]  # only the epochs after the last saved one
    key = ["split", "metric"]
    a, b = whole.set_index(key)["value"], resumed.set_index(key)["value"]
    assert a.to_dict() == b.to_dict()  # the same numbers as the uninterrupted run
    assert not store.partial_path(cfg.config_hash()).exists()
    history = store.config(cfg.config_hash())["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
