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

from .paths import atomic_save_npz, atomic_write_bytes

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


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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

    def partial_path(self, config_hash: str) -> Path:
        """Where an unfinished run keeps its training state (resumed if the run is started again)."""
        return self.root / "partial" / f"{config_hash}.pt"

    def has(self, config_hash: str) -> bool:
        """True when the run finished and its rows are stored."""
        return self._path("runs", config_hash).exists()

    def rows(self, config_hash: str) -> pd.DataFrame:
        return pd.read_csv(self._path("runs", config_hash), dtype=_DTYPES, keep_default_na=False)

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

    def hashes(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "runs").glob("*.csv"))

    def load(self, hashes=None) -> pd.DataFrame:
        """The long table of the given runs (default: all), in a stable order."""
        hashes = self.hashes() if hashes is None else [h for h in hashes if self.has(h)]
        if not hashes:
            return pd.DataFrame(columns=COLUMNS)
        df = pd.concat([self.rows(h) for h in hashes], ignore_index=True)
        return df.sort_values(["task", "init", "seed", "split", "metric"], kind="stable").reset_index(drop=True)


class ResultsImportError(ValueError):
    """A results file that cannot be imported; the message names the first bad line."""


_RUN_LEVEL = ("section", "task", "init", "arch", "seed", "fraction", "profile", "medbench_version", "git_sha",
              "torch_version", "device", "synthetic")
_SPLITS = ("train", "val", "test")


def _check_row(line: int, row: dict, known: dict) -> dict:
    """Parse and check one CSV row; raise naming ``line`` and the column at fault."""
    def bad(col, why):
        raise ResultsImportError(f"line {line}: column {col!r} {why} (value {row.get(col)!r})")

    out = dict(row)
    for col in ("value", "fraction", "wall_seconds"):
        try:
            out[col] = float(row[col])
        except (TypeError, ValueError):
            bad(col, "is not a number")
        if not np.isfinite(out[col]):
            bad(col, "is not finite")
    try:
        out["seed"] = int(row["seed"])
    except (TypeError, ValueError):
        bad("seed", "is not an integer")
    if not 0 < out["fraction"] <= 1:
        bad("fraction", "must be in (0, 1]")
    if out["wall_seconds"] < 0:
        bad("wall_seconds", "is negative")
    if row["split"] not in _SPLITS:
        bad("split", f"must be one of {', '.join(_SPLITS)}")
    if not row["metric"]:
        bad("metric", "is empty")
    h = row["config_hash"] or ""
    if len(h) != 16 or any(c not in "0123456789abcdef" for c in h):
        bad("config_hash", "must be 16 lower-case hex digits")
    for col, names in known.items():
        if row[col] not in names:
            bad(col, f"is not a known {col}; valid: {', '.join(names)}")
    if str(row["synthetic"]).lower() not in ("true", "false"):
        bad("synthetic", "must be True or False")
    out["synthetic"] = str(row["synthetic"]).lower() == "true"
    return out


def read_results_file(path: str | os.PathLike, *, known: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """Read and validate a long results table written elsewhere (``medbench results export``). ``known`` holds the
    valid names per column (``section``, ``task``, ``init``, ``arch``, ``profile``; the store itself knows no
    registry: ``medbench_core.sections.known_names()`` gives them). Returns the rows of each run, keyed by config
    hash; raises ``ResultsImportError`` naming the first bad line."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist")
    runs: dict[str, list[dict]] = {}
    first_line: dict[str, int] = {}
    seen: dict[tuple, int] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ResultsImportError(f"line 1: the header lacks the columns {missing}; expected {', '.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise ResultsImportError(f"line {line}: wrong number of fields (expected {len(reader.fieldnames)})")
            r = _check_row(line, row, known)
            h = r["config_hash"]
            key = (h, r["split"], r["metric"])
            if key in seen:
                raise ResultsImportError(f"line {line}: duplicate of line {seen[key]} (run {h}, {r['split']} "
                                   f"{r['metric']})")
            seen[key] = line
            if h in runs:
                ref = runs[h][0]
                for col in _RUN_LEVEL:
                    if r[col] != ref[col]:
                        raise ResultsImportError(f"line {line}: run {h} has {col} {r[col]!r} here but {ref[col]!r} on "
                                           f"line {first_line[h]}")
            else:
                runs[h], first_line[h] = [], line
            runs[h].append(r)
    if not runs:
        raise ResultsImportError(f"{path} holds no result rows")
    for h, rows in runs.items():
        if not any(r["split"] == "test" and r["metric"] in ("mean_auc", "dice") for r in rows):
            raise ResultsImportError(f"line {first_line[h]}: run {h} has no test-split mean_auc or dice row")
    return {h: pd.DataFrame(rows)[COLUMNS] for h, rows in runs.items()}


def import_results(path: str | os.PathLike, results_dir: str | os.PathLike, *, known: dict[str, list[str]]) -> dict:
    """Add the runs of a results file to the store in ``results_dir``. The whole file is validated first (format,
    names, consistency, and conflicts with runs already stored); if anything is wrong nothing is written, not even
    an empty store. Runs already stored with identical rows are skipped. ``known``: as for ``read_results_file``."""
    runs = read_results_file(path, known=known)
    store = ResultsStore(results_dir)  # opened (or created) only now that the file is valid
    new, same = {}, []
    for h, rows in runs.items():
        if store.has(h):
            old = store.rows(h)
            a = old.set_index(["split", "metric"])["value"].sort_index()
            b = rows.set_index(["split", "metric"])["value"].sort_index()
            if not (a.index.equals(b.index) and np.allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-12)):
                raise ResultsImportError(f"run {h} is already in {store.root} with other values; nothing was imported "
                                   "(remove one of them first)")
            same.append(h)
        else:
            new[h] = rows
    imported_at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    for h, rows in new.items():
        config = {"config_hash": h, "imported_from": str(Path(path).resolve()), "imported_at": imported_at,
                  **{c: rows.iloc[0][c] for c in _RUN_LEVEL}}
        store.write_run(h, rows, json.loads(json.dumps(config, default=str)), {})
    return {"imported": len(new), "already_present": len(same), "rows": int(sum(len(r) for r in new.values()))}


def export_results(store: ResultsStore, path: str | os.PathLike, *, profile: str | None = None) -> int:
    """Write the long table of ``store`` (optionally one ``profile``) to ``path`` as CSV, for
    ``medbench results import`` elsewhere. Returns the number of rows."""
    df = store.load()
    if profile is not None:
        df = df[df["profile"] == profile]
    path = Path(path)
    _atomic_write_text(path, df[COLUMNS].to_csv(index=False))
    return len(df)
