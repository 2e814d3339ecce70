"""Statistics over seeds: mean, std and 95% t-intervals per cell; paired differences between
methods matched by seed, with a paired t-test."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CELL = ["dataset", "arch", "variant"]
METHOD_ORDER = ["ce", "lsr", "tfkd-self", "tfkd-reg", "drkd", "ps-kd", "cs-kd", "zipf-ls", "dlb"]


def variant_order(variants) -> list[str]:
    """The methods in registry order (each method's variants alphabetical), then anything else."""
    def key(v: str):
        base = next((i for i, m in enumerate(METHOD_ORDER) if v == m or v.startswith(m + "-")),
                    len(METHOD_ORDER))
        return base, v
    return sorted(set(variants), key=key)


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the Student-t interval; NaN bounds for fewer than two values."""
    values = np.asarray(values, float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def summarize(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (dataset, arch, variant): n, mean, std (ddof 1), 95% CI of ``metric``."""
    rows = []
    for (d, a, v), g in runs.dropna(subset=[metric]).groupby(CELL, sort=True):
        x = g[metric].to_numpy(float)
        mean, lo, hi = t_interval(x)
        rows.append({"dataset": d, "arch": a, "variant": v, "n": len(x), "mean": mean,
                     "std": float(x.std(ddof=1)) if len(x) > 1 else float("nan"),
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=["dataset", "arch", "variant", "n", "mean", "std",
                                       "ci_low", "ci_high"])


#: The paper's question: each method of the left column against the right one with the same
#: teacher source (or, when there is none such, the right one's default variant).
RIVALS = {"drkd": "tfkd-self"}

#: The label a grid gives a variant that reads its hyperparameters from its Optuna study
#: (``hyperparameters: tuned``): the reference variant's label with this suffix.
TUNED_SUFFIX = "-tuned"


def is_tuned(variant: str) -> bool:
    return variant.endswith(TUNED_SUFFIX)


def reference_of(variant: str) -> str:
    """The reference-value twin of a tuned variant's label (the label itself otherwise)."""
    return variant.removesuffix(TUNED_SUFFIX)


def comparisons(cells: pd.DataFrame) -> list[tuple[str, str]]:
    """Each variant against CE; each DR-KD variant against the Tf-KD self variant with the same
    teacher source and the same hyperparameter setting (reference values or tuned); each tuned
    variant against its reference twin (``cells``: variant, method, teacher_source columns)."""
    cells = cells.drop_duplicates("variant")
    present = set(cells["variant"])
    ordered = variant_order(present)
    pairs = [(v, "ce") for v in ordered if v != "ce" and "ce" in present]
    source = dict(zip(cells["variant"], cells["teacher_source"]))
    method = dict(zip(cells["variant"], cells["method"]))
    for v in ordered:
        rival = RIVALS.get(method[v])
        if rival is None:
            continue
        same = [u for u in ordered if method[u] == rival and source[u] == source[v]
                and is_tuned(u) == is_tuned(v)]
        if same:
            pairs.append((v, same[0]))
        elif rival in present:
            pairs.append((v, rival))
    pairs += [(v, reference_of(v)) for v in ordered
              if is_tuned(v) and reference_of(v) in present]
    return pairs


def paired(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean paired difference (variant - baseline) over seeds present in both, its 95% CI and
    the two-sided paired t-test p-value (NaN when fewer than two pairs or no spread)."""
    rows = []
    data = runs.dropna(subset=[metric])
    for (d, a), g in data.groupby(["dataset", "arch"], sort=True):
        for variant, baseline in comparisons(g):
            x = g[g["variant"] == variant].groupby("seed")[metric].mean()
            y = g[g["variant"] == baseline].groupby("seed")[metric].mean()
            seeds = sorted(set(x.index) & set(y.index))
            diff = (x.loc[seeds] - y.loc[seeds]).to_numpy(float)
            mean, lo, hi = t_interval(diff)
            p = float("nan")
            if len(diff) >= 2 and np.ptp(diff) > 0:
                p = float(stats.ttest_rel(x.loc[seeds], y.loc[seeds]).pvalue)
            rows.append({"dataset": d, "arch": a, "variant": variant, "baseline": baseline,
                         "n_pairs": len(diff), "mean_diff": mean, "ci_low": lo, "ci_high": hi,
                         "p_value": p})
    return pd.DataFrame(rows, columns=["dataset", "arch", "variant", "baseline", "n_pairs",
                                       "mean_diff", "ci_low", "ci_high", "p_value"])


def verdict(row) -> str:
    """Plain words for one paired comparison at the 5% level."""
    if row["n_pairs"] < 2 or np.isnan(row["ci_low"]):
        return "too few seeds to tell"
    if row["ci_low"] > 0:
        return "better (95% CI above 0)"
    if row["ci_high"] < 0:
        return "worse (95% CI below 0)"
    return "no significant difference (95% CI spans 0)"
