"""Training and evaluation kernels: ``train_one_epoch`` and ``evaluate`` return metrics; ``fit`` adds early stopping,
the learning-rate schedule and the best checkpoint around them."""
from __future__ import annotations

import copy
import os
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .metrics import dice_per_case, mean_auc
from .tasks import CLASSIFICATION, IGNORE, TaskSpec


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask cuDNN for deterministic kernels (same seed, same machine, same
    numbers)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars show unless disabled here or by ``MEDBENCH_PROGRESS=0`` (the test suite sets it)."""
    if progress is not None:
        return progress
    return os.environ.get("MEDBENCH_PROGRESS", "1") != "0"


def _valid(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(target with ignored pixels set to 0, 0/1 weight that is 0 where the target is ``IGNORE``)."""
    valid = (target != IGNORE).to(target.dtype)
    return target * valid, valid


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice over each image, averaged over the batch; pixels labelled ``IGNORE`` do not count."""
    target, valid = _valid(target)
    probs = (torch.sigmoid(logits) * valid).flatten(1)
    target = target.flatten(1)
    inter = (probs * target).sum(1)
    return (1 - (2 * inter + eps) / (probs.sum(1) + target.sum(1) + eps)).mean()


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the entries whose target is not ``IGNORE`` (all of them, usually).

    Example:
        >>> t = torch.tensor([[1.0, IGNORE]])
        >>> bool(masked_bce(torch.tensor([[0.0, 50.0]]), t) == masked_bce(torch.tensor([[0.0]]), t[:, :1]))
        True
    """
    target, valid = _valid(target)
    loss = F.binary_cross_entropy_with_logits(logits, target, weight=valid, reduction="sum")
    return loss / valid.sum().clamp(min=1)


def make_loss(name: str):
    """``bce`` (multi-label or per-pixel), ``dice``, ``bce_dice`` (their sum) or ``ce`` (single-label).
    Segmentation targets may mark pixels outside the field of view as ``IGNORE``; every loss leaves them out."""
    losses = {
        "bce": masked_bce,
        "dice": soft_dice_loss,
        "bce_dice": lambda lo, t: masked_bce(lo, t) + soft_dice_loss(lo, t),
        # class indices, or one-hot float targets of a multi-class task (e.g. OrganAMNIST)
        "ce": lambda lo, t: F.cross_entropy(lo, t if t.shape == lo.shape else t.long()),
    }
    if name not in losses:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(losses)}")
    return losses[name]


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    opts = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    if name not in opts:
        raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(opts)}")
    return opts[name](params, lr=lr, weight_decay=weight_decay)


def train_one_epoch(model: nn.Module, loader, loss_fn, optimizer, device: torch.device) -> dict:
    """One pass over ``loader``; returns the mean training loss, images seen and seconds."""
    model.train()
    total, count, t0 = 0.0, 0, time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(x)
        count += len(x)
    return {"loss": total / max(count, 1), "images": count, "seconds": time.perf_counter() - t0}


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn, task: TaskSpec, device: torch.device) -> dict:
    """Loss, the task metric and per-case values on ``loader``.

    Classification returns ``probs`` and ``labels`` (n, K) and the mean AUC with per-class AUCs; segmentation
    returns one Dice per image (threshold 0.5 on the sigmoid; pixels labelled ``IGNORE``, outside the field of
    view, are left out) and their mean.
    """
    model.eval()
    total, count, outs, targets = 0.0, 0, [], []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total += float(loss_fn(logits, y)) * len(x)
        count += len(x)
        if task.kind == CLASSIFICATION:
            probs = torch.softmax(logits, 1) if task.protocol.loss == "ce" else torch.sigmoid(logits)
            outs.append(probs.float().cpu())
            targets.append(y.cpu())
        else:
            y = y.cpu().numpy()
            pred = (torch.sigmoid(logits) > 0.5).cpu().numpy() & (y != IGNORE)  # Dice inside the field of view
            outs.append(torch.from_numpy(dice_per_case(pred, y == 1)))
    result = {"loss": total / max(count, 1)}
    if task.kind == CLASSIFICATION:
        # soft labels (CheXpert's LSR-Ones, 0.55-0.85) count as positive
        probs, labels = torch.cat(outs).numpy(), (torch.cat(targets).numpy() >= 0.5).astype(np.uint8)
        cols = [task.classes.index(c) for c in task.eval_classes] if task.eval_classes else list(range(len(
            task.classes)))  # e.g. CheXpert: trained on 14 labels, scored on 5
        result["mean_auc"], result["per_class"] = mean_auc(probs[:, cols], labels[:, cols],
                                                           [task.classes[i] for i in cols])
        result["cases"] = {"probs": probs, "labels": labels}
    else:
        dice = torch.cat(outs).numpy()
        result["dice"] = float(dice.mean())
        result["cases"] = {"dice": dice}
    return result


@dataclass
class FitResult:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)


def fit(model: nn.Module, train_loader, val_loader, task: TaskSpec, *, device: torch.device, optimizer: str,
        lr: float, weight_decay: float, max_epochs: int, patience: int, scheduler: str, lr_factor: float,
        lr_patience: int, loss: str, progress: bool | None = None, desc: str = "fit") -> FitResult:
    """Fine-tune ``model`` with early stopping on validation loss and keep its best weights.

    The learning rate follows ``scheduler``: ``plateau`` multiplies it by ``lr_factor`` after ``lr_patience``
    epochs without a lower validation loss; ``cosine`` anneals it to zero over ``max_epochs``. Training stops after
    ``patience`` epochs without improvement; the model is left holding the weights of the best epoch.
    """
    loss_fn = make_loss(loss)
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    if scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=lr_factor, patience=lr_patience)
    elif scheduler == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs)
    else:
        raise ValueError(f"unknown scheduler {scheduler!r}; valid schedulers: plateau, cosine")
    model.to(device)
    best_loss, best_epoch, best_state, history = float("inf"), -1, None, []
    bar = tqdm(range(max_epochs), desc=desc, leave=False, disable=not progress_enabled(progress))
    for epoch in bar:
        tr = train_one_epoch(model, train_loader, loss_fn, opt, device)
        va = evaluate(model, val_loader, loss_fn, task, device)
        lr_now = opt.param_groups[0]["lr"]
        sched.step(va["loss"]) if scheduler == "plateau" else sched.step()
        history.append({"epoch": epoch, "train_loss": tr["loss"], "val_loss": va["loss"], "lr": lr_now,
                        "val_metric": va.get("mean_auc", va.get("dice"))})
        if va["loss"] < best_loss:
            best_loss, best_epoch = va["loss"], epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(train=f"{tr['loss']:.3f}", val=f"{va['loss']:.3f}", best=best_epoch)
        if epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return FitResult(best_epoch=best_epoch, best_val_loss=best_loss, epochs_run=len(history),
                     stopped_early=len(history) < max_epochs, history=history)
