"""Where medbench keeps generated data, prepared datasets, pre-training checkpoints and weights (no heavy imports)."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


def get_cache_dir(cache_dir: str | os.PathLike | None = None, *, create: bool = True) -> Path:
    """Where generated data and pre-training checkpoints live: the argument, ``$MEDBENCH_CACHE`` or
    ``~/.cache/medbench`` (created unless ``create`` is false)."""
    path = Path(cache_dir or os.environ.get("MEDBENCH_CACHE") or Path.home() / ".cache" / "medbench")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when this session must not download (``MEDBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` set to anything but 0)."""
    return any(os.environ.get(v, "").strip() not in ("", "0") for v in ("MEDBENCH_OFFLINE", "HF_HUB_OFFLINE"))


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars show unless disabled here or by ``MEDBENCH_PROGRESS=0`` (the test suite sets it)."""
    if progress is not None:
        return progress
    return os.environ.get("MEDBENCH_PROGRESS", "1") != "0"


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The medbench checkout holding ``_toc.yml`` and ``notebooks/`` (searched upwards from ``start``)."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").exists() and (d / "notebooks").is_dir():
            return d
    raise FileNotFoundError(
        f"no medbench checkout found at or above {here}: `medbench run` and `medbench book` need the repository "
        "(its notebooks/ and _toc.yml). Run them from a clone, or pass --root.")


def default_results_dir() -> Path:
    """The results store a notebook uses when none is given: ``results/`` of the checkout it runs in, or, outside a
    checkout (medbench installed by a notebook's setup cell, as on Colab), ``medbench-results/`` in the working
    directory."""
    try:
        return find_root() / "results"
    except FileNotFoundError:
        return Path.cwd() / "medbench-results"


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a folder medbench may write into, checked before any work and without creating anything: it is a
    folder, or it does not exist yet and the nearest existing folder above it is writable. ``what`` names the
    option (``--results-dir``) in the one-line error.

    Example:
        >>> check_writable_dir(Path(__file__), "--results-dir")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        medbench_core.errors.BadPathError: --results-dir ... is a file; give a folder (it is created if missing)
    """
    from .errors import BadPathError

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise BadPathError(f"{what} {path} is a file; give a folder (it is created if missing)")
    above = path
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise BadPathError(f"{what} {path}: {above} is a file, so no folder can be made there; give another path")
    if not os.access(above, os.W_OK | os.X_OK):
        raise BadPathError(f"{what} {path}: no permission to write in {above}; give a folder you can write to")
    return path


def pid_alive(pid: int) -> bool:
    """Is process ``pid`` running on this machine?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphan_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``[.]NAME.PID.tmp[.ext]``, as the atomic writes and the notebook runs name them)
    that a process killed midway left in ``folder``: those whose process is gone. Returns what was removed."""
    import re

    removed = []
    pattern = re.compile(r"^.+\.(\d+)\.tmp(\.\w+)?$")
    for path in Path(folder).glob("*.tmp*"):
        m = pattern.match(path.name)
        if m and path.is_file() and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def atomic_write_bytes(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``path`` so that it either holds ``data`` or keeps its old content (temp file, fsync, rename). A failed
    write (a full disk) leaves no temporary file and raises an ``OSError`` naming ``path``. ``sync=False`` skips
    the fsync, for a caller that syncs many files at once (``sync_filesystem``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with cleaned_on_failure(tmp, path):
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)


class cleaned_on_failure:
    """Context: on any failure remove the temporary file ``tmp``; an ``OSError`` that names no file (ENOSPC from a
    write) is raised again naming ``path``, so the one-line error says where the disk is full."""

    def __init__(self, tmp: Path, path: Path):
        self.tmp, self.path = tmp, path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is None:
            return False
        self.tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror or str(error), str(self.path)) from error
        return False


def sync_filesystem(path: str | os.PathLike) -> None:
    """Flush every written file of the file system holding ``path`` to disk (Linux ``syncfs``; ``os.sync`` where
    it is missing): one call after many unsynced writes instead of one fsync per file."""
    import ctypes

    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def output_target(path: str | os.PathLike) -> Path:
    """Where writing the user-named output ``path`` lands: a symlink's target (followed, even dangling), else
    ``path`` itself."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def is_special_file(path: Path) -> bool:
    """A device, FIFO or socket: something to write into, never to replace."""
    try:
        return not stat.S_ISREG(path.stat().st_mode) and not stat.S_ISDIR(path.stat().st_mode)
    except OSError:
        return False


def replace_output(tmp: Path, output: str | os.PathLike) -> Path:
    """Put the finished temporary file ``tmp`` where the user asked (``output``) without destroying anything that
    is not ours: a regular file or a new name is replaced atomically (a rename); a symlink is followed and its target
    written (the link stays); a device or FIFO is written into (``/dev/null``, a pipe a reader waits on), never
    replaced; a socket is refused. ``tmp`` is gone afterwards. Returns the path written.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "target.csv").write_text("old"); (d / "link.csv").symlink_to("target.csv")
        3
        >>> (d / ".t").write_text("new") and replace_output(d / ".t", d / "link.csv").name
        'target.csv'
        >>> (d / "link.csv").is_symlink(), (d / "target.csv").read_text()
        (True, 'new')
    """
    target = output_target(output)
    if is_special_file(target):
        if stat.S_ISSOCK(target.stat().st_mode):
            tmp.unlink(missing_ok=True)
            from .errors import BadPathError

            raise BadPathError(f"{output} is a socket; give a file name")
        try:
            with open(tmp, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        finally:
            tmp.unlink(missing_ok=True)
        return target
    os.replace(tmp, target)
    return target


def write_output_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to the user-named output ``path`` as ``replace_output`` does: atomically where it is (or will
    be) a regular file, a symlink's target included; straight into a device or FIFO."""
    target = output_target(path)
    if not is_special_file(target):
        atomic_write_bytes(target, data)
        return target
    with tempfile.NamedTemporaryFile(prefix=".medbench-out-", delete=False) as f:
        with cleaned_on_failure(Path(f.name), target):
            f.write(data)
    return replace_output(Path(f.name), target)


def atomic_save_npz(path: Path, **arrays) -> None:
    """Write ``path`` so that it either holds all arrays or does not exist (write to a temp file, then rename)."""
    import numpy as np

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with cleaned_on_failure(tmp, path):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
