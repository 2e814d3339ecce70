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

#: At most this many studies in one figure (4 rows of 3 panels, ~1,400 px tall at the report's
#: DPI): a report with more studies draws one figure per task, and a task with more than this
#: several; one figure of 34 studies was 4,530 px tall and took a third of the report's memory.
PANELS_PER_FIGURE = 12

STATE_MARKS = {  # how each Optuna state is drawn (a finished trial is coloured by its value)
    "PRUNED": dict(marker="x", s=14, c="0.55", lw=0.8),
    "FAIL": dict(marker="+", s=26, c="#CC3311", lw=1.0),
}


def landscape_figure(trials: pd.DataFrame, title: str = ""):
    """Validation accuracy over each Optuna study's searched hyperparameters: two parameters as
    axes (colour = final validation top-1) or one against the accuracy; pruned trials grey
    crosses, failed ones red plus signs, trials still running hollow circles (never counted as
    pruned), the best finished trial a star."""
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
        if two:
            for state, mark in STATE_MARKS.items():
                stopped = s[s["state"] == state]
                if len(stopped):
                    ax.scatter(stopped[x], stopped[y], **mark)
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
            # drawn over the frame, never clipped by it (a best trial sits on the range's edge)
            ax.scatter([best[x]], [best[y]], marker="*", s=110, c="#D55E00", zorder=3,
                       clip_on=False)
        ax.margins(0.08)
        _ticks(ax.xaxis, s[x])
        if two:
            _ticks(ax.yaxis, s[y])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        head, _, tail = study.rpartition("/")
        ax.set_title(f"{head.replace('/', ' / ')}\n{tail}" if head else study, fontsize=FONT - 1)
    for ax in list(grid.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title or "Optuna: final validation top-1 over the searched hyperparameters")
    handles = [Line2D([], [], marker="o", color="#0072B2", ls="none", ms=4,
                      label="complete (colour: val top-1)"),
               Line2D([], [], marker="*", color="#D55E00", ls="none", ms=8,
                      label="best complete trial"),
               Line2D([], [], marker="x", color=STATE_MARKS["PRUNED"]["c"], ls="none", ms=5,
                      label="pruned"),
               Line2D([], [], marker="+", color=STATE_MARKS["FAIL"]["c"], ls="none", ms=6,
                      label="failed"),
               Line2D([], [], marker="o", color="0.3", mfc="none", ls="none", ms=4,
                      label="still running")]
    legend_below(fig, handles, ncol=3)
    return fig


def _ticks(axis, values: pd.Series) -> None:
    """At most four ticks, plain numbers (a log scale where the range spans > 20x): the
    default's six to eight labels ran into each other in a third of the page's width."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if len(values) and values.min() > 0 and values.max() / values.min() > 20:
        (axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale)("log")
        axis.set_major_locator(matplotlib.ticker.LogLocator(numticks=4))
        axis.set_major_formatter(matplotlib.ticker.LogFormatterSciNotation())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:
        axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4))


def pages(trials: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(file name, task, trials) of each landscape figure: one per task (a study's name up to
    its first ``/``), split further where a task has more than :data:`PANELS_PER_FIGURE` studies."""
    out = []
    task_of = trials["study"].astype(str).str.split("/").str[0]
    for task in sorted(task_of.unique()):
        studies = sorted(trials.loc[task_of == task, "study"].unique())
        chunks = [studies[i:i + PANELS_PER_FIGURE]
                  for i in range(0, len(studies), PANELS_PER_FIGURE)]
        for k, chunk in enumerate(chunks):
            name = task.replace(":", "_") + (f"_{k + 1}" if len(chunks) > 1 else "")
            out.append((name, task, trials[trials["study"].isin(chunk)]))
    return out


def landscape(trials: pd.DataFrame, folder: Path) -> list[Path]:
    """One figure per task (``tuning_landscape_<task>``), each saved and closed before the next
    is drawn."""
    written = []
    for name, task, part in pages(trials):
        fig = landscape_figure(part, f"Optuna, {task}: final validation top-1 over the searched "
                                     "hyperparameters")
        if fig is not None:
            written += style.save(fig, folder, f"tuning_landscape_{name}")
    return written
