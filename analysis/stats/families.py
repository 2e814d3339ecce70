"""Families of comparisons: Holm's adjustment within each, and the verdict rule it feeds."""
from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from analysis.stats.settings import Analysis


def family_of(frame: pd.DataFrame, analysis: Analysis) -> pd.Series:
    """Each comparison's family label (its values of the family keys, joined by '/')."""
    if not analysis.family or frame.empty:
        return pd.Series("all", index=frame.index, dtype=object)
    return frame[list(analysis.family)].astype(str).agg("/".join, axis=1)


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
    for _, idx in frame.groupby("family", sort=False).groups.items():
        frame.loc[idx, "p_holm"] = holm(frame.loc[idx, "p_value"])
        frame.loc[idx, "p_tost_holm"] = holm(frame.loc[idx, "p_tost"])
    frame["verdict"] = [verdict(r, analysis.alpha) for _, r in frame.iterrows()]
    order = ["dataset", "arch", "setting", "variant", "baseline", "n_pairs", "mean_diff",
             "ci_low", "ci_high", "sd_diff", "p_value", "p_holm", "p_tost", "p_tost_holm", "mde",
             "verdict", "family"]
    return frame[order + [c for c in frame.columns if c not in order]]


def verdict(row, alpha: float = 0.05) -> str:
    """``better`` or ``worse`` when the Holm-adjusted p is below ``alpha`` (the sign of the mean
    difference says which); else ``equivalent`` when the Holm-adjusted TOST p is below
    ``alpha`` (the difference lies within ±margin); else ``inconclusive``."""
    if row["p_holm"] < alpha:
        return "better" if row["mean_diff"] > 0 else "worse"
    if row["p_tost_holm"] < alpha:
        return "equivalent"
    return "inconclusive"
