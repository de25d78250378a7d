"""Writing a results file: ``medbench results export``, the store's long table as CSV for an import elsewhere."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import BadPathError, BadValueError
from .paths import output_target, write_output_bytes
from .results import COLUMNS, RUN_CONFIG, ResultsStore, config_cell
from .results_checks import FORMULA_START, TEXT_COLUMNS


def _neutralise(cell):
    """A text cell a spreadsheet would run as a formula, with a leading ``'`` so that it shows as text (OWASP)."""
    return "'" + cell if isinstance(cell, str) and cell[:1] in FORMULA_START else cell


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
    for col in TEXT_COLUMNS:
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
