"""Accuracy per variant: each seed and the cell's interval."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

from analysis.plots import style
from analysis.plots.style import method_colours, new_figure, theme

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from analysis import stats  # noqa: E402


def accuracy_figure(runs: pd.DataFrame, dataset: str):
    """Final-epoch test top-1 per variant (rows, readable names) and architecture (panels):
    mean with its 95% bootstrap interval, one dot per seed, the baseline's mean a dashed line."""
    theme()
    d = runs[runs["dataset"] == dataset].copy()
    d["top1"] = d["final_test_top1"] * 100
    order = stats.variant_order(d["variant"])
    archs = sorted(d["arch"].unique())
    colours = method_colours(d["method"].unique())
    method = dict(zip(d["variant"], d["method"]))
    fig, axes = new_figure(0.16 * len(order) + 1.0, ncols=len(archs), sharey=True, squeeze=False)
    for ax, arch in zip(axes[0], archs):
        a = d[d["arch"] == arch]
        for i, v in enumerate(order):
            x = a.loc[a["variant"] == v, "top1"].to_numpy(float)
            if not len(x):
                continue
            lo, hi = style.band(x)
            c = colours[method[v]]
            ax.plot([lo, hi], [i, i], color=c, lw=1.4)
            ax.plot([x.mean()], [i], marker="D", color=c, ms=4)
            ax.plot(x, [i] * len(x), marker="|", color=c, ms=5, alpha=0.5, ls="none")
        base = a.loc[a["variant"] == stats.Analysis.baseline, "top1"]
        if len(base):
            ax.axvline(base.mean(), color="0.3", ls="--", lw=0.8)
        ax.set_title(f"{arch} (n = {int(a.groupby('variant')['seed'].nunique().max())} seeds)")
        ax.set_xlabel("final-epoch test top-1 (%)")
        ax.grid(axis="y", visible=False)
    axes[0, 0].set_yticks(range(len(order)), order)
    axes[0, 0].set_ylim(len(order) - 0.5, -0.5)
    fig.suptitle(f"{dataset}: final-epoch test top-1 (mean, 95% bootstrap CI, seeds as ticks; "
                 f"dashed: {stats.Analysis.baseline})")
    return fig


def accuracy(runs: pd.DataFrame, dataset: str, folder: Path) -> list[Path]:
    return style.save(accuracy_figure(runs, dataset), folder, f"accuracy_{dataset}")
