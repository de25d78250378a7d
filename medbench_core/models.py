"""Model creation (timm classifiers, segmentation-models-pytorch U-Nets with timm encoders) and audited weight loads.

Every load of pre-trained weights goes through ``load_backbone``: all backbone tensors must be present with matching
shapes, and nothing but the classification head may be new or left over, otherwise ``CheckpointAuditError`` names
the missing, unexpected and mis-shaped keys. (The original code loaded with ``strict=False`` and trained ConvNeXt and
Swin from random weights without noticing.)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import timm
import torch
from timm.models import register_model
from timm.models.convnext import _create_convnext
from timm.models.swin_transformer import _create_swin_transformer
from timm.models.vision_transformer import _create_vision_transformer
from torch import nn

from ._registry import Registry, UnknownNameError
from .errors import BadFileError
from .tasks import CLASSIFICATION, TaskSpec


class CheckpointAuditError(BadFileError, RuntimeError):
    """A checkpoint does not fill every backbone tensor of the model (or brings tensors the model does not have)."""


# Miniature ConvNeXt, Swin and ViT for the embedded default: about the size of timm's test_resnet (0.4-0.7M
# parameters) so the architecture comparison is between designs, not sizes. Registered with timm, so timm, smp's
# ``tu-`` encoders and our checkpoints all use the same names. Their transformer settings depend on the image size
# (see ``_size_kwargs``).


@register_model
def mini_convnext(pretrained=False, **kwargs):
    """ConvNeXt with 4 stages of widths 24-192 (depths 1, 1, 2, 1); 0.6M parameters."""
    return _create_convnext("convnext_atto", pretrained=False,
                            **dict(dict(dims=(24, 48, 96, 192), depths=(1, 1, 2, 1)), **kwargs))


@register_model
def mini_swin(pretrained=False, **kwargs):
    """Swin Transformer with 4 stages (patch 2, widths 24-192, one block each); 0.7M parameters."""
    return _create_swin_transformer("swin_tiny_patch4_window7_224", pretrained=False,
                                    **dict(dict(patch_size=2, embed_dim=24, depths=(1, 1, 1, 1),
                                                num_heads=(1, 2, 4, 8)), **kwargs))


@register_model
def mini_vit(pretrained=False, **kwargs):
    """Plain ViT (width 96, 4 blocks, 3 heads, class token; patch 4 unless given); 0.5M parameters."""
    return _create_vision_transformer("vit_tiny_patch16_224", pretrained=False,
                                      **dict(dict(patch_size=4, embed_dim=96, depth=4, num_heads=3), **kwargs))


@dataclass(frozen=True)
class ArchSpec:
    """An architecture usable for classification (timm) and, where ``segmentation``, as a U-Net encoder (smp
    ``tu-`` encoders)."""

    name: str  # medbench name (also the timm model name unless ``timm`` is given)
    family: str  # convnet | transformer
    description: str
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)  # U-Net decoder, deepest first (smp default)
    size_kwargs: Callable[[int], dict] | None = None  # image size -> timm kwargs (transformers fix their grid)
    segmentation: bool = True  # False: no feature pyramid for a U-Net (plain ViT)
    max_depth: int = 5  # feature levels the encoder offers to a U-Net
    label: str = ""  # short name in tables
    timm: str = ""  # timm model name when it differs from ``name``
    decoder: str = "unet"  # segmentation head: unet | upernet (MedIA 2025's choice for ConvNeXt and Swin)

    @property
    def timm_name(self) -> str:
        return self.timm or self.name

    def timm_kwargs(self, image_size: int | None) -> dict:
        return self.size_kwargs(image_size) if (self.size_kwargs and image_size) else {}


_MINI_DECODER = (128, 64, 32, 16, 8)
_ARCHS: Registry[ArchSpec] = Registry("arch")
for _a in (
    ArchSpec("test_resnet", "convnet", "timm's tiny ResNet (0.4M parameters), the demo's stand-in for ResNet-50",
             decoder_channels=_MINI_DECODER, label="ResNet (mini)"),
    ArchSpec("mini_convnext", "convnet", "a miniature ConvNeXt (0.6M parameters), the demo's ConvNeXt",
             decoder_channels=_MINI_DECODER, label="ConvNeXt (mini)"),
    ArchSpec("mini_swin", "transformer", "a miniature Swin Transformer (0.7M parameters; patch 2, window = image "
             "size / 16), the demo's Swin", decoder_channels=_MINI_DECODER, label="Swin (mini)", max_depth=4,
             size_kwargs=lambda s: {"img_size": s, "window_size": max(1, s // 16)}),
    ArchSpec("mini_vit", "transformer", "a miniature plain ViT (0.5M parameters; patch = image size / 8, so 64 "
             "tokens), the demo's ViT/DeiT; classification only (one feature scale, no pyramid for a U-Net)",
             label="ViT (mini)", size_kwargs=lambda s: {"img_size": s, "patch_size": max(1, s // 8)},
             segmentation=False),
    ArchSpec("resnet18", "convnet", "ResNet-18 (11M parameters)", label="ResNet-18"),
    ArchSpec("resnet50", "convnet", "ResNet-50 (25M parameters), the DART 2021 backbone", label="ResNet-50"),
    # MedIA 2025's architectures (real pre-trained weights in medbench_core.zoo)
    *(ArchSpec(f"convnext_{s}", "convnet", f"ConvNeXt-{s[0].upper()} ({p}M parameters)",
               label=f"ConvNeXt-{s[0].upper()}", decoder="upernet")
      for s, p in (("tiny", 28), ("small", 50), ("base", 89))),
    *(ArchSpec(f"swin_{s}", "transformer", f"Swin-{s[0].upper()} ({p}M parameters; window 7, 224 px)",
               label=f"Swin-{s[0].upper()}", timm=f"swin_{s}_patch4_window7_224", decoder="upernet", max_depth=4,
               size_kwargs=lambda size: {"img_size": size}) for s, p in (("tiny", 28), ("small", 50), ("base", 88))),
    *(ArchSpec(f"deit_{s}", "transformer", f"DeiT-{s[0].upper()} ({p}M parameters); classification only",
               label=f"DeiT-{s[0].upper()}", timm=f"deit_{s}_patch16_224", segmentation=False,
               size_kwargs=lambda size: {"img_size": size}) for s, p in (("tiny", 5), ("small", 22), ("base", 86))),
    ArchSpec("efficientnet_lite0", "convnet", "EfficientNet-Lite0 (4.7M parameters; TF 'same' padding)",
             label="EfficientNet-Lite0", timm="tf_efficientnet_lite0"),
):
    _ARCHS.register(_a.name, _a)


def build_classifier(arch: str, num_classes: int, image_size: int | None = None) -> nn.Module:
    """A randomly initialised timm classifier of ``arch`` for images of ``image_size`` px.

    Example:
        >>> build_classifier("mini_vit", 3, 32)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 3])
    """
    return timm.create_model(get_arch(arch).timm_name, pretrained=False, num_classes=num_classes,
                             **get_arch(arch).timm_kwargs(image_size))


def list_archs() -> list[str]:
    """Names of registered architectures, e.g. ``['test_resnet', 'mini_convnext', 'mini_swin', 'mini_vit', ...]``."""
    return _ARCHS.names()


def get_arch(name: str) -> ArchSpec:
    return _ARCHS.get(name)


@dataclass
class LoadReport:
    """What an audited load did: how many backbone tensors it filled, which head tensors it left new."""

    loaded: int
    new_head: list[str] = field(default_factory=list)
    dropped_head: list[str] = field(default_factory=list)
    resampled: list[str] = field(default_factory=list)  # position tables fitted to the model's image size

    def __str__(self) -> str:
        out = (f"loaded {self.loaded} backbone tensors; new head tensors: {self.new_head or 'none'}; "
               f"checkpoint tensors not used (head, or stages deeper than the model): {self.dropped_head or 'none'}")
        if self.resampled:
            out += (f"; {len(self.resampled)} position tables resampled to this image size as timm does "
                    f"({_fmt(self.resampled, 3)})")
        return out


_REL_TABLE = "relative_position_bias_table"


def fit_position_tables(module: nn.Module, state: dict[str, torch.Tensor]) -> tuple[dict, list[str]]:
    """``state`` with the position tables that depend on the image size resampled to ``module``'s, as timm does
    when it loads weights at another resolution: Swin's relative-position bias tables (a smaller window at a small
    image size) and a ViT's absolute position embedding (another token grid). Returns (state, resampled keys);
    every other tensor is left as it is, so the audit still sees any other mismatch."""
    from timm.layers import resample_abs_pos_embed
    from timm.layers.pos_embed_rel import resize_rel_pos_bias_table

    own = module.state_dict()
    out, resampled = dict(state), []
    for k, v in state.items():
        if k not in own or tuple(v.shape) == tuple(own[k].shape):
            continue
        if k.endswith(_REL_TABLE):
            owner = module.get_submodule(k[:-len(_REL_TABLE) - 1])
            out[k] = resize_rel_pos_bias_table(v, new_window_size=owner.window_size, new_bias_shape=own[k].shape)
        elif k.endswith("pos_embed") and v.dim() == 3:
            parent = module.get_submodule(k[:-len("pos_embed")].rstrip(".")) if k != "pos_embed" else module
            grid = getattr(getattr(parent, "patch_embed", None), "grid_size", None)
            if grid is None:
                continue
            out[k] = resample_abs_pos_embed(v, new_size=list(grid),
                                            num_prefix_tokens=getattr(parent, "num_prefix_tokens", 1))
        else:
            continue
        if tuple(out[k].shape) == tuple(own[k].shape):
            resampled.append(k)
        else:
            out[k] = v  # could not be fitted: the audit names it
    return out, resampled


def _fmt(keys, limit=8) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_backbone(module: nn.Module, state: dict[str, torch.Tensor], *, head_prefixes: tuple[str, ...] = (),
                  source: str = "checkpoint") -> LoadReport:
    """Load ``state`` into ``module`` so that every non-head tensor of ``module`` comes from ``state``.

    Keys starting with one of ``head_prefixes`` may be missing, extra or of another shape (a new task head); any
    other missing, unexpected or mis-shaped key raises ``CheckpointAuditError`` naming them, and nothing is loaded.
    Position tables made for another image size are resampled first (``fit_position_tables``) and listed in the
    report's ``resampled``.

    Example:
        >>> m = timm.create_model("test_resnet", num_classes=2)
        >>> state = timm.create_model("test_resnet", num_classes=5).state_dict()
        >>> load_backbone(m, state, head_prefixes=("fc.",)).loaded
        90
    """
    is_head = lambda k: k.startswith(head_prefixes) if head_prefixes else False  # noqa: E731
    state, resampled = fit_position_tables(module, state)
    own = module.state_dict()
    missing = [k for k in own if k not in state and not is_head(k)]
    unexpected = [k for k in state if k not in own and not is_head(k)]
    shape = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and not is_head(k) and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} backbone tensors missing from the checkpoint: {_fmt(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors in the checkpoint: {_fmt(unexpected)}")
        if shape:
            parts.append(f"{len(shape)} tensors with another shape (checkpoint vs model): {_fmt(shape, 4)}")
        raise CheckpointAuditError(
            f"{source} does not fit {type(module).__name__}: " + "; ".join(parts)
            + ". Was it made for another architecture? Nothing was loaded.")
    head_ok = [k for k in own if is_head(k) and k in state and tuple(state[k].shape) == tuple(own[k].shape)]
    to_load = {k: v for k, v in state.items() if k in own and (not is_head(k) or k in head_ok)}
    module.load_state_dict(to_load, strict=False)
    return LoadReport(
        loaded=sum(1 for k in to_load if not is_head(k)),
        new_head=[k for k in own if is_head(k) and k not in head_ok],
        dropped_head=[k for k in state if is_head(k) and k not in head_ok],
        resampled=resampled,
    )


@functools.lru_cache(maxsize=None)
def _classifier_layout(arch: str) -> tuple[dict, tuple[str, ...]]:
    """(pretrained config, state-dict keys) of ``arch``'s timm classifier, built once on the meta device (no
    memory, no initialisation: a ConvNeXt-B costs milliseconds instead of seconds)."""
    with torch.device("meta"):
        model = build_classifier(arch, 1)
    return dict(model.pretrained_cfg), tuple(model.state_dict().keys())


def classifier_head_prefixes(arch: str) -> tuple[str, ...]:
    """Key prefixes of a timm model's classification head, from its pretrained config (e.g. ``('fc.',)``)."""
    cfg = _classifier_layout(arch)[0]
    heads = cfg.get("classifier", "fc")
    heads = heads if isinstance(heads, (tuple, list)) else (heads,)
    return tuple(f"{h}." for h in heads)


def encoder_key_map(arch: str, encoder_state_keys) -> tuple[dict[str, str], list[str]]:
    """Map classifier keys of a timm model to the keys of smp's ``tu-`` encoder built on it.

    timm's feature extractor keeps top-level module names and flattens nested ones (``stem.0`` -> ``stem_0``), and
    smp stores it under ``model.``. Returns ({classifier key: encoder key}, [classifier keys the encoder has no
    place for]); the latter are the head (classifier, final pooling norm) and may be dropped.
    """
    children = {k[len("model."):].split(".")[0] for k in encoder_state_keys}
    full = _classifier_layout(arch)[1]
    mapping, unused = {}, []
    for key in full:
        parts = key.split(".")
        for i in range(len(parts), 0, -1):
            name = "_".join(parts[:i])
            if name in children:
                mapping[key] = "model." + ".".join([name] + parts[i:])
                break
        else:
            unused.append(key)
    return mapping, unused


def encoder_depth_for(image_size: int) -> int:
    """Deepest U-Net (at most 5 levels) whose input size divides evenly: 48 px -> 4, 64 or 224 px -> 5."""
    depth = 5
    while depth > 3 and image_size % (2 ** depth):
        depth -= 1
    return depth


def create_model(arch: str, task: TaskSpec, *, checkpoint: str | Path | None = None) -> nn.Module:
    """A model for ``task``: a timm classifier, or a U-Net whose encoder is the timm ``arch``.

    With ``checkpoint`` (a pre-training checkpoint written by ``medbench_core.pretrain``), the backbone is loaded and
    audited; the report is kept as ``model.load_report``. Without it, weights are random (``scratch``).

    Example:
        >>> from medbench_core.tasks import create_task
        >>> create_model("test_resnet", create_task("syn_txc", "smoke")).num_classes
        1
    """
    if arch not in _ARCHS:
        raise UnknownNameError(f"unknown arch {arch!r}; valid archs: {', '.join(list_archs())}")
    spec = _ARCHS.get(arch)
    size = task.protocol.image_size
    if task.kind == CLASSIFICATION:
        model = build_classifier(arch, len(task.classes), size)
    else:
        import segmentation_models_pytorch as smp

        if not spec.segmentation:
            raise ValueError(f"{arch} cannot be a U-Net encoder ({spec.description}); segmentation archs: "
                             f"{', '.join(a for a in list_archs() if get_arch(a).segmentation)}")
        depth = min(encoder_depth_for(size), spec.max_depth)
        if spec.decoder == "upernet" and task.protocol.upernet == "original":
            from .upernet import build_upernet

            if size % 32:
                raise ValueError(f"the original UPerNet needs four feature levels: an image side divisible by 32, "
                                 f"got {size} px")
            model = build_upernet(spec.timm_name, arch, depth=5, classes=1, **spec.timm_kwargs(size))
        elif spec.decoder == "upernet":
            model = smp.UPerNet(encoder_name=f"tu-{spec.timm_name}", encoder_weights=None, encoder_depth=depth,
                                in_channels=3, classes=1, **spec.timm_kwargs(size))
        else:
            model = smp.Unet(encoder_name=f"tu-{spec.timm_name}", encoder_weights=None, encoder_depth=depth,
                             in_channels=3, classes=1, decoder_channels=spec.decoder_channels[-depth:],
                             **spec.timm_kwargs(size))
    model.load_report = None
    if checkpoint is not None:
        state = read_checkpoint(checkpoint, arch=arch)
        if task.kind == CLASSIFICATION:
            model.load_report = load_backbone(model, state, head_prefixes=classifier_head_prefixes(arch),
                                              source=str(checkpoint))
        else:
            mapping, unused = encoder_key_map(arch, model.encoder.state_dict().keys())
            unexpected = [k for k in state if k not in mapping and k not in unused]
            if unexpected:
                raise CheckpointAuditError(f"{checkpoint} has {len(unexpected)} tensors that {arch} does not have: "
                                           f"{_fmt(unexpected)}. Nothing was loaded.")
            mapped = {mapping[k]: v for k, v in state.items() if k in mapping}
            report = load_backbone(model.encoder, mapped, source=str(checkpoint))
            report.dropped_head = [k for k in state if k in unused]
            model.load_report = report
    return model


def load_mapped(path) -> dict:
    """``torch.load(weights_only=True)``, memory-mapped where the file's format allows (tensors are read when used,
    not all at once; files in the legacy format are read whole)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap" not in str(e):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: str | Path, *, arch: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of a medbench checkpoint, read with ``weights_only=True`` (no arbitrary unpickling).

    Raises ``CheckpointAuditError`` if the file was made for another architecture than ``arch``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = load_mapped(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointAuditError(f"{path} is not a medbench checkpoint (no 'state_dict' entry)")
    if arch is not None and ckpt.get("arch") not in (None, arch, get_arch(arch).timm_name):
        raise CheckpointAuditError(f"{path} holds a {ckpt.get('arch')!r} backbone, not {arch!r}")
    return ckpt["state_dict"]
