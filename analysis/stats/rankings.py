"""Rankings: each variant's rank interval and probability of ranking first (paired bootstrap
over seeds), and the probability of improvement over the baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.power import seed_matrix
from analysis.stats.settings import Analysis
from analysis.stats.variants import is_budget, is_lattice, is_tuned, reference_of, variant_order


def ranking_sets(variants) -> dict[str, list[str]]:
    """The variants ranked together: ``reference`` (every variant at reference values) and, when
    there are tuned variants, ``tuned`` (every tuned variant, and each variant with nothing to
    tune at its one setting)."""
    variants = [v for v in variant_order(variants) if not is_lattice(v) and not is_budget(v)]
    sets = {"reference": [v for v in variants if not is_tuned(v)]}
    tuned = {reference_of(v) for v in variants if is_tuned(v)}
    if tuned:
        sets["tuned"] = [v for v in variants if is_tuned(v) or v not in tuned]
    return sets


#: Means equal to this many decimals tie (accuracies are counts over a test set: (0.91 + 0.93 +
#: 0.92) / 3 and 0.92 are the same mean, not a float-noise win).
TIE_DIGITS = 10


def rank_uncertainty(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis()
                     ) -> pd.DataFrame:
    """Per (dataset, arch, setting, variant): mean, rank of the mean (1 = best; ties share the
    lower rank), the 95% interval of the rank and the probability of ranking first under a
    paired bootstrap over seeds (the same resampled seeds for every variant), and the
    probability of improvement P(X > baseline) over the variant's and the baseline's seed pairs
    (Mann-Whitney U / (n·m); ties count one half)."""
    rows = []
    data = runs.dropna(subset=[metric])
    for (d, a), g in data.groupby(["dataset", "arch"], sort=True):
        for setting, variants in ranking_sets(g["variant"]).items():
            m = seed_matrix(g, variants, metric)
            values = m.to_numpy(float)
            rng = np.random.default_rng(analysis.bootstrap_seed)
            means = values.mean(axis=0) if len(values) else np.full(len(variants), np.nan)
            rank = stats.rankdata(-means.round(TIE_DIGITS), method="min")
            if len(values) >= 2:
                idx = rng.integers(0, len(values), size=(analysis.bootstrap, len(values)))
                boot = stats.rankdata(-values[idx].mean(axis=1).round(TIE_DIGITS), method="min",
                                      axis=1)
            else:
                boot = None
            base = g[g["variant"] == analysis.baseline][metric].to_numpy(float)
            for j, v in enumerate(variants):
                own = g[g["variant"] == v][metric].to_numpy(float)
                p_imp = float("nan")
                if v != analysis.baseline and len(base) and len(own):
                    p_imp = float(stats.mannwhitneyu(own, base).statistic) / (len(own) * len(base))
                row = {"dataset": d, "arch": a, "setting": setting, "variant": v,
                       "n": len(values), "mean": float(means[j]), "rank": int(rank[j]),
                       "rank_low": np.nan, "rank_high": np.nan, "p_first": np.nan,
                       "p_improvement": p_imp}
                if boot is not None:
                    r = boot[:, j]
                    row.update(rank_low=int(np.quantile(r, 0.025, method="lower")),
                               rank_high=int(np.quantile(r, 0.975, method="higher")),
                               p_first=float((r == 1).mean()))
                rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "arch", "setting", "variant", "n", "mean",
                                       "rank", "rank_low", "rank_high", "p_first",
                                       "p_improvement"])
