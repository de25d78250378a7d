import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory) -> Path:
    """One cache of generated data and smoke pre-training checkpoints shared by the whole test session."""
    return tmp_path_factory.mktemp("medbench-cache")


@pytest.fixture
def book_copy(tmp_path, repo_root) -> Path:
    """A copy of the book sources and notebooks (without built or executed files) to build in isolation."""
    dst = tmp_path / "repo"
    dst.mkdir()
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(repo_root / f, dst / f)
    shutil.copytree(repo_root / "notebooks", dst / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(repo_root / "book", dst / "book", ignore=shutil.ignore_patterns("executed", "generated"))
    return dst


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, repo_root, smoke_cache):
    """One real smoke-profile build of the whole book, shared by the build and browser tests:
    (the copy's root, its _build/html, its results store)."""
    from medbench_core.book import build_book

    dst = tmp_path_factory.mktemp("built-book") / "repo"
    dst.mkdir()
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(repo_root / f, dst / f)
    shutil.copytree(repo_root / "notebooks", dst / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(repo_root / "book", dst / "book", ignore=shutil.ignore_patterns("executed", "generated"))
    results = dst.parent / "results"
    html = build_book("smoke", root=dst, results_dir=results, cache_dir=smoke_cache)
    return dst, html, results
