"""Fragility: does a verdict survive half or twice the margin, a rank test, a wider family?"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.equivalence import (
    SENSITIVITY,
    _tost_t,
    _tost_wilcoxon,
    _wilcoxon,
    equivalence_bound,
    equivalence_bound_se,
    tost_se,
)
from analysis.stats.families import holm, verdict
from analysis.stats.paired import HIDDEN
from analysis.stats.settings import Analysis


def _verdicts(frame: pd.DataFrame, p: pd.Series, p_tost: pd.Series, groups: pd.Series,
              alpha: float) -> list[str]:
    """The verdicts of ``frame`` for other p values and other families (``groups``: each
    comparison's family label; Holm within each)."""
    p_holm, t_holm = pd.Series(np.nan, index=frame.index), pd.Series(np.nan, index=frame.index)
    for _, idx in groups.groupby(groups, sort=False).groups.items():
        p_holm[idx] = holm(p[idx])
        t_holm[idx] = holm(p_tost[idx])
    return [verdict({"p_holm": a, "p_tost_holm": b, "mean_diff": m}, alpha)
            for a, b, m in zip(p_holm, t_holm, frame["mean_diff"])]


def sensitivity(frame: pd.DataFrame, analysis: Analysis = Analysis()) -> pd.DataFrame:
    """How fragile each verdict is: its equivalence bound (points) and its verdict at half and
    twice the margin, under Wilcoxon signed-rank tests (difference and two one-sided tests for
    equivalence) instead of t-tests, and under the wider family (every comparison of the frame:
    the whole edition). A verdict that any of them changes is
    ``fragile``. Needs the hidden seed columns of :func:`paired_rows`; drops them."""
    if frame.empty or "_x" not in frame:
        out = frame.drop(columns=[c for c in HIDDEN if c in frame])
        for c in SENSITIVITY:
            out[c] = pd.Series(dtype=object)
        return out
    frame = frame.copy()
    diffs = [np.asarray(x, float) - np.asarray(y, float) for x, y in zip(frame["_x"],
                                                                          frame["_y"])]
    scales = frame["_scale"].astype(float)
    var_img = frame["_var_img"].astype(float)
    se = frame["_se"].astype(float)  # with test images: the verdict's SE (seeds and images)
    frame["eq_bound"] = [(equivalence_bound_se(d.mean(), e, len(d) - 1, analysis.alpha) if v > 0
                          else equivalence_bound(d, analysis.alpha)) * s
                         for d, e, v, s in zip(diffs, se, var_img, scales)]
    fam = frame["family"]
    for name, factor in (("verdict_half_margin", 0.5), ("verdict_twice_margin", 2.0)):
        tost = pd.Series([tost_se(d.mean(), e, len(d) - 1, factor * analysis.margin / s) if v > 0
                          else _tost_t(np.asarray(x, float), np.asarray(y, float),
                                       factor * analysis.margin / s)
                          for x, y, d, e, v, s in zip(frame["_x"], frame["_y"], diffs, se,
                                                      var_img, scales)],
                         index=frame.index)
        frame[name] = _verdicts(frame, frame["p_value"], tost, fam, analysis.alpha)
    # ranks test the seeds only: where the test images add variance, the check takes the
    # larger of the rank test's p and the verdict's own, so it never claims more than either
    p_w = pd.Series([_wilcoxon(d) for d in diffs], index=frame.index)
    t_w = pd.Series([_tost_wilcoxon(d, analysis.margin / s) for d, s in zip(diffs, scales)],
                    index=frame.index)
    imaged = var_img.to_numpy() > 0
    for ours, verdicts in ((p_w, "p_value"), (t_w, "p_tost")):
        ours[:] = np.where(imaged, np.fmax(ours.to_numpy(float),
                                           frame[verdicts].to_numpy(float)), ours.to_numpy(float))
    frame["verdict_wilcoxon"] = _verdicts(frame, p_w, t_w, fam, analysis.alpha)
    frame["verdict_wider_family"] = _verdicts(frame, frame["p_value"], frame["p_tost"],
                                              pd.Series("all", index=frame.index), analysis.alpha)
    alternatives = frame[SENSITIVITY[1:5]]
    frame["fragile"] = alternatives.ne(frame["verdict"], axis=0).any(axis=1)
    return frame.drop(columns=HIDDEN)


def fragile_why(row) -> str:
    """Which checks move a fragile verdict, in words (empty for a robust one)."""
    if not row.get("fragile", False):
        return ""
    names = {"verdict_half_margin": "half the margin", "verdict_twice_margin": "twice the margin",
             "verdict_wilcoxon": "Wilcoxon", "verdict_wider_family": "the wider family"}
    return "; ".join(f"{row[c]} at {w}" if "margin" in c else f"{row[c]} under {w}"
                     for c, w in names.items() if row[c] != row["verdict"])
