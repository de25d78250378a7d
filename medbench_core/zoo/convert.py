"""Converters from each release's key layout to timm's, and the safe readers they use.

Every converter returns a state dict in the key layout of the timm model of the record's architecture, with the
release's own heads (projection MLPs, prototypes, jigsaw streams, classifiers of another task) removed by name.
Nothing else is dropped: a tensor the converter does not recognise stays, and the audit that follows refuses it.

Files are read with ``torch.load(weights_only=True)``; ``argparse.Namespace`` (a plain container some releases
store their training options in) is the only extra class allowed. BYOL's Haiku pickle is read by a restricted
unpickler that rebuilds numpy arrays and plain containers and nothing else.
"""
from __future__ import annotations

import argparse
import io
import pickle
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import LayoutError, UnsafeCheckpointError


# -- readers --------------------------------------------------------------------------------------------------------

def torch_load(path: Path) -> dict:
    """``torch.load`` with ``weights_only=True``; a file that needs other classes is refused with their names."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):  # a torch zip archive, or a legacy pickle
        raise LayoutError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle: it starts with "
                          f"{head!r}); it may be an HTML error page or another format: download it again")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # only a class outside the allowed ones is "unsafe"; the rest is corrupt
            raise LayoutError(f"{path} is not a readable PyTorch checkpoint ({str(e).splitlines()[0]}); it is cut "
                              "off or corrupt: download it again") from None
        raise UnsafeCheckpointError(
            f"{path} needs unpickling of objects that torch.load(weights_only=True) refuses: {str(e).splitlines()[0]}"
            ". medbench does not execute arbitrary pickles; convert the file where you trust it, or use a release "
            "in plain tensor format.") from None


def read_state(path: Path) -> dict:
    """Tensors of a checkpoint file (.safetensors, or a torch file), unwrapped from its container."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch_load(path)


def _unwrap(ckpt: dict, *keys: str) -> dict:
    for k in keys:
        if isinstance(ckpt, dict) and k in ckpt and isinstance(ckpt[k], dict):
            return ckpt[k]
    return ckpt


def _tensors(d: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)}


def _strip(state: dict, prefix: str, *, keep_others: bool = False) -> dict:
    out = {}
    for k, v in state.items():
        if k.startswith(prefix):
            out[k[len(prefix):]] = v
        elif keep_others:
            out[k] = v
    return out


def _drop(state: dict, *patterns: str) -> dict:
    return {k: v for k, v in state.items() if not any(re.match(p, k) for p in patterns)}


# -- converters: (path, arch) -> timm state dict --------------------------------------------------------------------

def torchvision(path: Path, arch: str) -> dict:
    """torchvision ResNet keys are timm's (conv1, bn1, layer1..4, fc). Barlow Twins ships the same keys without fc."""
    return _tensors(_unwrap(read_state(path), "state_dict", "model"))


def moco(path: Path, arch: str) -> dict:
    """MoCo and PCL: ``state_dict`` with the query encoder under ``module.encoder_q.``; its ``fc`` is the projection
    MLP (dropped); the key encoder and the queue are not the model."""
    sd = _unwrap(torch_load(path), "state_dict")
    if not any(k.startswith("module.encoder_q.") for k in sd):
        raise LayoutError(f"{path}: no 'module.encoder_q.' keys (a MoCo/PCL checkpoint has them); found e.g. "
                          f"{', '.join(list(sd)[:4])}")
    return _drop(_strip(_tensors(sd), "module.encoder_q."), r"fc\.")


def swav(path: Path, arch: str) -> dict:
    """SwAV, DeepCluster-v2, SeLa-v2: a plain state dict with ``module.``; projection head and prototypes
    dropped."""
    sd = _tensors(_unwrap(torch_load(path), "state_dict"))
    sd = _strip(sd, "module.", keep_others=True)
    return _drop(sd, r"projection_head\.", r"prototypes\d*\.")


def pycontrast(path: Path, arch: str) -> dict:
    """InsDis, PIRL, InfoMin (PyContrast): ``model`` with the encoder under ``module.encoder.``; heads (``head``,
    ``head_jig``, ``jigsaw``) dropped."""
    sd = _tensors(_unwrap(torch_load(path), "model", "state_dict"))
    if not any(k.startswith("module.encoder.") for k in sd):
        raise LayoutError(f"{path}: no 'module.encoder.' keys (a PyContrast checkpoint has them); found e.g. "
                          f"{', '.join(list(sd)[:4])}")
    sd = _drop(sd, r"module\.head", r"module\.jigsaw")
    return _strip(sd, "module.encoder.", keep_others=True)


def authors(path: Path, arch: str) -> dict:
    """The authors' ``.pth.tar`` (``state_dict``, possibly under DataParallel's ``module.`` and a ``backbone.`` /
    ``encoder.`` / ``model.`` prefix); the classifier of the pre-training task (``fc``, ``classifier``, ``head``) is
    dropped. Official ConvNeXt/Swin key names are then mapped as for their releases."""
    sd = _tensors(_unwrap(torch_load(path), "state_dict", "model", "teacher"))
    for prefix in ("module.", "backbone.", "encoder.", "model."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = _strip(sd, prefix)
    if arch.startswith(("convnext", "swin")) and any(k.startswith(("downsample_layers", "layers.")) for k in sd):
        return _official(sd, arch)
    return _drop(sd, r"fc\.", r"classifier\.", r"head\.")


def _official(sd: dict, arch: str) -> dict:
    import timm

    from ..models import get_arch

    model = timm.create_model(get_arch(arch).timm_name, pretrained=False)
    if arch.startswith("convnext"):
        from timm.models.convnext import checkpoint_filter_fn
    elif arch.startswith("swin"):
        from timm.models.swin_transformer import checkpoint_filter_fn
    else:
        from timm.models.vision_transformer import checkpoint_filter_fn
    return dict(checkpoint_filter_fn(sd, model))


def official(path: Path, arch: str) -> dict:
    """The official ConvNeXt, Swin and DeiT releases (``model``): their key names mapped to timm's by timm's own
    checkpoint filters (ConvNeXt ``downsample_layers``/``stages`` to ``stem``/``stages.N.downsample``, Swin's
    downsampling moved to the next stage, ...)."""
    return _official(_tensors(_unwrap(torch_load(path), "model", "state_dict")), arch)


_LITE0_STAGES = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage of EfficientNet-Lite0


def lukemelas_efficientnet(path: Path, arch: str) -> dict:
    """lukemelas-style EfficientNet keys (``_conv_stem``, ``_blocks.N._expand_conv``, ...) to timm's
    ``tf_efficientnet_lite0`` (``conv_stem``, ``blocks.S.I.conv_pw``, ...)."""
    sd = _tensors(_unwrap(torch_load(path), "state_dict"))
    where = [(s, i) for s, n in enumerate(_LITE0_STAGES) for i in range(n)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    ds = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}  # first block
    ir = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
          "_project_conv": "conv_pwl", "_bn2": "bn3"}  # inverted residual blocks
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] in top:
            out[".".join([top[parts[0]]] + parts[1:])] = v
        elif parts[0] == "_blocks" and int(parts[1]) < len(where):
            s, i = where[int(parts[1])]
            names = ds if int(parts[1]) == 0 else ir
            if parts[2] not in names:
                raise LayoutError(f"{path}: unknown block layer {k!r}")
            out[".".join(["blocks", str(s), str(i), names[parts[2]]] + parts[3:])] = v
        else:
            out[k] = v  # left for the audit to refuse
    return out


# -- BYOL: a Haiku parameter tree in a pickle --------------------------------------------------------------------------

class _Opaque:
    """Stands in for a class of the BYOL code base (e.g. its experiment state NamedTuple): keeps its arguments."""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state


class _RestrictedUnpickler(pickle.Unpickler):
    """Numpy arrays, plain containers and stand-ins for the release's own (data-only) classes; nothing callable."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"), ("builtins", "dict"),
               ("builtins", "list"), ("builtins", "tuple"), ("copyreg", "_reconstructor"),
               ("copyreg", "__newobj__"), ("builtins", "object"), ("numpy.core.numeric", "_frombuffer"),
               ("numpy._core.numeric", "_frombuffer"), ("builtins", "bytearray")}
    OPAQUE_MODULES = ("byol", "haiku", "optax", "jaxline")

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        if module.split(".")[0] in self.OPAQUE_MODULES:
            return type(name, (_Opaque,), {})
        raise UnsafeCheckpointError(f"the pickle wants {module}.{name}, which the BYOL reader does not allow")


def _haiku_trees(obj, found: list, depth: int = 0) -> None:
    """Collect dicts whose keys are Haiku module paths ('.../~/...'), in the order they appear."""
    if depth > 6:
        return
    if isinstance(obj, dict):
        if obj and all(isinstance(k, str) and "/" in k for k in obj):
            found.append(obj)
            return
        for v in obj.values():
            _haiku_trees(v, found, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _haiku_trees(v, found, depth + 1)
    elif isinstance(obj, _Opaque):
        _haiku_trees(list(obj.args) + [getattr(obj, "state", None)], found, depth + 1)


def _haiku_name(module: str) -> tuple[str, str] | None:
    """'res_net50/~/block_group_1/~/block_0/~/conv_2' -> ('layer2.0.conv3', 'conv'); None for heads."""
    parts = module.split("/~/")
    if len(parts) < 2 or not parts[0].startswith("res_net"):
        return None  # projector / predictor heads
    rest = parts[1:]
    if rest[-1] in ("mean_ema", "var_ema"):
        rest = rest[:-1]
    if rest == ["initial_conv"]:
        return "conv1", "conv"
    if rest == ["initial_batchnorm"]:
        return "bn1", "bn"
    if rest and rest[0] == "logits":
        return None
    m = re.fullmatch(r"block_group_(\d+)", rest[0]) if rest else None
    b = re.fullmatch(r"block_(\d+)", rest[1]) if len(rest) > 2 else None
    if not (m and b):
        raise LayoutError(f"unknown Haiku module {module!r}")
    base = f"layer{int(m.group(1)) + 1}.{int(b.group(1))}"
    leaf = rest[2]
    if leaf == "shortcut_conv":
        return f"{base}.downsample.0", "conv"
    if leaf == "shortcut_batchnorm":
        return f"{base}.downsample.1", "bn"
    c = re.fullmatch(r"(conv|batchnorm)_(\d+)", leaf)
    if not c:
        raise LayoutError(f"unknown Haiku module {module!r}")
    kind = "conv" if c.group(1) == "conv" else "bn"
    return f"{base}.{'conv' if kind == 'conv' else 'bn'}{int(c.group(2)) + 1}", kind


def byol_haiku(path: Path, arch: str) -> dict:
    """BYOL's release: the online network's Haiku parameters (``w`` HWIO kernels, batch-norm ``scale``/``offset``)
    and state (``mean_ema``/``var_ema`` ``average``), mapped by module name to torchvision/timm ResNet keys."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001
        raise LayoutError(f"{path} is not a readable BYOL pickle: {e}") from None
    trees: list[dict] = []
    _haiku_trees(obj, trees)
    params = next((t for t in trees if any(isinstance(v, dict) and "w" in v for v in t.values())), None)
    state = next((t for t in trees if any(isinstance(v, dict) and "average" in v for v in t.values())), None)
    if params is None or state is None:
        raise LayoutError(f"{path}: no Haiku parameter and state trees found (is this BYOL's pretrain_res50x1.pkl?)")
    out = {}
    for module, leaves in params.items():
        mapped = _haiku_name(module)
        if mapped is None:
            continue
        name, kind = mapped
        if kind == "conv":
            out[f"{name}.weight"] = torch.from_numpy(np.asarray(leaves["w"]).transpose(3, 2, 0, 1).copy())
        else:
            out[f"{name}.weight"] = torch.from_numpy(np.asarray(leaves["scale"]).reshape(-1).copy())
            out[f"{name}.bias"] = torch.from_numpy(np.asarray(leaves["offset"]).reshape(-1).copy())
    for module, leaves in state.items():
        mapped = _haiku_name(module)
        if mapped is None:
            continue
        stat = "running_mean" if module.endswith("mean_ema") else "running_var"
        out[f"{mapped[0]}.{stat}"] = torch.from_numpy(np.asarray(leaves["average"]).reshape(-1).copy())
    for k in [k for k in out if k.endswith("running_mean")]:
        out[k.replace("running_mean", "num_batches_tracked")] = torch.tensor(0)
    return {k: v.float() if v.is_floating_point() else v for k, v in out.items()}


# -- SimCLR: TensorFlow variables ------------------------------------------------------------------------------------

def _tf_variables(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    try:
        import tensorflow as tf  # noqa: F401  (optional: only to read a raw TF checkpoint)
    except ImportError:
        raise LayoutError(f"{path} is not an .npz of TensorFlow variables, and tensorflow is not installed to read a "
                          "TF checkpoint. Export the variables once with tensorflow: "
                          "r = tf.train.load_checkpoint(PREFIX); np.savez(OUT, **{k: r.get_tensor(k) for k in "
                          "r.get_variable_to_shape_map()})") from None
    reader = tf.train.load_checkpoint(str(path))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


def _tf_index(name: str, base: str) -> int:
    m = re.fullmatch(rf"base_model/{base}(?:_(\d+))?/.*", name)
    return int(m.group(1) or 0) if m else -1


def simclr_tf(path: Path, arch: str) -> dict:
    """SimCLR's TensorFlow ResNet-50: ``base_model/conv2d[_N]/kernel`` and ``base_model/batch_normalization[_N]/
    {gamma,beta,moving_mean,moving_variance}``, numbered in creation order. Each block with a projection creates its
    shortcut first, so creation order is reordered to torchvision's (conv1..3, then downsample); head variables
    (``head_*``, projection) are not the model."""
    v = _tf_variables(Path(path))
    convs = sorted((k for k in v if _tf_index(k, "conv2d") >= 0 and k.endswith("/kernel")),
                   key=lambda k: _tf_index(k, "conv2d"))
    bns = sorted({k.rsplit("/", 1)[0] for k in v if _tf_index(k, "batch_normalization") >= 0},
                 key=lambda k: _tf_index(k + "/x", "batch_normalization"))
    # torchvision order of (conv, bn) pairs, with the TF creation position of each
    order, pos = [("conv1", "bn1", 0)], 1
    for layer, blocks in enumerate((3, 4, 6, 3), 1):
        for b in range(blocks):
            base = f"layer{layer}.{b}"
            if b == 0:
                order.append((f"{base}.downsample.0", f"{base}.downsample.1", pos))
                pos += 1
            for i in range(1, 4):
                order.append((f"{base}.conv{i}", f"{base}.bn{i}", pos))
                pos += 1
    if len(convs) != pos or len(bns) != pos:
        raise LayoutError(f"{path}: expected {pos} conv kernels and batch norms of a ResNet-50 under base_model/, "
                          f"found {len(convs)} and {len(bns)}")
    out = {}
    for conv, bn, p in order:
        out[f"{conv}.weight"] = torch.from_numpy(np.asarray(v[convs[p]]).transpose(3, 2, 0, 1).copy())
        for tf_name, pt in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                            ("moving_variance", "running_var")):
            out[f"{bn}.{pt}"] = torch.from_numpy(np.asarray(v[f"{bns[p]}/{tf_name}"]).copy())
        out[f"{bn}.num_batches_tracked"] = torch.tensor(0)
    return out


CONVERTERS: dict[str, Callable[[Path, str], dict]] = {
    "torchvision": torchvision, "moco": moco, "swav": swav, "pycontrast": pycontrast,
    "authors": authors, "convnext_official": official, "swin_official": official, "deit_official": official,
    "lukemelas_efficientnet": lukemelas_efficientnet, "byol_haiku": byol_haiku, "simclr_tf": simclr_tf,
}
