"""The aggregate over tasks: IQM of the differences and P(improvement), with intervals."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

from analysis.plots import style
from analysis.plots.style import legend_below, method_colours, new_figure, source_dashes, theme

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402


def aggregate_figure(agg: pd.DataFrame, taus: np.ndarray, curves: dict, methods: dict[str, str],
                     baseline: str = "ce", sources: dict[str, str] | None = None):
    """The answer across tasks: per variant the IQM of its score against its baseline (column
    ``baseline``: tuned CE for a tuned variant; points, 95% stratified-bootstrap interval; a
    row whose baseline is not ``baseline`` names it), its probability of improvement over it, and
    the performance profiles (share of runs whose score exceeds tau). Colour = method; a
    variant's teacher source is the line style and the marker (named in the legend)."""
    theme()
    order = list(agg["variant"])
    colours = method_colours(set(methods.values()))
    sources = sources or {}
    dashes = source_dashes(set(sources.values()))
    shown = [s for s in dict.fromkeys(sources.get(v, "") for v in order)]
    markers = {s: "osD^v<>"[i % 7] for i, s in enumerate(shown)}
    height = max(2.4, 0.22 * len(order) + 1.2)
    fig, (ax_iqm, ax_poi, ax_prof) = new_figure(height, ncols=3)
    iqm = "iqm_sd" if "iqm_sd" in agg else "iqm"  # on the common scale where the table has it
    unit = "baseline seed SDs" if iqm == "iqm_sd" else "points"
    y = np.arange(len(order))[::-1]
    for yi, (_, r) in zip(y, agg.iterrows()):
        c = colours[methods.get(r["variant"], r["variant"])]
        mk = markers[sources.get(r["variant"], "")]
        ax_iqm.errorbar(r[iqm], yi, xerr=[[r[iqm] - r[f"{iqm}_low"]],
                                          [r[f"{iqm}_high"] - r[iqm]]],
                        fmt=mk, color=c, ms=4, capsize=2, lw=1.2)
        ax_poi.errorbar(r["p_improve_ce"], yi,
                        xerr=[[r["p_improve_ce"] - r["p_improve_ce_low"]],
                              [r["p_improve_ce_high"] - r["p_improve_ce"]]],
                        fmt=mk, color=c, ms=4, capsize=2, lw=1.2)
    against = agg["baseline"] if "baseline" in agg else pd.Series(baseline, index=agg.index)
    labels = [v if b == baseline else f"{v} − {b}" for v, b in zip(order, against)]
    for ax in (ax_iqm, ax_poi):
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.7, len(order) - 0.3)
    ax_poi.set_yticklabels([])
    ax_iqm.axvline(0, color="0.2", lw=0.8, ls="--")
    ax_poi.axvline(0.5, color="0.2", lw=0.8, ls="--")
    lo = min(agg[f"{iqm}_low"].min(), 0)
    hi = max(agg[f"{iqm}_high"].max(), 0)
    pad = 0.08 * (hi - lo or 1)
    ax_iqm.set_xlim(lo - pad, hi + pad)
    ax_poi.set_xlim(0, 1)
    ax_iqm.set_xlabel(f"IQM of score − baseline ({unit})")
    ax_poi.set_xlabel("P(variant > baseline)")
    ax_iqm.set_title("interquartile mean")
    ax_poi.set_title("P(improvement)")
    for v in order:
        if v not in curves:
            continue
        curve, low, high = curves[v]
        c = colours[methods.get(v, v)]
        ax_prof.plot(taus, curve, color=c, lw=1.2, ls=dashes[sources.get(v, "")], label=v)
        ax_prof.fill_between(taus, low, high, color=c, alpha=0.15, lw=0)
    ax_prof.axvline(0, color="0.2", lw=0.8, ls="--")
    if len(taus):
        ax_prof.set_xlim(taus[0], taus[-1])
    ax_prof.set_ylim(0, 1)
    ax_prof.set_xlabel(f"tau ({unit})")
    ax_prof.set_ylabel("share of runs: score > tau")
    ax_prof.set_title("performance profiles")
    handles = [Line2D([], [], color=colours[methods.get(v, v)], lw=1.2,
                      ls=dashes[sources.get(v, "")], marker=markers[sources.get(v, "")], ms=4,
                      label=v) for v in order]
    legend_below(fig, handles, ncol=min(4, len(handles)))
    return fig


def aggregate(agg: pd.DataFrame, taus: np.ndarray, curves: dict, methods: dict[str, str],
              folder: Path, baseline: str = "ce", sources: dict[str, str] | None = None
              ) -> list[Path]:
    return style.save(aggregate_figure(agg, taus, curves, methods, baseline, sources), folder,
                "aggregate")
