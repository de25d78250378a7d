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

import csv
import io
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadFileError, BadPathError, BadValueError
from .paths import atomic_save_npz, atomic_write_bytes, output_target, write_output_bytes

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


class ResultsImportError(BadFileError):
    """A results file that cannot be imported; the message names the file and its first bad line."""


class MissingResultsFileError(BadPathError, FileNotFoundError):
    """A results file that does not exist (a ``BadPathError`` that code catching ``FileNotFoundError`` still sees)."""


_RUN_LEVEL = ("section", "task", "init", "arch", "seed", "fraction", "profile", "medbench_version", "git_sha",
              "torch_version", "device", "synthetic")
_SPLITS = ("train", "val", "test")
_NUMERIC = ("value", "fraction", "wall_seconds", "seed")  # parsed as numbers: a leading '-' is a sign there
_TEXT = tuple(c for c in COLUMNS if c not in _NUMERIC)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV injection"); medbench writes none.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What experiments.run_one writes: the task's score, the loss and per-class AUCs on val and test; counts on train.
_SCORES = ("mean_auc", "dice")  # in [0, 1], as is each "auc:<class>"
_COUNTS = ("epochs_run", "best_epoch", "n_images")
_MAX_SEED = 2**32 - 1  # numpy's seeding limit: a larger seed cannot be the seed a run was made with


def _shown(value) -> str:
    """``repr(value)``, cut short: a message stays one readable line whatever a cell holds."""
    s = repr(value)
    return s if len(s) <= 60 else s[:56] + "...'"


def _whole(text: str) -> int | None:
    """``text`` as an integer ("3" or "3.0", as a spreadsheet may rewrite it), or None when it is not one."""
    try:
        return int(text)
    except (TypeError, ValueError):
        pass
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return int(x) if math.isfinite(x) and x.is_integer() else None


def _check_row(at: str, row: dict, known: dict) -> dict:
    """Parse and check one CSV row; raise naming ``at`` (the file and line) and the column at fault."""
    def bad(col, why):
        raise ResultsImportError(f"{at}: column {col!r} {why} (value {_shown(row.get(col))})")

    # first, so that a formula is named as one rather than as, say, an unknown task
    for col in _TEXT:
        if row[col][:1] in _FORMULA_START:
            bad(col, f"starts with {row[col][0]!r}, which a spreadsheet runs as a formula; medbench never writes "
                     "one, so the file was edited by hand: restore the cell")
    out = dict(row)
    for col in ("value", "fraction", "wall_seconds"):
        try:
            out[col] = float(row[col])
        except (TypeError, ValueError):
            bad(col, "is not a number")
        if not math.isfinite(out[col]):
            bad(col, "is not finite")
    out["seed"] = _whole(row["seed"])
    if out["seed"] is None:
        bad("seed", "is not an integer")
    if out["seed"] < 0:
        bad("seed", "is negative; seeds are 0, 1, 2, ...")
    if out["seed"] > _MAX_SEED:
        bad("seed", f"is larger than 2**32 - 1 = {_MAX_SEED}, the largest seed numpy accepts, so no run used it")
    if not 0 < out["fraction"] <= 1:
        bad("fraction", "must be in (0, 1]")
    if out["wall_seconds"] < 0:
        bad("wall_seconds", "is negative")
    split, metric, value = row["split"], row["metric"], out["value"]
    if split not in _SPLITS:
        bad("split", f"must be one of {', '.join(_SPLITS)}")
    if not metric:
        bad("metric", "is empty")
    if split == "train":
        if metric not in _COUNTS:
            bad("metric", f"is not a metric of the train split; valid: {', '.join(_COUNTS)}")
        if _whole(row["value"]) is None or value < 0:
            bad("value", f"must be a whole number >= 0 for {metric}")
    elif metric in _SCORES or metric.startswith("auc:"):
        if metric == "auc:":
            bad("metric", "names no class after 'auc:'")
        if not 0 <= value <= 1:
            hint = " (a score is a fraction: 0.75, not 75)" if 1.5 < value <= 100 else ""
            bad("value", f"must be in [0, 1] for {metric}{hint}")
    elif metric == "loss":
        if value < 0:
            bad("value", "must be >= 0 for loss")
    else:
        bad("metric", f"is not a metric of the {split} split; valid: {', '.join(_SCORES)}, loss, auc:<class>")
    h = row["config_hash"] or ""
    if len(h) != 16 or any(c not in "0123456789abcdef" for c in h):
        bad("config_hash", "must be 16 lower-case hex digits")
    for col, names in known.items():
        if col not in row or not isinstance(names, (list, tuple)):  # "runs", "rehash": checked per run
            continue
        if row[col] not in names:
            bad(col, f"is not a known {col}; valid: {', '.join(names)}")
    if str(row["synthetic"]).lower() not in ("true", "false"):
        bad("synthetic", "must be True or False")
    out["synthetic"] = str(row["synthetic"]).lower() == "true"
    return out


def _read_text(path: Path) -> str:
    """The text of ``path``: UTF-8, with or without the byte-order mark Excel's "CSV UTF-8" writes; any other
    content is refused naming the line where it stops being UTF-8 text."""
    if not path.exists():
        raise MissingResultsFileError(f"results file {path} does not exist")
    if path.is_dir():
        raise BadPathError(f"{path} is a folder; give the CSV file")
    if not path.is_file():
        raise BadPathError(f"{path} is not a regular file; give the CSV file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadPathError(f"cannot read {path}: {e.strerror or e}") from e
    if not data.strip():
        raise ResultsImportError(f"{path} is empty: no header and no rows; write it with `medbench results export "
                                 "FILE`")
    if data.startswith(b"PK\x03\x04"):
        raise ResultsImportError(f"{path} line 1: a zip archive (an Excel .xlsx workbook?), not CSV text; save it "
                                 "as CSV UTF-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ResultsImportError(f"{path} line 1: UTF-16 text (Excel's \"Unicode Text\"), not UTF-8; save it as "
                                 "CSV UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:  # e.object: the bytes after the byte-order mark, e.start: the first bad one
        line = e.object[:e.start].count(b"\n") + 1
        raise ResultsImportError(f"{path} line {line}: not UTF-8 text (byte 0x{e.object[e.start]:02x}); save it as "
                                 "CSV UTF-8") from None
    if "\x00" in text:  # valid UTF-8, but no text file holds one: a binary file
        line = text[:text.index("\x00")].count("\n") + 1
        raise ResultsImportError(f"{path} line {line}: a NUL byte: a binary file, not CSV text")
    return text


def _read_runs(path: Path, known: dict) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The runs of a results file, and the line each starts on; raises on the first fault."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise ResultsImportError(f"{path} holds no header and no rows (an empty file, or only a byte-order mark "
                                     "or blank lines); export the results again")
        dup = [c for i, c in enumerate(header) if c in header[:i]]
        if dup:
            raise ResultsImportError(f"{path} line 1: the header repeats the column {_shown(dup[0])}; each column "
                                     "appears once")
        unknown = [c for c in header if c not in (*COLUMNS, *OPTIONAL_COLUMNS)]
        if unknown:
            raise ResultsImportError(f"{path} line 1: unknown column{'s' if len(unknown) > 1 else ''} "
                                     f"{', '.join(_shown(c) for c in unknown[:5])}; expected {', '.join(COLUMNS)}")
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ResultsImportError(f"{path} line 1: the header lacks the columns {missing}; expected "
                                     f"{', '.join(COLUMNS)}")
        runs: dict[str, list[dict]] = {}
        configs: dict[str, str] = {}
        first_line: dict[str, int] = {}
        seen: dict[tuple, int] = {}
        end = reader.line_num
        for fields in reader:
            line, end = end + 1, reader.line_num  # physical lines, as an editor numbers them
            if not fields:  # a blank line (a trailing one is common)
                continue
            if len(fields) != len(header):
                raise ResultsImportError(f"{path} line {line}: wrong number of fields (expected {len(header)}, got "
                                         f"{len(fields)})")
            cells = dict(zip(header, fields))
            run_config = cells.pop(RUN_CONFIG, "")
            r = _check_row(f"{path} line {line}", cells, known)
            h = r["config_hash"]
            key = (h, r["split"], r["metric"])
            if key in seen:
                raise ResultsImportError(f"{path} line {line}: duplicate of line {seen[key]} (run {h}, {r['split']} "
                                         f"{r['metric']})")
            seen[key] = line
            if h in runs:
                ref = runs[h][0]
                for col in _RUN_LEVEL:
                    if r[col] != ref[col]:
                        raise ResultsImportError(f"{path} line {line}: run {h} has {col} {_shown(r[col])} here but "
                                                 f"{_shown(ref[col])} on line {first_line[h]}")
            else:
                runs[h], first_line[h] = [], line
                configs[h] = run_config
            runs[h].append(r)
    except csv.Error as e:
        raise ResultsImportError(f"{path} line {reader.line_num}: not a CSV row ({e})") from None
    if not runs:
        raise ResultsImportError(f"{path} holds a header but no result rows")
    for h, rows in runs.items():
        if not any(r["split"] == "test" and r["metric"] in _SCORES for r in rows):
            raise ResultsImportError(f"{path} line {first_line[h]}: run {h} has no test-split mean_auc or dice row")
        _check_identity(f"{path} line {first_line[h]}", h, rows[0], configs.get(h, ""), known)
    return {h: pd.DataFrame(rows)[COLUMNS] for h, rows in runs.items()}, first_line


RUN_CONFIG = "run_config"  # optional column: the run's whole configuration (JSON), written by export


def config_cell(config: dict) -> str:
    """A run's configuration as the ``run_config`` cell holds it (compact JSON, sorted keys)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
OPTIONAL_COLUMNS = (RUN_CONFIG,)
IDENTITY = ("task", "init", "arch", "seed", "fraction", "profile")  # what a run's hash says it is


def _check_identity(at: str, h: str, row: dict, run_config: str, known: dict) -> None:
    """A run is what its hash says: with its configuration in the file, the configuration must hash to ``h`` and
    name the row's task, init, architecture, seed, fraction and profile; without it, a hash of a known grid
    (``known["runs"]``: hash -> those settings) must carry that grid's settings. Raises naming the line."""
    settings = None
    if run_config:
        try:
            config = json.loads(run_config)
        except ValueError:
            raise ResultsImportError(f"{at}: column 'run_config' is not the JSON medbench writes") from None
        rehash, got = known.get("rehash"), None
        if rehash is not None and isinstance(config, dict):
            try:
                got = rehash(config)
            except (TypeError, ValueError, KeyError):
                got = None  # an imported run's record holds no whole configuration: nothing to recompute
        if got is not None and got != h:
            raise ResultsImportError(f"{at}: run {h}'s configuration hashes to {got}: the row or its configuration "
                                     "was changed; nothing was imported")
        if got is not None:
            settings = config
    if settings is None:
        settings = known.get("runs", {}).get(h)
    if settings:
        for col in IDENTITY:
            if col in settings and str(_same_type(row[col], settings[col])) != str(settings[col]):
                raise ResultsImportError(f"{at}: run {h} is {col} {_shown(settings[col])} by its hash, but the row "
                                         f"says {_shown(row[col])}: the row was changed; nothing was imported")


def _same_type(value, like):
    try:
        return type(like)(value) if isinstance(like, (int, float)) and not isinstance(like, bool) else value
    except (TypeError, ValueError):
        return value


def read_results_file(path: str | os.PathLike, *, known: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """Read and validate a long results table written elsewhere (``medbench results export``). ``known`` holds the
    valid names per column (``section``, ``task``, ``init``, ``arch``, ``profile``; the store itself knows no
    registry: ``medbench_core.sections.known_names()`` gives them). Returns the rows of each run, keyed by config
    hash.

    Checked: UTF-8 text (a byte-order mark and CRLF line ends are fine), the header (no unknown, repeated or
    missing column), each cell (names, numbers, each metric's range, no formula-like text) and each run's
    consistency. Raises ``ResultsImportError`` (a ``BadFileError``) naming the file and its first bad line;
    ``MissingResultsFileError`` (a ``BadPathError`` and a ``FileNotFoundError``) or ``BadPathError`` for a path
    that is missing or no file."""
    return _read_runs(Path(path), known)[0]


def import_results(path: str | os.PathLike, results_dir: str | os.PathLike, *, known: dict[str, list[str]]) -> dict:
    """Add the runs of a results file to the store in ``results_dir``. The whole file is validated first (format,
    names, consistency, and conflicts with runs already stored); if anything is wrong nothing is written, not even
    an empty store. Runs already stored with identical rows are skipped. ``known``: as for ``read_results_file``."""
    runs, first_line = _read_runs(Path(path), known)
    store = ResultsStore(results_dir)  # opened (or created) only now that the file is valid
    new, same = {}, []
    for h, rows in runs.items():
        if store.has(h):
            old = store.rows(h)
            a = old.set_index(["split", "metric"])["value"].sort_index()
            b = rows.set_index(["split", "metric"])["value"].sort_index()
            if not (a.index.equals(b.index) and np.allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-12)):
                raise ResultsImportError(f"{path} line {first_line[h]}: run {h} is already in {store.root} with "
                                         "other values; nothing was imported (remove one of them first)")
            same.append(h)
        else:
            new[h] = rows
    imported_at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    for h, rows in new.items():
        config = {"config_hash": h, "imported_from": str(Path(path).resolve()), "imported_at": imported_at,
                  **{c: rows.iloc[0][c] for c in _RUN_LEVEL}}
        store.write_run(h, rows, json.loads(json.dumps(config, default=str)), {})
    return {"imported": len(new), "already_present": len(same), "rows": int(sum(len(r) for r in new.values()))}


def _neutralise(cell):
    """A text cell a spreadsheet would run as a formula, with a leading ``'`` so that it shows as text (OWASP)."""
    return "'" + cell if isinstance(cell, str) and cell[:1] in _FORMULA_START else cell


def _check_target(path: Path, store: ResultsStore) -> None:
    """Refuse an export target that cannot be, or must not be, written (a symlink: its target)."""
    path = output_target(path)
    if path.is_dir():
        raise BadPathError(f"{path} is a folder; give a file name such as {path / 'results.csv'}")
    if not path.parent.is_dir():
        kind = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise BadPathError(f"cannot write {path}: the folder {path.parent} {kind}")
    # a CSV in runs/ would be read back as a run of the store
    if path.parent.resolve() == (store.root / "runs").resolve():
        raise BadPathError(f"{path} is inside the store's runs/ folder, where it would count as a run; write it "
                           "elsewhere")


def export_results(store: ResultsStore | str | os.PathLike, path: str | os.PathLike, *,
                   profile: str | None = None) -> int:
    """Write the long table of ``store`` (optionally one ``profile``) to ``path`` as CSV, for
    ``medbench results import`` elsewhere. Returns the number of rows.

    ``store``: a ``ResultsStore`` or the folder of one, opened without creating anything (``BadPathError`` when it
    is no store). Nothing is written when the store holds no runs, or none on ``profile`` (``BadValueError``), or
    when ``path`` is a folder, lies in a missing folder or in the store's ``runs/`` (``BadPathError``). A text cell
    that a spreadsheet would run as a formula (only a hand-edited store can hold one) is written with a leading
    ``'``."""
    if not isinstance(store, ResultsStore):
        store = ResultsStore(store, create=False)
    path = Path(path)
    _check_target(path, store)
    df = store.load()
    if df.empty:
        raise BadValueError(f"the store at {store.root} holds no runs; nothing was written")
    if profile is not None:
        held = sorted(df["profile"].unique())
        df = df[df["profile"] == profile]
        if df.empty:
            raise BadValueError(f"the store at {store.root} holds no runs on profile {profile!r}; it holds runs on "
                                f"{', '.join(held)} (give one of them, or no --profile for all)")
    out = df[COLUMNS].copy()
    for col in _TEXT:
        out[col] = out[col].map(_neutralise)
    configs = {}
    for h in out["config_hash"].unique():
        try:
            configs[h] = config_cell(store.config(h))
        except (OSError, ValueError):
            configs[h] = ""
    out[RUN_CONFIG] = out["config_hash"].map(configs)
    try:
        write_output_bytes(path, out.to_csv(index=False).encode("utf-8"))  # a link is followed, a device written into
    except OSError as e:
        raise BadPathError(f"cannot write {path}: {e.strerror or e}") from e
    return len(out)
