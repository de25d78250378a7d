"""Frozen split manifests (files shipped in ``medbench_core/splits/``) and the rule that turns one into lists.

A manifest fixes, for one dataset, which images are train, validation and test, and the nested training fractions.
Where the dataset's ids are public and fixed (DRIVE, JSRT) the manifest lists them. Where we cannot hold the
dataset (most are licence-gated), the manifest holds a deterministic rule that gives the same lists on every complete
copy: the dataset's official test list where one exists, otherwise a patient-level, label-stratified cut ordered by a
seeded hash of the patient id. The hash makes the lists independent of directory order and file system (pitfall 4
of the original code), and sizes are exact: ``counts`` in the manifest, or ``shares`` of the units found.

Fractions (1, 5, 10, 25, 50 %) come from the training split only, stratified, and are prefixes of one seeded order,
so 1 % is inside 5 % inside 10 % ... (pitfall 3). Validation and test are never subsampled.

Splits are clean or refused: ``assign_splits`` raises ``UncleanSplitError`` when a patient (the manifest's unit) would
have images in two splits, or an image is in no official list, naming them, before anything is decoded. Every path
to the data (``prepare``, ``check``, ``run --data-root``) goes through it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BadFileError

SPLITS = ("train", "val", "test")
FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5)


class ManifestError(BadFileError):
    """A manifest does not fit the copy of the dataset it is applied to; the message says how."""


class UncleanSplitError(ManifestError):
    """The split would put a patient in two splits, or leave images in none (official lists edited or incomplete).
    The message names them and says what to restore."""


def user_splits_dir() -> Path:
    """Where a user's own manifests live: ``$MEDBENCH_SPLITS``, else ``splits/`` in the cache
    (``medbench data splits --authors`` writes the authors' lists there)."""
    from ..paths import get_cache_dir

    return Path(os.environ.get("MEDBENCH_SPLITS") or get_cache_dir() / "splits")


def packaged_manifest(dataset: str) -> dict:
    """The manifest of ``dataset`` shipped with the package (``medbench_core/splits/<dataset>.json``)."""
    path = resources.files("medbench_core") / "splits" / f"{dataset}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no split manifest for dataset {dataset!r} (expected {path})")
    return json.loads(path.read_text())


def load_manifest(dataset: str) -> dict:
    """The manifest of ``dataset``: the user's (``user_splits_dir()/<dataset>.json``: the authors' lists after
    ``medbench data splits --authors``, or a lab's own listed manifest), else the one shipped with the package.
    Prepared data and results record the manifest's sha, so runs on different splits never mix."""
    user = user_splits_dir() / f"{dataset}.json"
    if user.is_file():
        return json.loads(user.read_text())
    return packaged_manifest(dataset)


def describe_split(dataset: str) -> str:
    """One line saying how the frozen manifest of ``dataset`` splits it (for tables and the doctor).

    Example:
        >>> describe_split("shenzhen")
        'patients cut 463 / 65 / 134 (train / val / test), stratified, seed 0'
    """
    m = load_manifest(dataset)
    rule = m["split"]
    unit = {"patient": "patients", "study": "studies", "image": "images"}.get(m["unit"], m["unit"])
    if rule["method"] == "listed":
        n = {s: len(rule["lists"][s]) for s in SPLITS}
        src = m.get("source")
        where = f"the authors' lists ({src['repository']} at {src['commit'][:7]})" if src else "listed in the manifest"
        return f"{where}: {n['train']} / {n['val']} / {n['test']}"
    if rule["method"] == "official":
        val = rule.get("val")
        if not val:
            return "official train / val / test"
        carve = f"{val['share']:.0%} of the training {unit}" if "share" in val else f"{val['count']} training {unit}"
        return f"official test; val: {carve}, stratified, seed {rule.get('seed', 0)}"
    if "counts" in rule:
        c = rule["counts"]
        return (f"{unit} cut {c['train']} / {c['val']} / {c['test']} (train / val / test), stratified, "
                f"seed {rule.get('seed', 0)}")
    sh = rule["shares"]
    return (f"{unit} cut {sh['train']:.0%} / {sh['val']:.0%} / {sh['test']:.0%}, stratified, "
            f"seed {rule.get('seed', 0)}")


def manifest_sha(manifest: dict) -> str:
    """A short fingerprint of the manifest's content (recorded with prepared data and results)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


def _key(salt: str, value: str) -> float:
    """A number in [0, 1) fixed by ``salt`` and ``value`` alone (sha256): the same on every machine."""
    return int(hashlib.sha256(f"{salt}|{value}".encode()).hexdigest()[:15], 16) / 16 ** 15


def stratified_order(units: pd.DataFrame, salt: str) -> list[str]:
    """Order ``units`` (columns ``unit``, ``stratum``) so that every prefix is close to stratified.

    Inside each stratum, units are ordered by a seeded hash; each unit gets the position (rank + 0.5) / n of its
    stratum, and all units are sorted by that position (hash as tie-break). The first k of the result then hold each
    stratum in proportion, for every k.
    """
    df = units.copy()
    df["key"] = [_key(salt, u) for u in df["unit"]]
    df = df.sort_values(["stratum", "key"])
    df["pos"] = (df.groupby("stratum").cumcount() + 0.5) / df.groupby("stratum")["unit"].transform("size")
    return list(df.sort_values(["pos", "key"])["unit"])


def _unit_table(index: pd.DataFrame) -> pd.DataFrame:
    """One row per patient with its stratum: the most frequent stratum among its images (ties: sorted first)."""
    s = index.groupby("patient")["stratum"].agg(lambda v: sorted(v.value_counts().loc[lambda c: c == c.max()].index)[0])
    return pd.DataFrame({"unit": s.index.astype(str), "stratum": s.values.astype(str)})


def _cut(units: pd.DataFrame, counts: dict[str, int], salt: str) -> dict[str, str]:
    """Assign units to splits in the order ``counts`` lists them, taking exact numbers from a stratified order."""
    order = stratified_order(units, salt)
    out, start = {}, 0
    for split, n in counts.items():
        for u in order[start:start + n]:
            out[u] = split
        start += n
    for u in order[start:]:
        out[u] = "train"
    return out


def _counts_from_shares(n: int, shares: dict[str, float]) -> dict[str, int]:
    counts = {k: int(round(v * n)) for k, v in shares.items() if k != "train"}
    return counts


def assign_splits(index: pd.DataFrame, manifest: dict, *, lists: str = "") -> pd.Series:
    """The split ("train" | "val" | "test") of every row of ``index`` (columns id, patient, stratum and, for
    datasets with official splits, ``official_split``) under ``manifest``. Raises ``ManifestError`` when the copy
    does not fit (listed ids missing, a different number of units than the manifest's exact counts), and
    ``UncleanSplitError`` when a patient lands in two splits or an image in no official list (``lists`` names the
    files that hold the official split, for the message)."""
    split = _assign(index, manifest)
    _refuse_unclean(index, split, manifest, lists or "the official split files")
    return split


def _assign(index: pd.DataFrame, manifest: dict) -> pd.Series:
    rule = manifest["split"]
    method, seed = rule["method"], rule.get("seed", 0)
    salt = f"{manifest['dataset']}:{seed}"
    if method == "listed":
        lists = rule["lists"]
        where = {i: s for s in SPLITS for i in lists.get(s, [])}
        missing = sorted(set(where) - set(index["id"]))
        if missing:
            raise ManifestError(f"{len(missing)} listed image(s) not in this copy, e.g. {', '.join(missing[:5])}")
        extra = sorted(set(index["id"]) - set(where))
        if extra:
            raise ManifestError(f"{len(extra)} image(s) of this copy are in no listed split, e.g. "
                                f"{', '.join(extra[:5])}")
        return index["id"].map(where)
    split = pd.Series("train", index=index.index, dtype=object)
    if method == "official":  # official test (and val where given); val carved from the official train patients
        official = index["official_split"].astype(str)
        split[~official.isin(SPLITS)] = ""  # in no official list: refused by _refuse_unclean, never put in train
        split[official == "test"] = "test"
        split[official == "val"] = "val"
        pool = index[official == "train"]
        if "val" in rule:  # carve val from the training patients
            units = _unit_table(pool)
            n_val = rule["val"]["count"] if "count" in rule["val"] else int(round(rule["val"]["share"] * len(units)))
            assigned = _cut(units, {"val": n_val}, salt)
            split[pool.index] = pool["patient"].astype(str).map(assigned).values
        return split
    if method == "patient-cut":
        units = _unit_table(index)
        if "counts" in rule:
            counts = {k: int(v) for k, v in rule["counts"].items()}
            if sum(counts.values()) != len(units):
                raise ManifestError(f"the manifest cuts {sum(counts.values())} patients "
                                    f"({', '.join(f'{k} {v}' for k, v in counts.items())}); this copy has "
                                    f"{len(units)}")
            counts.pop("train")
        else:
            counts = _counts_from_shares(len(units), rule["shares"])
        assigned = _cut(units, {"test": counts["test"], "val": counts["val"]}, salt)
        return index["patient"].astype(str).map(assigned)
    raise ManifestError(f"unknown split method {method!r} in the manifest of {manifest['dataset']!r}")


def fraction_ids(train: pd.DataFrame, manifest: dict, fractions=FRACTIONS) -> dict[str, list[str]]:
    """Nested, stratified subsets of the training rows (columns id, stratum): the first ceil(f * n) ids of one
    seeded stratified order, for each fraction ``f``. Keys are fractions written with ``:g`` ("0.01")."""
    rule = manifest.get("fractions", {})
    if rule.get("method") == "listed":
        return {k: list(v) for k, v in rule["lists"].items() if float(k) in set(fractions)}
    salt = f"{manifest['dataset']}:fractions:{rule.get('seed', 0)}"
    order = stratified_order(pd.DataFrame({"unit": train["id"].astype(str), "stratum": train["stratum"].astype(str)}),
                             salt)
    return {f"{f:g}": sorted(order[:fraction_size(f, len(order))]) for f in sorted(fractions)}


def fraction_size(fraction: float, n: int) -> int:
    """Images a training fraction keeps of ``n``: ceil(f * n), at least one (the whole split at 1).

    Example:
        >>> fraction_size(0.1, 75_276), fraction_size(0.01, 50), fraction_size(1.0, 463)
        (7528, 1, 463)
    """
    return n if fraction >= 1 else max(1, math.ceil(fraction * n))


def check_nested(fractions: dict[str, list[str]], train_ids) -> None:
    """Assert that the fraction lists are nested and inside the training split (raises ``ManifestError``)."""
    train_ids = set(train_ids)
    prev: set[str] = set()
    for k in sorted(fractions, key=float):
        cur = set(fractions[k])
        if not cur <= train_ids:
            raise ManifestError(f"fraction {k} holds ids outside the training split")
        if not prev <= cur:
            raise ManifestError(f"fraction {k} does not contain the smaller fraction before it")
        prev = cur


def split_digest(ids_by_split: dict[str, list[str]]) -> str:
    """sha256 (first 16 hex) of the sorted id lists per split: two copies with the same digest use the same split."""
    h = hashlib.sha256()
    for s in SPLITS:
        h.update(f"{s}:{','.join(sorted(ids_by_split.get(s, [])))};".encode())
    return h.hexdigest()[:16]


def split_leaks(index: pd.DataFrame, split) -> list[tuple[str, dict[str, list[str]]]]:
    """The patients of ``index`` with images in more than one split, sorted, each with its image ids per split.

    Example:
        >>> idx = pd.DataFrame({"id": ["a", "b", "c"], "patient": ["p1", "p1", "p2"]})
        >>> split_leaks(idx, ["train", "test", "test"])
        [('p1', {'train': ['a'], 'test': ['b']})]
    """
    df = pd.DataFrame({"p": index["patient"].astype(str).values, "s": np.asarray(split, dtype=object),
                       "id": index["id"].astype(str).values})
    df = df[df["s"].isin(SPLITS)]
    leaky = df.groupby("p")["s"].nunique().loc[lambda n: n > 1].index
    out = []
    for p, rows in df[df["p"].isin(leaky)].groupby("p", sort=True):
        out.append((str(p), {s: sorted(rows.loc[rows["s"] == s, "id"]) for s in SPLITS if (rows["s"] == s).any()}))
    return out


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _refuse_unclean(index: pd.DataFrame, split: pd.Series, manifest: dict, lists: str, show: int = 5) -> None:
    """Raise ``UncleanSplitError`` for images in no split and for patients in two, naming up to ``show`` of them."""
    unit = manifest.get("unit", "patient")
    listed = manifest["split"]["method"] == "listed"
    fix = (f"fix the lists of the manifest ($MEDBENCH_SPLITS/{manifest['dataset']}.json where that is set)" if listed
           else f"restore {lists} from the release (remove any edited copy), then run the command again")
    nowhere = sorted(index.loc[~split.isin(SPLITS).values, "id"].astype(str))
    if nowhere:
        raise UncleanSplitError(f"{len(nowhere)} image(s) of this copy are in no official split list, e.g. "
                                f"{', '.join(nowhere[:show])}; medbench does not guess their split: {fix}")
    leaks = split_leaks(index, split)
    if leaks:
        lines = [f"{len(leaks)} {unit}(s) in more than one split (evaluation would see {unit}s that training saw):"]
        lines += [f"  {unit} {p}: " + "; ".join(f"{s} {_few(ids)}" for s, ids in files.items())
                  for p, files in leaks[:show]]
        if len(leaks) > show:
            lines.append(f"  and {len(leaks) - show} more")
        raise UncleanSplitError("\n".join(lines + [fix[0].upper() + fix[1:]]))


def patients_disjoint(index: pd.DataFrame, split: pd.Series) -> bool:
    """True when no patient has images in two splits."""
    return bool((pd.DataFrame({"p": index["patient"], "s": split}).groupby("p")["s"].nunique() <= 1).all())


def counts(split: pd.Series) -> dict[str, int]:
    return {s: int((np.asarray(split) == s).sum()) for s in SPLITS}
