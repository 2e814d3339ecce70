"""Statistics over seeds, chosen so that a reviewer can sign each sentence the report writes.

- Per cell (dataset, arch, variant): mean, std and a 95% interval for the mean that stays inside
  the metric's range (percentile bootstrap over seeds; an accuracy or a share never leaves
  [0, 1]).
- Per paired comparison (two variants matched by seed): the mean difference with its 95%
  Student-t interval and the two-sided paired t-test (as before); the Holm-adjusted p within a
  declared family of comparisons; the TOST equivalence p at a declared margin (also Holm-adjusted
  within the family); the minimum detectable difference at 80% power from the observed paired
  SD; and a verdict that is exactly one of ``better``, ``worse``, ``equivalent``,
  ``inconclusive``.
- Per ranking (one dataset, arch and setting): a paired bootstrap over seeds gives each variant's
  rank interval and its probability of ranking first; the probability of improvement
  P(X > baseline) over seed pairs is the Mann-Whitney U statistic over n·m (Agarwal et al. 2021).

The arithmetic comes from scipy and statsmodels; ``docs/statistics.md`` explains every choice.
"""
from __future__ import annotations

import dataclasses
import functools
import gc
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CELL = ["dataset", "arch", "variant"]
METHOD_ORDER = ["ce", "lsr", "tfkd-self", "tfkd-reg", "drkd", "ps-kd", "cs-kd", "zipf-ls", "dlb"]

#: The four words a comparison can end in.
VERDICTS = ("better", "worse", "equivalent", "inconclusive")
#: The columns a family of comparisons may be grouped by (``Analysis.family``).
FAMILY_KEYS = ("dataset", "arch", "setting")


@dataclass(frozen=True)
class Analysis:
    """The declared settings of the statistics (a grid config's ``analysis:`` block, or the
    ``report`` flags). ``margin`` is in percentage points of the metric."""

    #: Holm's family: every comparison the report states for a dataset x architecture (the
    #: answer's family); a config may pre-register narrower ones (adding ``setting``).
    family: tuple[str, ...] = ("dataset", "arch")
    margin: float = 0.5
    #: Why the margin is what it is, printed beside it (a config's ``analysis.margin_reason``).
    margin_reason: str = ("drkd-bench's default, not derived from this data: the report gives "
                          "it in units of CE's seed SD per task")
    alpha: float = 0.05
    power: float = 0.8
    bootstrap: int = 2000
    bootstrap_seed: int = 0
    baseline: str = "ce"
    #: The report adds one answer across tasks (analysis/aggregate.py; at least two tasks).
    aggregate: bool = False

    @classmethod
    def from_mapping(cls, values, where: str = "analysis") -> Analysis:
        """Validated settings from a mapping (a config's ``analysis:`` block, or flags);
        ``ValueError`` names the key and what is valid."""
        known = [f.name for f in dataclasses.fields(cls)]
        out = {}
        for key, value in dict(values or {}).items():
            if key not in known:
                raise ValueError(f"{where}: unknown key {key!r}; valid: {', '.join(known)}")
            if value is None:
                continue
            if key == "family":
                parts = value.split(",") if isinstance(value, str) else value
                if not isinstance(parts, (list, tuple)) or not all(isinstance(p, str)
                                                                   for p in parts):
                    raise ValueError(f"{where}.family: expected a list of {', '.join(FAMILY_KEYS)}"
                                     " (or 'all')")
                parts = [p.strip() for p in parts if p.strip() and p.strip() != "all"]
                bad = [p for p in parts if p not in FAMILY_KEYS]
                if bad:
                    raise ValueError(f"{where}.family: {bad[0]!r} is not one of "
                                     f"{', '.join(FAMILY_KEYS)} (or 'all')")
                out[key] = tuple(k for k in FAMILY_KEYS if k in parts)
            elif key in ("baseline", "margin_reason"):
                out[key] = str(value)
            elif key == "aggregate":
                if not isinstance(value, bool):
                    raise ValueError(f"{where}.aggregate: expected true or false, got {value!r}")
                out[key] = value
            else:
                kind = int if key in ("bootstrap", "bootstrap_seed") else float
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    kind is float or float(value).is_integer())
                value = kind(value) if ok else value
                limits = {"margin": (0, math.inf), "alpha": (0, 1), "power": (0, 1),
                          "bootstrap": (99, math.inf), "bootstrap_seed": (-1, math.inf)}[key]
                if not ok or not limits[0] < value < limits[1]:
                    valid = {"margin": "a number > 0 (percentage points)",
                             "alpha": "a number in (0, 1)", "power": "a number in (0, 1)",
                             "bootstrap": "an integer >= 100",
                             "bootstrap_seed": "an integer >= 0"}[key]
                    raise ValueError(f"{where}.{key}: expected {valid}, got {value!r}")
                out[key] = value
        return cls(**out)

    def describe(self) -> str:
        fam = " × ".join(self.family) if self.family else "all comparisons"
        return (f"family = {fam} (Holm within each); equivalence margin ±{self.margin:g} points "
                f"(TOST); α = {self.alpha:g}; power {self.power:g} for the MDE")


def variant_order(variants) -> list[str]:
    """The methods in registry order (each method's variants alphabetical), then anything else."""
    def key(v: str):
        base = next((i for i, m in enumerate(METHOD_ORDER)
                     if v == m or v.startswith((m + "-", m + BUDGET_MARK))), len(METHOD_ORDER))
        return base, v
    return sorted(set(variants), key=key)


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


#: The paper's question: each method of the left column against the right one with the same
#: teacher source (or, when there is none such, the right one's default variant).
RIVALS = {"drkd": "tfkd-self"}

#: The label a grid gives a variant that reads its hyperparameters from its Optuna study
#: (``hyperparameters: tuned``): the reference variant's label with this suffix.
TUNED_SUFFIX = "-tuned"


def is_tuned(variant: str) -> bool:
    return variant.endswith(TUNED_SUFFIX)


#: The label of a baseline re-run at another epoch budget (a grid's ``compute:`` section):
#: ``ce@2x`` is CE at twice its epochs.
BUDGET_MARK = "@"
#: The label suffix of a mechanism control (``dlb-control``: DLB with alpha = 0).
CONTROL_SUFFIX = "-control"
#: A lattice point's label (a grid's ``lattice:`` section): ``drkd-online-a0.5-T4``.
LATTICE = re.compile(r"^(?P<base>.+)-a(?P<alpha>[0-9.eE+-]+)-T(?P<temperature>[0-9.eE+-]+)$")


def is_budget(variant: str) -> bool:
    return BUDGET_MARK in variant


def is_control(variant: str) -> bool:
    return variant.endswith(CONTROL_SUFFIX)


def is_lattice(variant: str) -> bool:
    return LATTICE.match(variant) is not None


def control_of(variant: str) -> str:
    """The label of a variant's mechanism control (``dlb`` -> ``dlb-control``)."""
    return variant + CONTROL_SUFFIX


def reference_of(variant: str) -> str:
    """The reference-value twin of a tuned variant's label (the label itself otherwise)."""
    return variant.removesuffix(TUNED_SUFFIX)


def setting_of(variant: str, baseline: str) -> str:
    """Which question a comparison answers: ``reference`` (both at reference values), ``tuned``
    (a tuned variant against CE or its tuned rival) or ``tuned vs reference`` (a tuned variant
    against its own reference values)."""
    if is_budget(variant):
        return "compute ladder"
    if is_lattice(variant):
        return "rectification lattice"
    point = LATTICE.match(baseline)
    if is_tuned(variant) and point is not None and point["base"] == reference_of(variant):
        return "tuned vs reference"  # the reference values, labelled as a lattice point
    if is_control(baseline):
        return "vs control"
    if not is_tuned(variant):
        return "reference"
    return "tuned vs reference" if baseline == reference_of(variant) else "tuned"


def baseline_for(variant: str, present, baseline: str = "ce") -> str:
    """The baseline a variant is read against: a tuned variant meets the tuned baseline
    (``ce-tuned``) where the runs have it (tuned against tuned), anything else (tuned CE itself
    included) the baseline."""
    tuned_base = baseline + TUNED_SUFFIX
    if is_tuned(variant) and variant != tuned_base and tuned_base in present:
        return tuned_base
    return baseline


def comparisons(cells: pd.DataFrame, baseline: str = "ce") -> list[tuple[str, str]]:
    """Each variant against the baseline (CE); each DR-KD variant against the Tf-KD self variant
    with the same teacher source and the same hyperparameter setting (reference values or tuned);
    each tuned variant against its reference twin (``cells``: variant, method, teacher_source
    columns)."""
    cells = cells.drop_duplicates("variant")
    present = set(cells["variant"])
    ordered = variant_order(present)
    tuned_base = baseline + TUNED_SUFFIX  # tuned variants meet a tuned baseline when it exists
    pairs = [(v, baseline_for(v, present, baseline)) for v in ordered
             if v not in (baseline, tuned_base) and baseline in present and not is_lattice(v)]
    source = dict(zip(cells["variant"], cells["teacher_source"]))
    method = dict(zip(cells["variant"], cells["method"]))
    for v in ordered:
        rival = RIVALS.get(method[v])
        if rival is None:
            continue
        twin = rival + v[len(method[v]):]  # the same label with the rival's name: same settings
        if is_lattice(v):
            if twin in present:
                pairs.append((v, twin))
            continue
        same = [u for u in ordered if method[u] == rival and source[u] == source[v]
                and is_tuned(u) == is_tuned(v)]
        if same:
            pairs.append((v, same[0]))
        elif rival in present:
            pairs.append((v, rival))
    for v in ordered:  # each tuned variant against its reference values
        if not is_tuned(v):
            continue
        if reference_of(v) in present:
            pairs.append((v, reference_of(v)))
            continue
        # labelled otherwise (a lattice point at the reference values): the one untuned variant
        # of the same method and teacher source, when there is exactly one
        twins = [u for u in ordered if not is_tuned(u) and not is_budget(u)
                 and not is_control(u) and method[u] == method[v] and source[u] == source[v]]
        if len(twins) == 1:
            pairs.append((v, twins[0]))
    pairs += [(v, control_of(v)) for v in ordered if control_of(v) in present]
    return list(dict.fromkeys(pairs))  # each pair once, in order


def seed_matrix(g: pd.DataFrame, variants: list[str], metric: str) -> pd.DataFrame:
    """Seeds (rows) × variants (columns) of ``metric``, only the seeds every variant has."""
    wide = (g[g["variant"].isin(variants)].groupby(["seed", "variant"])[metric].mean()
            .unstack("variant"))
    return wide.reindex(columns=variants).dropna()


def mde(sd: float, n: int, analysis: Analysis = Analysis()) -> float:
    """The minimum detectable paired difference: the true mean difference that a two-sided
    paired t-test at ``alpha`` detects with probability ``power``, given ``n`` pairs with
    standard deviation ``sd`` (statsmodels' ``TTestPower``, effect size × sd)."""
    if n < 2 or not sd > 0:
        return float("nan")
    return _detectable_effect(n, analysis.alpha, analysis.power) * sd


@functools.cache
def _detectable_effect(n: int, alpha: float, power: float) -> float:
    """The standardised effect a two-sided paired t-test detects (a root-finding: one per n)."""
    from statsmodels.stats.power import TTestPower

    return float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                          alternative="two-sided"))


def seeds_needed(sd: float, detect: float, alpha: float = 0.05, power: float = 0.8,
                 most: int = 10**7) -> int:
    """The fewest pairs (seeds, at least 2) with which a two-sided paired t-test at ``alpha``
    detects a true mean difference ``detect`` with probability ``power``, for pairs of SD
    ``sd``: the smallest integer n whose power (statsmodels' ``TTestPower().power``) reaches
    ``power``, found by doubling then bisection (power grows with n). ``most`` caps the search.
    (statsmodels' own ``solve_power`` for ``nobs`` fails to converge at large effect sizes.)"""
    from statsmodels.stats.power import TTestPower

    if not sd > 0:
        return 2
    effect = detect / sd

    def enough(n: int) -> bool:
        got = TTestPower().power(effect_size=effect, nobs=n, alpha=alpha, alternative="two-sided")
        # statsmodels answers NaN where the noncentral t's tail underflows, i.e. where the power
        # is numerically 1: enough, which keeps the search monotone
        return bool(np.isnan(got) or got >= power)

    low, high = 1, 2  # not enough at low (or low < 2), enough at high
    while not enough(high):
        if high >= most:
            return most
        low, high = high, min(2 * high, most)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


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
    within the declared family (by default the dataset x architecture: the whole answer for
    it), with the sensitivity of each verdict (:func:`sensitivity`)."""
    rows = pd.concat([paired_rows(runs, metric, analysis, scale),
                      equal_compute_rows(runs, epochs, metric, analysis, scale)],
                     ignore_index=True)
    rows = rows.drop_duplicates(["dataset", "arch", "variant", "baseline"]).reset_index(drop=True)
    out = sensitivity(adjust(rows, analysis), analysis)
    return out


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


SENSITIVITY = ["eq_bound", "verdict_half_margin", "verdict_twice_margin", "verdict_wilcoxon",
               "verdict_wider_family", "fragile"]


def equivalence_bound(diff: np.ndarray, alpha: float = 0.05) -> float:
    """The smallest margin m at which the paired TOST at ``alpha`` (unadjusted) calls the
    difference equivalent: the largest |end| of the 1 - 2 alpha Student-t interval (TOST at m
    rejects both one-sided nulls exactly when that interval lies inside (-m, m))."""
    if len(diff) < 2:
        return float("nan")
    _, lo, hi = t_interval(diff, 1 - 2 * alpha)
    return max(abs(lo), abs(hi))


def _tost_t(x: np.ndarray, y: np.ndarray, margin: float) -> float:
    from statsmodels.stats.weightstats import ttost_paired

    d = x - y
    if len(d) < 2 or np.ptp(d) == 0:
        return float("nan")
    return float(ttost_paired(x, y, -margin, margin)[0])


def _wilcoxon(d: np.ndarray) -> float:
    """Wilcoxon signed-rank p (two-sided; scipy's exact or normal method by n), NaN when every
    difference is zero."""
    if len(d) < 2 or not np.any(d != 0):
        return float("nan")
    return float(stats.wilcoxon(d).pvalue)


def _tost_wilcoxon(d: np.ndarray, margin: float) -> float:
    """Two one-sided Wilcoxon signed-rank tests of d against -margin and +margin: the larger p."""
    if len(d) < 2:
        return float("nan")
    lower, upper = d + margin, d - margin
    if not np.any(lower != 0) or not np.any(upper != 0):
        return float("nan")
    return float(max(stats.wilcoxon(lower, alternative="greater").pvalue,
                     stats.wilcoxon(upper, alternative="less").pvalue))


def _verdicts(frame: pd.DataFrame, p: pd.Series, p_tost: pd.Series, family: tuple[str, ...],
              alpha: float) -> list[str]:
    """The verdicts of ``frame`` for other p values and another family (Holm within it)."""
    groups = (frame[list(family)].astype(str).agg("/".join, axis=1) if family
              else pd.Series("all", index=frame.index))
    p_holm, t_holm = pd.Series(np.nan, index=frame.index), pd.Series(np.nan, index=frame.index)
    for _, idx in groups.groupby(groups, sort=False).groups.items():
        p_holm[idx] = holm(p[idx])
        t_holm[idx] = holm(p_tost[idx])
    return [verdict({"p_holm": a, "p_tost_holm": b, "mean_diff": m}, alpha)
            for a, b, m in zip(p_holm, t_holm, frame["mean_diff"])]


def sensitivity(frame: pd.DataFrame, analysis: Analysis = Analysis()) -> pd.DataFrame:
    """How fragile each verdict is: its equivalence bound (points) and its verdict at half and
    twice the margin, under Wilcoxon signed-rank tests (difference and two one-sided tests for
    equivalence) instead of t-tests, and under the next-wider family (the declared family less
    its last key; all comparisons after the dataset). A verdict that any of them changes is
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
    frame["eq_bound"] = [equivalence_bound(d, analysis.alpha) * s for d, s in zip(diffs, scales)]
    fam = tuple(analysis.family)
    for name, factor in (("verdict_half_margin", 0.5), ("verdict_twice_margin", 2.0)):
        tost = pd.Series([_tost_t(np.asarray(x, float), np.asarray(y, float),
                                  factor * analysis.margin / s)
                          for x, y, s in zip(frame["_x"], frame["_y"], scales)],
                         index=frame.index)
        frame[name] = _verdicts(frame, frame["p_value"], tost, fam, analysis.alpha)
    p_w = pd.Series([_wilcoxon(d) for d in diffs], index=frame.index)
    t_w = pd.Series([_tost_wilcoxon(d, analysis.margin / s) for d, s in zip(diffs, scales)],
                    index=frame.index)
    frame["verdict_wilcoxon"] = _verdicts(frame, p_w, t_w, fam, analysis.alpha)
    frame["verdict_wider_family"] = (
        _verdicts(frame, frame["p_value"], frame["p_tost"], fam[:-1], analysis.alpha)
        if fam else frame["verdict"])
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


def convergence(frame: pd.DataFrame, baseline: str = "ce") -> pd.DataFrame:
    """Per dataset x architecture: has the baseline saturated? The verdict of ``<baseline>@2x``
    − ``<baseline>`` (twice the epochs): *equivalent* says yes; anything else says the
    comparisons sit where training longer still moves the baseline. ``checked`` is False where
    the runs have no ``@2x`` budget."""
    rows = []
    for (d, a), g in frame.groupby(["dataset", "arch"], sort=True):
        hit = g[(g["variant"] == f"{baseline}{BUDGET_MARK}2x") & (g["baseline"] == baseline)]
        if hit.empty:
            rows.append({"dataset": d, "arch": a, "checked": False, "converged": False,
                         "verdict": "", "mean_diff": np.nan, "ci_low": np.nan,
                         "ci_high": np.nan})
            continue
        r = hit.iloc[0]
        rows.append({"dataset": d, "arch": a, "checked": True,
                     "converged": r["verdict"] == "equivalent", "verdict": r["verdict"],
                     "mean_diff": r["mean_diff"], "ci_low": r["ci_low"],
                     "ci_high": r["ci_high"]})
    return pd.DataFrame(rows, columns=["dataset", "arch", "checked", "converged", "verdict",
                                       "mean_diff", "ci_low", "ci_high"])


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
    task_analysis = dataclasses.replace(analysis, family=("dataset", "arch"))
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


def verdict(row, alpha: float = 0.05) -> str:
    """``better`` or ``worse`` when the Holm-adjusted p is below ``alpha`` (the sign of the mean
    difference says which); else ``equivalent`` when the Holm-adjusted TOST p is below
    ``alpha`` (the difference lies within ±margin); else ``inconclusive``."""
    if row["p_holm"] < alpha:
        return "better" if row["mean_diff"] > 0 else "worse"
    if row["p_tost_holm"] < alpha:
        return "equivalent"
    return "inconclusive"


def sentence(row, digits: int = 2) -> str:
    """The words the report writes about one comparison: its verdict, then the numbers that
    carry it (the only way the report speaks of a comparison)."""
    f = f"{{:+.{digits}f}}"
    if row["n_pairs"] >= 1 and row["mean_diff"] == 0 and not (row["sd_diff"] > 0) \
            and row["ci_low"] == row["ci_high"] == 0:
        return f"identical: all {row['n_pairs']} paired differences are 0 (the same runs)"
    interval = ("" if np.isnan(row["ci_low"]) else
                f" [{f.format(row['ci_low'])}, {f.format(row['ci_high'])}]")
    text = f"{row['verdict']}: {f.format(row['mean_diff'])}{interval}"
    if not np.isnan(row["p_holm"]):
        text += f", Holm p {_p(row['p_holm'])}"
    if row["verdict"] in ("equivalent", "inconclusive") and not np.isnan(row["p_tost_holm"]):
        text += f", TOST p {_p(row['p_tost_holm'])}"
    if not np.isnan(row["mde"]):
        text += f", MDE {row['mde']:.{digits}f}"
    text += f" (n = {int(row['n_pairs'])})"
    why = fragile_why(row) if "fragile" in row else ""
    if why:
        text = f"*fragile* {text}; {why}"
    return text


def _p(p: float) -> str:
    """Three significant digits (two below 0.001), so that 0.0497 never reads as 0.05."""
    return f"{p:.2g}" if p < 0.001 else f"{p:.3g}"


# --- rankings ------------------------------------------------------------------------------------

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
