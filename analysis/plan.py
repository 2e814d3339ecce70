"""Sizing before spending: from a pilot's paired comparisons, the seeds each comparison needs.

For every comparison of the report (:func:`analysis.stats.paired`), the SD of the paired
differences observed in the pilot gives the minimum detectable difference (MDE) at the pilot's
seeds and at a planned count, and the seeds needed to detect a chosen difference at the declared
power: at the declared α, and at α/m, Holm's first (strictest) step over a family of m
comparisons, which keeps that power for every comparison after the adjustment.
"""
from __future__ import annotations

import pandas as pd

from . import load, stats
from .tables import PCT

COLUMNS = ["dataset", "arch", "setting", "variant", "baseline", "n_pairs", "sd_diff", "mde",
           "mde_planned", "seeds_needed", "seeds_needed_holm", "family_size"]


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
    p["mde_planned"] = [stats.mde(sd, seeds, analysis) if seeds else float("nan")
                        for sd in p["sd_diff"]]
    p["seeds_needed"] = [stats.seeds_needed(sd, detect, analysis.alpha, analysis.power)
                         for sd in p["sd_diff"]]
    p["seeds_needed_holm"] = [stats.seeds_needed(sd, detect, analysis.alpha / m, analysis.power)
                              for sd, m in zip(p["sd_diff"], p["family_size"])]
    return p[COLUMNS].reset_index(drop=True)


def render(frame: pd.DataFrame, detect: float, seeds: int | None, analysis: stats.Analysis,
           source: str) -> str:
    """The plan as text: a header, one line per comparison, and the summary per family."""
    planned = f"MDE@{seeds}" if seeds else ""
    head = (f"Plan from {source}: detect {detect:g} points at {analysis.power:.0%} power, "
            f"two-sided α = {analysis.alpha:g}; Holm's first step uses α/m within each family "
            f"({'; '.join(f.describe() for f in analysis.families)}"
            + (f"; split by {' × '.join(analysis.family)}" if analysis.family else "") + ").")
    cols = ["comparison", "family", "n", "SD", "MDE", planned, "seeds", "seeds (Holm)"]
    rows = []
    for _, r in frame.iterrows():
        rows.append([f"{r['variant']} − {r['baseline']}",
                     f"{r['dataset']}/{r['arch']}/{r['setting']}", str(int(r["n_pairs"])),
                     f"{r['sd_diff']:.2f}", f"{r['mde']:.2f}",
                     f"{r['mde_planned']:.2f}" if seeds else "", str(int(r["seeds_needed"])),
                     str(int(r["seeds_needed_holm"]))])
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
        line += (f"; to detect {detect:g}: median {int(g['seeds_needed'].median())} seeds "
                 f"(Holm {int(g['seeds_needed_holm'].median())}), "
                 f"max {int(g['seeds_needed'].max())} (Holm {int(g['seeds_needed_holm'].max())})")
        lines.append(line)
    return "\n".join(lines)
