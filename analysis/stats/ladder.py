"""The convergence ladder: each epoch budget of the baseline against twice its epochs."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.stats.families import adjust
from analysis.stats.paired import HIDDEN, PAIR_COLUMNS, _pair_row
from analysis.stats.settings import Analysis, Family
from analysis.stats.variants import BUDGET_MARK


def convergence(frame: pd.DataFrame, baseline: str = "ce") -> pd.DataFrame:
    """Per dataset x architecture: has the baseline saturated? The verdict of ``<baseline>@2x``
    − ``<baseline>`` (twice the epochs): *equivalent* says yes; anything else says the
    comparisons sit where training longer still moves the baseline. ``checked`` is False where
    the runs have no ``@2x`` budget."""
    from analysis.stats.verdicts import verdict_interval

    rows = []
    for (d, a), g in verdict_interval(frame).groupby(["dataset", "arch"], sort=True):
        hit = g[(g["variant"] == f"{baseline}{BUDGET_MARK}2x") & (g["baseline"] == baseline)]
        if hit.empty:
            rows.append({"dataset": d, "arch": a, "checked": False, "converged": False,
                         "verdict": "", "mean_diff": np.nan, "ci_low_total": np.nan,
                         "ci_high_total": np.nan})
            continue
        r = hit.iloc[0]
        rows.append({"dataset": d, "arch": a, "checked": True,
                     "converged": r["verdict"] == "equivalent", "verdict": r["verdict"],
                     "mean_diff": r["mean_diff"], "ci_low_total": r["ci_low_total"],
                     "ci_high_total": r["ci_high_total"]})
    return pd.DataFrame(rows, columns=["dataset", "arch", "checked", "converged", "verdict",
                                       "mean_diff", "ci_low_total", "ci_high_total"])


def budget_factor(variant: str, baseline: str) -> float | None:
    """The multiple of the baseline's epochs a variant trains for (1 for the baseline itself,
    2 for ``ce@2x``), or None when it is not one of the baseline's budgets."""
    if variant == baseline:
        return 1.0
    head, mark, tail = variant.partition(BUDGET_MARK)
    if head != baseline or not mark or not tail.endswith("x"):
        return None
    try:
        return float(tail[:-1])
    except ValueError:
        return None


def ladder(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis(),
           scale: float = 100.0) -> pd.DataFrame:
    """The convergence ladder: per dataset x architecture, each of the baseline's epoch budgets
    against the budget at twice its epochs (``ce@2x`` − ``ce``, ``ce@4x`` − ``ce@2x``, ...),
    paired by seed, Holm-adjusted within the task's ladder. A budget has *converged* when its
    double is *equivalent* to it (TOST at the declared margin); the smallest such budget is
    the task's ``first_converged`` (NaN where none did)."""
    rows = []
    base = analysis.baseline
    task_analysis = dataclasses.replace(analysis, families=(Family("ladder"),),
                                        family=("dataset", "arch"))
    data = runs.dropna(subset=[metric])
    for _, g in data.groupby(["dataset", "arch"], sort=True):
        rungs = {f: v for v in g["variant"].unique()
                 if (f := budget_factor(v, base)) is not None}
        epochs = g.groupby("variant")["epochs"].max() if "epochs" in g else pd.Series(dtype=float)
        for f in sorted(rungs):
            if 2 * f not in rungs:
                continue
            row = _pair_row(g, rungs[2 * f], rungs[f], metric, task_analysis, scale, "ladder")
            row["epochs"] = float(epochs.get(rungs[f], np.nan))
            row["epochs_double"] = float(epochs.get(rungs[2 * f], np.nan))
            rows.append(row)
    columns = PAIR_COLUMNS + HIDDEN + ["epochs", "epochs_double"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame.drop(columns=HIDDEN).assign(p_holm=[], p_tost_holm=[], verdict=[],
                                                 family=[], first_converged=[])
    frame = adjust(frame, task_analysis).drop(columns=HIDDEN)
    first = (frame[frame["verdict"] == "equivalent"].groupby(["dataset", "arch"])["epochs"]
             .min().rename("first_converged"))
    return frame.merge(first, on=["dataset", "arch"], how="left")


def ladder_budgets(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis(),
                   scale: float = 1.0) -> pd.DataFrame:
    """Per task, the budget a convergence ladder's rule names: the first rung whose doubling is
    *equivalent* (TOST within the margin) or *worse* on ``metric`` (validation, never the
    test set); under label noise (a condition other than ``clean``), where the curve may fall,
    the rung of the highest mean when that comes earlier. ``budget`` is ``none`` where no rung
    qualifies (then ``largest_rung`` is as far as the ladder went)."""
    table = ladder(runs, metric, analysis, scale)
    epochs = runs.groupby(["dataset", "arch", "variant"])["epochs"].max()
    means = runs.groupby(["dataset", "arch", "variant"])[metric].mean()
    rows = []
    for (d, a), g in table.groupby(["dataset", "arch"], sort=True):
        g = g.sort_values("epochs")
        stop = g[g["verdict"].isin(["equivalent", "worse"])]
        rule = int(stop["epochs"].iloc[0]) if len(stop) else None
        rung = {int(epochs[(d, a, v)]): float(means[(d, a, v)]) for v in means[(d, a)].index}
        peak = max(rung, key=lambda e: (rung[e], -e))  # the earlier rung among equal means
        noisy = ":" in str(d) and not str(d).endswith(":clean")
        named = [x for x in (rule, peak if noisy else None) if x is not None]
        rows.append({"dataset": d, "arch": a, "first_equivalent_or_worse": rule or "none",
                     "peak_rung": peak, "budget": min(named) if named else "none",
                     "largest_rung": max(rung)})
    return pd.DataFrame(rows, columns=["dataset", "arch", "first_equivalent_or_worse",
                                       "peak_rung", "budget", "largest_rung"])
