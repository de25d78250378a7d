"""Colab keeps its work (issue 26): a results store on a folder with a network file system's limits (no rename
between folders, no links, no file locks) takes a section's runs; interrupted and run again, it trains only the
runs that are missing and never one twice."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from medbench_core.results import ResultsStore
from medbench_core.sections import validate_section_params
from medbench_core.storage import keep_on_drive


@pytest.fixture
def drive_limits(monkeypatch, tmp_path):
    """Inside ``tmp_path / 'drive'``: a rename between two folders fails (EXDEV), as do links and file locks."""
    import fcntl

    mount = tmp_path / "drive"
    inside = lambda p: str(Path(p).resolve()).startswith(str(mount))  # noqa: E731
    real_replace, real_rename = os.replace, os.rename

    def same_folder(real):
        def move(src, dst, *a, **k):
            if (inside(src) or inside(dst)) and Path(src).resolve().parent != Path(dst).resolve().parent:
                raise OSError(errno.EXDEV, "Invalid cross-device link (a rename between folders)", str(src))
            return real(src, dst, *a, **k)
        return move

    def refused(*a, **k):
        raise OSError(errno.EPERM, "Operation not permitted on this mount")

    monkeypatch.setattr(os, "replace", same_folder(real_replace))
    monkeypatch.setattr(os, "rename", same_folder(real_rename))
    monkeypatch.setattr(os, "link", refused)
    monkeypatch.setattr(os, "symlink", refused)
    monkeypatch.setattr(fcntl, "flock", refused)
    monkeypatch.setattr(fcntl, "lockf", refused)
    return mount


def test_a_section_interrupted_on_the_mount_resumes_and_trains_each_run_once(drive_limits, monkeypatch, tmp_path):
    from medbench_core.experiments import run_grid

    mounted = []
    results, cache, said = keep_on_drive(True, mount=lambda where: (where / "MyDrive").mkdir(parents=True) or
                                         mounted.append(where), root=drive_limits)
    assert mounted and Path(results).is_relative_to(drive_limits / "MyDrive" / "medbench")
    assert "Google Drive" in said and "only the missing ones train" in said
    assert os.environ["MEDBENCH_CACHE"] == cache  # the prepared data and checkpoints go there too
    monkeypatch.setenv("MEDBENCH_WORKERS", "1")
    grid = validate_section_params("domain-adaptation", profile="smoke", tasks=["syn_txc"],
                                   protocol={"max_epochs": 1})
    trained = []
    real_write = ResultsStore.write_run

    def disconnect_after_three(self, h, *a, **k):
        real_write(self, h, *a, **k)
        trained.append(h)
        if len(trained) == 3:
            raise KeyboardInterrupt  # the runtime goes away after three runs
    monkeypatch.setattr(ResultsStore, "write_run", disconnect_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, results, cache_dir=cache)
    monkeypatch.setattr(ResultsStore, "write_run", lambda self, h, *a, **k: trained.append(h) or real_write(
        self, h, *a, **k))
    out = run_grid(grid, results, cache_dir=cache)  # the notebook run again after reconnecting
    assert out["cached"] == 3 and out["trained"] == len(grid.configs) - 3
    assert sorted(trained) == sorted(set(trained)) == sorted(grid.hashes)  # every run once, none twice
    store = Path(results)
    assert not [p for p in store.rglob("*") if ".tmp" in p.name]  # nothing half-written left behind
    assert not any((store / "claims").iterdir())


def test_without_drive_colab_says_what_a_disconnect_loses(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-2026")
    _, _, said = keep_on_drive(False)
    assert "a disconnect erases" in said and "drive = True" in said
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    from medbench_core.storage import on_colab

    if not on_colab():
        assert keep_on_drive(False)[2] == ""  # on one's own disk there is nothing to warn about
        with pytest.raises(Exception, match="only Colab mounts"):
            keep_on_drive(True)
