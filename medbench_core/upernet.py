"""The MedIA 2025 segmentation head: UPerNet as the original code builds it for ConvNeXt and Swin.

Written from the original's design (``Version2/convnext.py`` lines 176-259 and ``Version2/swin_transformer.py``
756-785 at ``original.ORIGINAL_COMMIT``; facts with their lines in ``data/original_protocol.csv``), not from its code:

- each backbone level is tapped after a LayerNorm of its own (ConvNeXt: ``norm0``-``norm3``; the Swin taps are
  not normalised);
- pyramid pooling on the deepest level: bins 1, 2, 4 and 6, each a 1x1 convolution to ``channels / 4`` with
  batch norm and ReLU, upsampled (bilinear, corners aligned) and concatenated with the level, then a 3x3
  convolution back to the level's width with batch norm, ReLU and ``Dropout2d(0.1)``;
- a 1x1 lateral convolution (with bias, no norm) takes levels 2-4 (the 4th after pyramid pooling) to the head width,
  which is the first level's width (ConvNeXt-B: 128; Swin-B: 256);
- each level plus the next deeper lateral, upsampled (the original adds laterals pairwise, not cumulatively from
  the top), then one 3x3 convolution whose weights the three levels share; the four maps upsampled to the first
  level's size, concatenated, fused by a 3x3 convolution with batch norm and ReLU;
- a 3x3 convolution to the classes, then bilinear upsampling to the input size.

The backbone is segmentation-models-pytorch's timm encoder (so checkpoints load and are audited as for every other
model) with the original's stochastic depth (``HEADS``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class HeadSpec:
    """The original's UPerNet settings for one backbone (``Version2/convnext.py`` 236-250,
    ``swin_transformer.py`` 756-773)."""

    bins: tuple[int, ...] = (1, 2, 4, 6)
    dropout: float = 0.1
    width: int | None = None  # head width; None: the first tapped level's width
    drop_path_rate: float = 0.0
    feature_norm: bool = True  # a LayerNorm on each tapped level (ConvNeXt: yes; Swin: no)


HEADS = {
    "convnext_base": HeadSpec(width=128, drop_path_rate=0.4), "convnext_small": HeadSpec(width=96, drop_path_rate=0.3),
    "convnext_tiny": HeadSpec(width=96, drop_path_rate=0.4),
    # the original's Swin taps follow patch merging, so its first level is 2C wide: that is the head's width here
    "swin_base": HeadSpec(width=256, drop_path_rate=0.1, feature_norm=False),
    "swin_small": HeadSpec(width=192, drop_path_rate=0.1, feature_norm=False),
    "swin_tiny": HeadSpec(width=192, drop_path_rate=0.1, feature_norm=False),
}
DEFAULT_HEAD = HeadSpec()  # the miniature ConvNeXt and Swin of the light profiles: the same design, no stochastic depth


def head_spec(arch: str) -> HeadSpec:
    return HEADS.get(arch, DEFAULT_HEAD)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _conv_bn_relu(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class PyramidPooling(nn.Module):
    def __init__(self, channels: int, bins=(1, 2, 4, 6), dropout: float = 0.1):
        super().__init__()
        branch = channels // len(bins)
        self.branches = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), *_conv_bn_relu(channels, branch, 1))
                                      for b in bins)
        self.bottleneck = nn.Sequential(*_conv_bn_relu(channels + branch * len(bins), channels, 3),
                                        nn.Dropout2d(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return self.bottleneck(torch.cat([x] + [_resize(b(x), size) for b in self.branches], dim=1))


class UPerNetHead(nn.Module):
    """Pyramid pooling, pairwise top-down fusion of four levels, one fused map and a 3x3 classifier."""

    def __init__(self, channels: list[int], classes: int, spec: HeadSpec = DEFAULT_HEAD):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"UPerNet takes four feature levels, got {len(channels)}")
        width = spec.width or channels[0]
        self.norms = nn.ModuleList(LayerNorm2d(c, eps=1e-6) if spec.feature_norm else nn.Identity()
                                   for c in channels)
        self.ppm = PyramidPooling(channels[-1], spec.bins, spec.dropout)
        # the first level enters as it is when it has the head's width (as in the original), else through a 1x1
        self.laterals = nn.ModuleList(nn.Identity() if (k == 0 and c == width) else nn.Conv2d(c, width, 1)
                                      for k, c in enumerate(channels))
        self.smooth = nn.Conv2d(width, width, 3, padding=1)  # one convolution, shared by the three fused levels
        self.fuse = nn.Sequential(*_conv_bn_relu(4 * width, width, 3))
        self.classifier = nn.Conv2d(width, classes, 3, padding=1)

    def forward(self, features: list[torch.Tensor], size) -> torch.Tensor:
        f = [norm(x) for norm, x in zip(self.norms, features)]
        f[-1] = self.ppm(f[-1])
        f = [lat(x) for lat, x in zip(self.laterals, f)]
        p = [self.smooth(f[k] + _resize(f[k + 1], f[k].shape[-2:])) for k in range(3)] + [f[3]]
        top = p[0].shape[-2:]
        x = self.fuse(torch.cat([p[0]] + [_resize(x, top) for x in p[1:]], dim=1))
        return F.interpolate(self.classifier(x), size=size, mode="bilinear", align_corners=False)


class UPerNet(nn.Module):
    """A timm encoder (segmentation-models-pytorch's ``tu-`` wrapper, attribute ``encoder`` as in smp's models) with
    the original's UPerNet head on its last four levels."""

    def __init__(self, encoder: nn.Module, classes: int, spec: HeadSpec = DEFAULT_HEAD):
        super().__init__()
        self.encoder = encoder
        self.head = UPerNetHead(list(encoder.out_channels[-4:]), classes, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)[-4:], x.shape[-2:])


def build_upernet(timm_name: str, arch: str, *, depth: int, classes: int = 1, **timm_kwargs) -> UPerNet:
    """The original's UPerNet on the timm backbone ``timm_name`` (stochastic depth as the original sets for
    ``arch``; the light profiles' miniatures have none).

    Example:
        >>> m = build_upernet("convnext_atto", "convnext_atto", depth=5)
        >>> tuple(m(torch.zeros(2, 3, 64, 64)).shape)
        (2, 1, 64, 64)
    """
    from segmentation_models_pytorch.encoders import get_encoder

    spec = head_spec(arch)
    encoder = get_encoder(f"tu-{timm_name}", in_channels=3, depth=depth, weights=None,
                          drop_path_rate=spec.drop_path_rate, **timm_kwargs)
    return UPerNet(encoder, classes, spec)


SMP_UPERNET = {"head_bins": (1, 2, 3, 6), "head_dropout": 0.0, "head_channels": 256}  # segmentation-models-pytorch 0.6's UPerNet


def timm_default_drop_path(timm_name: str) -> float:
    """The stochastic depth timm builds ``timm_name`` with when none is passed (ConvNeXt 0, Swin 0.1): what the
    original's classifiers use, since they pass none either."""
    import inspect

    from timm.models.convnext import ConvNeXt
    from timm.models.swin_transformer import SwinTransformer

    for prefix, cls in (("convnext", ConvNeXt), ("swin", SwinTransformer)):
        if timm_name.startswith(prefix):
            return inspect.signature(cls.__init__).parameters["drop_path_rate"].default
    return 0.0
