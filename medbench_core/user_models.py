"""Your own pre-trained models on the benchmark. ``medbench models add NAME --arch ARCH --file CHECKPOINT`` reads a
checkpoint, finds where the architecture's backbone is in it, audits it like every other load (every backbone
tensor with its shape, or an error naming the missing and unexpected keys), writes the converted weights to the
cache and records the model in a registry file of yours, outside the package (``registry_path``: readable JSON,
one entry per model, with the file's sha256). From then on ``NAME`` is an initialisation like the registered ones
(``--inits imagenet,NAME``); the sha256 is part of every run's hash, so a changed file is a new run and the same
file is never trained twice.

Layouts read (the checkpoint is flattened to dotted keys first, so a container is a prefix like any other):

- a ``.safetensors`` file, or a PyTorch file read with ``weights_only=True`` (never an arbitrary pickle);
- the tensors at the top level (timm, torchvision), or inside a container: ``state_dict`` (PyTorch Lightning and
  most trainers), ``model``, ``module``, ``net``, ...;
- under a key prefix: ``module.`` (DataParallel), ``model.`` / ``backbone.`` / ``encoder.`` (Lightning modules),
  ``module.encoder_q.`` (MoCo), or any other.

The prefix is found, not guessed: it is every prefix under which *all* backbone tensors of the architecture are
present with their shapes. One such prefix is the layout; none means the file is not a whole backbone of that
architecture (refused, naming what is missing); several that differ (MoCo's query and key encoders, a teacher and a
student) are ambiguous and refused, naming the ``--prefix`` that picks one. Under the chosen prefix, the
architecture's classification head may be absent or different (it is replaced for each task); any other key there
is refused as unexpected.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from .errors import BadFileError, BadPathError, BadValueError

TAG_PREFIX = "user_"  # a user model's weights tag: ``<arch>.user_<name>``
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
FAMILY = "yours"


def registry_path() -> Path:
    """``$MEDBENCH_MODELS``, else ``$XDG_CONFIG_HOME/medbench/models.json`` (``~/.config/medbench/models.json``)."""
    if os.environ.get("MEDBENCH_MODELS"):
        return Path(os.environ["MEDBENCH_MODELS"]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "medbench" / "models.json"


def user_models() -> dict[str, dict]:
    """The models in the registry file (none when it does not exist); a file that is not the registry's JSON is
    refused naming it."""
    path = registry_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        models = data["models"]
        for name, m in models.items():
            if not NAME_RE.match(name) or not {"arch", "sha256", "prefix", "file"} <= set(m):
                raise ValueError(name)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadFileError(f"{path} is not medbench's registry of your models (JSON with a 'models' table); fix or "
                           "remove it, or point $MEDBENCH_MODELS elsewhere") from None
    return models


def _write_registry(models: dict) -> None:
    """The registry file, written atomically (readable, sorted JSON: a diff shows what changed)."""
    from .paths import atomic_write_bytes

    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps({"models": models}, indent=1, sort_keys=True) + "\n").encode())


def weights_key(name: str, arch: str) -> str:
    return f"{arch}.{TAG_PREFIX}{name}"


# -- reading a checkpoint ------------------------------------------------------------------------------------------

def _flatten(obj, prefix: str = "", out: dict | None = None) -> dict:
    """Every tensor of a (nested) checkpoint under its dotted key."""
    import torch

    out = {} if out is None else out
    if isinstance(obj, torch.Tensor):
        out[prefix[:-1]] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}{k}.", out)
    return out


def read_tensors(path: Path) -> dict:
    """The file's tensors, flattened to dotted keys (a safetensors file, or a torch file read weights-only)."""
    from .zoo.convert import read_state
    from .zoo.errors import LayoutError

    try:
        return _flatten(read_state(path))
    except (LayoutError, BadFileError):
        raise
    except Exception as e:  # noqa: BLE001 - a reader's complaint about the bytes: one line
        raise BadFileError(f"{path} cannot be read as a checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else 'no detail'}); give a .safetensors or PyTorch "
                           "file of weights") from None


def _backbone(arch: str) -> tuple[dict, tuple[str, ...]]:
    """The architecture's backbone keys with their shapes, and its classification head's key prefixes."""
    from .models import build_classifier, classifier_head_prefixes

    heads = classifier_head_prefixes(arch)
    model = build_classifier(arch, 1000)
    return ({k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith(heads)}, heads)


def _shown(keys, n: int = 4) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def find_backbone(tensors: dict, arch: str, *, prefix: str | None = None, source: str = "the file"
                  ) -> tuple[str, dict]:
    """The prefix under which ``tensors`` hold every backbone tensor of ``arch`` (``prefix``: the one to use), and
    the backbone's tensors under their model keys. Raises ``BadFileError`` for a file with no whole backbone, or
    with several (ambiguous: naming the ``--prefix`` values)."""
    want, _ = _backbone(arch)
    if prefix is not None:
        candidates = [prefix]
    else:
        anchor = next(iter(want))
        candidates = sorted({k[:len(k) - len(anchor)] for k in tensors
                             if k == anchor or k.endswith("." + anchor)}, key=lambda p: (len(p), p))
    full, best = [], (None, -1, want)
    for p in candidates:
        got = {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}
        missing = [k for k, shape in want.items() if k not in got or tuple(got[k].shape) != shape]
        if not missing:
            full.append((p, got))
        elif len(want) - len(missing) > best[1]:
            best = (p, len(want) - len(missing), missing)
    if not full:
        if prefix is not None and not any(k.startswith(prefix) for k in tensors):
            raise BadValueError(f"--prefix {prefix!r}: no key of {source} starts with it (its keys start with "
                                f"{_shown({k.split('.')[0] + '.' for k in tensors})})")
        p, n, missing = best
        where = f" (best: {n} of {len(want)} under {p!r})" if p is not None else ""
        raise BadFileError(f"{source} does not hold a whole {arch} backbone{where}: missing or of another shape "
                           f"{_shown(missing)}; check --arch (medbench list archs) or the file")
    distinct = []
    for p, got in full:
        if not any(all(got[k].shape == g[k].shape and bool((got[k] == g[k]).all()) for k in want)
                   for _, g in distinct):
            distinct.append((p, got))
    if len(distinct) > 1:
        options = " or ".join(f"--prefix {p!r}" for p, _ in distinct)
        raise BadValueError(f"{source} holds {len(distinct)} different whole {arch} backbones; say which is the "
                            f"model: {options} (MoCo's query encoder is 'module.encoder_q.', a distilled "
                            "student's usually 'student.')")
    return full[0]


# -- the verbs ------------------------------------------------------------------------------------------------------

def add_model(name: str, arch: str, file: str | os.PathLike, *, prefix: str | None = None, label: str | None = None,
              cache_dir=None) -> dict:
    """Read, audit and convert ``file`` as the weights of ``arch``; record it as your model ``name`` (replacing an
    entry of the same name) and register it for this session. Returns its entry."""
    from . import pretrain
    from .models import build_classifier, classifier_head_prefixes, get_arch, load_backbone
    from .zoo import records
    from .zoo.fetch import save_converted, sha256_file

    if not NAME_RE.match(name or ""):
        raise BadValueError(f"model name {name!r}: use 2-40 lower-case letters, digits and '_', starting with a "
                            "letter (it becomes an init name: --inits imagenet,NAME)")
    known = user_models()
    if name in pretrain.list_inits() and name not in known:
        raise BadValueError(f"{name!r} is an initialisation medbench registers; give your model another name")
    get_arch(arch)  # raises listing the valid ones
    from .paths import check_writable_dir

    if registry_path().is_dir():
        raise BadPathError(f"{registry_path()} is a folder; $MEDBENCH_MODELS names the registry file (models.json)")
    check_writable_dir(registry_path().parent, "the folder of your models' registry")  # before any reading
    file = Path(file).expanduser()
    if not file.is_file():
        raise BadPathError(f"{file} is {'a folder' if file.is_dir() else 'not a regular file' if file.exists() else 'missing'}"
                           "; give the checkpoint file")
    tensors = read_tensors(file)
    chosen, state = find_backbone(tensors, arch, prefix=prefix, source=str(file))
    heads = classifier_head_prefixes(arch)
    backbone = {k: v for k, v in state.items() if not k.startswith(heads)}
    report = load_backbone(build_classifier(arch, 1000), backbone, head_prefixes=heads,
                           source=f"{file} (your model {name}, prefix {chosen!r})")
    sha = sha256_file(file)
    entry = {"arch": arch, "file": str(file.resolve()), "sha256": sha, "prefix": chosen,
             "label": label or name, "backbone_tensors": report.loaded,
             "added_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    save_converted(weights_key(name, arch), arch, backbone, report, sha=sha, converter=f"prefix {chosen!r}",
                   source=file, cache_dir=cache_dir)
    _write_registry({**known, name: entry})
    records.register_user(name, entry, replace=True)
    pretrain.register_user(name, entry, replace=True)
    return entry


def remove_model(name: str, cache_dir=None) -> None:
    """Remove your model ``name`` from the registry and its converted weights from the cache. Runs already stored
    stay in their stores (their rows name the model and its sha256)."""
    from . import pretrain
    from .zoo import converted_path, records

    models = user_models()
    if name not in models:
        raise BadValueError(f"no model of yours is called {name!r}; yours: {', '.join(models) or 'none'} "
                            f"({registry_path()})")
    entry = models.pop(name)
    _write_registry(models)
    converted_path(weights_key(name, entry["arch"]), cache_dir).unlink(missing_ok=True)
    records.unregister_user(name, entry)
    pretrain.unregister_user(name)


def sync_registries() -> None:
    """Register every model of the registry file that this session has not registered yet (after the file's place
    changed, e.g. to Google Drive)."""
    from . import pretrain
    from .zoo import records

    for name, entry in user_models().items():
        if name not in pretrain.list_inits():
            records.register_user(name, entry, replace=True)
            pretrain.register_user(name, entry)
