"""Where medbench keeps generated data, prepared datasets, pre-training checkpoints and weights (no heavy imports)."""
from __future__ import annotations

import os
from pathlib import Path


def get_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where generated data and pre-training checkpoints live: the argument, ``$MEDBENCH_CACHE`` or
    ``~/.cache/medbench``."""
    path = Path(cache_dir or os.environ.get("MEDBENCH_CACHE") or Path.home() / ".cache" / "medbench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when this session must not download (``MEDBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` set to anything but 0)."""
    return any(os.environ.get(v, "").strip() not in ("", "0") for v in ("MEDBENCH_OFFLINE", "HF_HUB_OFFLINE"))
