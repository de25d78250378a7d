"""Results files: a store's long table as CSV, written by ``medbench results export`` and read back, checked line by
line, by ``medbench results import`` (and ``medbench check``).

The file is read as a stream, twice: a first scan checks that it is UTF-8 text, the second parses and checks each
row, keeping per row only its split, metric, value, time and line (about 300 bytes; 100,000 rows hold about 30 MB),
never the file or a table of it. Nothing is written until the whole file is valid.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadFileError, BadPathError, BadValueError
from .paths import output_target, write_output_bytes
from .results import COLUMNS, RUN_CONFIG, ResultsStore, config_cell


class ResultsImportError(BadFileError):
    """A results file that cannot be imported; the message names the file and its first bad line."""


class MissingResultsFileError(BadPathError, FileNotFoundError):
    """A results file that does not exist (a ``BadPathError`` that code catching ``FileNotFoundError`` still sees)."""


OPTIONAL_COLUMNS = (RUN_CONFIG,)
IDENTITY = ("task", "init", "arch", "seed", "fraction", "profile")  # what a run's hash says it is
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


_SETS: dict[int, tuple] = {}


def _as_set(names) -> frozenset:
    """``names`` as a set, made once per list (a row's names are looked up on every line)."""
    hit = _SETS.get(id(names))
    if hit is None or hit[0] is not names:
        hit = _SETS[id(names)] = (names, frozenset(names))
    return hit[1]


def _check_row(at: str, row: dict, known: dict) -> dict:
    """Parse and check one CSV row; raise naming ``at`` (the file and line) and the column at fault. An empty value
    on the val or test split is a metric the run could not define (as the store writes one): read as NaN."""
    def bad(col, why):
        raise ResultsImportError(f"{at}: column {col!r} {why} (value {_shown(row.get(col))})")

    # first, so that a formula is named as one rather than as, say, an unknown task
    for col in _TEXT:
        if row[col][:1] in _FORMULA_START:
            bad(col, f"starts with {row[col][0]!r}, which a spreadsheet runs as a formula; medbench never writes "
                     "one, so the file was edited by hand: restore the cell")
    out = dict(row)
    split, metric = row["split"], row["metric"]
    for col in ("value", "fraction", "wall_seconds"):
        if col == "value" and row[col] == "" and split in ("val", "test"):
            out[col] = math.nan  # undefined (an AUC on a split with one label value): a defined missing value
            continue
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
    value = out["value"]
    defined = not math.isnan(value)
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
        if defined and not 0 <= value <= 1:
            hint = " (a score is a fraction: 0.75, not 75)" if 1.5 < value <= 100 else ""
            bad("value", f"must be in [0, 1] for {metric}{hint}")
    elif metric == "loss":
        if defined and value < 0:
            bad("value", "must be >= 0 for loss")
    else:
        bad("metric", f"is not a metric of the {split} split; valid: {', '.join(_SCORES)}, loss, auc:<class>")
    h = row["config_hash"] or ""
    if len(h) != 16 or any(c not in "0123456789abcdef" for c in h):
        bad("config_hash", "must be 16 lower-case hex digits")
    for col, names in known.items():
        if col not in row or not isinstance(names, (list, tuple)):  # "runs", "rehash": checked per run
            continue
        if row[col] not in _as_set(names):
            bad(col, f"is not a known {col}; valid: {', '.join(names)}")
    if str(row["synthetic"]).lower() not in ("true", "false"):
        bad("synthetic", "must be True or False")
    out["synthetic"] = str(row["synthetic"]).lower() == "true"
    return out


# -- reading a file ---------------------------------------------------------------------------------------------------

def _open(path: Path):
    """``path`` opened for reading in binary, after the checks a file name allows (exists, a regular file)."""
    if not path.exists():
        raise MissingResultsFileError(f"results file {path} does not exist")
    if path.is_dir():
        raise BadPathError(f"{path} is a folder; give the CSV file")
    if not path.is_file():
        raise BadPathError(f"{path} is not a regular file; give the CSV file")
    try:
        return open(path, "rb")
    except OSError as e:
        raise BadPathError(f"cannot read {path}: {e.strerror or e}") from e


def _decoded(path: Path, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultsImportError(f"{path} line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save it as CSV "
                                 "UTF-8") from None


def _scan(path: Path) -> None:
    """Check that ``path`` is UTF-8 text (a byte-order mark is fine), one line at a time: a zip archive, UTF-16,
    bytes that are not UTF-8 or a NUL byte are refused naming the line; a file of white space is refused as
    empty."""
    with _open(path) as f:
        head = f.read(4)
        if head.startswith(b"PK\x03\x04"):
            raise ResultsImportError(f"{path} line 1: a zip archive (an Excel .xlsx workbook?), not CSV text; save "
                                     "it as CSV UTF-8")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ResultsImportError(f"{path} line 1: UTF-16 text (Excel's \"Unicode Text\"), not UTF-8; save it "
                                     "as CSV UTF-8")
        f.seek(0)
        nul, blank = None, True
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
                blank = False  # a byte-order mark alone is a file that was saved, not an empty one
            text = _decoded(path, raw, n)  # not UTF-8 anywhere outranks a NUL byte earlier
            if nul is None and "\x00" in text:
                nul = n
            blank = blank and not raw.strip()
    if blank:
        raise ResultsImportError(f"{path} is empty: no header and no rows; write it with `medbench results export "
                                 "FILE`")
    if nul is not None:  # valid UTF-8, but no text file holds one: a binary file
        raise ResultsImportError(f"{path} line {nul}: a NUL byte: a binary file, not CSV text")


def _text_lines(path: Path):
    """The lines of ``path`` (checked by ``_scan``) as text, line ends kept, the byte-order mark removed."""
    with _open(path) as f:
        for n, raw in enumerate(f, start=1):
            yield (raw[3:] if n == 1 and raw.startswith(b"\xef\xbb\xbf") else raw).decode("utf-8")


@dataclass
class _Run:
    """One run of a results file as read: the line it starts on, its run-level cells (parsed), its ``run_config``
    cell, and per (split, metric) its line, value, wall seconds and finishing time."""
    line: int
    level: dict
    config: str
    rows: dict = field(default_factory=dict)

    def frame(self, h: str) -> pd.DataFrame:
        """The run's rows as the store holds them."""
        data = [{**self.level, "split": s, "metric": m, "value": v, "config_hash": h, "wall_seconds": w,
                 "finished_at": t} for (s, m), (_, v, w, t) in self.rows.items()]
        return pd.DataFrame(data)[COLUMNS]

    def csv_text(self, h: str) -> str:
        """The run's rows file, as ``ResultsStore.write_run`` writes it (an undefined value as an empty cell)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(COLUMNS)
        cells = dict(self.level, config_hash=h)
        for (s, m), (_, v, wall, t) in self.rows.items():
            cells.update(split=s, metric=m, value="" if math.isnan(v) else v, wall_seconds=wall, finished_at=t)
            w.writerow([cells[c] for c in COLUMNS])
        return out.getvalue()


def _header(path: Path, header: list[str] | None) -> None:
    if not header:
        raise ResultsImportError(f"{path} holds no header and no rows (an empty file, or only a byte-order mark or "
                                 "blank lines); export the results again")
    dup = [c for i, c in enumerate(header) if c in header[:i]]
    if dup:
        raise ResultsImportError(f"{path} line 1: the header repeats the column {_shown(dup[0])}; each column appears "
                                 "once")
    unknown = [c for c in header if c not in (*COLUMNS, *OPTIONAL_COLUMNS)]
    if unknown:
        raise ResultsImportError(f"{path} line 1: unknown column{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(_shown(c) for c in unknown[:5])}; expected {', '.join(COLUMNS)}")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ResultsImportError(f"{path} line 1: the header lacks the columns {missing}; expected "
                                 f"{', '.join(COLUMNS)}")


def _read_runs(path: Path, known: dict) -> dict[str, _Run]:
    """The runs of a results file, keyed by config hash; raises on the first fault."""
    _scan(path)
    reader = csv.reader(_text_lines(path))
    intern = sys.intern  # split, metric and times repeat: one string each
    runs: dict[str, _Run] = {}
    try:
        header = next(reader, None)
        _header(path, header)
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
            key = (intern(r["split"]), intern(r["metric"]))
            run = runs.get(h)
            if run is None:
                run = runs[h] = _Run(line, {c: r[c] for c in _RUN_LEVEL}, run_config)
            elif key in run.rows:
                raise ResultsImportError(f"{path} line {line}: duplicate of line {run.rows[key][0]} (run {h}, "
                                         f"{key[0]} {key[1]})")
            else:
                for col in _RUN_LEVEL:
                    if r[col] != run.level[col]:
                        raise ResultsImportError(f"{path} line {line}: run {h} has {col} {_shown(r[col])} here but "
                                                 f"{_shown(run.level[col])} on line {run.line}")
            run.rows[key] = (line, r["value"], r["wall_seconds"], intern(r["finished_at"]))
    except csv.Error as e:
        raise ResultsImportError(f"{path} line {reader.line_num}: not a CSV row ({e})") from None
    if not runs:
        raise ResultsImportError(f"{path} holds a header but no result rows")
    for h, run in runs.items():
        if not any(s == "test" and m in _SCORES for s, m in run.rows):
            raise ResultsImportError(f"{path} line {run.line}: run {h} has no test-split mean_auc or dice row")
        _check_identity(f"{path} line {run.line}", h, run.level, run.config, known)
    return runs


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
    return {h: run.frame(h) for h, run in _read_runs(Path(path), known).items()}


_EMPTY_CASES = None


def _empty_cases() -> bytes:
    """An ``.npz`` with no arrays: an imported run has no per-image values (its statistics use its scores)."""
    global _EMPTY_CASES
    if _EMPTY_CASES is None:
        buf = io.BytesIO()
        np.savez(buf)
        _EMPTY_CASES = buf.getvalue()
    return _EMPTY_CASES


def import_results(path: str | os.PathLike, results_dir: str | os.PathLike, *, known: dict[str, list[str]]) -> dict:
    """Add the runs of a results file to the store in ``results_dir``. The whole file is validated first (format,
    names, consistency, and conflicts with runs already stored); if anything is wrong nothing is written, not even
    an empty store. Runs already stored with identical rows are skipped (an undefined value equals an undefined
    one). The new runs are stored together (``ResultsStore.add_runs``: one sync, not one per file), so an
    interrupted import leaves complete runs only, and importing the file again adds the rest. ``known``: as for
    ``read_results_file``."""
    path = Path(path)
    runs = _read_runs(path, known)
    store = ResultsStore(results_dir)  # opened (or created) only now that the file is valid
    new, same = [], 0
    for h, run in runs.items():
        if not store.has(h):
            new.append(h)
            continue
        old = store.rows(h).set_index(["split", "metric"])["value"].sort_index()
        mine = pd.Series({k: v[1] for k, v in run.rows.items()}).sort_index()
        mine.index.names = ["split", "metric"]
        if not (old.index.equals(mine.index) and np.allclose(old.to_numpy(float), mine.to_numpy(float), rtol=0,
                                                              atol=1e-12, equal_nan=True)):
            raise ResultsImportError(f"{path} line {run.line}: run {h} is already in {store.root} with other values; "
                                     "nothing was imported (remove one of them first)")
        same += 1
    imported_at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    source = str(path.resolve())

    def stored():
        for h in new:
            run = runs[h]
            config = {"config_hash": h, "imported_from": source, "imported_at": imported_at, **run.level}
            yield h, run.csv_text(h), config, _empty_cases()

    n = store.add_runs(stored())
    return {"imported": n, "already_present": same, "rows": sum(len(runs[h].rows) for h in new)}


# -- writing a file ---------------------------------------------------------------------------------------------------

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
    ``'``. An undefined value is an empty cell."""
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
