"""Reading a results file: a store's long table as CSV (``results_export`` writes it), read back and checked line by
line (``results_checks``) by ``medbench results import`` and ``medbench check``.

The file is read as a stream, twice: a first scan checks that it is UTF-8 text, the second parses and checks each
row, keeping per row only its split, metric, value, time and line (about 300 bytes; 100,000 rows hold about 30 MB),
never the file or a table of it. Nothing is written until the whole file is valid.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadPathError
from .results import COLUMNS, RUN_CONFIG, ResultsStore
from .results_checks import (OPTIONAL_COLUMNS, RUN_LEVEL, SCORES, MissingResultsFileError, ResultsImportError,
                             check_identity, check_row, shown)


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
        raise ResultsImportError(f"{path} line 1: the header repeats the column {shown(dup[0])}; each column appears "
                                 "once")
    unknown = [c for c in header if c not in (*COLUMNS, *OPTIONAL_COLUMNS)]
    if unknown:
        raise ResultsImportError(f"{path} line 1: unknown column{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(shown(c) for c in unknown[:5])}; expected {', '.join(COLUMNS)}")
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
            r = check_row(f"{path} line {line}", cells, known)
            h = r["config_hash"]
            key = (intern(r["split"]), intern(r["metric"]))
            run = runs.get(h)
            if run is None:
                run = runs[h] = _Run(line, {c: r[c] for c in RUN_LEVEL}, run_config)
            elif key in run.rows:
                raise ResultsImportError(f"{path} line {line}: duplicate of line {run.rows[key][0]} (run {h}, "
                                         f"{key[0]} {key[1]})")
            else:
                for col in RUN_LEVEL:
                    if r[col] != run.level[col]:
                        raise ResultsImportError(f"{path} line {line}: run {h} has {col} {shown(r[col])} here but "
                                                 f"{shown(run.level[col])} on line {run.line}")
            run.rows[key] = (line, r["value"], r["wall_seconds"], intern(r["finished_at"]))
    except csv.Error as e:
        raise ResultsImportError(f"{path} line {reader.line_num}: not a CSV row ({e})") from None
    if not runs:
        raise ResultsImportError(f"{path} holds a header but no result rows")
    for h, run in runs.items():
        if not any(s == "test" and m in SCORES for s, m in run.rows):
            raise ResultsImportError(f"{path} line {run.line}: run {h} has no test-split mean_auc or dice row")
        check_identity(f"{path} line {run.line}", h, run.level, run.config, known)
    return runs


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
