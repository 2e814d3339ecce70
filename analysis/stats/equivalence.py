"""Equivalence: the smallest margin a TOST accepts, and the t and Wilcoxon forms of TOST."""
from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.stats.intervals import t_interval

SENSITIVITY = ["eq_bound", "verdict_half_margin", "verdict_twice_margin", "verdict_wilcoxon",
               "verdict_wider_family", "fragile"]


def equivalence_bound(diff: np.ndarray, alpha: float = 0.05) -> float:
    """The smallest margin m at which the paired TOST at ``alpha`` (unadjusted) calls the
    difference equivalent: the largest |end| of the 1 - 2 alpha Student-t interval (TOST at m
    rejects both one-sided nulls exactly when that interval lies inside (-m, m))."""
    if len(diff) < 2:
        return float("nan")
    _, lo, hi = t_interval(diff, 1 - 2 * alpha)
    return max(abs(lo), abs(hi))


def tost_se(mean: float, se: float, df: int, margin: float) -> float:
    """TOST of a mean difference with standard error ``se`` (Student t, ``df`` degrees of
    freedom) against -margin and +margin: the larger of the two one-sided p values (what
    statsmodels' ``ttost_paired`` computes when ``se`` is the seeds' SD over sqrt(n))."""
    if not (se > 0 and df >= 1):
        return float("nan")
    lower = stats.t.sf((mean + margin) / se, df)  # H0: mean <= -margin
    upper = stats.t.cdf((mean - margin) / se, df)  # H0: mean >= +margin
    return float(max(lower, upper))


def equivalence_bound_se(mean: float, se: float, df: int, alpha: float = 0.05) -> float:
    """:func:`equivalence_bound` for a mean with standard error ``se`` and ``df`` degrees of
    freedom (the seeds' and the test images' variance together)."""
    if not (se > 0 and df >= 1):
        return float("nan")
    half = float(stats.t.ppf(1 - alpha, df)) * se
    return max(abs(mean - half), abs(mean + half))


def _tost_t(x: np.ndarray, y: np.ndarray, margin: float) -> float:
    from statsmodels.stats.weightstats import ttost_paired

    d = x - y
    if len(d) < 2 or np.ptp(d) == 0:
        return float("nan")
    return float(ttost_paired(x, y, -margin, margin)[0])


def _wilcoxon(d: np.ndarray) -> float:
    """Wilcoxon signed-rank p (two-sided; scipy's exact or normal method by n), NaN when every
    difference is zero."""
    if len(d) < 2 or not np.any(d != 0):
        return float("nan")
    return float(stats.wilcoxon(d).pvalue)


def _tost_wilcoxon(d: np.ndarray, margin: float) -> float:
    """Two one-sided Wilcoxon signed-rank tests of d against -margin and +margin: the larger p."""
    if len(d) < 2:
        return float("nan")
    lower, upper = d + margin, d - margin
    if not np.any(lower != 0) or not np.any(upper != 0):
        return float("nan")
    return float(max(stats.wilcoxon(lower, alternative="greater").pvalue,
                     stats.wilcoxon(upper, alternative="less").pvalue))
