"""Sizing before spending: from a pilot's paired comparisons, the seeds each comparison needs.

For every comparison of the report (:func:`analysis.stats.paired`), the SD of the paired
differences observed in the pilot gives the minimum detectable difference (MDE) at the pilot's
seeds and at a planned count, and the seeds needed to detect a chosen difference at the declared
power: at the declared α, and at α/m, Holm's first (strictest) step over a family of m
comparisons, which keeps that power for every comparison after the adjustment. On a test
accuracy the test set's own variance (``se_images``, which more seeds do not shrink) is in every
MDE and count; where it alone keeps a difference undetectable, the count is "never".
"""
from __future__ import annotations

import pandas as pd

from . import load, stats
from .tables import PCT

COLUMNS = ["dataset", "arch", "setting", "variant", "baseline", "n_pairs", "sd_diff",
           "se_images", "test_bound", "mde", "mde_planned", "seeds_needed",
           "seeds_needed_holm", "family_size"]
#: The count :func:`plan` gives where seeds cannot reach the difference (the test set's noise).
NEVER = 10**7


def plan(epochs: pd.DataFrame, detect: float, seeds: int | None = None,
         analysis: stats.Analysis = stats.Analysis(), metric: str = "final_test_top1",
         variants: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per comparison (percentage points): pilot pairs and SD, the MDE now and at
    ``seeds``, and the seeds needed to detect ``detect`` points (unadjusted and Holm's first
    step). ``variants`` keeps only the comparisons of those variants."""
    train = epochs[(epochs["kind"] == "train") & (epochs["status"] == "FINISHED")] \
        if len(epochs) else epochs
    runs = load.runs_from_epochs(train)
    if runs.empty or metric not in runs:
        return pd.DataFrame(columns=COLUMNS)
    # the comparisons the report states, in its families (equal compute included): Holm's m
    p = stats.answer(runs, train, metric, analysis, scale=PCT)
    p["family_size"] = p.groupby("family")["variant"].transform("size")
    p = p[p["sd_diff"].notna()]
    if variants:
        p = p[p["variant"].isin(variants)]
    p = p.copy()
    img = p["se_images"].fillna(0.0) ** 2
    p["mde_planned"] = [stats.mde(sd, seeds, analysis, v) if seeds else float("nan")
                        for sd, v in zip(p["sd_diff"], img)]
    p["seeds_needed"] = [stats.seeds_needed(sd, detect, analysis.alpha, analysis.power, NEVER, v)
                         for sd, v in zip(p["sd_diff"], img)]
    p["seeds_needed_holm"] = [stats.seeds_needed(sd, detect, analysis.alpha / m, analysis.power,
                                                 NEVER, v)
                              for sd, m, v in zip(p["sd_diff"], p["family_size"], img)]
    return p[COLUMNS].reset_index(drop=True)


def render(frame: pd.DataFrame, detect: float, seeds: int | None, analysis: stats.Analysis,
           source: str) -> str:
    """The plan as text: a header, one line per comparison, and the summary per family."""
    planned = f"MDE@{seeds}" if seeds else ""
    head = (f"Plan from {source}: detect {detect:g} points at {analysis.power:.0%} power "
            "(the seeds' SD and the test set's SE, which seeds do not shrink), "
            f"two-sided α = {analysis.alpha:g}; Holm's first step uses α/m within each family "
            f"({'; '.join(f.describe() for f in analysis.families)}"
            + (f"; split by {' × '.join(analysis.family)}" if analysis.family else "") + ").")
    cols = ["comparison", "family", "n", "SD", "SE test", "MDE", planned, "seeds",
            "seeds (Holm)"]
    rows = []
    for _, r in frame.iterrows():
        rows.append([f"{r['variant']} − {r['baseline']}",
                     f"{r['dataset']}/{r['arch']}/{r['setting']}", str(int(r["n_pairs"])),
                     f"{r['sd_diff']:.2f}", f"{r['se_images']:.2f}", f"{r['mde']:.2f}",
                     f"{r['mde_planned']:.2f}" if seeds else "", _count(r["seeds_needed"]),
                     _count(r["seeds_needed_holm"])])
    keep = [i for i, c in enumerate(cols) if c]
    widths = [max(len(cols[i]), *(len(row[i]) for row in rows)) for i in keep]
    lines = [head, "", "  ".join(cols[i].ljust(w) for i, w in zip(keep, widths)).rstrip()]
    lines += ["  ".join(row[i].ljust(w) for i, w in zip(keep, widths)).rstrip() for row in rows]
    lines.append("")
    for (d, a, s), g in frame.groupby(["dataset", "arch", "setting"], sort=True):
        line = (f"{d}/{a}/{s}: {len(g)} comparisons; median SD {g['sd_diff'].median():.2f}, "
                f"MDE {g['mde'].median():.2f} at n = {int(g['n_pairs'].max())}")
        if seeds:
            line += f", {g['mde_planned'].median():.2f} at n = {seeds}"
        median = _count(g["seeds_needed"].median())
        line += (f"; to detect {detect:g}: median {median}{'' if median == 'never' else ' seeds'} "
                 f"(Holm {_count(g['seeds_needed_holm'].median())}), "
                 f"max {_count(g['seeds_needed'].max())} "
                 f"(Holm {_count(g['seeds_needed_holm'].max())})")
        never = int((g["seeds_needed_holm"] >= NEVER).sum())
        if never:
            line += (f"; {never} never at Holm's level: the test set's own noise (SE up to "
                     f"{g['se_images'].max():.2f} points) is larger than seeds can offset")
            if (g["test_bound"] == "independent errors").any():
                line += (" (the bound for runs without per-image correctness, which overstates "
                         "it: runs that keep theirs measure it)")
        lines.append(line)
    return "\n".join(lines)


def _count(n: float) -> str:
    return "never" if n >= NEVER else str(int(n))
