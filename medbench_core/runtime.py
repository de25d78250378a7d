"""What a notebook runs on, said in one line by its setup cell, and the profile ``"auto"`` picks there: ``colab``
on a runtime with a CUDA GPU, ``demo`` on a CPU. A reader who sets ``profile`` to a name gets that name."""
from __future__ import annotations

import json
from dataclasses import dataclass

AUTO = "auto"


def auto_profile() -> str:
    """The profile registered for this machine (``Profile.auto_on``): for a GPU where CUDA sees one (colab), else
    for a CPU (demo, offline)."""
    import torch

    from .profiles import profile_for

    return profile_for(auto_on="gpu" if torch.cuda.is_available() else "cpu")


def resolve_profile(profile: str) -> str:
    """``"auto"`` becomes ``auto_profile()``; any other name is returned as it is (and checked by its user)."""
    return auto_profile() if profile == AUTO else profile


def _installed_from() -> str:
    """How medbench is installed, without a local path: "a checkout (editable)" or "git+URL@commit"."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        raw = distribution("medbench").read_text("direct_url.json")
    except PackageNotFoundError:
        return "a source tree (not installed)"
    info = json.loads(raw) if raw else {}
    if info.get("dir_info", {}).get("editable"):
        return "a checkout (editable install)"
    vcs = info.get("vcs_info")
    if vcs and not info.get("url", "").startswith("file:"):
        return f"git+{info['url']}@{vcs.get('commit_id', '')[:10]}"
    if vcs:
        return f"a local clone at commit {vcs.get('commit_id', '')[:10]}"
    return "a package"


@dataclass(frozen=True)
class Runtime:
    version: str
    installed_from: str
    torch: str
    gpu: str | None
    profile: str

    def line(self) -> str:
        gpu = f"GPU: {self.gpu}" if self.gpu else "no GPU (CPU only)"
        return (f"medbench {self.version} from {self.installed_from} · torch {self.torch} · {gpu} · "
                f'profile "auto" runs {self.profile} here')

    def __repr__(self) -> str:
        return self.line()


def _gpu() -> str | None:
    """The GPU a runtime has, without importing torch (seconds) where nothing else needs it: torch's view when it
    is already imported, else ``nvidia-smi``'s."""
    import shutil
    import subprocess
    import sys

    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if not torch.cuda.is_available():
            return None
        p = torch.cuda.get_device_properties(0)
        return f"{p.name}, {p.total_memory / 2**30:.0f} GiB"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].replace(", ", ", ", 1) + (f" (+{len(out) - 1} more)" if len(out) > 1 else "") if out else None


def runtime() -> Runtime:
    """The runtime in one line (the setup cell's output): medbench's version and source, torch, the GPU found and
    the profile ``"auto"`` picks there. Cheap: torch is not imported for it."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    try:
        torch = version("torch").split("+")[0]
    except PackageNotFoundError:
        torch = "not installed"
    from .profiles import profile_for

    gpu = _gpu()
    return Runtime(__version__, _installed_from(), torch, gpu, profile_for(auto_on="gpu" if gpu else "cpu"))
