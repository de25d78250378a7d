"""Training and evaluation kernels: ``train_one_epoch`` and ``evaluate`` return metrics; ``fit`` adds early stopping,
the learning-rate schedule and the best checkpoint around them."""
from __future__ import annotations

import copy
import functools
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .errors import DeviceError, DivergedError
from .metrics import dice_per_case, mean_auc
from .paths import cleaned_on_failure, progress_enabled  # noqa: F401 (progress_enabled re-exported)
from .tasks import CLASSIFICATION, IGNORE, TaskSpec


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but this machine has no CUDA GPU; use --device auto or cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} GPU(s) "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device!r} requested but Apple's MPS is not available here; use auto or cpu")
    return dev


@dataclass(frozen=True)
class Speed:
    """How a run uses its device: mixed precision (``amp`` dtype or None), channels-last memory format, and
    ``torch.compile``. ``resolve_speed`` turns a run's config fields into this."""

    amp: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False

    def describe(self) -> dict:
        return {"amp": str(self.amp).replace("torch.", "") if self.amp else "off",
                "channels_last": self.channels_last, "compile": self.compile}


AMP_CHOICES = ("auto", "off", "bf16", "fp16")


def resolve_speed(device: torch.device, amp: str = "auto", channels_last: str = "auto",
                  compile: bool = False) -> Speed:
    """``auto`` means: on a GPU, bf16 autocast where the GPU supports it (fp16 with loss scaling otherwise) and
    channels-last; on a CPU, neither (fp32, the numbers the demo and the tests pin).

    Example:
        >>> resolve_speed(torch.device("cpu"))
        Speed(amp=None, channels_last=False, compile=False)
    """
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    if channels_last not in ("auto", "on", "off"):
        raise ValueError(f"channels_last must be auto, on or off, got {channels_last!r}")
    cuda = device.type == "cuda"
    if amp == "auto":
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    else:
        dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return Speed(dtype, cuda if channels_last == "auto" else channels_last == "on", bool(compile))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask cuDNN for deterministic kernels (same seed, same machine, same
    numbers)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


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


def batch_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - one soft Dice over the whole batch flattened together (the original code's ``torch_dice_coef_loss``,
    ``Version1/utils.py`` lines 114-118: one sum over every pixel of every image, smooth 1), so an image with a large
    mask weighs more than one with a small or empty mask; pixels labelled ``IGNORE`` do not count.

    Example:
        >>> t = torch.zeros(2, 1, 4, 4); t[0] = 1
        >>> round(float(batch_dice_loss(torch.full((2, 1, 4, 4), 20.0), t)), 3)  # all predicted: 2*16+1 / 32+16+1
        0.327
    """
    target, valid = _valid(target)
    probs = torch.sigmoid(logits) * valid
    inter = (probs * target).sum()
    return 1 - (2 * inter + eps) / (probs.sum() + target.sum() + eps)


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


LOSSES = {
    "bce": masked_bce,
    "dice": soft_dice_loss,
    "dice_batch": batch_dice_loss,
    "bce_dice": lambda lo, t: masked_bce(lo, t) + soft_dice_loss(lo, t),
    # class indices, or one-hot float targets of a multi-class task (e.g. OrganAMNIST)
    "ce": lambda lo, t: F.cross_entropy(lo, t if t.shape == lo.shape else t.long()),
}
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("plateau", "cosine", "cosine_original")  # the schedules ``fit`` knows


def original_cosine(epoch: int, max_epochs: int, warmup_epochs: int = 0) -> float:
    """The share of the initial learning rate the original code trains epoch ``epoch`` (from 0) with.

    Without warm-up (Version 1 segmentation, ``Version1/engine.py`` 210-216 and ``utils.py`` 127-135): the rate is
    set after each epoch to the cosine of that epoch's index, so epochs 0 and 1 train at the full rate and epoch
    ``e`` at ``(1 + cos(pi (e - 1) / E)) / 2``: a step behind torch's ``CosineAnnealingLR``. With ``warmup_epochs``
    W (Version 2, ``Version2/engine.py`` 179-182 and ``utils.py`` 126-131): set before each epoch to
    ``min(1, e / W) (1 + cos(pi clip((e - W) / (E - W), 0, 1))) / 2``, so epoch 0 trains at rate 0.

    Example:
        >>> [round(original_cosine(e, 4), 3) for e in range(5)]
        [1.0, 1.0, 0.854, 0.5, 0.146]
        >>> [round(original_cosine(e, 6, 2), 3) for e in range(4)]
        [0.0, 0.5, 1.0, 0.854]
    """
    if not warmup_epochs:
        return (1 + math.cos(math.pi * (max(epoch - 1, 0) % max_epochs) / max_epochs)) / 2
    progress = min(max((epoch - warmup_epochs) / max(max_epochs - warmup_epochs, 1), 0.0), 1.0)
    return min(1.0, epoch / warmup_epochs) * (1 + math.cos(math.pi * progress)) / 2


def make_loss(name: str):
    """``bce`` (multi-label or per-pixel), ``dice``, ``bce_dice`` (their sum) or ``ce`` (single-label).
    Segmentation targets may mark pixels outside the field of view as ``IGNORE``; every loss leaves them out."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    return LOSSES[name]


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)


def _forward(model, x, speed: Speed):
    if speed.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=speed.amp or torch.float32, enabled=speed.amp is not None):
        return model(x).float()  # losses and metrics in fp32


def train_step(forward, x, y, loss_fn, optimizer, *, speed: Speed = Speed(), scaler=None) -> torch.Tensor:
    """One optimisation step on a batch already on the device (autocast and loss scaling as ``speed`` says);
    returns the loss."""
    loss = loss_fn(_forward(forward, x, speed), y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss


def train_one_epoch(model: nn.Module, loader, loss_fn, optimizer, device: torch.device, *, speed: Speed = Speed(),
                    forward=None, scaler=None) -> dict:
    """One pass over ``loader``; returns the mean training loss, images seen, seconds, and the seconds spent
    waiting for the next batch (``data_seconds``: the data loader's share of the step time)."""
    model.train()
    forward = forward or model
    total, count, t0, waited = 0.0, 0, time.perf_counter(), 0.0
    it = iter(loader)
    while True:
        t_wait = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        waited += time.perf_counter() - t_wait
        loss = train_step(forward, x, y, loss_fn, optimizer, speed=speed, scaler=scaler)
        total += float(loss.detach()) * len(x)
        count += len(x)
    return {"loss": total / max(count, 1), "images": count, "seconds": time.perf_counter() - t0,
            "data_seconds": waited}


def ten_crop(x: torch.Tensor, size: int | None = None, scale: float = 224 / 256) -> torch.Tensor:
    """The ten-crop of the papers' test protocol, batched: four corners and the centre, each also flipped.

    With ``size`` smaller than the stored side (the original code: images resized to 256, crops of 224) the crops
    are ``size`` px and go to the model as they are. Without it (images stored at the model's input size, the light
    profiles) the crops are ``scale`` times the side, resized back to it so fixed-size transformers take them.
    (n, C, S, S) -> (n * 10, C, k, k), grouped by image."""
    n, c, s, _ = x.shape
    k = size if size and size < s else max(1, round(s * scale))
    starts = [(0, 0), (0, s - k), (s - k, 0), (s - k, s - k), ((s - k) // 2, (s - k) // 2)]
    crops = torch.stack([x[:, :, i:i + k, j:j + k] for i, j in starts], 1)  # (n, 5, C, k, k)
    crops = torch.cat([crops, crops.flip(-1)], 1).reshape(n * 10, c, k, k)
    if size and size < s:
        return crops
    return F.interpolate(crops, size=(s, s), mode="bilinear", align_corners=False) if k != s else crops


def centre_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """The central ``size`` x ``size`` of images (and masks) stored larger than the model's input; unchanged
    otherwise (the original code's resize 256 -> centre crop 224 for validation)."""
    s = x.shape[-1]
    if not size or size >= s:
        return x
    o = (s - size) // 2
    return x[..., o:o + size, o:o + size]


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn, task: TaskSpec, device: torch.device, *, speed: Speed = Speed(),
             forward=None, crops: int = 1, input_size: int | None = None) -> dict:
    """Loss, the task metric and per-case values on ``loader``. Images stored larger than ``input_size`` are
    centre-cropped to it (masks alike), and ten-cropped at it when ``crops`` is 10.

    Classification returns ``probs`` and ``labels`` (n, K) and the mean AUC with per-class AUCs; segmentation
    returns one Dice per image (threshold 0.5 on the sigmoid; pixels labelled ``IGNORE``, outside the field of
    view, are left out), their mean, and each image's share of predicted foreground (``foreground``).
    """
    model.eval()
    forward = forward or model
    total, count, outs, targets = 0.0, 0, [], []
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        full, x = x, centre_crop(x, input_size)
        if task.kind != CLASSIFICATION:
            y = centre_crop(y, input_size)
        logits = _forward(forward, x, speed)
        total += float(loss_fn(logits, y)) * len(x)
        count += len(x)
        if task.kind == CLASSIFICATION:
            act = (lambda lo: torch.softmax(lo, 1)) if task.protocol.loss == "ce" else torch.sigmoid
            if crops == 10:  # the papers' ten-crop test-time averaging, one batched forward pass
                probs = act(_forward(forward, ten_crop(full, input_size), speed)).view(len(x), 10, -1).mean(1)
            else:
                probs = act(logits)
            outs.append(probs.float().cpu())
            targets.append(y.cpu())
        else:
            y = y.cpu().numpy()
            fov = y != IGNORE
            pred = (torch.sigmoid(logits) > 0.5).cpu().numpy() & fov  # Dice inside the field of view
            outs.append(torch.from_numpy(dice_per_case(pred, y == 1)))
            # share of each image's field of view predicted foreground (0 or 1 everywhere: a constant mask)
            targets.append(torch.from_numpy(pred.reshape(len(pred), -1).sum(1) /
                                            np.maximum(fov.reshape(len(fov), -1).sum(1), 1)))
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
        result["cases"] = {"dice": dice, "foreground": torch.cat(targets).numpy()}
    return result


def _save_training_state(path, model, opt, sched, scaler, best_loss, best_epoch, best_state, history, loader):
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with cleaned_on_failure(Path(tmp), Path(path)):
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None, "best_loss": best_loss,
                    "best_epoch": best_epoch, "best_state": best_state, "history": history,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "loader_rng": loader.gen.get_state() if getattr(loader, "gen", None) is not None else None}, tmp)
        os.replace(tmp, path)


STOP_RULES = ("patience", "original")
# seconds of training between two saves of the training state: a killed run loses at most this much, and a short run
# (a demo fine-tune takes 7 s) writes none (saving after every epoch was 7 % of a demo run)
STATE_EVERY_S = 30.0


def check_stop_rule(rule: str) -> None:
    if rule not in STOP_RULES:
        raise ValueError(f"unknown stop_rule {rule!r}; valid: {', '.join(STOP_RULES)}")


@dataclass
class FitResult:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)


def fit(model: nn.Module, train_loader, val_loader, task: TaskSpec, *, device: torch.device, optimizer: str,
        lr: float, weight_decay: float, max_epochs: int, patience: int, scheduler: str, lr_factor: float,
        lr_patience: int, loss: str, progress: bool | None = None, desc: str = "fit", speed: Speed = Speed(),
        forward=None, checkpoint_path: str | os.PathLike | None = None, on_epoch=None, stop_rule: str = "patience",
        warmup_epochs: int = 0, input_size: int | None = None) -> FitResult:
    """Fine-tune ``model`` with early stopping on validation loss and keep its best weights.

    The learning rate follows ``scheduler``: ``plateau`` multiplies it by ``lr_factor`` after ``lr_patience``
    epochs without a lower validation loss; ``cosine`` anneals it to zero over ``max_epochs``. Training stops after
    ``patience`` epochs without improvement; the model is left holding the weights of the best epoch.

    With ``checkpoint_path``, the whole training state (weights, optimiser, scheduler, loss scaler, best weights,
    history, and the random state of torch and of the training loader) is written there after an epoch once
    ``STATE_EVERY_S`` seconds have passed since the last save (atomically), and a run that finds it resumes from the
    epoch after it: a job killed or out of time continues where it stopped and ends with the same numbers as an
    uninterrupted run. ``on_epoch(epoch)`` is called after each epoch.
    """
    loss_fn = make_loss(loss)
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    check_stop_rule(stop_rule)
    if scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=lr_factor, patience=lr_patience)
    elif scheduler == "cosine" and warmup_epochs:
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / (warmup_epochs + 1), total_iters=warmup_epochs),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs - warmup_epochs))],
            milestones=[warmup_epochs])
    elif scheduler == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs)
    elif scheduler == "cosine_original":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, functools.partial(original_cosine, max_epochs=max_epochs, warmup_epochs=warmup_epochs))
    else:
        raise ValueError(f"unknown scheduler {scheduler!r}; valid schedulers: {', '.join(SCHEDULERS)}")
    if warmup_epochs and scheduler == "plateau":
        raise ValueError("warmup_epochs needs a cosine scheduler (the MedIA 2025 protocol)")
    model.to(device)
    scaler = torch.amp.GradScaler(device.type) if speed.amp == torch.float16 else None  # bf16 needs no scaling
    best_loss, best_epoch, best_state, history = float("inf"), -1, None, []
    start = 0
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        ck = torch.load(checkpoint_path, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        best_loss, best_epoch, best_state = ck["best_loss"], ck["best_epoch"], ck["best_state"]
        history = ck["history"]
        torch.set_rng_state(ck["torch_rng"].cpu())
        if ck.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([r.cpu() for r in ck["cuda_rng"]])
        if getattr(train_loader, "gen", None) is not None:
            train_loader.gen.set_state(ck["loader_rng"].cpu())
        start = len(history)
    bar = tqdm(range(start, max_epochs), desc=desc, leave=False, disable=not progress_enabled(progress))
    last_saved = time.perf_counter()
    for epoch in bar:
        tr = train_one_epoch(model, train_loader, loss_fn, opt, device, speed=speed, forward=forward, scaler=scaler)
        if scaler is None and not math.isfinite(tr["loss"]):  # (fp16's loss scaler skips overflowing steps itself)
            raise DivergedError(f"{desc}: the training loss is {tr['loss']} at epoch {epoch} (lr {lr:g}, "
                                f"{optimizer}): the run diverged; lower the learning rate")
        va = evaluate(model, val_loader, loss_fn, task, device, speed=speed, forward=forward, input_size=input_size)
        lr_now = opt.param_groups[0]["lr"]
        sched.step(va["loss"]) if scheduler == "plateau" else sched.step()
        history.append({"epoch": epoch, "train_loss": tr["loss"], "val_loss": va["loss"], "lr": lr_now,
                        "val_metric": va.get("mean_auc", va.get("dice")),
                        "train_images_per_s": round(tr["images"] / max(tr["seconds"], 1e-9), 1),
                        "data_wait_share": round(tr["data_seconds"] / max(tr["seconds"], 1e-9), 4)})
        if va["loss"] < best_loss:
            best_loss, best_epoch = va["loss"], epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(train=f"{tr['loss']:.3f}", val=f"{va['loss']:.3f}", best=best_epoch)
        waited = epoch - best_epoch  # epochs since the best one
        stop = waited > patience if stop_rule == "original" else waited >= patience
        if (checkpoint_path is not None and not stop and epoch + 1 < max_epochs
                and time.perf_counter() - last_saved >= STATE_EVERY_S):
            last_saved = time.perf_counter()
            _save_training_state(checkpoint_path, model, opt, sched, scaler, best_loss, best_epoch, best_state,
                                 history, train_loader)
        if on_epoch is not None:
            on_epoch(epoch)
        if stop:
            break
    if best_state is None:  # no epoch had a finite validation loss
        raise DivergedError(f"{desc}: no epoch had a finite validation loss (lr {lr:g}, {optimizer}): the run "
                            "diverged; lower the learning rate")
    model.load_state_dict(best_state)
    return FitResult(best_epoch=best_epoch, best_val_loss=best_loss, epochs_run=len(history),
                     stopped_early=len(history) < max_epochs, history=history)
