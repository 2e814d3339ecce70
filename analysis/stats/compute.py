"""Compute: the images and seconds a run costs, and CE read at each method's compute."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.families import adjust
from analysis.stats.fragility import sensitivity
from analysis.stats.paired import HIDDEN, PAIR_COLUMNS, _pair_row, paired_rows
from analysis.stats.settings import Analysis
from analysis.stats.variants import BUDGET_MARK, baseline_for, is_lattice, is_tuned, variant_order

#: Two runs' compute is equal when their forwarded images differ by at most this fraction.
COMPUTE_TOLERANCE = 0.05


def run_images(epochs: pd.DataFrame) -> pd.Series:
    """Per run: the images it forwarded over its whole run (student and separate teacher
    model), the sum of its per-epoch cost records. Empty without cost records."""
    needed = ["cost_student_images", "cost_teacher_images"]
    if epochs.empty or not set(needed) <= set(epochs.columns):
        return pd.Series(dtype=float)
    e = epochs.dropna(subset=needed)
    return (e["cost_student_images"] + e["cost_teacher_images"]).groupby(e["run_id"]).sum()


def equal_compute(runs: pd.DataFrame, epochs: pd.DataFrame, metric: str,
                  analysis: Analysis = Analysis(), scale: float = 1.0) -> pd.DataFrame:
    """Each variant against the baseline's run at its own compute: the baseline's variant (the
    baseline itself or one of its epoch budgets, ``ce@2x``) whose mean forwarded images per run
    lie within ``COMPUTE_TOLERANCE`` of the variant's, paired by seed (setting ``equal
    compute``, its own family). Columns as :func:`paired`, plus ``images_ratio`` (the variant's
    images over CE's at its own epochs) and ``baseline_ratio`` (the matched baseline's)."""
    return adjust(equal_compute_rows(runs, epochs, metric, analysis, scale),
                  analysis).drop(columns=HIDDEN)


#: What the equal-compute comparisons add to :data:`PAIR_COLUMNS`: the images each side
#: forwarded and the training seconds each side took, relative to the baseline at its epochs.
COST_COLUMNS = ["images_ratio", "baseline_ratio", "time_ratio", "baseline_time_ratio"]


def run_seconds(epochs: pd.DataFrame) -> pd.Series:
    """Per run: its training-phase seconds (the sum of its per-epoch ``cost_train_seconds``)."""
    if epochs.empty or "cost_train_seconds" not in epochs:
        return pd.Series(dtype=float)
    e = epochs.dropna(subset=["cost_train_seconds"])
    return e["cost_train_seconds"].groupby(e["run_id"]).sum()


def equal_compute_rows(runs: pd.DataFrame, epochs: pd.DataFrame, metric: str,
                       analysis: Analysis = Analysis(), scale: float = 1.0) -> pd.DataFrame:
    """The comparisons of :func:`equal_compute` before any adjustment. A tuned variant is read
    against the tuned baseline only (never against the untuned one: tuning is compute too), and
    a variant whose images match the baseline at its own epochs is left to the statistics
    table's comparison of the same pair (one pair, one verdict)."""
    images, seconds = run_images(epochs), run_seconds(epochs)
    rows = []
    if images.empty or "run_id" not in runs:
        return pd.DataFrame(rows, columns=PAIR_COLUMNS + HIDDEN + COST_COLUMNS)
    data = runs.dropna(subset=[metric])
    data = data[data["run_id"].isin(images.index)]
    for _, g in data.groupby(["dataset", "arch"], sort=True):
        g = g.assign(images=g["run_id"].map(images), seconds=g["run_id"].map(seconds))
        per = g.groupby("variant")["images"].mean()
        per_s = g.groupby("variant")["seconds"].mean()
        method = dict(zip(g["variant"], g["method"]))
        for v in variant_order(per.index):
            base = baseline_for(v, per.index, analysis.baseline)  # the statistics' rule, and:
            if is_tuned(v) and not is_tuned(base):  # no tuned baseline, no peer at its compute
                continue
            if base not in per or is_lattice(v) or method[v] == method[analysis.baseline]:
                continue
            ladder = {u: per[u] for u in per.index
                      if u == base or (u.startswith(base + BUDGET_MARK) and not is_tuned(u))}
            near = min(ladder, key=lambda u: abs(ladder[u] - per[v]))
            if abs(ladder[near] - per[v]) > COMPUTE_TOLERANCE * per[v] or near == base:
                continue  # no baseline at its compute, or the same pair as the reference one
            row = _pair_row(g, v, near, metric, analysis, scale, "equal compute")
            row.update({"images_ratio": per[v] / per[base],
                        "baseline_ratio": ladder[near] / per[base],
                        "time_ratio": per_s.get(v, np.nan) / per_s.get(base, np.nan),
                        "baseline_time_ratio": per_s.get(near, np.nan)
                        / per_s.get(base, np.nan)})
            rows.append(row)
    return pd.DataFrame(rows, columns=PAIR_COLUMNS + HIDDEN + COST_COLUMNS)


def answer(runs: pd.DataFrame, epochs: pd.DataFrame, metric: str,
           analysis: Analysis = Analysis(), scale: float = 1.0) -> pd.DataFrame:
    """Every comparison a report states, adjusted together: the paired comparisons of
    :func:`paired` and the equal-compute ones of :func:`equal_compute`, each pair once, Holm
    within each declared family (``analysis.families``; by default the headline, every
    tuned-against-tuned comparison, and the field, the rest), with the sensitivity of each
    verdict (:func:`sensitivity`)."""
    rows = pd.concat([paired_rows(runs, metric, analysis, scale),
                      equal_compute_rows(runs, epochs, metric, analysis, scale)],
                     ignore_index=True)
    rows = rows.drop_duplicates(["dataset", "arch", "variant", "baseline"]).reset_index(drop=True)
    out = sensitivity(adjust(rows, analysis), analysis)
    return out
