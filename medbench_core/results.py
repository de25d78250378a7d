"""The results store: one tidy long table, one row per (run, split, metric), appended a run at a time.

Layout of a store directory::

    runs/<config_hash>.csv     the run's rows; written last, atomically: its presence means the run is complete
    runs/<config_hash>.json    the run's full config and provenance
    cases/<config_hash>.npz    per-case values (scores and labels, or one Dice per image) for statistics
    checkpoints/<config_hash>.pt   the best (lowest validation loss) fine-tuned weights

Each file is written to a temporary name and renamed into place, so killing a run at any moment loses at most that
run and never leaves a partial or corrupt row. The long table is the union of ``runs/*.csv``; wide tables are views.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from .data import atomic_save_npz

COLUMNS = [
    "section", "task", "init", "arch", "seed", "fraction", "profile", "split", "metric", "value",
    "config_hash", "medbench_version", "git_sha", "torch_version", "device", "wall_seconds", "finished_at",
    "synthetic",
]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def git_sha() -> str:
    """The checkout's commit (with ``+dirty`` for local changes), or ``unknown`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class ResultsStore:
    """A directory of completed runs.

    Example:
        >>> import tempfile
        >>> store = ResultsStore(tempfile.mkdtemp())
        >>> store.has("0123456789abcdef"), list(store.load().columns[:3])
        (False, ['section', 'task', 'init'])
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        for sub in ("runs", "cases", "checkpoints"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _path(self, kind: str, h: str) -> Path:
        ext = {"runs": "csv", "config": "json", "cases": "npz", "checkpoints": "pt"}[kind]
        return self.root / ("runs" if kind == "config" else kind) / f"{h}.{ext}"

    def has(self, config_hash: str) -> bool:
        """True when the run finished and its rows are stored."""
        return self._path("runs", config_hash).exists()

    def rows(self, config_hash: str) -> pd.DataFrame:
        return pd.read_csv(self._path("runs", config_hash))

    def cases(self, config_hash: str) -> dict[str, np.ndarray]:
        with np.load(self._path("cases", config_hash)) as z:
            return {k: z[k] for k in z.files}

    def config(self, config_hash: str) -> dict:
        return json.loads(self._path("config", config_hash).read_text())

    def checkpoint_path(self, config_hash: str) -> Path:
        return self._path("checkpoints", config_hash)

    def write_run(self, config_hash: str, rows: pd.DataFrame, config: dict, cases: dict[str, np.ndarray]) -> None:
        """Store a finished run: cases and config first, the rows last (the commit point)."""
        missing = [c for c in COLUMNS if c not in rows.columns]
        if missing:
            raise ValueError(f"result rows lack columns {missing}")
        if (rows["config_hash"] != config_hash).any():
            raise ValueError("every row must carry the run's config_hash")
        atomic_save_npz(self._path("cases", config_hash), **cases)
        _atomic_write_text(self._path("config", config_hash), json.dumps(config, indent=1, sort_keys=True))
        _atomic_write_text(self._path("runs", config_hash), rows[COLUMNS].to_csv(index=False))

    def hashes(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "runs").glob("*.csv"))

    def load(self, hashes=None) -> pd.DataFrame:
        """The long table of the given runs (default: all), in a stable order."""
        hashes = self.hashes() if hashes is None else [h for h in hashes if self.has(h)]
        if not hashes:
            return pd.DataFrame(columns=COLUMNS)
        df = pd.concat([self.rows(h) for h in hashes], ignore_index=True)
        return df.sort_values(["task", "init", "seed", "split", "metric"], kind="stable").reset_index(drop=True)
