"""Per cell (dataset, arch, variant): mean, std and a 95% interval for the mean that stays inside
the metric's range."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.settings import CELL


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the Student-t interval; NaN bounds for fewer than two values. Used
    for paired differences, which may take any sign."""
    values = np.asarray(values, float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def bounded_interval(values, level: float = 0.95, resamples: int = 2000, seed: int = 0
                     ) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap interval of the mean over seeds. Every
    resampled mean lies between the smallest and the largest value, so an accuracy's or a share's
    interval never leaves the metric's range. NaN bounds for fewer than two values; a
    zero-width interval when every value is the same."""
    values = np.asarray(values, float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    if np.ptp(values) == 0:
        return mean, mean, mean
    res = stats.bootstrap((values,), np.mean, n_resamples=resamples, confidence_level=level,
                          method="percentile", rng=np.random.default_rng(seed))
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (dataset, arch, variant): n, mean, std (ddof 1), 95% bootstrap interval of the mean
    of ``metric`` (inside the metric's range)."""
    rows = []
    for (d, a, v), g in runs.dropna(subset=[metric]).groupby(CELL, sort=True):
        x = g[metric].to_numpy(float)
        mean, lo, hi = bounded_interval(x)
        rows.append({"dataset": d, "arch": a, "variant": v, "n": len(x), "mean": mean,
                     "std": float(x.std(ddof=1)) if len(x) > 1 else float("nan"),
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=["dataset", "arch", "variant", "n", "mean", "std",
                                       "ci_low", "ci_high"])
