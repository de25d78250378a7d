"""The checks of a results file's rows and runs (``results_file`` reads with them): each cell's name, number and
range, no formula-like text, and that a run is what its hash says."""
from __future__ import annotations

import json
import math

from .errors import BadFileError, BadPathError
from .results import COLUMNS, RUN_CONFIG


class ResultsImportError(BadFileError):
    """A results file that cannot be imported; the message names the file and its first bad line."""


class MissingResultsFileError(BadPathError, FileNotFoundError):
    """A results file that does not exist (a ``BadPathError`` that code catching ``FileNotFoundError`` still sees)."""


OPTIONAL_COLUMNS = (RUN_CONFIG,)
IDENTITY = ("task", "init", "arch", "seed", "fraction", "profile")  # what a run's hash says it is
RUN_LEVEL = ("section", "task", "init", "arch", "seed", "fraction", "profile", "medbench_version", "git_sha",
              "torch_version", "device", "synthetic")
_SPLITS = ("train", "val", "test")
_NUMERIC = ("value", "fraction", "wall_seconds", "seed")  # parsed as numbers: a leading '-' is a sign there
TEXT_COLUMNS = tuple(c for c in COLUMNS if c not in _NUMERIC)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV injection"); medbench writes none.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What experiments.run_one writes: the task's score, the loss and per-class AUCs on val and test; counts on train.
SCORES = ("mean_auc", "dice")  # in [0, 1], as is each "auc:<class>"
_COUNTS = ("epochs_run", "best_epoch", "n_images")
_MAX_SEED = 2**32 - 1  # numpy's seeding limit: a larger seed cannot be the seed a run was made with


def shown(value) -> str:
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


def check_row(at: str, row: dict, known: dict) -> dict:
    """Parse and check one CSV row; raise naming ``at`` (the file and line) and the column at fault. An empty value
    on the val or test split is a metric the run could not define (as the store writes one): read as NaN."""
    def bad(col, why):
        raise ResultsImportError(f"{at}: column {col!r} {why} (value {shown(row.get(col))})")

    # first, so that a formula is named as one rather than as, say, an unknown task
    for col in TEXT_COLUMNS:
        if row[col][:1] in FORMULA_START:
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
    elif metric in SCORES or metric.startswith("auc:"):
        if metric == "auc:":
            bad("metric", "names no class after 'auc:'")
        if defined and not 0 <= value <= 1:
            hint = " (a score is a fraction: 0.75, not 75)" if 1.5 < value <= 100 else ""
            bad("value", f"must be in [0, 1] for {metric}{hint}")
    elif metric == "loss":
        if defined and value < 0:
            bad("value", "must be >= 0 for loss")
    else:
        bad("metric", f"is not a metric of the {split} split; valid: {', '.join(SCORES)}, loss, auc:<class>")
    h = row["config_hash"] or ""
    if len(h) != 16 or any(c not in "0123456789abcdef" for c in h):
        bad("config_hash", "must be 16 lower-case hex digits")
    for col, names in known.items():
        if col not in row or not isinstance(names, (list, tuple)):  # "runs", "rehash": checked per run
            continue
        if row[col] not in _as_set(names):
            yours = (" (a model of yours from another machine? add it here with `medbench models add NAME --arch ARCH "
                     "--file CHECKPOINT`, the same file, then import again)") if col == "init" else ""
            bad(col, f"is not a known {col}; valid: {', '.join(names)}{yours}")
    if str(row["synthetic"]).lower() not in ("true", "false"):
        bad("synthetic", "must be True or False")
    out["synthetic"] = str(row["synthetic"]).lower() == "true"
    return out


def check_identity(at: str, h: str, row: dict, run_config: str, known: dict) -> None:
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
            _check_weights(at, h, config, known)
    if settings is None:
        settings = known.get("runs", {}).get(h)
    if settings:
        for col in IDENTITY:
            if col in settings and str(_same_type(row[col], settings[col])) != str(settings[col]):
                raise ResultsImportError(f"{at}: run {h} is {col} {shown(settings[col])} by its hash, but the row "
                                         f"says {shown(row[col])}: the row was changed; nothing was imported")


def _check_weights(at: str, h: str, config: dict, known: dict) -> None:
    """A run made with weights of a file (your model's sha256 is in its ``init_checkpoint``) is imported only where
    that init names the same file."""
    fingerprint, made_with = known.get("fingerprint"), config.get("init_checkpoint")
    if fingerprint is None or not isinstance(made_with, str) or ".user_" not in made_with:
        return
    try:
        here = fingerprint(config["init"], config["arch"], config["profile"])
    except (KeyError, ValueError, LookupError):
        return
    if here != made_with:
        raise ResultsImportError(f"{at}: run {h} was made with {config['init']} from the file of sha256 "
                                 f"{made_with.rsplit(':', 1)[-1][:12]}..., but {config['init']} here is the file of "
                                 f"sha256 {str(here).rsplit(':', 1)[-1][:12]}...: another model under the same name; "
                                 "nothing was imported")


def _same_type(value, like):
    try:
        return type(like)(value) if isinstance(like, (int, float)) and not isinstance(like, bool) else value
    except (TypeError, ValueError):
        return value
