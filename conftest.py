"""Settings for every test and doctest: offline, quiet, and never touching the user's own medbench cache or models."""
import os
import shutil
import tempfile

# set before anything imports timm or huggingface_hub
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MEDBENCH_PROGRESS"] = "0"
_CACHE = tempfile.mkdtemp(prefix="medbench-test-cache-")
os.environ["MEDBENCH_CACHE"] = _CACHE
# nor the user's own models: a registry that does not exist (tests that add models set their own)
os.environ["MEDBENCH_MODELS"] = os.path.join(_CACHE, "no-user-models", "models.json")
# `make test` runs one test process per core (pytest-xdist): each of them, and every kernel and process it starts,
# computes on one thread and trains in its own process, so the test processes do not fight over the cores
_PARALLEL = "PYTEST_XDIST_WORKER" in os.environ
if _PARALLEL:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MEDBENCH_WORKERS"):
        os.environ.setdefault(_var, "1")


# The tests that read the one smoke book built by tests/conftest.py's `built_book`: run in one test process, so the
# book is built once (`make test` runs a test process per core with pytest-xdist).
BUILT_BOOK_TESTS = ("tests/book_cli/test_book.py::", "tests/book_cli/test_browser.py::",
                    "tests/book_cli/test_notebooks.py::test_every_section_runs_through_papermill",
                    "tests/sections/test_sections.py::test_summary_tells_ran_failed_and_not_run_apart")
SLOW_FIRST = ("tests/system/test_rehearsal.py", "tests/system/test_sweep.py", "tests/sections/test_paper_grid.py", "tests/book_cli/test_notebooks.py")


def pytest_xdist_make_scheduler(config, log):
    """Tests handed out one by one, as xdist's ``load``, except ``BUILT_BOOK_TESTS``: one unit, sent first. (xdist's
    ``loadgroup`` marks the groups in the node ids, which pytest 9 no longer lets it change.)"""
    from xdist.scheduler import LoadScopeScheduling

    class OneBook(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "built-book" if nodeid.startswith(BUILT_BOOK_TESTS) else nodeid

    return OneBook(config, log)


def pytest_collection_modifyitems(config, items):
    """Slow tests first, the longest first (the dress rehearsal leads), so no long test starts last; and every test
    that reads the built book is in ``BUILT_BOOK_TESTS``, or the book would be built once more for it."""
    missing = [i.nodeid for i in items if "built_book" in getattr(i, "fixturenames", ())
               and not i.nodeid.startswith(BUILT_BOOK_TESTS)]
    assert not missing, f"add these to BUILT_BOOK_TESTS in conftest.py: {missing}"
    items.sort(key=lambda i: (i.get_closest_marker("slow") is None,
                              next((k for k, f in enumerate(SLOW_FIRST) if i.nodeid.startswith(f)), len(SLOW_FIRST))))


def pytest_configure(config):
    import torch

    torch.set_num_threads(1 if _PARALLEL else min(2, os.cpu_count() or 1))


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
