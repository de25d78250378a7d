"""Where a notebook keeps its work: on Colab, optionally on Google Drive, so that a disconnect loses nothing trained.

With ``drive=True`` (a notebook parameter, off by default) the results store, the prepared data and pre-training
cache, and the registry of your models go to ``MyDrive/medbench/`` on the mounted Drive; re-running the notebook
after a disconnect reads every stored run back and trains only the missing ones. Off, they stay on the runtime's
own disk, which a disconnect erases.

What the store relies on, which Google Drive's mount provides: creating a file exclusively (``O_CREAT | O_EXCL``,
a run's claim), renaming a temporary file onto a name *in the same folder* (every write of the store, the cache
and the executed notebooks; never across folders), setting a file's modification time (a claim's heartbeat) and
``fsync``. It never relies on hard or symbolic links, file locks, or a rename between folders
(``tests/system/test_drive_store.py`` runs a section on a folder that refuses all three).
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import BadValueError

DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = "MyDrive/medbench"  # under the mount: results/, cache/, models.json


def on_colab() -> bool:
    """This kernel runs on Google Colab."""
    import importlib.util

    if os.environ.get("COLAB_RELEASE_TAG"):
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no ``google`` package at all
        return False


def _mount(where: Path) -> None:
    from google.colab import drive  # only on Colab

    drive.mount(str(where))


def keep_on_drive(drive: bool, results_dir=None, cache_dir=None, *, mount=None, root: Path = DRIVE_MOUNT):
    """(results_dir, cache_dir, a sentence saying where the work is kept and what a disconnect loses). With
    ``drive``, Google Drive is mounted (``mount``: how; Colab's by default) and the store, the caches and your
    models' registry go under ``MyDrive/medbench/`` unless given; without it, nothing changes."""
    if not drive:
        said = (f"Runs are kept in {results_dir or 'results/ of the checkout'} on this runtime's disk, which a "
                "disconnect erases with every run on it: set drive = True to keep them on Google Drive."
                if on_colab() else "")  # elsewhere the disk is the user's own: nothing to warn about
        return results_dir, cache_dir, said
    if mount is None:
        if not on_colab():
            raise BadValueError("drive = True keeps the work on Google Drive, which only Colab mounts; elsewhere give "
                                "results_dir (and cache_dir) on the disk you want")
        mount = _mount
    if not (root / DRIVE_FOLDER.split("/")[0]).is_dir():
        mount(root)
    base = root / DRIVE_FOLDER
    results = Path(results_dir) if results_dir else base / "results"
    cache = Path(cache_dir) if cache_dir else base / "cache"
    for folder in (results, cache):
        folder.mkdir(parents=True, exist_ok=True)
    os.environ["MEDBENCH_CACHE"] = str(cache)
    os.environ.setdefault("MEDBENCH_MODELS", str(base / "models.json"))
    from .user_models import sync_registries

    sync_registries()
    return str(results), str(cache), (f"Runs are kept on Google Drive in {results} (data and checkpoints in "
                                      f"{cache}): after a disconnect, run the notebook again; stored runs are read "
                                      "back, only the missing ones train.")
