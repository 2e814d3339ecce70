"""The answer against the training budget: each headline comparison's mean difference and the
verdict's interval at every budget, a panel per task, the verdict as the marker."""
from __future__ import annotations

from pathlib import Path

import matplotlib

from analysis.plots import style
from analysis.plots.style import VERDICT_STYLE, legend_below, new_figure, theme

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis import stats  # noqa: E402


def budget_figure(frame: pd.DataFrame, margin: float,
                  converged: dict[tuple[str, str], int | None] | None = None):
    """``frame``: :func:`analysis.stats.by_budget`'s rows. One panel per task (dataset ×
    condition × architecture), the budget in epochs on a log2 axis, one line per comparison
    (variant − baseline, offset a little sideways so intervals do not hide each other), the
    verdict's interval as a bar and the verdict as the marker; shaded: ±margin. ``converged``:
    each task's budget by its ladder (converged, or under noise its peak), marked by a dotted
    line and named under its tick; a task trained only below it (or whose ladder names none:
    None) has its budgets called short of convergence under their ticks."""
    theme()
    frame = stats.verdict_interval(frame)
    tasks = sorted({(d, a) for d, a in zip(frame["dataset"], frame["arch"])})
    pairs = sorted({(v, b) for v, b in zip(frame["variant"], frame["baseline"])})
    cols = min(2, len(tasks))
    rows = int(np.ceil(len(tasks) / cols))
    fig, axes = new_figure(2.1 * rows + 0.8, nrows=rows, ncols=cols, squeeze=False)
    colours = dict(zip(pairs, _palette(len(pairs))))
    for ax, (d, a) in zip(axes.ravel(), tasks):
        g = frame[(frame["dataset"] == d) & (frame["arch"] == a)]
        ax.axhspan(-margin, margin, color="0.9", zorder=0, lw=0)
        ax.axhline(0, color="0.4", lw=0.8, zorder=1)
        for i, pair in enumerate(pairs):
            p = g[(g["variant"] == pair[0]) & (g["baseline"] == pair[1])].sort_values("epochs")
            if p.empty:
                continue
            x = p["epochs"].to_numpy(float) * 2 ** (0.06 * (i - (len(pairs) - 1) / 2))
            ax.plot(x, p["mean_diff"], color=colours[pair], lw=1.0, zorder=2)
            for xi, (_, r) in zip(x, p.iterrows()):
                marker, _ = VERDICT_STYLE[r["verdict"]]
                ax.plot([xi, xi], [r["ci_low_total"], r["ci_high_total"]], color=colours[pair],
                        lw=1.0, zorder=2)
                ax.plot([xi], [r["mean_diff"]], marker=marker, color=colours[pair], ms=4,
                        zorder=3, ls="none")
        ax.set_xscale("log", base=2)
        budgets = sorted(g["epochs"].unique())
        mark = (converged or {}).get((d, a))
        short = (d, a) in (converged or {}) and mark not in budgets  # never at its budget
        if mark in budgets:
            ax.axvline(mark, color="0.5", lw=0.8, ls=":", zorder=1)
        ax.set_xticks(budgets, [f"{int(b)}\n(its budget)" if b == mark else
                                f"{int(b)}\n(short of convergence)"
                                if short and (mark is None or b < mark) else str(int(b))
                                for b in budgets])
        ax.minorticks_off()
        ax.set_title(f"{d} / {a}")
        ax.set_xlabel("epochs (each budget tuned at its own)")
        ax.set_ylabel("difference (points)")
    for ax in axes.ravel()[len(tasks):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colours[p], lw=1.0, label=f"{p[0]} − {p[1]}")
               for p in pairs]
    handles += [Line2D([], [], color="0.3", marker=m, ls="none", ms=4, label=v)
                for v, (m, _) in VERDICT_STYLE.items()]
    legend_below(fig, handles, ncol=2)
    return fig


def _palette(n: int) -> list:
    import seaborn as sns

    return sns.color_palette("colorblind", max(n, 1))


def budget(frame: pd.DataFrame, folder: Path, margin: float,
           converged: dict[tuple[str, str], int | None] | None = None) -> list[Path]:
    return style.save(budget_figure(frame, margin, converged), folder, "answer_budget")
