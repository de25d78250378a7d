"""One progress line per section while its notebook runs in papermill's kernel (another process): which section,
runs done / total, pre-training stages made / total, elapsed time and an estimate of the time left, from the wall
times the finished runs recorded in the store.

On a terminal the line is redrawn in place; in a log file (anything that is not a terminal) one line is written per
finished run or stage instead, so that the log reads top to bottom. Nothing here touches the runs: it only looks at
the results store and the pre-training cache.
"""
from __future__ import annotations

import csv
import sys
import threading
import time
from pathlib import Path


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def stage_paths(configs, cache_dir=None) -> list[Path]:
    """The pre-training checkpoints the runs ``configs`` need that are made here (released weights are fetched or
    imported, not made), each once."""
    from .pretrain import _stage_path, stage_configs

    paths = {}
    for init, arch, profile in dict.fromkeys((c.init, c.arch, c.profile) for c in configs):
        for st in stage_configs(init, arch, profile):
            paths.setdefault(_stage_path(st, cache_dir), None)
    return list(paths)


def _wall_seconds(path: Path) -> float | None:
    """The ``wall_seconds`` a stored run recorded (first row of its CSV), or None if unreadable."""
    try:
        with open(path, newline="") as f:
            row = next(csv.DictReader(f))
        return float(row["wall_seconds"])
    except (OSError, StopIteration, KeyError, ValueError):
        return None


class SectionProgress:
    """Watch ``configs`` (RunConfigs) of ``label`` land in ``results_dir`` and their pre-training stages in the
    cache; use as a context manager around the notebook's execution."""

    def __init__(self, label: str, configs, results_dir, cache_dir=None, *, stream=None, interval: float = 1.0):
        self.label, self.interval = label, interval
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.names = {c.config_hash(): f"{c.task} {c.arch} {c.init} {c.fraction:g} seed {c.seed}" for c in configs}
        # what a run costs depends on its task, architecture and training fraction: the estimate looks for stored
        # runs of the same kind, from the most to the least alike
        self.kinds = {c.config_hash(): ((c.task, c.arch, c.fraction), (c.task, c.arch), (c.task,)) for c in configs}
        self.runs_dir = Path(results_dir) / "runs"
        self.stages = stage_paths(configs, cache_dir)
        self.walls: dict[str, float] = {}
        self.done: set[str] = set()
        self.made: set[Path] = set()
        self.spans: list[tuple[float, float]] = []  # (start, end) of each run finished while watching
        self._watching = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.perf_counter()

    # -- what is done --

    def poll(self) -> tuple[list[str], list[Path]]:
        """Runs and stages finished since the last poll."""
        new_runs = [h for h in self.names if h not in self.done and (self.runs_dir / f"{h}.csv").is_file()]
        now = time.perf_counter()
        for h in new_runs:
            self.done.add(h)
            w = _wall_seconds(self.runs_dir / f"{h}.csv")
            if w is not None:
                self.walls[h] = w
                if self._watching:
                    self.spans.append((now - w, now))
        new_stages = [p for p in self.stages if p not in self.made and p.is_file()]
        self.made.update(new_stages)
        return new_runs, new_stages

    def estimate(self) -> float | None:
        """Seconds left: each run not yet stored takes the mean recorded wall time of the stored runs most like it
        (same task, architecture and training fraction; else same task and architecture; else same task; else all),
        divided by the measured ``concurrency``; None before any run has recorded one."""
        if not self.walls:
            return None
        overall = sum(self.walls.values()) / len(self.walls)
        seen: dict[tuple, list[float]] = {}
        for h, w in self.walls.items():
            for kind in self.kinds[h]:
                seen.setdefault(kind, []).append(w)
        left = 0.0
        for h in self.names:
            if h not in self.done:
                ws = next((seen[k] for k in self.kinds[h] if k in seen), None)
                left += sum(ws) / len(ws) if ws else overall
        return left / self.concurrency()

    def concurrency(self) -> float:
        """How many runs train at once, as measured: the training seconds of the runs finished while watching over
        the time from the first one's start to the last one's end (1 until two have finished; parallel workers,
        ``workers.resolve_workers``, make it more than 1)."""
        if len(self.spans) < 2:
            return 1.0
        busy = sum(end - start for start, end in self.spans)
        window = max(end for _, end in self.spans) - min(start for start, _ in self.spans)
        return max(1.0, busy / window) if window > 0 else 1.0

    def line(self, label: bool = True) -> str:
        elapsed = time.perf_counter() - self.t0
        parts = [f"{self.label + ': ' if label else ''}runs {len(self.done)}/{len(self.names)}"]
        if self.stages:
            parts.append(f"pre-training {len(self.made)}/{len(self.stages)}")
        parts.append(f"elapsed {_clock(elapsed)}")
        left = self.estimate()
        if len(self.done) == len(self.names):
            parts.append("done")
        elif left is None:
            parts.append("time left: estimated after the first run")
        else:
            parts.append(f"about {_clock(left)} left")
        return " · ".join(parts)

    # -- drawing --

    def _write(self, text: str, *, end: str = "\n") -> None:
        try:
            self.stream.write(text + end)
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream must not break the run
            pass

    def _draw(self, new_runs=(), new_stages=()) -> None:
        if self.live:
            self._write("\r\033[K" + self.line(), end="")
            return
        for p in new_stages:
            self._write(f"{self.label}: pre-training stage made ({p.name}) · {self.line(label=False)}")
        for h in new_runs:
            wall = f" in {self.walls[h]:.1f} s" if h in self.walls else ""
            self._write(f"{self.label}: finished {self.names[h]}{wall} · {self.line(label=False)}")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            runs, stages = self.poll()
            if self.live or runs or stages:
                self._draw(runs, stages)

    def __enter__(self) -> "SectionProgress":
        self.poll()  # what the store already holds is not news
        self._watching = True
        self.t0 = time.perf_counter()
        before = len(self.done)
        self._write(f"{self.label}: {before} of {len(self.names)} runs already stored"
                    + (f", {len(self.made)} of {len(self.stages)} pre-training stages made" if self.stages else ""),
                    end="\n")
        self._thread = threading.Thread(target=self._loop, name=f"progress-{self.label}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        runs, stages = self.poll()
        self._draw(runs, stages)
        if self.live:
            self._write("")  # keep the last state of the line
        if exc_type is not None:
            self._write(f"{self.label}: stopped after {_clock(time.perf_counter() - self.t0)} "
                        f"({len(self.done)}/{len(self.names)} runs stored)")
