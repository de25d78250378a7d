"""Sweeps: a section's grid as independent runs keyed by config hash, run locally or on Slurm, resumable.

The results store is the truth about a sweep. A run is

- done: its rows are in the store (written atomically as the last step of ``run_one``, so a run is never half-done
  and never counted twice: one file per hash);
- running: a marker ``sweeps/running/<hash>.json`` names its process (host, pid) or Slurm job, and that process or
  job is alive;
- failed: ``sweeps/failed/<hash>.json`` holds its error and traceback;
- pending: anything else, including runs whose marker names a process or job that is gone (killed, cancelled,
  out of time). Re-submitting runs exactly the pending runs (and, with ``retry_failed``, the failed ones), so a
  sweep with nothing left to do returns at once.

``run_hash`` is the worker: it runs one stored config (``sweeps/configs/<hash>.json``) with the marker, and records a
failure instead of raising it. The local executor starts one process per run (one per GPU, or ``workers`` CPU
processes); the Slurm executor submits job arrays through submitit with resources from the task and profile.
Pre-training stages, real weights and prepared data are made or checked by the submitter before anything is
submitted, so workers never race to make them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .claims import claim_path, is_stale, owner, owner_alive, read_claim
from .paths import atomic_write_bytes

STATES = ("done", "running", "failed", "pending")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode(), sync=False)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class SweepDir:
    """The sweep bookkeeping inside a results store: configs, running markers, failures."""

    def __init__(self, results_dir: str | os.PathLike):
        from .results import ResultsStore

        self.store = ResultsStore(results_dir)
        self.root = Path(results_dir) / "sweeps"
        for sub in ("configs", "running", "failed", "slurm"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def config_path(self, h: str) -> Path:
        return self.root / "configs" / f"{h}.json"

    def marker_path(self, h: str) -> Path:
        return self.root / "running" / f"{h}.json"

    def failed_path(self, h: str) -> Path:
        return self.root / "failed" / f"{h}.json"

    def save_config(self, cfg) -> str:
        h = cfg.config_hash()
        if not self.config_path(h).is_file():
            _write_json(self.config_path(h), cfg.to_dict())
        return h

    def load_config(self, h: str):
        from .experiments import RunConfig

        d = _read_json(self.config_path(h))
        if d is None:
            raise FileNotFoundError(f"no stored config for run {h} in {self.root / 'configs'}")
        return RunConfig(**d)

    def marker_alive(self, marker: dict) -> bool:
        """Is the process or Slurm job a running marker names still alive? (The rule claims use too.)"""
        return owner_alive(marker)

    def state(self, h: str) -> tuple[str, dict | None]:
        if self.store.has(h):
            return "done", None
        marker = _read_json(self.marker_path(h))
        if marker is not None and self.marker_alive(marker):
            return "running", marker
        path = claim_path(self.store.root, h)  # trained right now by another command (`medbench run`, a book)
        claim = read_claim(path)
        if claim is not None and not is_stale(path, claim):
            return "running", claim
        failed = _read_json(self.failed_path(h))
        if failed is not None:
            return "failed", failed
        return "pending", marker  # a stale marker: its process is gone


def run_hash(results_dir: str, h: str, cache_dir: str | None = None) -> str:
    """Worker: run the stored config ``h`` unless it is done; mark it running meanwhile; record a failure.

    Returns "done", "skipped" (already done) or "failed". Safe to call twice: ``run_one`` reads a finished run from
    the store, and a finished run is one file, so it can never be counted twice.
    """
    from .experiments import run_one
    from .inputs import resolve_inputs

    sd = SweepDir(results_dir)
    if sd.store.has(h):
        return "skipped"
    marker = owner()
    _write_json(sd.marker_path(h), marker)
    try:
        cfg = sd.load_config(h)
        if cfg.config_hash() != h:
            raise ValueError(f"the stored config {sd.config_path(h)} does not match its hash {h} (edited by hand?); "
                             "restore it, or delete it and submit the sweep again")
        run_one(cfg, sd.store, resolve_inputs(cfg, cache_dir), progress=False)
    except Exception as e:  # noqa: BLE001 - recorded, listed and retried by the sweep
        _write_json(sd.failed_path(h), {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                                        "at": _now(), **marker})
        return "failed"
    finally:
        sd.marker_path(h).unlink(missing_ok=True)
    sd.failed_path(h).unlink(missing_ok=True)
    return "done"


def status(grid, results_dir) -> pd.DataFrame:
    """One row per run of ``grid``: hash, task, init, arch, fraction, seed, state, and the error or job."""
    sd = SweepDir(results_dir)
    rows = []
    for cfg in grid.configs:
        h = cfg.config_hash()
        state, info = sd.state(h)
        rows.append({"hash": h, "task": cfg.task, "arch": cfg.arch, "init": cfg.init, "fraction": cfg.fraction,
                     "seed": cfg.seed, "state": state,
                     "detail": (info or {}).get("error", "") if state == "failed" else
                     (info or {}).get("slurm_job_id") or (f"pid {info['pid']}" if info and "pid" in info else "")})
    return pd.DataFrame(rows)


def summary_line(df: pd.DataFrame) -> str:
    counts = df["state"].value_counts()
    return " / ".join(f"{counts.get(s, 0)} {s}" for s in STATES)


@dataclass(frozen=True)
class Resources:
    timeout_min: int
    cpus: int
    gpus: int
    mem_gb: int


def run_resources(task_name: str, profile: str) -> Resources:
    """Per-run resources for a scheduler: the profile's job (``Profile.job``), with a segmentation run's longer
    limit (more epochs, a longer patience) and the memory of 512 px images (DRIVE)."""
    from .profiles import get_profile
    from .tasks import CLASSIFICATION, create_task

    t, job = create_task(task_name, profile), get_profile(profile).job
    return Resources(timeout_min=job.minutes if t.kind == CLASSIFICATION else job.segmentation_minutes,
                     cpus=job.cpus, gpus=job.gpus, mem_gb=job.mem_gb_512 if t.protocol.image_size >= 512 else job.mem_gb)


def prepare_grid(grid, results_dir, cache_dir=None) -> None:
    """Everything workers share, made once by the submitter: data checks, real weights, pre-training stages."""
    from .inputs import prepare_inputs

    sd = SweepDir(results_dir)
    prepare_inputs([c for c in grid.configs if not sd.store.has(c.config_hash())], cache_dir, progress=False)


def _selected(grid, results_dir, retry_failed: bool) -> list[str]:
    sd = SweepDir(results_dir)
    out = []
    for cfg in grid.configs:
        h = sd.save_config(cfg)
        state, _ = sd.state(h)
        if state == "pending" or (state == "failed" and retry_failed):
            out.append(h)
    return list(dict.fromkeys(out))


def run_local(grid, results_dir, *, cache_dir=None, workers: int | None = None, retry_failed: bool = False,
              log=print) -> dict:
    """Run the pending runs of ``grid`` here: one process per run, ``workers`` at a time (default: one per GPU, or
    one on a CPU machine); each GPU process sees only its own GPU."""
    import torch

    t0 = time.perf_counter()
    todo = _selected(grid, results_dir, retry_failed)
    if not todo:
        return {"submitted": 0, "seconds": round(time.perf_counter() - t0, 2)}
    prepare_grid(grid, results_dir, cache_dir)
    gpus = list(range(torch.cuda.device_count()))
    slots = [str(g) for g in gpus] if gpus else [None] * (workers or 1)
    if workers and gpus:
        slots = slots[:workers]
    running: dict[subprocess.Popen, tuple[str, str | None]] = {}
    queue, results = list(todo), {"done": 0, "failed": 0}
    while queue or running:
        free = [s for s in slots if s not in {v[1] for v in running.values()}] if gpus else \
            [None] * (len(slots) - len(running))
        while queue and free:
            h, slot = queue.pop(0), free.pop(0)
            env = dict(os.environ)
            if slot is not None:
                env["CUDA_VISIBLE_DEVICES"] = slot
            cmd = [sys.executable, "-m", "medbench_core.sweep", "worker", str(results_dir), h]
            if cache_dir:
                cmd.append(str(cache_dir))
            running[subprocess.Popen(cmd, env=env)] = (h, slot)
        time.sleep(0.2)
        for p in [p for p in running if p.poll() is not None]:
            h, _ = running.pop(p)
            state, info = SweepDir(results_dir).state(h)
            results["done" if state == "done" else "failed"] += 1
            log(f"{h}: {state}" + (f" ({info.get('error')})" if state == "failed" and info else ""))
    return {"submitted": len(todo), **results, "seconds": round(time.perf_counter() - t0, 2)}


def submit_slurm(grid, results_dir, *, cache_dir=None, retry_failed: bool = False, partition: str | None = None,
                 parallelism: int = 64, log=print) -> dict:
    """Submit the pending runs of ``grid`` as Slurm job arrays through submitit (one array per resource shape).
    Returns at once with the job ids; ``status`` follows progress from the store."""
    import submitit

    t0 = time.perf_counter()
    todo = _selected(grid, results_dir, retry_failed)
    if not todo:
        return {"submitted": 0, "jobs": [], "seconds": round(time.perf_counter() - t0, 2)}
    prepare_grid(grid, results_dir, cache_dir)
    sd = SweepDir(results_dir)
    by_res: dict[Resources, list[str]] = {}
    for h in todo:
        by_res.setdefault(run_resources(sd.load_config(h).task, grid.profile), []).append(h)
    jobs = []
    for res, hashes in by_res.items():
        ex = submitit.AutoExecutor(folder=str(sd.root / "slurm" / "%j"), cluster="slurm")
        params = dict(timeout_min=res.timeout_min, cpus_per_task=res.cpus, mem_gb=res.mem_gb,
                      slurm_array_parallelism=parallelism, name=f"medbench-{grid.section.key}")
        if res.gpus:
            params["gpus_per_node"] = res.gpus
        if partition:
            params["slurm_partition"] = partition
        ex.update_parameters(**params)
        submitted = ex.map_array(run_hash, [str(results_dir)] * len(hashes), hashes,
                                 [str(cache_dir) if cache_dir else None] * len(hashes))
        for h, job in zip(hashes, submitted):
            # the marker exists from submission on, so a re-submission while queued does not duplicate the run
            _write_json(sd.marker_path(h), {"slurm_job_id": job.job_id, "submitted": _now()})
        jobs += [j.job_id for j in submitted]
        log(f"submitted {len(hashes)} runs as array {submitted[0].job_id.split('_')[0]} "
            f"({res.cpus} CPUs, {res.gpus} GPUs, {res.mem_gb} GB, {res.timeout_min} min each)")
    return {"submitted": len(todo), "jobs": jobs, "seconds": round(time.perf_counter() - t0, 2)}


def _main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "worker":
        run_hash(argv[1], argv[2], argv[3] if len(argv) > 3 else None)
        return 0
    print("usage: python -m medbench_core.sweep worker RESULTS_DIR HASH [CACHE_DIR]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
