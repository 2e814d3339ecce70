"""Training curves and per-epoch diagnostics, mean and band over seeds."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

from analysis.plots import style
from analysis.plots.style import (
    ROLE_STYLE,
    SEVERAL_SOURCES,
    facets,
    legend_below,
    method_colours,
    new_figure,
    role,
    role_handles,
    source_dashes,
    style_handles,
    theme,
)

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from analysis import stats  # noqa: E402


def curves_figure(epochs: pd.DataFrame, dataset: str, metric: str = "test_top1",
                  ylabel: str = "test top-1 (%)"):
    """``metric`` against epoch: rows = architectures, columns = method families
    (:func:`facets`); colour = method, dash = teacher source, markers = tuned values; the
    baseline in every panel; mean over seeds with a 95% bootstrap band; one y-range for all."""
    theme()
    d = epochs[(epochs["dataset"] == dataset) & epochs[metric].notna()
               & epochs["epoch"].notna()].copy()
    if d.empty:
        return None
    d["value"] = d[metric] * 100
    archs = sorted(d["arch"].unique())
    groups = facets(d)
    colours = method_colours(d["method"].unique())
    dashes = source_dashes(d["teacher_source"].unique())
    fig, axes = new_figure(1.9 * len(archs) + 1.2, nrows=len(archs), ncols=len(groups),
                        sharex=True, sharey=True, squeeze=False)
    summary = (d.groupby(["arch", "variant", "epoch"])["value"]
               .agg(["mean", lambda x: style.band(x.to_numpy(float))]).reset_index())
    summary.columns = ["arch", "variant", "epoch", "mean", "band"]
    info = d.drop_duplicates("variant").set_index("variant")[["method", "teacher_source"]]
    # each row's seeds (an architecture of a task may have fewer: Fashion cnn28s 15 of 20)
    per_arch = d.groupby(["arch", "variant"])["seed"].nunique().groupby(level="arch")
    seeds = {a: (f"{lo} seeds" if lo == hi else f"{lo}-{hi} seeds")
             for a, (lo, hi) in zip(per_arch.min().index,
                                    zip(per_arch.min(), per_arch.max()))}
    for row, arch in enumerate(archs):
        for col, (family, members) in enumerate(groups.items()):
            ax = axes[row, col]
            shown = [v for v in stats.variant_order(info.index)
                     if info.loc[v, "method"] in members
                     or info.loc[v, "method"] == stats.Analysis.baseline]
            for v in shown:
                s = summary[(summary["arch"] == arch) & (summary["variant"] == v)]
                if s.empty:
                    continue
                c = colours[info.loc[v, "method"]]
                many = info.loc[v, "method"] in groups.get(SEVERAL_SOURCES, [])
                kind = role(v)
                marker, line = ROLE_STYLE[kind]
                ax.plot(s["epoch"], s["mean"], color=c, lw=1.1,
                        ls=dashes[info.loc[v, "teacher_source"]] if many else line,
                        marker=None if kind == "reference values" else marker, ms=3,
                        markerfacecolor="white" if kind == "mechanism control" else c,
                        markevery=max(1, len(s) // 5))
                ax.fill_between(s["epoch"], [b[0] for b in s["band"]],
                                [b[1] for b in s["band"]], color=c, alpha=0.12, lw=0)
            if row == 0:
                ax.set_title(family)
            if col == 0:
                ax.set_ylabel(f"{arch} ({seeds[arch]})\n{ylabel}" if len(set(seeds.values())) > 1
                              else f"{arch}\n{ylabel}")
            if row == len(archs) - 1:
                ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    counts = set(seeds.values())
    over = f"{counts.pop()} seeds" if len(counts) == 1 else "seeds per row"
    fig.suptitle(f"{dataset}: {ylabel} per epoch (mean, 95% bootstrap band; {over})")
    several = d["method"].isin(groups.get(SEVERAL_SOURCES, []))
    handles = style_handles(d["method"].unique(), set(d.loc[several, "teacher_source"]),
                            set(), colours, dashes)
    handles += role_handles(d["variant"].unique(), False, lines=True)
    legend_below(fig, handles, ncol=5)
    return fig


def curves(epochs: pd.DataFrame, dataset: str, folder: Path, metric: str = "test_top1",
           ylabel: str = "test top-1 (%)", name: str = "curves") -> list[Path]:
    fig = curves_figure(epochs, dataset, metric, ylabel)
    return [] if fig is None else style.save(fig, folder, f"{name}_{dataset}")


#: The accuracy-cost figure shows this many points below the baseline's best; lower points sit
#: on the axis as ▼ (their values are in the tables).
