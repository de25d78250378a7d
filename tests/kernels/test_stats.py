import math

import numpy as np
import pytest
from scipy import stats as st

from medbench_core.stats import compare_groups, mean_std, significance_mark, ttest, ttest_from_stats

A = [81.2, 81.9, 81.6, 81.4, 82.0]
B = [80.1, 80.5, 80.3, 80.6, 80.2]


def test_mean_and_sample_std_by_hand():
    m, s, n = mean_std([2.0, 4.0, 6.0])
    assert (m, n) == (4.0, 3)
    assert s == pytest.approx(2.0)  # sqrt((4 + 0 + 4) / 2): sample std, not population (1.633)
    assert math.isnan(mean_std([1.0])[1])


def test_ttest_matches_scipy_and_hand_computation():
    assert ttest(A, B) == pytest.approx(st.ttest_ind(A, B).pvalue)
    assert ttest(A, B, equal_var=False) == pytest.approx(st.ttest_ind(A, B, equal_var=False).pvalue)
    # by hand: pooled variance, t, and the two-sided p from the t distribution with n1 + n2 - 2 df
    a, b = np.array(A), np.array(B)
    sp2 = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
    t = (a.mean() - b.mean()) / math.sqrt(sp2 * (1 / len(a) + 1 / len(b)))
    assert ttest(A, B) == pytest.approx(2 * st.t.sf(abs(t), len(a) + len(b) - 2))


def test_ttest_from_summary_statistics_equals_raw():
    m1, s1, n1 = mean_std(A)
    m2, s2, n2 = mean_std(B)
    assert ttest_from_stats(m1, s1, n1, m2, s2, n2) == pytest.approx(ttest(A, B))


def test_ttest_degenerate_groups():
    assert math.isnan(ttest([1.0], [1.0, 2.0]))
    assert ttest([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert ttest([1.0, 1.0], [2.0, 2.0]) == 0.0


@pytest.mark.parametrize("p,mark", [(0.5, "n.s."), (0.05, "n.s."), (0.0499, "*"), (0.01, "*"), (0.0099, "**"),
                                    (1e-4, "**"), (9.9e-5, "***"), (float("nan"), "n/a")])
def test_significance_marks_follow_the_papers(p, mark):
    assert significance_mark(p) == mark


def test_compare_groups_best_equivalent_and_baseline():
    groups = {"base": B, "close": [81.1, 81.8, 81.6, 81.5, 81.7], "best": A}
    df = compare_groups(groups, baseline="base")
    assert df["is_best"].sum() == 1 and df.loc["best", "is_best"]
    assert df.loc["close", "equivalent_to_best"]  # same distribution as A: p > 0.05
    assert not df.loc["base", "equivalent_to_best"]
    assert df.loc["best", "mark_vs_baseline"] == significance_mark(ttest(A, B))
    assert df.loc["best", "diff_vs_baseline"] == pytest.approx(np.mean(A) - np.mean(B))
    with pytest.raises(KeyError, match="baseline"):
        compare_groups(groups, baseline="nope")
