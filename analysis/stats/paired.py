"""Paired comparisons over seeds: the mean difference, its Student-t interval, the paired t-test,
TOST at the declared margin and the MDE, one row per comparison. On a test accuracy the interval
and the tests add the test set's sampling variance to the seeds' (:mod:`analysis.stats.testset`);
the seed-only interval and p stay beside them."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.equivalence import tost_se
from analysis.stats.families import adjust
from analysis.stats.intervals import t_interval
from analysis.stats.power import mde, seed_matrix
from analysis.stats.settings import Analysis
from analysis.stats.testset import image_variance
from analysis.stats.variants import comparisons, setting_of


def paired(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis(),
           scale: float = 1.0) -> pd.DataFrame:
    """One row per comparison (variant - baseline over the seeds both have): mean difference,
    its 95% Student-t interval, the SD of the differences, the paired t-test p, Holm's adjusted
    p within the comparison's family, the TOST equivalence p at ±margin (raw and Holm-adjusted),
    the minimum detectable difference and the verdict. ``ci_low``/``ci_high`` are the seeds'
    interval; on a test accuracy the verdict's interval ``ci_low_total``/``ci_high_total``, its
    p values (``p_value``, ``p_tost``; ``p_seeds``: the seeds' paired t-test) and the MDE cover
    the seeds and the test images (``test_bound`` says how). Differences are
    multiplied by ``scale`` (100 for accuracies stored as fractions: the margin is in the scaled
    unit)."""
    return adjust(paired_rows(runs, metric, analysis, scale), analysis).drop(columns=HIDDEN)


def paired_rows(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis(),
                scale: float = 1.0) -> pd.DataFrame:
    """The comparisons of :func:`paired` before any adjustment (with their seeds' values in the
    hidden ``_x``/``_y`` columns, for the sensitivity analysis)."""
    rows = []
    data = runs.dropna(subset=[metric])
    for _, g in data.groupby(["dataset", "arch"], sort=True):
        wide = g.groupby(["seed", "variant"])[metric].mean().unstack("variant")
        for variant, baseline in comparisons(g, analysis.baseline):
            rows.append(_pair_row(g, variant, baseline, metric, analysis, scale,
                                  setting_of(variant, baseline), wide))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS + HIDDEN)


PAIR_COLUMNS = ["dataset", "arch", "setting", "variant", "baseline", "n_pairs", "mean_diff",
                "ci_low", "ci_high", "sd_diff", "p_value", "p_tost", "mde", "se_images",
                "test_bound", "ci_low_total", "ci_high_total", "p_seeds"]
#: The seeds' values of both sides (in the metric's unit), the test-set variance of their mean
#: difference (the metric's unit squared), the verdict's SE where that variance enters it (the
#: metric's unit; NaN otherwise) and the scale, kept while a frame of comparisons is
#: built (the sensitivity analysis re-tests them), dropped from every table.
HIDDEN = ["_x", "_y", "_var_img", "_se", "_scale"]


def _pair_row(g: pd.DataFrame, variant: str, baseline: str, metric: str, analysis: Analysis,
              scale: float, setting: str, wide: pd.DataFrame | None = None) -> dict:
    """One paired comparison of ``variant`` against ``baseline`` over their common seeds
    (``wide``: ``g``'s seeds × variants of ``metric``, when the caller has it already)."""
    from statsmodels.stats.weightstats import ttost_paired

    both = (seed_matrix(g, [variant, baseline], metric) if wide is None
            else wide.reindex(columns=[variant, baseline]).dropna())
    x, y = both[variant].to_numpy(float), both[baseline].to_numpy(float)
    diff = x - y
    n = len(diff)
    mean, lo_s, hi_s = t_interval(diff)
    sd = float(diff.std(ddof=1)) if n > 1 else float("nan")
    var_img, bound = image_variance(g, both.index, variant, baseline, metric, x, y)
    margin = analysis.margin / scale
    p_s = se = float("nan")
    if n >= 2 and np.ptp(diff) > 0:
        p_s = float(stats.ttest_rel(x, y).pvalue)
    if var_img > 0 and n >= 2:  # the seeds' and the test images' variances together
        se = float(np.sqrt((sd * sd) / n + var_img))
        half = float(stats.t.ppf(0.975, n - 1)) * se
        lo, hi = mean - half, mean + half
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
        p_tost = tost_se(mean, se, n - 1, margin)
    else:
        lo, hi, p = lo_s, hi_s, p_s
        p_tost = float("nan")
        if n >= 2 and np.ptp(diff) > 0:
            p_tost = float(ttost_paired(x, y, -margin, margin)[0])

    def points(x: float, digits: int = DIFF_DIGITS) -> float:
        # stored accuracies are float32: 1e-6 of noise is not a gain; + 0.0: never -0.0
        return round(x * scale, digits) + 0.0 if x == x else x

    def end(x: float) -> float:  # an interval end: printed rounded once from 6 decimals
        return points(x, CI_DIGITS)

    sd_total = float(np.sqrt(sd * sd + n * var_img)) if n > 1 else float("nan")
    return {"dataset": g["dataset"].iloc[0], "arch": g["arch"].iloc[0], "setting": setting,
            "variant": variant, "baseline": baseline, "n_pairs": n,
            "mean_diff": points(mean), "ci_low": end(lo_s), "ci_high": end(hi_s),
            "sd_diff": sd * scale, "p_value": p, "p_tost": p_tost,
            "mde": mde(sd_total, n, analysis) * scale,
            "se_images": float(np.sqrt(var_img)) * scale, "test_bound": bound,
            "ci_low_total": end(lo), "ci_high_total": end(hi), "p_seeds": p_s,
            "_x": x, "_y": y, "_var_img": var_img, "_se": se, "_scale": scale}


#: Decimals kept in differences (in the scaled unit: 1e-4 points of an accuracy in percent).
DIFF_DIGITS = 4
#: Decimals kept in interval ends (t quantile x SE: no float32 noise at that place), so that
#: the two decimals a sentence prints are rounded once, not from an already rounded value.
CI_DIGITS = 6
