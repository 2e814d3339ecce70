"""Forest plots: each comparison's mean difference and interval, coloured by its verdict."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

from analysis.plots import style
from analysis.plots.style import (
    SOURCE_ORDER,
    SYMLOG_TICKS,
    VERDICT_STYLE,
    legend_below,
    new_figure,
    theme,
)

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis import stats  # noqa: E402


def forest_figure(st: pd.DataFrame, dataset: str, arch: str, margin: float,
                  baseline: str = "ce"):
    """Each variant's paired difference to the baseline, sorted, with its 95% interval, one
    panel per setting; the marker and colour give the verdict, the shaded band is the
    equivalence margin. ``st`` is the statistics table (percentage points)."""
    theme()
    st = stats.verdict_interval(st)
    d = st[(st["dataset"] == dataset) & (st["arch"] == arch) & (st["baseline"] == baseline)]
    settings = [s for s in ("reference", "tuned") if (d["setting"] == s).any()]
    if not settings:
        return None
    heights = [max(1.2, 0.17 * (d["setting"] == s).sum() + 0.55) for s in settings]
    fig, axes = new_figure(sum(heights) + 0.7, nrows=len(settings), squeeze=False,
                        gridspec_kw={"height_ratios": heights})
    for ax, setting in zip(axes[:, 0], settings):
        g = d[d["setting"] == setting].sort_values("mean_diff", kind="stable")
        values = pd.concat([g["ci_low_total"], g["ci_high_total"], g["mean_diff"]]).dropna()
        low, high = min(values.min(), -margin), max(values.max(), margin)  # NaN CI: one seed
        symlog = high - low > 8  # a few huge losses would flatten every small difference
        y = _draw_rows(ax, g, margin)
        ax.set_yticks(y, [f"{v} (fragile)" if bool(f) else v for v, f in zip(
            g["variant"], g["fragile"] if "fragile" in g else [False] * len(g))])
        ax.set_ylim(-0.7, len(g) - 0.3)
        ax.grid(axis="y", visible=False)
        pad = 0.06 * (high - low)
        if symlog:
            ax.set_xscale("symlog", linthresh=max(2.0, 4 * margin), linscale=1.5)
            ticks = [t for t in SYMLOG_TICKS if low <= t <= high] or [0]
            ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.set_xlim(low * 1.25 if low < 0 else low - pad, high * 1.25 if high > 0 else
                        high + pad)
        else:
            ax.set_xlim(low - pad, high + pad)
        ax.set_title(f"{setting} values (n = {int(g['n_pairs'].max())} seeds)"
                     + (": symlog axis, linear within ±" + f"{max(2.0, 4 * margin):g}"
                        if symlog else ""), loc="left")
    axes[-1, 0].set_xlabel(f"difference to {baseline}, percentage points (95% CI)")
    fig.suptitle(f"{dataset} / {arch}: paired difference to {baseline}")
    handles = _verdict_handles(d, margin)
    legend_below(fig, handles, ncol=6 if len(handles) > 5 else 5)
    return fig


def _draw_rows(ax, g: pd.DataFrame, margin: float) -> np.ndarray:
    """The margin's band, the zero line and one row per comparison of ``g`` (its interval and
    its verdict's marker, hollow where the verdict is fragile); returns the rows' y."""
    y = np.arange(len(g))
    ax.axvspan(-margin, margin, color="0.88", zorder=0, lw=0)
    ax.axvline(0, color="0.35", lw=0.8, zorder=1)
    for yi, (_, r) in zip(y, g.iterrows()):
        marker, colour = VERDICT_STYLE[r["verdict"]]
        if not np.isnan(r["ci_low_total"]):  # the verdict's interval (seeds and test images)
            ax.plot([r["ci_low_total"], r["ci_high_total"]], [yi, yi], color=colour, lw=1.4,
                    zorder=2)
        fragile = bool(r.get("fragile", False))
        ax.plot([r["mean_diff"]], [yi], marker=marker, color=colour, ms=5, zorder=3,
                ls="none", markerfacecolor="white" if fragile else colour)
    return y


def _verdict_handles(d: pd.DataFrame, margin: float) -> list:
    """The legend of a forest: each verdict's mark, the margin's band, hollow = fragile."""
    handles = [Line2D([], [], marker=m, color=c, ls="-", lw=1.2, ms=5, label=v)
               for v, (m, c) in VERDICT_STYLE.items()]
    handles.append(matplotlib.patches.Patch(color="0.88", label=f"±{margin:g} equivalence margin"))
    if "fragile" in d and d["fragile"].astype(bool).any():
        handles.append(Line2D([], [], marker="o", color="0.3", markerfacecolor="white", ls="none",
                              ms=5, label="hollow: fragile verdict"))
    return handles


def forest(st: pd.DataFrame, dataset: str, arch: str, folder: Path, margin: float,
           baseline: str = "ce") -> list[Path]:
    fig = forest_figure(st, dataset, arch, margin, baseline)
    return [] if fig is None else style.save(fig, folder, f"forest_{dataset}_{arch}")


def tuned_pairs(st: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of tuned variants with tuned baselines (both sides tuned: the headline of
    an edition that asks whether a tuned method beats its tuned rivals)."""
    if st is None or st.empty or "setting" not in st:
        return pd.DataFrame()
    tuned = st[(st["setting"] == "tuned") & st["baseline"].astype(str).str.endswith("-tuned")]
    return tuned.copy()


def tuned_figure(st: pd.DataFrame, margin: float, baseline: str = "ce"):
    """Every tuned-against-tuned comparison of the report in one figure: a panel per kind of
    baseline (its method: tuned CE, tuned Tf-KD self of the same teacher, ...), stacked, a row
    per task and variant, the verdict's interval, marker and colour, hollow where fragile."""
    theme()
    d = stats.verdict_interval(tuned_pairs(st))
    if d.empty:
        return None
    sources = "|".join(re.escape(s) for s in SOURCE_ORDER if s not in ("", "none"))
    d["kind"] = d["baseline"].str.removesuffix("-tuned").str.replace(
        f"-({sources})$", "", regex=True)
    kinds = sorted(d["kind"].unique(), key=lambda k: (k != baseline, k))
    counts = [int((d["kind"] == k).sum()) for k in kinds]
    fig, axes = new_figure(0.16 * sum(counts) + 0.6 * len(kinds) + 0.9, nrows=len(kinds),
                           squeeze=False, sharex=True,
                           gridspec_kw={"height_ratios": [c + 2 for c in counts]})
    values = pd.concat([d["ci_low_total"], d["ci_high_total"], d["mean_diff"]]).dropna()
    low, high = min(values.min(), -margin), max(values.max(), margin)
    pad = 0.06 * (high - low)
    for ax, kind in zip(axes[:, 0], kinds):
        g = d[d["kind"] == kind].sort_values(["dataset", "arch", "variant"], kind="stable")
        y = _draw_rows(ax, g, margin)
        ax.set_yticks(y, [f"{r.dataset} {r.arch}: {r.variant.removesuffix('-tuned')}"
                          for r in g.itertuples()], fontsize=6.5)
        ax.set_ylim(len(g) - 0.3, -0.7)
        ax.grid(axis="y", visible=False)
        ax.set_xlim(low - pad, high + pad)
        ax.set_title(f"− tuned {kind}" + (" of the same teacher" if kind != baseline else ""),
                     loc="left")
    axes[-1, 0].set_xlabel("difference, percentage points (95% CI)")
    n = int(d["n_pairs"].min()), int(d["n_pairs"].max())
    fig.suptitle("Tuned against tuned: paired difference in final test top-1 ("
                 + (f"{n[0]} seeds" if n[0] == n[1] else f"{n[0]}-{n[1]} seeds") + ")")
    legend_below(fig, _verdict_handles(d, margin), ncol=3)
    return fig


def tuned(st: pd.DataFrame, folder: Path, margin: float, baseline: str = "ce") -> list[Path]:
    fig = tuned_figure(st, margin, baseline)
    return [] if fig is None else style.save(fig, folder, "forest_tuned")
