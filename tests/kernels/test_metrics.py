import numpy as np
import pytest

from medbench_core.metrics import dice_per_case, mean_auc, roc_auc


def test_auc_hand_computed():
    # positives score 0.35, 0.8; negatives 0.1, 0.4: pairs (0.35>0.1), (0.35<0.4), (0.8>0.1), (0.8>0.4) -> 3/4
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_auc_ties_count_half():
    scores = np.array([0.5, 0.5, 0.9, 0.2])
    labels = np.array([1, 0, 1, 0])
    # positive 0.5 vs negatives 0.5 (tie, 0.5) and 0.2 (1); positive 0.9 vs both (1, 1): 3.5 / 4
    assert roc_auc(scores, labels) == pytest.approx(3.5 / 4)


def test_auc_perfect_inverted_and_undefined():
    assert roc_auc(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0
    assert np.isnan(roc_auc(np.array([0.1, 0.9]), np.array([1, 1])))


def test_mean_auc_skips_undefined_class_with_warning():
    probs = np.array([[0.1, 0.3], [0.9, 0.2], [0.4, 0.8]])
    labels = np.array([[0, 1], [1, 1], [0, 1]])
    with pytest.warns(UserWarning, match="undefined"):
        mean, per_class = mean_auc(probs, labels, ["a", "b"])
    assert per_class["a"] == 1.0 and np.isnan(per_class["b"])
    assert mean == 1.0


def test_dice_hand_computed_and_empty_convention():
    pred = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    target = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]])
    # 2*1/(2+1); both empty -> 1; disjoint -> 0; missed everything -> 0
    np.testing.assert_allclose(dice_per_case(pred, target), [2 / 3, 1.0, 0.0, 0.0])
    assert dice_per_case(np.zeros((1, 4)), np.zeros((1, 4)), empty_score=0.0)[0] == 0.0
