"""The tuning landscape: each study's trials over its searched values, the choice marked."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

from analysis.plots import style
from analysis.plots.style import FONT, legend_below, new_figure, theme

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402


def landscape_figure(trials: pd.DataFrame):
    """Validation accuracy over each Optuna study's searched hyperparameters: two parameters as
    axes (colour = final validation top-1) or one against the accuracy; pruned or failed trials
    grey crosses, trials still running hollow circles (never counted as pruned), the best
    finished trial a star."""
    theme()
    fixed = {"study", "trial", "state", "value"}
    d = trials.copy()
    d["val top-1 (%)"] = d["value"] * 100
    panels = []
    for study in sorted(d["study"].unique()):
        s = d[d["study"] == study]
        axes = [c for c in s.columns if c not in fixed | {"val top-1 (%)"}
                and s[c].nunique(dropna=True) > 1]
        if axes:
            panels.append((study, s, axes[:2]))
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, grid = new_figure(2.1 * rows + 0.8, ncols=cols, nrows=rows, squeeze=False)
    for ax, (study, s, names) in zip(grid.flat, panels):
        x = names[0]
        two = len(names) > 1
        y = names[1] if two else "val top-1 (%)"
        done = s[(s["state"] == "COMPLETE") & s["value"].notna()]
        running = s[s["state"] == "RUNNING"]
        stopped = s[~s["state"].isin(["COMPLETE", "RUNNING"])]
        if two:
            ax.scatter(stopped[x], stopped[y], marker="x", s=14, c="0.6", lw=0.8)
            ax.scatter(running[x], running[y], marker="o", s=18, facecolors="none",
                       edgecolors="0.3", lw=0.8)
        if len(done):
            if two:
                low, high = done["val top-1 (%)"].min(), done["val top-1 (%)"].max()
                pts = ax.scatter(done[x], done[y], c=done["val top-1 (%)"], cmap="viridis",
                                 vmin=min(low, high - 0.5), vmax=max(high, low + 0.5), s=20,
                                 edgecolor="k", linewidth=0.3)
                fig.colorbar(pts, ax=ax, label="val top-1 (%)", pad=0.01)
            else:
                ax.scatter(done[x], done[y], s=20, color="#0072B2", edgecolor="k", linewidth=0.3)
            best = done.loc[done["value"].idxmax()]
            ax.scatter([best[x]], [best[y]], marker="*", s=110, c="#D55E00", zorder=3)
        if s[x].min() > 0 and s[x].max() / s[x].min() > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        head, _, tail = study.rpartition("/")
        ax.set_title(f"{head.replace('/', ' / ')}\n{tail}" if head else study, fontsize=FONT - 1)
    for ax in list(grid.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Optuna: final validation top-1 over the searched hyperparameters")
    handles = [Line2D([], [], marker="o", color="#0072B2", ls="none", ms=4,
                      label="complete (colour: val top-1)"),
               Line2D([], [], marker="*", color="#D55E00", ls="none", ms=8,
                      label="best complete trial"),
               Line2D([], [], marker="x", color="0.6", ls="none", ms=5, label="pruned or failed"),
               Line2D([], [], marker="o", color="0.3", mfc="none", ls="none", ms=4,
                      label="still running")]
    legend_below(fig, handles, ncol=4)
    return fig


def landscape(trials: pd.DataFrame, folder: Path) -> list[Path]:
    fig = landscape_figure(trials)
    return [] if fig is None else style.save(fig, folder, "tuning_landscape")
