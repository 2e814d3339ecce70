"""Accuracy against cost (forwarded images, seconds), with CE's budget ladder."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

from analysis.plots import style
from analysis.plots.style import (
    ROLE_STYLE,
    SOURCE_ORDER,
    legend_below,
    method_colours,
    new_figure,
    role,
    role_handles,
    theme,
)

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis import stats  # noqa: E402

COST_WINDOW = 6.0


def cost_figure(points: pd.DataFrame, dataset: str, baseline: str = "ce"):
    """Accuracy against compute, counted two ways: one point per variant (mean final-epoch test
    top-1 with its 95% bootstrap interval) at the images it forwarded over its whole run (top
    row) and at its measured training seconds (bottom row, when recorded), both relative to the
    baseline's, one column per architecture; the baseline's variants (an epoch ladder, when the
    grid has one) joined by a dashed line. ``points``: dataset, arch, variant, method,
    rel_images, rel_seconds, mean, low, high."""
    theme()
    d = points[points["dataset"] == dataset]
    if d.empty:
        return None
    archs = sorted(d["arch"].unique())
    colours = method_colours(d["method"].unique())
    xs = [("rel_images", f"images forwarded per run / {baseline}'s")]
    if "rel_seconds" in d and d["rel_seconds"].notna().all():
        xs.append(("rel_seconds", f"training seconds per run / {baseline}'s"))
    fig, axes = new_figure(3.0 * len(xs), ncols=len(archs), nrows=len(xs), squeeze=False)
    for row, (column, label) in enumerate(xs):
        for ax, arch in zip(axes[row], archs):
            _cost_panel(ax, d[d["arch"] == arch], column, label, colours, baseline)
            if row == 0:
                ax.set_title(arch + ax.get_title())
            else:
                ax.set_title("")
        axes[row, 0].set_ylabel("final-epoch test top-1 (%)")
    ladder = _ladder(d, baseline).groupby("arch").size()
    fig.suptitle(f"{dataset}: accuracy against compute (95% bootstrap CI"
                 + (f"; dashed: {baseline} at its epoch budgets)" if (ladder > 1).any() else ")"))
    handles = [Line2D([], [], color=colours[m], marker="o", ls="none", ms=4, label=m)
               for m in stats.variant_order(d["method"].unique())]
    handles += role_handles(d["variant"].unique(), True)
    if (ladder > 1).any():
        handles.append(Line2D([], [], color=colours[baseline], ls="--", lw=1,
                              label=f"{baseline} at its epoch budgets"))
    legend_below(fig, handles, ncol=6)
    return fig


def _cost_panel(ax, a: pd.DataFrame, column: str, label: str, colours: dict,
                baseline: str) -> None:
    a = a.sort_values([column, "mean"])
    ladder = _ladder(a, baseline).sort_values(column)  # its budgets, never its tuned variant
    if len(ladder) > 1:
        ax.plot(ladder[column], ladder["mean"], color=colours[baseline], lw=1, ls="--",
                zorder=1)
    base = ladder["mean"].max() if len(ladder) else a["mean"].max()
    floor = max(a["low"].min(), base - COST_WINDOW) - 0.2
    order = {v: i for i, v in enumerate(stats.variant_order(a["variant"]))}
    # a method under several teacher sources (DR-KD online, pretrained): one colour and one
    # marker for all of them, so each point names its source
    several = {m for m, g in a.groupby("method") if len({_source(v, m) for v in g["variant"]}) > 1}
    span = max(a[column].max() - a[column].min(), 1.0)
    below = 0
    for _, r in a.iterrows():
        c = colours[r["method"]]
        x = r[column] + span * 0.04 * (order[r["variant"]] / max(len(order) - 1, 1)
                                       - 0.5)  # dodge, so that no point hides another
        if r["mean"] < floor:
            below += 1
            ax.plot([x], [floor + 0.15], marker="v", color=c, ms=3.5, zorder=2)
            continue
        kind = role(r["variant"])
        ax.errorbar([x], [r["mean"]], yerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
                    fmt=ROLE_STYLE[kind][0], color=c, ms=3.5, elinewidth=0.9, capsize=1.5,
                    zorder=2, markerfacecolor="white" if kind == "mechanism control" else c)
        if r["method"] in several and _source(r["variant"], r["method"]):
            ax.annotate(_source(r["variant"], r["method"]), (x, r["mean"]), fontsize=5.5,
                        color=c, xytext=(3, 2), textcoords="offset points")
    ax.set_ylim(bottom=floor - 0.1)  # the ▼ of a point below the window sit inside the axes
    ax.set_title(f" ({below} below the axis, ▼)" if below else "")
    ax.set_xlabel(label)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g×"))


def _source(variant: str, method: str) -> str:
    """The teacher source a variant's name carries after its method (``drkd-online-tuned`` ->
    ``online``), or ""."""
    rest = variant.removeprefix(method + "-") if variant.startswith(method + "-") else ""
    for suffix in ("-tuned", "-control"):
        rest = rest.removesuffix(suffix)
    return rest if rest in SOURCE_ORDER else ""


def _ladder(points: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The baseline's own points at its epoch budgets (``ce``, ``ce@2x``, ...)."""
    return points[[stats.budget_factor(v, baseline) is not None for v in points["variant"]]]


def cost(points: pd.DataFrame, dataset: str, folder: Path, baseline: str = "ce") -> list[Path]:
    fig = cost_figure(points, dataset, baseline)
    return [] if fig is None else style.save(fig, folder, f"accuracy_cost_{dataset}")
