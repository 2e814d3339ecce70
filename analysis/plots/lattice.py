"""The lattice: methods at identical hyperparameters, side by side."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

from analysis.plots import style
from analysis.plots.style import PAGE_WIDTH, VERDICT_STYLE, legend_below, new_figure, theme

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis import stats  # noqa: E402


def lattice_figure(lat: pd.DataFrame, dataset: str):
    """The rectification effect over the lattice: rows = teacher sources, columns =
    architectures, each panel a heat-map over (alpha, T) of the mean paired difference (e.g.
    DR-KD − Tf-KD self, points), written in each square with its 95% interval; a verdict other
    than inconclusive is named under the number. One colour scale for every panel, centred on 0
    and linear within ±1 point (symmetric log beyond), so that a large effect does not wash
    out the small ones."""
    theme()
    d = stats.verdict_interval(lat[lat["dataset"] == dataset])
    if d.empty:
        return None
    archs = sorted(d["arch"].unique())
    sources = [s for s in ("online", "previous-epoch", "previous-batch", "ema", "pretrained")
               if s in set(d["teacher_source"])]
    sources += sorted(set(d["teacher_source"]) - set(sources))
    alphas = sorted(d["alpha"].unique())
    temps = sorted(d["temperature"].unique())
    if len(alphas) == len(temps) == 1:  # one point: a heat-map of one square says nothing
        return _lattice_strip(d, dataset, archs, sources)
    limit = max(float(d["mean_diff"].abs().max()), 1.0)
    norm = matplotlib.colors.SymLogNorm(linthresh=1.0, vmin=-limit, vmax=limit, base=10)
    height = (0.42 * len(temps) + 0.75) * len(sources) + 0.9
    fig, axes = new_figure(height, PAGE_WIDTH, nrows=len(sources), ncols=len(archs), squeeze=False)
    cmap = plt.get_cmap("RdBu")
    image = None
    for i, source in enumerate(sources):
        for j, arch in enumerate(archs):
            ax = axes[i, j]
            g = d[(d["arch"] == arch) & (d["teacher_source"] == source)]
            grid = np.full((len(temps), len(alphas)), np.nan)
            for _, r in g.iterrows():
                grid[temps.index(r["temperature"]), alphas.index(r["alpha"])] = r["mean_diff"]
            image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
            for _, r in g.iterrows():
                y, x = temps.index(r["temperature"]), alphas.index(r["alpha"])
                text = (f"{r['mean_diff']:+.2f}\n"
                        f"[{r['ci_low_total']:+.1f}, {r['ci_high_total']:+.1f}]")
                if r["verdict"] in ("better", "worse"):
                    text += f"\n{r['verdict']}"
                dark = abs(r["mean_diff"]) > max(2.0, 0.3 * limit)
                ax.text(x, y, text, ha="center", va="center", fontsize=5.5, linespacing=1.1,
                        color="white" if dark else "0.1",
                        fontweight="bold" if r["verdict"] in ("better", "worse") else "normal")
            ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
            ax.set_yticks(range(len(temps)), [f"{t:g}" for t in temps])
            ax.grid(False)
            err = g["teacher_error"].mean()
            ax.set_title(f"{arch} · {source}" + (f" (teacher error {err:.1f}%)"
                                                 if err == err else ""), fontsize=7, loc="left")
            if i == len(sources) - 1:
                ax.set_xlabel("α")
            if j == 0:
                ax.set_ylabel("T")
    pair = d.iloc[0]
    rival = stats.LATTICE.match(pair["baseline"])["base"].rsplit("-" + pair["teacher_source"],
                                                                 1)[0]
    mine = stats.LATTICE.match(pair["variant"])["base"].rsplit("-" + pair["teacher_source"], 1)[0]
    fig.suptitle(f"{dataset}: {mine} − {rival} at identical (α, T), percentage points "
                 f"(mean, 95% CI; n = {int(d['n_pairs'].max())} seeds)")
    bar = fig.colorbar(image, ax=axes, location="right", shrink=0.6, label="points")
    ticks = [t for t in (-10, -3, -1, 0, 1, 3, 10) if abs(t) <= limit]
    bar.set_ticks(ticks, labels=[f"{t:+g}" if t else "0" for t in ticks])
    return fig


def _lattice_strip(d: pd.DataFrame, dataset: str, archs: list, sources: list):
    """A one-point lattice as a forest strip: per architecture, one row per teacher source, the
    mean paired difference with its 95% CI, marker = verdict."""
    fig, axes = new_figure(0.32 * len(sources) + 1.5, ncols=len(archs), sharey=True,
                        squeeze=False)
    for ax, arch in zip(axes[0], archs):
        for i, source in enumerate(sources):
            g = d[(d["arch"] == arch) & (d["teacher_source"] == source)]
            if g.empty:
                continue
            r = g.iloc[0]
            marker, colour = VERDICT_STYLE[r["verdict"]]
            ax.plot([r["ci_low_total"], r["ci_high_total"]], [i, i], color=colour, lw=1.4)
            ax.plot([r["mean_diff"]], [i], marker=marker, color=colour, ms=5, ls="none")
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_yticks(range(len(sources)), sources)
        ax.set_ylim(len(sources) - 0.5, -0.5)
        ax.set_title(arch)
        ax.set_xlabel("difference, percentage points (95% CI)")
    r = d.iloc[0]
    mine = stats.LATTICE.match(r["variant"])["base"].rsplit("-" + r["teacher_source"], 1)[0]
    rival = stats.LATTICE.match(r["baseline"])["base"].rsplit("-" + r["teacher_source"], 1)[0]
    fig.suptitle(f"{dataset}: {mine} − {rival} at α = {r['alpha']:g}, T = {r['temperature']:g} "
                 f"per teacher source (n = {int(d['n_pairs'].max())} seeds)")
    handles = [Line2D([], [], marker=m, color=c, ls="-", lw=1.2, ms=5, label=v)
               for v, (m, c) in VERDICT_STYLE.items() if v in set(d["verdict"])]
    legend_below(fig, handles, ncol=len(handles))
    return fig


def lattice(lat: pd.DataFrame, dataset: str, folder: Path) -> list[Path]:
    fig = lattice_figure(lat, dataset)
    return [] if fig is None else style.save(fig, folder, f"lattice_{dataset}")
