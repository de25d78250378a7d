"""The authors' own split lists of ChestX-ray14 and Shenzhen, from the original repository, as listed manifests.

The original repository (``original.ORIGINAL_REPOSITORY``) ships its train, validation and test lists of ChestX-ray14
(the official test list, and the authors' own cut of ``train_val_list.txt`` into 75,312 training and 11,212
validation images) and of Shenzhen (463 / 65 / 134) in ``Version1/dataset/`` (the same files are in
``Version2/dataset/``). They are the authors' data under their licence (``original.ORIGINAL_LICENCE``: non-commercial
use; redistribution only with the licence, a notice of changes and a citation), so medbench does not ship them:
``install_authors_splits`` (``medbench data splits --authors``) reads them from the repository at the pinned commit,
or from files a user downloaded, checks each file's sha256, converts them to listed manifests in the user splits
folder (``splits.user_splits_dir``), which every later ``prepare`` and ``check`` then uses, and says under which
licence they came. Prepared data and runs record the manifest's sha: data prepared on the default manifests is
prepared again, and runs on different splits never mix.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from ..errors import BadFileError, BadValueError
from ..original import ORIGINAL_COMMIT, ORIGINAL_LICENCE, ORIGINAL_REPOSITORY
from ..paths import atomic_write_bytes, offline
from .splits import SPLITS, packaged_manifest, user_splits_dir

FOLDER = "Version1/dataset"
# file name and sha256 of each list at ORIGINAL_COMMIT (identical in Version2/dataset)
AUTHORS_FILES = {
    "chestxray14": {
        "train": ("Xray14_train_official.txt", "60cc170f312a2301e5c9a8860fe36437e0ee632b4da8a890b855a669fe3069f4"),
        "val": ("Xray14_val_official.txt", "4ea551a628d287bbe19f474408975acfbee98437245956531101cbdab5c4c090"),
        "test": ("Xray14_test_official.txt", "7fa6a1865c16b416ed0cd96954fbbb3945f8ea20c39c22521e068859cda4c7cf"),
    },
    "shenzhen": {
        "train": ("ShenzenCXR_train_data.txt", "77ac16bc43b60edcc8a21ac95bd98804562836e66245fe7cad15ae8faa653c73"),
        "val": ("ShenzenCXR_valid_data.txt", "b8e0ea0e25901f9ff57c09fa449e82019d452a64050317e87088cbf104bdfc23"),
        "test": ("ShenzenCXR_test_data.txt", "3bff5fa60628785a2c690a8c4e9983dd46a5b03bd18d23f8fef9863779065145"),
    },
}


def list_url(name: str) -> str:
    return f"https://raw.githubusercontent.com/{ORIGINAL_REPOSITORY}/{ORIGINAL_COMMIT}/{FOLDER}/{name}"


def parse_list(dataset: str, text: str, name: str = "") -> list[str]:
    """The image ids of one list, in medbench's ids: ChestX-ray14 lines are ``FILE.png`` and 14 labels (the id is
    the file name); Shenzhen lines are ``FILE.png,LABEL`` (the id is the file's stem).

    Example:
        >>> parse_list("shenzhen", "CHNCXR_0402_1.png,1\\nCHNCXR_0001_0.png,0\\n")
        ['CHNCXR_0402_1', 'CHNCXR_0001_0']
    """
    ids = []
    for k, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if dataset == "chestxray14":
            fields = line.split()
            if len(fields) != 15 or not fields[0].endswith(".png"):
                raise BadFileError(f"{name or dataset} line {k}: expected an image file name and 14 labels, got "
                                   f"{line[:60]!r}")
            ids.append(fields[0])
        else:
            file, _, label = line.partition(",")
            if not file.endswith(".png") or label.strip() not in ("0", "1"):
                raise BadFileError(f"{name or dataset} line {k}: expected FILE.png,LABEL, got {line[:60]!r}")
            ids.append(file[: -len(".png")])
    if len(set(ids)) != len(ids):
        raise BadFileError(f"{name or dataset} lists an image twice")
    return ids


def _read(dataset: str, split: str, source: Path | None, timeout: float) -> bytes:
    name, sha = AUTHORS_FILES[dataset][split]
    if source is not None:
        path = source / name
        if not path.is_file():
            raise BadFileError(f"{path} is missing: download the six list files of {ORIGINAL_REPOSITORY} "
                               f"{FOLDER}/ (at {ORIGINAL_COMMIT[:7]}) into {source}")
        data = path.read_bytes()
    else:
        if offline():
            raise BadValueError(f"offline: download {list_url(name)} (and the other lists of {FOLDER}/) into a "
                               "folder, then `medbench data splits --authors --from FOLDER`")
        try:
            with urlopen(list_url(name), timeout=timeout) as r:  # noqa: S310 - a fixed https URL
                data = r.read()
        except (URLError, OSError) as e:
            raise BadValueError(f"could not download {list_url(name)} ({e}); download it by hand into a folder, "
                               "then `medbench data splits --authors --from FOLDER`") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise BadFileError(f"{name} has sha256 {got[:12]}…, not the pinned list's {sha[:12]}… (commit "
                           f"{ORIGINAL_COMMIT[:7]}): take the file of that commit, unchanged")
    return data


def authors_manifest(dataset: str, lists: dict[str, list[str]]) -> dict:
    """A listed manifest holding the authors' lists, with the packaged manifest's unit and fractions."""
    base = packaged_manifest(dataset)
    files = {s: AUTHORS_FILES[dataset][s][0] for s in SPLITS}
    return {
        "dataset": dataset, "version": base["version"], "unit": base.get("unit", "patient"),
        "split": {"method": "listed", "lists": lists},
        "expected": {"total": sum(len(v) for v in lists.values())},
        "fractions": base["fractions"],
        "source": {"repository": ORIGINAL_REPOSITORY, "commit": ORIGINAL_COMMIT,
                   "files": {s: f"{FOLDER}/{f}" for s, f in files.items()},
                   "sha256": {s: AUTHORS_FILES[dataset][s][1] for s in SPLITS}, "licence": ORIGINAL_LICENCE},
        "notes": f"The authors' own lists ({', '.join(f'{s} {len(lists[s]):,}' for s in SPLITS)}), from "
                 f"{ORIGINAL_REPOSITORY} {FOLDER}/ at {ORIGINAL_COMMIT[:7]}, under their licence "
                 f"({ORIGINAL_LICENCE}).",
    }


def install_authors_splits(source=None, dest=None, *, timeout: float = 30.0) -> dict[str, Path]:
    """Fetch (or read from the folder ``source``) the authors' six list files, check them, and write a listed
    manifest per dataset into ``dest`` (default: the user splits folder). Nothing is written unless all six
    files are right. Returns the manifests written."""
    source = Path(source) if source is not None else None
    manifests = {}
    for dataset, files in AUTHORS_FILES.items():
        lists = {s: parse_list(dataset, _read(dataset, s, source, timeout).decode("utf-8"), files[s][0])
                 for s in SPLITS}
        manifests[dataset] = authors_manifest(dataset, lists)
    dest = Path(dest) if dest is not None else user_splits_dir()
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for dataset, m in manifests.items():
        out[dataset] = dest / f"{dataset}.json"
        atomic_write_bytes(out[dataset], json.dumps(m, indent=1).encode())
    return out
