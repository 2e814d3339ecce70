"""Paired comparisons over seeds: the mean difference, its Student-t interval, the paired t-test,
TOST at the declared margin and the MDE, one row per comparison."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.families import adjust
from analysis.stats.intervals import t_interval
from analysis.stats.power import mde, seed_matrix
from analysis.stats.settings import Analysis
from analysis.stats.variants import comparisons, setting_of


def paired(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis(),
           scale: float = 1.0) -> pd.DataFrame:
    """One row per comparison (variant - baseline over the seeds both have): mean difference,
    its 95% Student-t interval, the SD of the differences, the paired t-test p, Holm's adjusted
    p within the comparison's family, the TOST equivalence p at ±margin (raw and Holm-adjusted),
    the minimum detectable difference and the verdict. Differences are multiplied by ``scale``
    (100 for accuracies stored as fractions: the margin is in the scaled unit)."""
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
                "ci_low", "ci_high", "sd_diff", "p_value", "p_tost", "mde"]
#: The seeds' values of both sides (in the metric's unit) and the scale, kept while a frame of
#: comparisons is built (the sensitivity analysis re-tests them), dropped from every table.
HIDDEN = ["_x", "_y", "_scale"]


def _pair_row(g: pd.DataFrame, variant: str, baseline: str, metric: str, analysis: Analysis,
              scale: float, setting: str, wide: pd.DataFrame | None = None) -> dict:
    """One paired comparison of ``variant`` against ``baseline`` over their common seeds
    (``wide``: ``g``'s seeds × variants of ``metric``, when the caller has it already)."""
    from statsmodels.stats.weightstats import ttost_paired

    both = (seed_matrix(g, [variant, baseline], metric) if wide is None
            else wide.reindex(columns=[variant, baseline]).dropna())
    x, y = both[variant].to_numpy(float), both[baseline].to_numpy(float)
    diff = x - y
    mean, lo, hi = t_interval(diff)
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
    p = p_tost = float("nan")
    if len(diff) >= 2 and np.ptp(diff) > 0:
        p = float(stats.ttest_rel(x, y).pvalue)
        margin = analysis.margin / scale
        p_tost = float(ttost_paired(x, y, -margin, margin)[0])
    def points(x: float) -> float:  # stored accuracies are float32: 1e-6 of noise is not a gain
        return round(x * scale, DIFF_DIGITS) + 0.0 if x == x else x  # + 0.0: never -0.0

    return {"dataset": g["dataset"].iloc[0], "arch": g["arch"].iloc[0], "setting": setting,
            "variant": variant, "baseline": baseline, "n_pairs": len(diff),
            "mean_diff": points(mean), "ci_low": points(lo), "ci_high": points(hi),
            "sd_diff": sd * scale, "p_value": p, "p_tost": p_tost,
            "mde": mde(sd, len(diff), analysis) * scale, "_x": x, "_y": y, "_scale": scale}


#: Decimals kept in differences (in the scaled unit: 1e-4 points of an accuracy in percent).
DIFF_DIGITS = 4
