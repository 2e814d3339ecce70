"""A convergence ladder: CE's validation and test top-1 against the training budget, a panel per
task, with the budget the ladder's rule names (validation decides; the test split is drawn
beside it, never used)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

from analysis.plots import style
from analysis.plots.style import legend_below, new_figure, theme

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

#: What each line is: the metric, its label, its colour and marker (test dashed: reported only).
LINES = (("final_val_top1", "validation top-1 (decides the budget)", "#0072B2", "o", "-"),
         ("final_test_top1", "test top-1 (reported beside it)", "#D55E00", "s", "--"))


def ladder_figure(runs: pd.DataFrame, budgets: pd.DataFrame, scale: float = 100.0):
    """``runs``: the ladder's finished runs (one row per run, ``epochs`` its rung);
    ``budgets``: :func:`analysis.stats.ladder_budgets`' rows. Per task, the mean over seeds of
    each metric at every rung with its 95% Student-t interval over the seeds (the test set's
    share is not in these bars: the ladder's tables give the doubling intervals with it), and a
    vertical line at the named budget."""
    from scipy import stats as sps

    theme()
    tasks = sorted({(d, a) for d, a in zip(runs["dataset"], runs["arch"])})
    cols = min(2, len(tasks))
    rows = int(np.ceil(len(tasks) / cols))
    fig, axes = new_figure(2.2 * rows + 0.8, nrows=rows, ncols=cols, squeeze=False)
    named = {(r.dataset, r.arch): r.budget for r in budgets.itertuples()}
    for ax, (d, a) in zip(axes.ravel(), tasks):
        g = runs[(runs["dataset"] == d) & (runs["arch"] == a)]
        seeds = g.groupby("epochs")["seed"].nunique()
        for metric, _, colour, marker, ls in LINES:
            s = g.groupby("epochs")[metric].agg(["mean", "std", "count"]).sort_index()
            mean = s["mean"] * scale
            half = (sps.t.ppf(0.975, (s["count"] - 1).clip(lower=1)) * s["std"].fillna(0)
                    / np.sqrt(s["count"]) * scale)
            ax.errorbar(s.index, mean, yerr=half, color=colour, marker=marker, ms=3.5, ls=ls,
                        lw=1.0, capsize=2)
        budget = named.get((d, a))
        if str(budget).isdigit():  # a rung, not "none"
            ax.axvline(int(budget), color="0.3", lw=0.9, ls=":", zorder=0)
            ax.annotate(f"budget {int(budget)}", (int(budget), 0.0),
                        xycoords=("data", "axes fraction"), xytext=(3, 4),
                        textcoords="offset points", fontsize=7, color="0.3")
        rungs = sorted(g["epochs"].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(rungs, [str(int(e)) for e in rungs])
        ax.minorticks_off()
        n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
        ax.set_title(f"{d} / {a} ({n} seed{'' if n == '1' else 's'} a rung)")
        ax.set_xlabel("epochs (each rung its own cosine schedule)")
        ax.set_ylabel("top-1 (%)")
    for ax in axes.ravel()[len(tasks):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=c, marker=m, ls=ls, ms=3.5, lw=1.0, label=label)
               for _, label, c, m, ls in LINES]
    handles.append(Line2D([], [], color="0.3", ls=":", lw=0.9,
                          label="the budget the rule names (validation)"))
    legend_below(fig, handles, ncol=3)
    return fig


def ladder(runs: pd.DataFrame, budgets: pd.DataFrame, folder: Path,
           name: str = "ladder") -> list[Path]:
    return style.save(ladder_figure(runs, budgets), folder, name)
