"""Where a fine-tuned classifier looks: Grad-CAM maps and how much of the image they cover.

DART 2021 explains why the top self-supervised models transfer well by their class-activation maps: they attend to
larger, more holistic regions than the supervised model. ``attention_by_run`` measures that on our own fine-tuned
checkpoints: the share of the image whose Grad-CAM is at least half of its maximum, averaged over test images.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .data import BatchLoader, load_task_data
from .models import create_model, read_checkpoint
from .pretrain import get_init
from .results import ResultsStore
from .inputs import input_normalisation, task_of
from .tasks import CLASSIFICATION, create_task


def grad_cam(model: nn.Module, x: torch.Tensor, class_index: int = 0) -> torch.Tensor:
    """Grad-CAM of a timm classifier for ``class_index`` on the images ``x`` (B, 3, S, S), taken at the last
    feature map (``forward_features``); returns maps (B, S, S) scaled to [0, 1] per image.

    Example:
        >>> import timm
        >>> m = timm.create_model("test_resnet", num_classes=1)
        >>> grad_cam(m, torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 32, 32])
    """
    model.eval()
    with torch.enable_grad():
        feats = model.forward_features(x)
        if feats.ndim != 4:
            raise ValueError(f"{type(model).__name__} gives no spatial feature map ({tuple(feats.shape)}); "
                             "Grad-CAM needs a ConvNet-style (B, C, H, W) map")
        feats = feats.detach().requires_grad_(True)
        score = model.forward_head(feats)[:, class_index].sum()
        (grad,) = torch.autograd.grad(score, feats)
    cam = F.relu((grad.mean((2, 3), keepdim=True) * feats).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(1).values.clamp(min=1e-8)
    return (cam / peak[:, None, None]).detach()


def attended_area(cams: torch.Tensor, threshold: float = 0.5) -> np.ndarray:
    """Per image, the share of pixels whose map is at least ``threshold`` of its maximum (0-1).

    Example:
        >>> attended_area(torch.tensor([[[1.0, 0.6], [0.2, 0.0]]])).tolist()
        [0.5]
    """
    return (cams >= threshold).flatten(1).float().mean(1).numpy()


def _model_for_run(store: ResultsStore, cfg):
    task = task_of(cfg)
    model = create_model(cfg.arch, task)
    model.load_state_dict(read_checkpoint(store.checkpoint_path(cfg.config_hash()), arch=cfg.arch))
    return model.eval(), task


def attention_by_run(grid, results_dir, *, task: str, n_images: int = 64, cache_dir=None) -> pd.DataFrame:
    """Mean attended area (percent of the image) of every stored fine-tuned classifier of ``grid`` on ``task``,
    over the first ``n_images`` test images. Runs without a stored checkpoint (e.g. imported results) are left
    out and counted in the ``missing`` attribute of the result."""
    if create_task(task, grid.profile).kind != CLASSIFICATION:
        raise ValueError(f"{task} is not a classification task; Grad-CAM here explains classifiers")
    store = ResultsStore(results_dir)
    rows, missing = [], 0
    batches: dict = {}  # one input batch per normalisation (real weights expect their own)
    test = None
    for cfg in grid.configs:
        if cfg.task != task:
            continue
        h = cfg.config_hash()
        if not store.checkpoint_path(h).exists():
            missing += 1
            continue
        model, spec = _model_for_run(store, cfg)
        if test is None:
            test = load_task_data(spec, cache_dir)["test"]
        norm = input_normalisation(cfg)
        if norm not in batches:
            batches[norm] = next(iter(BatchLoader(test, n_images, train=False, mean=norm[0], std=norm[1])))[0]
        area = attended_area(grad_cam(model, batches[norm]))
        rows.append({"init": cfg.init, "arch": cfg.arch, "seed": cfg.seed, "attended_area": 100 * float(area.mean())})
    out = pd.DataFrame(rows, columns=["init", "arch", "seed", "attended_area"])
    out.attrs["missing"] = missing
    return out


def plot_cams(grid, results_dir, *, task: str, inits, seed: int = 0, n_images: int = 4, cache_dir=None):
    """The same test images (positives first) with the Grad-CAM of each init's fine-tuned model (one seed),
    contour at half the maximum: the region counted by ``attended_area``."""
    store = ResultsStore(results_dir)
    cfgs = {c.init: c for c in grid.configs if c.task == task and c.seed == seed}
    spec = task_of(next(iter(cfgs.values())))
    test = load_task_data(spec, cache_dir)["test"]
    pos = np.flatnonzero(test.targets[:, 0] == 1)[:n_images]
    subset = type(test)(test.images[pos], test.targets[pos])
    fig, axes = plt.subplots(len(inits), len(pos), figsize=(1.7 * len(pos) + 1.2, 1.8 * len(inits)), dpi=120,
                             squeeze=False)
    for row, init in zip(axes, inits):
        h = cfgs[init].config_hash()
        if not store.checkpoint_path(h).exists():
            for ax in row:
                ax.axis("off")
            row[0].set_title(f"{init}: no checkpoint stored", fontsize=8)
            continue
        model, _ = _model_for_run(store, cfgs[init])
        mean, std = input_normalisation(cfgs[init])
        cams = grad_cam(model, next(iter(BatchLoader(subset, n_images, train=False, mean=mean, std=std)))[0])
        area = attended_area(cams)
        for k, ax in enumerate(row):
            ax.imshow(test.images[pos[k], 0], cmap="gray")
            ax.imshow(cams[k], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            ax.contour(cams[k], levels=[0.5], colors="white", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{100 * area[k]:.0f}% attended", fontsize=8)
        row[0].set_ylabel(get_init(init).label, fontsize=8)
    fig.suptitle(f"Grad-CAM on {spec.display_name}, seed {seed} (SYNTHETIC data)" if spec.synthetic
                 else f"Grad-CAM on {spec.display_name}, seed {seed}", fontsize=9)
    fig.tight_layout()
    return fig
