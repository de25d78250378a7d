"""Per-case statistics and their reductions: ROC AUC per class (mean over classes) and Dice per image.

Evaluation keeps per-case values (scores and labels, or one Dice per image) so that tests and bootstraps can reuse
them; the functions here reduce them.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of one class (Mann-Whitney U with tied scores counted as one half).

    Returns ``nan`` when the labels hold only one class (AUC undefined).

    Example:
        >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_auc(probs: np.ndarray, labels: np.ndarray, classes=None) -> tuple[float, dict[str, float]]:
    """Mean AUC over classes (the papers' classification metric) and the per-class AUCs.

    Classes whose labels are all equal in this split have no AUC; they are left out of the mean with a warning.
    """
    probs, labels = np.asarray(probs), np.asarray(labels)
    classes = list(classes) if classes is not None else [str(i) for i in range(probs.shape[1])]
    per_class = {c: roc_auc(probs[:, i], labels[:, i]) for i, c in enumerate(classes)}
    defined = [v for v in per_class.values() if not np.isnan(v)]
    if len(defined) < len(per_class):
        warnings.warn(f"AUC undefined (one label value only) for {[c for c, v in per_class.items() if np.isnan(v)]}",
                      stacklevel=2)
    return (float(np.mean(defined)) if defined else float("nan")), per_class


def dice_per_case(pred: np.ndarray, target: np.ndarray, empty_score: float = 1.0) -> np.ndarray:
    """Dice coefficient 2|P∩T| / (|P|+|T|) of each image in a batch of binary masks (n, ...).

    An image where both prediction and target are empty scores ``empty_score`` (1.0, the SIIM-ACR convention).

    Example:
        >>> dice_per_case(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]))
        array([0.66666667])
    """
    pred = np.asarray(pred).astype(bool).reshape(len(pred), -1)
    target = np.asarray(target).astype(bool).reshape(len(target), -1)
    inter = (pred & target).sum(1)
    total = pred.sum(1) + target.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(total == 0, empty_score, 2 * inter / np.maximum(total, 1))
    return dice.astype(float)
