"""Self-supervised pre-training methods in miniature, built from the ``lightly`` library's losses, heads and
augmentations (nothing re-implemented here). Each method pre-trains a timm backbone on unlabelled SYNTHETIC
natural-like images, the same images the supervised ImageNet-like and iNat-like stages see with labels.

=============  ===================================  ======================================================
method         family (DART 2021 grouping)          lightly parts
=============  ===================================  ======================================================
simclr         instance discrimination              SimCLRTransform, SimCLRProjectionHead, NTXentLoss
moco_v2        instance discrimination              MoCoV2Transform, MoCoProjectionHead, NTXentLoss with a
                                                    memory bank, momentum encoder
byol           instance discrimination              BYOLTransform, BYOL projection and prediction heads,
                                                    NegativeCosineSimilarity, momentum encoder
swav           clustering (+ contrastive)           SwaVTransform (multi-crop), SwaVProjectionHead,
                                                    SwaVPrototypes, SwaVLoss (Sinkhorn)
barlow_twins   redundancy reduction                 BYOLTransform, BarlowTwinsProjectionHead, BarlowTwinsLoss
vicreg         variance-covariance regularisation   VICRegTransform, BarlowTwinsProjectionHead, VICRegLoss
=============  ===================================  ======================================================

At the demo's 48 px the augmentations leave out Gaussian blur (as SimCLR does on CIFAR-10) and crop no smaller than
20 % of the image; inputs are normalised as in fine-tuning (mean 0.5, std 0.5).
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from ._registry import Registry

NORMALIZE = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}  # the fine-tuning loaders' normalisation


@dataclass(frozen=True)
class SSLMethod:
    key: str
    label: str
    family: str
    paper_analog: str  # the DART 2021 model(s) it stands for
    transform: Callable[[int], Callable]  # image size -> lightly multi-view transform (PIL image -> list of views)
    build: Callable[[nn.Module, int], "SSLModel"]  # (backbone, feature dim) -> model
    reported_as: str | None = None  # its name in the reported numbers (medbench_core/data/reported.csv), if any


class SSLModel(nn.Module):
    """A backbone with the method's heads; ``loss(views, progress)`` is one training objective evaluation."""

    momentum: bool = False

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def loss(self, views: list[torch.Tensor], progress: float) -> torch.Tensor:  # progress in [0, 1]
        raise NotImplementedError

    def after_step(self, progress: float) -> None:
        """Momentum update of the target network, where the method has one."""


def _momentum_pair(module: nn.Module) -> nn.Module:
    from lightly.models.utils import deactivate_requires_grad

    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


class _SimCLR(SSLModel):
    def __init__(self, backbone, dim):
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        super().__init__(backbone)
        self.head = SimCLRProjectionHead(dim, 128, 64)
        self.criterion = NTXentLoss(temperature=0.2)

    def loss(self, views, progress):
        z0, z1 = (self.head(self.backbone(v)) for v in views[:2])
        return self.criterion(z0, z1)


class _MoCoV2(SSLModel):
    momentum = True

    def __init__(self, backbone, dim):
        from lightly.loss import NTXentLoss
        from lightly.models.modules import MoCoProjectionHead

        super().__init__(backbone)
        self.head = MoCoProjectionHead(dim, 128, 64)
        self.backbone_m, self.head_m = _momentum_pair(self.backbone), _momentum_pair(self.head)
        self.criterion = NTXentLoss(temperature=0.2, memory_bank_size=(1024, 64))

    def loss(self, views, progress):
        q = self.head(self.backbone(views[0]))
        with torch.no_grad():
            k = self.head_m(self.backbone_m(views[1]))
        return self.criterion(q, k)

    def after_step(self, progress):
        from lightly.models.utils import update_momentum

        update_momentum(self.backbone, self.backbone_m, m=0.99)
        update_momentum(self.head, self.head_m, m=0.99)


class _BYOL(SSLModel):
    momentum = True

    def __init__(self, backbone, dim):
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

        super().__init__(backbone)
        self.head = BYOLProjectionHead(dim, 256, 64)
        self.predictor = BYOLPredictionHead(64, 256, 64)
        self.backbone_m, self.head_m = _momentum_pair(self.backbone), _momentum_pair(self.head)
        self.criterion = NegativeCosineSimilarity()

    def loss(self, views, progress):
        p0, p1 = (self.predictor(self.head(self.backbone(v))) for v in views[:2])
        with torch.no_grad():
            t0, t1 = (self.head_m(self.backbone_m(v)) for v in views[:2])
        return 0.5 * (self.criterion(p0, t1) + self.criterion(p1, t0))

    def after_step(self, progress):
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        m = cosine_schedule(int(progress * 1000), 1000, 0.99, 1.0)
        update_momentum(self.backbone, self.backbone_m, m=m)
        update_momentum(self.head, self.head_m, m=m)


class _SwAV(SSLModel):
    def __init__(self, backbone, dim):
        from lightly.loss import SwaVLoss
        from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes

        super().__init__(backbone)
        self.head = SwaVProjectionHead(dim, 128, 64)
        self.prototypes = SwaVPrototypes(64, n_prototypes=32)
        self.criterion = SwaVLoss(sinkhorn_epsilon=0.05)

    def loss(self, views, progress):
        self.prototypes.normalize()
        out = [self.prototypes(nn.functional.normalize(self.head(self.backbone(v)), dim=1)) for v in views]
        return self.criterion(out[:2], out[2:])


class _BarlowTwins(SSLModel):
    def __init__(self, backbone, dim):
        from lightly.loss import BarlowTwinsLoss
        from lightly.models.modules import BarlowTwinsProjectionHead

        super().__init__(backbone)
        self.head = BarlowTwinsProjectionHead(dim, 256, 256)
        self.criterion = BarlowTwinsLoss(lambda_param=5e-3)

    def loss(self, views, progress):
        z0, z1 = (self.head(self.backbone(v)) for v in views[:2])
        return self.criterion(z0, z1)


class _VICReg(SSLModel):
    def __init__(self, backbone, dim):
        from lightly.loss import VICRegLoss
        from lightly.models.modules import BarlowTwinsProjectionHead

        super().__init__(backbone)
        self.head = BarlowTwinsProjectionHead(dim, 256, 256)
        self.criterion = VICRegLoss()

    def loss(self, views, progress):
        z0, z1 = (self.head(self.backbone(v)) for v in views[:2])
        return self.criterion(z0, z1)


def _two_view(name: str, **extra):
    def make(size: int):
        import lightly.transforms as T

        common = dict(input_size=size, min_scale=0.2, gaussian_blur=0.0, normalize=NORMALIZE, **extra)
        if name == "BYOLTransform":
            return T.BYOLTransform(view_1_transform=T.BYOLView1Transform(**common),
                                   view_2_transform=T.BYOLView2Transform(**common))
        return getattr(T, name)(**common)
    return make


def _swav_transform(size: int):
    import lightly.transforms as T

    return T.SwaVTransform(crop_sizes=(size, max(8, size // 2)), crop_counts=(2, 2), crop_min_scales=(0.3, 0.1),
                           crop_max_scales=(1.0, 0.3), gaussian_blur=0.0, normalize=NORMALIZE)


_METHODS: Registry[SSLMethod] = Registry("self-supervised method")
for _m in (
    SSLMethod("simclr", "SimCLR", "instance discrimination", "SimCLR-v1/v2", _two_view("SimCLRTransform"), _SimCLR,
              "SimCLR-v1"),
    SSLMethod("moco_v2", "MoCo-v2", "instance discrimination", "MoCo-v1/v2", _two_view("MoCoV2Transform"), _MoCoV2,
              "MoCo-v2"),
    SSLMethod("byol", "BYOL", "instance discrimination", "BYOL", _two_view("BYOLTransform"), _BYOL, "BYOL"),
    SSLMethod("swav", "SwAV", "clustering", "SwAV, DeepCluster-v2, SeLa-v2", _swav_transform, _SwAV,
              "SwAV"),
    SSLMethod("barlow_twins", "Barlow Twins", "redundancy reduction", "Barlow Twins", _two_view("BYOLTransform"),
              _BarlowTwins, "Barlow Twins"),
    SSLMethod("vicreg", "VICReg", "variance-covariance regularisation", "(not in DART 2021; a further family)",
              _two_view("VICRegTransform"), _VICReg),
):
    _METHODS.register(_m.key, _m)


def list_ssl_methods() -> list[str]:
    """Names of the self-supervised methods, e.g. ``['simclr', 'moco_v2', 'byol', 'swav', 'barlow_twins', ...]``."""
    return _METHODS.names()


def get_ssl_method(key: str) -> SSLMethod:
    return _METHODS.get(key)


class _Views(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(_to_pil(self.images[i]))


class MultiViewBatches:
    """Seeded mini-batches of augmented views of uint8 images (n, C, S, S): a list of tensors, one per view.

    The lightly transforms run in ``workers`` background processes (default: one when the machine has more than two
    cores), so augmenting the next batch overlaps with training on this one. The order and the workers' random
    streams derive from ``seed``, so a stage is repeatable on one machine.
    """

    def __init__(self, images: np.ndarray, transform, batch_size: int, seed: int, workers: int | None = None):
        if workers is None:
            workers = 1 if (os.cpu_count() or 1) > 2 else 0
        self.loader = torch.utils.data.DataLoader(
            _Views(images, transform), batch_size=batch_size, shuffle=True, drop_last=len(images) >= batch_size,
            num_workers=workers, persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def _to_pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).convert("RGB")


def pretrain_ssl(method: str, backbone: nn.Module, images: np.ndarray, *, image_size: int, epochs: int, lr: float,
                 batch_size: int, seed: int, device, progress_bar=None) -> list[dict]:
    """Pre-train ``backbone`` (a timm model with ``num_classes=0``) with ``method`` on ``images``; returns the loss
    history. The backbone is trained in place; the heads are dropped afterwards (only the backbone is kept)."""
    spec = get_ssl_method(method)
    dim = backbone.num_features
    model = spec.build(backbone, dim).to(device)
    batches = MultiViewBatches(images, spec.transform(image_size), batch_size, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    total = epochs * len(batches)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    history, step = [], 0
    for epoch in (progress_bar or range)(epochs):
        model.train()
        losses = []
        for views in batches:
            loss = model.loss([v.to(device) for v in views], step / total)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            model.after_step(step / total)
            losses.append(float(loss.detach()))
        history.append({"epoch": epoch, "loss": float(np.mean(losses))})
        if not np.isfinite(history[-1]["loss"]):
            raise FloatingPointError(f"{method} pre-training diverged at epoch {epoch} (loss {history[-1]['loss']})")
    return history


__all__ = ["SSLMethod", "list_ssl_methods", "get_ssl_method", "pretrain_ssl", "MultiViewBatches"]
