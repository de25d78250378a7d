"""Independent runs and pre-training chains in parallel worker processes: sized to the machine, each made once."""
import pytest

import medbench_core as mb
from medbench_core import engine, workers
from medbench_core.errors import BadValueError
from medbench_core.results import ResultsStore


def test_workers_are_sized_to_the_cores_and_the_jobs(monkeypatch):
    monkeypatch.delenv("MEDBENCH_WORKERS", raising=False)
    monkeypatch.delenv("MEDBENCH_THREADS_PER_WORKER", raising=False)
    monkeypatch.setattr(workers, "_cores", lambda: 2)
    assert workers.resolve_workers(40) == (2, 1)  # two one-thread processes on 2 cores (measured best)
    assert workers.resolve_workers(2) == (1, 0)  # too few jobs for a worker's start-up to pay
    assert workers.resolve_workers(40, "cuda") == (1, 0)  # the GPU is one process's
    monkeypatch.setattr(workers, "_cores", lambda: 16)
    monkeypatch.setattr(workers, "_memory_gb", lambda: 6.0)
    assert workers.resolve_workers(40) == (4, 1)  # memory caps them: 1.5 GB each
    monkeypatch.setenv("MEDBENCH_WORKERS", "3")
    assert workers.resolve_workers(40) == (3, 5)  # the cores shared among the processes given
    assert workers.resolve_workers(2) == (2, 8)  # never more than the jobs
    monkeypatch.setenv("MEDBENCH_WORKERS", "1")
    assert workers.resolve_workers(40) == (1, 0)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("MEDBENCH_WORKERS", bad)
        with pytest.raises(BadValueError, match="MEDBENCH_WORKERS"):
            workers.resolve_workers(40)


def _double(x):
    return 2 * x


def _fail_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


def test_run_parallel_keeps_the_order_and_raises_the_first_error():
    seen = []
    assert workers.run_parallel(_double, [1, 2, 3, 4], workers=2, threads=1, probe=False,
                                on_done=lambda j, r: seen.append((j, r))) == [2, 4, 6, 8]
    assert sorted(seen) == [(1, 2), (2, 4), (3, 6), (4, 8)]
    with pytest.raises(ValueError, match="three"):
        workers.run_parallel(_fail_on_three, [1, 2, 3, 4], workers=2, threads=1, probe=False)


def _pid(x):
    import os

    return os.getpid()


def test_short_jobs_stay_in_this_process_long_ones_go_to_workers(monkeypatch):
    import os

    assert set(workers.run_parallel(_pid, list(range(5)), workers=2, threads=1)) == {os.getpid()}
    monkeypatch.setattr(workers, "MIN_JOB_S", 0.0)  # as if the first job had taken long
    pids = workers.run_parallel(_pid, list(range(5)), workers=2, threads=1)
    assert pids[0] == os.getpid() and os.getpid() not in pids[1:]


@pytest.mark.slow
def test_a_grid_trains_each_run_once_across_workers(tmp_path, monkeypatch):
    """Two chains that start from the same ImageNet-like stage, made at once in two workers on a fresh cache: the
    shared stage is made once; then a grid's runs in workers: each trains once, a second call trains nothing, and
    no claim is left behind."""
    from medbench_core.inputs import _make_chain

    cache, results = tmp_path / "cache", tmp_path / "results"
    jobs = [("test_resnet", init, "smoke", str(cache), "auto", False)
            for init in ("synth_imagenet_chest", "synth_imagenet")]
    paths = workers.run_parallel(_make_chain, jobs, workers=2, threads=1, probe=False)
    made = sorted(p.name.split("-")[0] for p in (cache / "pretrain").glob("*.pt"))
    assert made == ["chest", "natural"]  # natural once, though both chains needed it at the same time
    assert paths[1].endswith(".pt") and "natural" in paths[1]

    monkeypatch.setenv("MEDBENCH_WORKERS", "2")
    monkeypatch.setattr(workers, "MIN_JOB_S", 0.0)  # smoke runs are short: use the workers all the same
    grid = mb.validate_section_params("domain-adaptation", profile="smoke", tasks=["syn_txc"],
                                      inits=["synth_imagenet", "synth_imagenet_chest", "scratch"],
                                      protocol={"max_epochs": 1})
    out = mb.run_grid(grid, results, cache_dir=cache, progress=False)
    assert out["trained"] == len(grid.configs) == 6 and out["cached"] == 0
    store = ResultsStore(results)
    assert all(store.has(h) for h in grid.hashes)
    assert len(list((cache / "pretrain").glob("*.pt"))) == 2  # nothing made again
    assert not list(results.glob("claims/*.json")) and not list((cache / "pretrain").glob("claims/*.json"))
    again = mb.run_grid(grid, results, cache_dir=cache, progress=False)
    assert again["trained"] == 0 and again["cached"] == 6


def test_a_short_run_writes_no_training_state(tmp_path, monkeypatch):
    saves = []
    monkeypatch.setattr(engine, "_save_training_state", lambda *a, **k: saves.append(a[0]))
    import torch

    from medbench_core.data import BatchLoader
    from medbench_core.inputs import prepare_inputs, resolve_inputs

    cfg = mb.make_run_config("granularity", "syn_txc", "scratch", "test_resnet", 0, "smoke", max_epochs=3,
                             patience=10)
    prepare_inputs([cfg], tmp_path)
    inp = resolve_inputs(cfg, tmp_path)
    model = mb.create_model(cfg.arch, inp.task)
    io = dict(device=torch.device("cpu"), workers=0, mean=inp.mean, std=inp.std)
    fit_args = dict(device=torch.device("cpu"), optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=0.0, max_epochs=3,
                    patience=10, scheduler=cfg.scheduler, lr_factor=cfg.lr_factor, lr_patience=cfg.lr_patience,
                    loss=cfg.loss, progress=False, checkpoint_path=tmp_path / "state.pt")
    engine.fit(model, BatchLoader(inp.data["train"], 16, train=True, seed=0, **io),
               BatchLoader(inp.data["val"], 64, train=False, **io), inp.task, **fit_args)
    assert saves == []  # three epochs of a few seconds: nothing to lose, nothing written
    monkeypatch.setattr(engine, "STATE_EVERY_S", 0.0)
    engine.fit(model, BatchLoader(inp.data["train"], 16, train=True, seed=0, **io),
               BatchLoader(inp.data["val"], 64, train=False, **io), inp.task, **fit_args)
    assert len(saves) == 2  # after epochs 0 and 1 (not after the last)


@pytest.mark.slow
def test_a_script_without_a_main_guard_can_use_the_workers(tmp_path):
    """``spawn`` runs the caller's main script again in each worker unless it is hidden: a researcher's plain script
    calling run_grid must not start its whole work again (or fail) in every worker."""
    import os
    import subprocess
    import sys

    script = tmp_path / "plain.py"
    script.write_text(
        "import medbench_core as mb\nfrom medbench_core import workers\nworkers.MIN_JOB_S = 0.0\n"
        "print('started', flush=True)\n"
        "g = mb.validate_section_params('granularity', profile='smoke', tasks=['syn_txc'], num_seeds=2)\n"
        f"print(mb.run_grid(g, {str(tmp_path / 'res')!r}, cache_dir={str(tmp_path / 'cache')!r}, progress=False))\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MEDBENCH_WORKERS": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("started") == 1 and "'trained': 6" in proc.stdout


def test_a_bad_worker_count_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    from medbench_core.cli import main

    monkeypatch.setenv("MEDBENCH_WORKERS", "lots")
    code = main(["run", "granularity", "--profile", "smoke", "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "MEDBENCH_WORKERS='lots'" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written
