"""Settings for every test and doctest: offline, quiet, and never touching the user's own medbench cache."""
import os
import shutil
import tempfile

# set before anything imports timm or huggingface_hub
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MEDBENCH_PROGRESS"] = "0"
_CACHE = tempfile.mkdtemp(prefix="medbench-test-cache-")
os.environ["MEDBENCH_CACHE"] = _CACHE


def pytest_configure(config):
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
