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

from .errors import BadFileError, BadPathError
from .paths import atomic_save_npz, atomic_write_bytes, cleaned_on_failure, sync_filesystem

COLUMNS = [
    "section", "task", "init", "arch", "seed", "fraction", "profile", "split", "metric", "value",
    "config_hash", "medbench_version", "git_sha", "torch_version", "device", "wall_seconds", "finished_at",
    "synthetic",
]


# Text columns stay text: a hash such as "9e81..." or a sha such as "1234567" must not become a number.
_DTYPES = {"section": str, "task": str, "init": str, "arch": str, "seed": int, "fraction": float, "profile": str,
           "split": str, "metric": str, "value": float, "config_hash": str, "medbench_version": str,
           "git_sha": str, "torch_version": str, "device": str, "wall_seconds": float, "finished_at": str,
           "synthetic": bool}


def _atomic_write_text(path: Path, text: str, *, sync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


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

    def __init__(self, root: str | os.PathLike, *, create: bool = True):
        """Open the store in ``root``, creating its folders; with ``create=False`` open an existing store only,
        creating nothing (``BadPathError`` when ``root`` holds none)."""
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise BadPathError(f"{self.root} is a file, not a results store (a folder); check --results-dir")
        if not create:
            if not (self.root / "runs").is_dir():
                raise BadPathError(f"no results store at {self.root} (no runs/ folder); check --results-dir")
            return
        for sub in ("runs", "cases", "checkpoints"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    FOLDERS = ("runs", "cases", "checkpoints", "partial", "claims")  # where a training run writes

    def check_writable(self) -> None:
        """Before any training: every folder a run writes into is a folder (or can be made) and writable, so a run
        that trains can be stored. Raises ``BadPathError`` naming the first that is not."""
        from .paths import check_writable_dir

        for sub in self.FOLDERS:
            path = check_writable_dir(self.root / sub, f"the results store's {sub}/ folder")
            if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
                raise BadPathError(f"the results store's {sub}/ folder {path} is read-only; make it writable or give "
                                   "another --results-dir")

    def _path(self, kind: str, h: str) -> Path:
        ext = {"runs": "csv", "config": "json", "cases": "npz", "checkpoints": "pt"}[kind]
        return self.root / ("runs" if kind == "config" else kind) / f"{h}.{ext}"

    def partial_path(self, config_hash: str) -> Path:
        """Where an unfinished run keeps its training state (resumed if the run is started again)."""
        return self.root / "partial" / f"{config_hash}.pt"

    def has(self, config_hash: str) -> bool:
        """True when the run finished and its rows are stored."""
        return self._path("runs", config_hash).exists()

    def rows(self, config_hash: str) -> pd.DataFrame:
        """A run's rows. A metric the run could not define (an AUC on a split with one label value) is stored as an
        empty cell and read as NaN: a defined missing value, never a failure of the whole store."""
        path = self._path("runs", config_hash)
        try:
            df = pd.read_csv(path, dtype=_DTYPES, keep_default_na=False, na_values={"value": ["", "nan", "NaN"]})
            missing = [c for c in COLUMNS if c not in df.columns]
            if missing or df.empty:
                raise ValueError(f"no rows or no {missing[0]} column" if missing else "no rows")
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise BadFileError(f"{path} cannot be read ({str(e).splitlines()[0] if str(e) else type(e).__name__}): "
                               f"it was cut short or edited; delete it to train run {config_hash} again, or restore "
                               "it from a backup") from None
        return df

    def cases(self, config_hash: str) -> dict[str, np.ndarray]:
        with np.load(self._path("cases", config_hash)) as z:
            return {k: z[k] for k in z.files}

    def config(self, config_hash: str) -> dict:
        return json.loads(self._path("config", config_hash).read_text())

    def checkpoint_path(self, config_hash: str) -> Path:
        return self._path("checkpoints", config_hash)

    def save_checkpoint(self, config_hash: str, checkpoint: dict) -> Path:
        """Write a run's fine-tuned weights atomically (temp file, then rename)."""
        import torch

        path = self.checkpoint_path(config_hash)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with cleaned_on_failure(tmp, path):
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        return path

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

    def add_runs(self, runs) -> int:
        """Store many finished runs at once (an import): ``runs`` yields ``(config_hash, rows_csv_text, config,
        cases_npz_bytes)``. Each run's cases and config are written, and its rows to a temporary name, without a sync
        each; then one sync of the file system, and only then each rows file is renamed into place (a run's commit
        point, as in ``write_run``). Interrupted or failing, it leaves no temporary file and no partial run: the runs
        renamed so far are complete, the others absent. Returns the number of runs stored."""
        pending: list[tuple[Path, Path]] = []
        done = 0
        try:
            for h, text, config, cases in runs:
                atomic_write_bytes(self._path("cases", h), cases, sync=False)
                _atomic_write_text(self._path("config", h), json.dumps(config, indent=1, sort_keys=True), sync=False)
                final = self._path("runs", h)
                tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
                with cleaned_on_failure(tmp, final):
                    tmp.write_bytes(text.encode("utf-8"))
                pending.append((tmp, final))
            sync_filesystem(self.root)
            for tmp, final in pending:
                os.replace(tmp, final)
                done += 1
            sync_filesystem(self.root)
        finally:
            for tmp, _ in pending[done:]:
                tmp.unlink(missing_ok=True)
        return done

    def hashes(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "runs").glob("*.csv"))

    def load(self, hashes=None) -> pd.DataFrame:
        """The long table of the given runs (default: all), in a stable order."""
        hashes = self.hashes() if hashes is None else [h for h in hashes if self.has(h)]
        if not hashes:
            return pd.DataFrame(columns=COLUMNS)
        df = pd.concat([self.rows(h) for h in hashes], ignore_index=True)
        return df.sort_values(["task", "init", "seed", "split", "metric"], kind="stable").reset_index(drop=True)


RUN_CONFIG = "run_config"  # optional column: the run's whole configuration (JSON), written by export


def config_cell(config: dict) -> str:
    """A run's configuration as the ``run_config`` cell holds it (compact JSON, sorted keys)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
