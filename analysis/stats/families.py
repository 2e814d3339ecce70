"""Families of comparisons: Holm's adjustment within each, and the verdict rule it feeds."""
from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from analysis.stats.settings import Analysis


def family_of(frame: pd.DataFrame, analysis: Analysis) -> pd.Series:
    """Each comparison's family: the first declared family that holds it (its name), with the
    values of the split keys when the analysis splits families."""
    if frame.empty:
        return pd.Series(dtype=object, index=frame.index)
    return pd.Series([analysis.family_label(r) for _, r in frame.iterrows()], index=frame.index,
                     dtype=object)


def holm(p: pd.Series) -> pd.Series:
    """Holm's step-down adjustment (statsmodels) over the non-missing p values of one family."""
    from statsmodels.stats.multitest import multipletests

    out = pd.Series(np.nan, index=p.index)
    ok = p.notna()
    if ok.any():
        # statsmodels' Holm branch calls gc.collect(), which walks every object of a process
        # that has torch and mlflow loaded (0.15 s a call); frozen objects are skipped.
        gc.freeze()
        try:
            out[ok] = multipletests(p[ok].to_numpy(float), method="holm")[1]
        finally:
            gc.unfreeze()
    return out


def adjust(frame: pd.DataFrame, analysis: Analysis) -> pd.DataFrame:
    """Add ``family``, ``p_holm``, ``p_tost_holm`` and ``verdict`` to a frame of comparisons."""
    frame = frame.copy()
    frame["family"] = family_of(frame, analysis)
    frame["p_holm"] = np.nan
    frame["p_tost_holm"] = np.nan
    frame["mde_holm"] = np.nan
    for _, idx in frame.groupby("family", sort=False).groups.items():
        frame.loc[idx, "p_holm"] = holm(frame.loc[idx, "p_value"])
        frame.loc[idx, "p_tost_holm"] = holm(frame.loc[idx, "p_tost"])
        frame.loc[idx, "mde_holm"] = mde_at_holm_level(frame.loc[idx], analysis)
    frame["verdict"] = [verdict(r, analysis.alpha) for _, r in frame.iterrows()]
    order = ["dataset", "arch", "setting", "variant", "baseline", "n_pairs", "mean_diff",
             "ci_low", "ci_high", "sd_diff", "p_value", "p_holm", "p_tost", "p_tost_holm", "mde",
             "mde_holm", "verdict", "family", "ci_low_total", "ci_high_total", "test_bound",
             "se_images", "p_seeds"]
    order = [c for c in order if c in frame.columns]
    return frame[order + [c for c in frame.columns if c not in order]]


def holm_levels(p: pd.Series, alpha: float) -> pd.Series:
    """The level each comparison of one family is tested at by Holm's step-down procedure:
    the i-th smallest p of m is compared with alpha / (m - i + 1); a comparison without a p
    (no variation in its differences) gets the first step's alpha / m."""
    out = pd.Series(alpha / max(int(p.notna().sum()), 1), index=p.index)
    ranked = p.dropna().sort_values(kind="stable")
    m = len(ranked)
    for i, idx in enumerate(ranked.index, start=1):
        out[idx] = alpha / (m - i + 1)
    return out


def mde_at_holm_level(family: pd.DataFrame, analysis: Analysis) -> pd.Series:
    """Each comparison's minimum detectable difference at its own Holm level (what the
    adjusted test can detect at the declared power; the plain ``mde`` is at alpha), with the
    test images' variance where the comparison has one (``se_images``: an SD of
    sqrt(sd^2 + n se_images^2) per pair)."""
    from analysis.stats.power import _detectable_effect

    levels = holm_levels(family["p_value"], analysis.alpha)
    out = pd.Series(np.nan, index=family.index)
    for idx, row in family.iterrows():
        n, sd = int(row["n_pairs"]), float(row["sd_diff"])
        img = float(row.get("se_images", 0.0))
        if img > 0:
            sd = float(np.sqrt(sd * sd + n * img * img))
        if n >= 2 and sd > 0:
            out[idx] = _detectable_effect(n, float(levels[idx]), analysis.power) * sd
    return out


def verdict(row, alpha: float = 0.05) -> str:
    """``better`` or ``worse`` when the Holm-adjusted p is below ``alpha`` (the sign of the mean
    difference says which); else ``equivalent`` when the Holm-adjusted TOST p is below
    ``alpha`` (the difference lies within ±margin); else ``inconclusive``."""
    if row["p_holm"] < alpha:
        return "better" if row["mean_diff"] > 0 else "worse"
    if row["p_tost_holm"] < alpha:
        return "equivalent"
    return "inconclusive"
