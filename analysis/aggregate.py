"""One answer across tasks (a task: dataset x condition x architecture), after Agarwal et al.,
"Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021), with their library ``rliable``.

A run's **score** is its final-epoch test top-1 minus the baseline's (CE) of the same task and
seed, in points: the seeds pair the two (same split, same label noise, same initial draw). The
baseline is the one the per-task verdicts read the variant against (``stats.baseline_for``): a
tuned variant meets tuned CE where the runs have it. Per variant, over the seeds every task has
for it and for its baseline:

- the **IQM** (interquartile mean: the 25% trimmed mean over all runs of all tasks,
  ``rliable.metrics.aggregate_iqm``) of the scores in points (``iqm``), and of the scores
  **standardised per task** by the baseline's seed SD in that task (``iqm_sd``, in baseline
  seed SDs): the tasks' seed SDs differ up to eightfold, and in points the noisiest task
  dominates the trimmed mean; standardised, each task counts by its own noise. rliable's
  normalised scores (by a random and a reference score) have no natural anchors here;
- the **probability of improvement** P(X > Y) over the baseline and over Tf-KD self
  (``rliable.metrics.probability_of_improvement``: per task the Mann-Whitney U over all pairs of
  runs / (n m), then the mean over tasks), on the accuracies themselves;
- the **performance profile**: the share of runs whose score exceeds tau, for tau over the
  observed range.

Intervals are 95% percentile intervals of the *stratified bootstrap* rliable defines: runs are
resampled with replacement within each task, tasks kept (``task_bootstrap=False``); the two
samples of a probability of improvement are resampled independently. rliable's own bootstrap
(``rliable.library``, built on the ``arch`` package) cannot run beside pandas 3 (arch 7 fails at
import; arch 8 dropped the ``random_state`` argument rliable passes), so the resampling is done
here with numpy's ``default_rng(bootstrap_seed)``, the statistics themselves by rliable. The
per-task verdicts stay the primary evidence; the aggregate says how general they are.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from rliable import metrics as rl

from . import stats

COLUMNS = ["variant", "baseline", "tasks", "runs_per_task", "iqm", "iqm_low", "iqm_high",
           "iqm_sd", "iqm_sd_low", "iqm_sd_high", "mean",
           "p_improve_ce", "p_improve_ce_low", "p_improve_ce_high", "tfkd_self",
           "p_improve_tfkd_self", "p_improve_tfkd_self_low", "p_improve_tfkd_self_high"]


class AggregateError(ValueError):
    """An aggregate that cannot be formed (fewer than two tasks, no baseline)."""


def tasks_of(runs: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted({(d, a) for d, a in zip(runs["dataset"], runs["arch"])})


def score_matrices(runs: pd.DataFrame, variant: str, other: str, metric: str = "final_test_top1"
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """(variant, other) as seeds x tasks matrices of the metric in points, over the seeds that
    every task has for both (sorted), or None when some task lacks one of them."""
    tasks = tasks_of(runs)
    per_task = []
    for d, a in tasks:
        g = runs[(runs["dataset"] == d) & (runs["arch"] == a)]
        x = g[g["variant"] == variant].set_index("seed")[metric]
        y = g[g["variant"] == other].set_index("seed")[metric]
        if x.empty or y.empty:
            return None
        per_task.append((x, y))
    seeds = sorted(set.intersection(*[set(x.index) & set(y.index) for x, y in per_task]))
    if not seeds:
        return None
    x = np.array([[100 * float(xt.loc[s]) for xt, _ in per_task] for s in seeds])
    y = np.array([[100 * float(yt.loc[s]) for _, yt in per_task] for s in seeds])
    return x, y


def stratified_resamples(n_runs: int, n_tasks: int, reps: int, rng: np.random.Generator
                         ) -> np.ndarray:
    """reps x runs x tasks row indices: runs drawn with replacement within each task."""
    return rng.integers(0, n_runs, size=(reps, n_runs, n_tasks))


def _resample(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take_along_axis(m[None], idx, axis=1)


def interval(m: np.ndarray, func: Callable[[np.ndarray], float], reps: int,
             rng: np.random.Generator, level: float = 0.95) -> tuple[float, float]:
    idx = stratified_resamples(*m.shape, reps, rng)
    values = np.array([func(r) for r in _resample(m, idx)])  # IQM: scipy's trim_mean each
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def poi_many(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``rliable.metrics.probability_of_improvement`` for a stack of resamples at once
    (``x``: reps x runs x tasks, ``y``: reps x runs' x tasks): per task the Mann-Whitney U of
    "x greater" over all pairs, (#x > y + #x = y / 2) / (n m) (identical columns give 0.5, as
    rliable's special case does), then the mean over tasks. Equal to rliable's, run by run
    (tested); a Python loop over rliable's took two minutes for one report."""
    gt = (x[:, :, None, :] > y[:, None, :, :]).mean(axis=(1, 2))
    eq = (x[:, :, None, :] == y[:, None, :, :]).mean(axis=(1, 2))
    return (gt + 0.5 * eq).mean(axis=1)


def poi_interval(x: np.ndarray, y: np.ndarray, reps: int, rng: np.random.Generator,
                 level: float = 0.95) -> tuple[float, float]:
    ix = _resample(x, stratified_resamples(*x.shape, reps, rng))
    iy = _resample(y, stratified_resamples(*y.shape, reps, rng))
    values = poi_many(ix, iy)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def standardised(scores: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Scores (seeds x tasks) divided per task by the baseline's seed SD in that task (ddof 1;
    a task whose baseline did not vary keeps its scores in points, divided by 1)."""
    sd = baseline.std(axis=0, ddof=1) if len(baseline) > 1 else np.ones(baseline.shape[1])
    return scores / np.where(sd > 0, sd, 1.0)


def rival_of(variant: str, variants: set[str]) -> str | None:
    """The rival a variant's probability of improvement is read against (``stats.RIVALS``: for
    DR-KD, Tf-KD self): a method's twin with the same teacher source and setting (its label with
    the rival's name), else the plain rival where the runs have it; none for a rival itself."""
    for method, rival in stats.RIVALS.items():
        if variant.startswith(method):
            twin = rival + variant[len(method):]
            return twin if twin in variants else (rival if rival in variants else None)
    if any(variant.startswith(r) for r in stats.RIVALS.values()):
        return None
    present = [r for r in stats.RIVALS.values() if r in variants]
    return present[0] if present else None


def aggregate(runs: pd.DataFrame, analysis: stats.Analysis = stats.Analysis(),
              metric: str = "final_test_top1") -> pd.DataFrame:
    """One row per variant present in every task (budgets and the lattice left out): the IQM
    of its scores against its baseline (``stats.baseline_for``: tuned CE for a tuned variant
    where there is one) with its interval, their mean, and the probabilities of improvement over
    that baseline and over Tf-KD self with their intervals."""
    runs = runs[runs[metric].notna()]
    tasks = tasks_of(runs)
    if len(tasks) < 2:
        raise AggregateError(f"an aggregate across tasks needs at least two tasks (dataset x "
                             f"condition x architecture); the runs have {len(tasks)}")
    base = analysis.baseline
    if base not in set(runs["variant"]):
        raise AggregateError(f"an aggregate needs the baseline {base!r} in every task")
    variants = set(runs["variant"])
    rows = []
    for v in stats.variant_order(variants):
        own = stats.baseline_for(v, variants, base)
        if v == base or stats.is_budget(v) or stats.is_lattice(v):
            continue
        pair = score_matrices(runs, v, own, metric)
        if pair is None:
            continue
        x, y = pair
        scores = x - y
        rng = np.random.default_rng(analysis.bootstrap_seed)
        low, high = interval(scores, rl.aggregate_iqm, analysis.bootstrap, rng)
        standard = standardised(scores, y)
        sd_low, sd_high = interval(standard, rl.aggregate_iqm, analysis.bootstrap, rng)
        poi = float(rl.probability_of_improvement(x, y))
        plow, phigh = poi_interval(x, y, analysis.bootstrap, rng)
        row = {"variant": v, "baseline": own, "tasks": len(tasks), "runs_per_task": len(scores),
               "iqm": float(rl.aggregate_iqm(scores)), "iqm_low": low, "iqm_high": high,
               "iqm_sd": float(rl.aggregate_iqm(standard)), "iqm_sd_low": sd_low,
               "iqm_sd_high": sd_high,
               "mean": float(scores.mean()), "p_improve_ce": poi, "p_improve_ce_low": plow,
               "p_improve_ce_high": phigh, "tfkd_self": "",
               "p_improve_tfkd_self": np.nan, "p_improve_tfkd_self_low": np.nan,
               "p_improve_tfkd_self_high": np.nan}
        rival = rival_of(v, variants)
        rpair = score_matrices(runs, v, rival, metric) if rival else None
        if rpair is not None:
            rx, ry = rpair
            row["tfkd_self"] = rival
            row["p_improve_tfkd_self"] = float(rl.probability_of_improvement(rx, ry))
            (row["p_improve_tfkd_self_low"],
             row["p_improve_tfkd_self_high"]) = poi_interval(rx, ry, analysis.bootstrap, rng)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def profiles(runs: pd.DataFrame, variants: list[str], analysis: stats.Analysis = stats.Analysis(),
             metric: str = "final_test_top1", points: int = 41
             ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Performance profiles of the scores standardised per task (:func:`standardised`): tau
    (baseline seed SDs) and, per variant, the share of runs with a score above tau and its 95%
    stratified-bootstrap band."""
    mats = {}
    present = set(runs["variant"])
    for v in variants:
        own = stats.baseline_for(v, present, analysis.baseline)
        pair = score_matrices(runs[runs[metric].notna()], v, own, metric)
        if pair is not None:
            mats[v] = standardised(pair[0] - pair[1], pair[1])
    if not mats:
        return np.zeros(0), {}
    everything = np.concatenate([m.ravel() for m in mats.values()])
    span = max(abs(everything.min()), abs(everything.max()), 0.1)
    taus = np.linspace(-span, span, points)
    out = {}
    for v, m in mats.items():
        rng = np.random.default_rng(analysis.bootstrap_seed)
        curve = np.array([(m > t).mean() for t in taus])
        boot = _resample(m, stratified_resamples(*m.shape, analysis.bootstrap, rng))
        shares = (boot[..., None] > taus).reshape(len(boot), -1, len(taus)).mean(axis=1)
        out[v] = (curve, np.percentile(shares, 2.5, axis=0), np.percentile(shares, 97.5, axis=0))
    return taus, out
