"""The report's figures, sized for a paper page: every figure is at most ``PAGE_WIDTH`` inches
wide at ``DPI`` (PNG, and a vector PDF beside it), fonts readable at print size, legends outside
the data and never over a title, one fixed colour-blind-safe colour per method in every figure,
intervals inside the metric's range. Each ``*_figure`` function returns the matplotlib figure
(the tests measure it); the plain functions save it and return the paths. Fixed metadata make a
regenerated file identical.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from . import stats  # noqa: E402

PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}
PAGE_WIDTH = 7.0  # inches: a paper page's text width
DPI = 150
FONT = 8  # points, at print size

#: The verdict's marker and colour (Okabe-Ito, colour-blind safe) in the forest plot.
VERDICT_STYLE = {"better": ("^", "#0072B2"), "worse": ("v", "#D55E00"),
                 "equivalent": ("D", "#009E73"), "inconclusive": ("o", "#7f7f7f")}
#: Dash patterns by teacher source, in this order; unknown sources take the rest in turn.
SOURCE_ORDER = ["none", "", "pretrained", "online", "previous-epoch", "ema", "partner",
                "previous-batch"]
#: seaborn's colour-blind palette in the order the registry's methods take it (neighbours in the
#: registry, such as the two teacher-source methods, get far-apart colours).
PALETTE_ORDER = [9, 0, 2, 3, 4, 5, 6, 1, 8, 7]
SYMLOG_TICKS = [-100, -50, -20, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20, 50, 100]
DASHES = ["-", "-", "-", "--", ":", "-.", "-", "-", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]


def save(fig, folder: Path, name: str) -> list[Path]:
    """PNG (at ``DPI``) and PDF of ``fig`` at its own size (no tight bounding box: the figure's
    width is the page width it was built for)."""
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    fig.savefig(png, dpi=DPI, metadata=PNG_META)
    fig.savefig(pdf, metadata=PDF_META)
    plt.close(fig)
    return [png, pdf]


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", rc={
        "font.size": FONT, "axes.titlesize": FONT + 1, "axes.labelsize": FONT,
        "xtick.labelsize": FONT - 1, "ytick.labelsize": FONT - 1, "legend.fontsize": FONT - 1,
        "figure.titlesize": FONT + 2, "legend.title_fontsize": FONT})
    matplotlib.rcParams["svg.hashsalt"] = "drkd-bench"
    matplotlib.rcParams["pdf.compression"] = 6


def _figure(height: float, width: float = PAGE_WIDTH, **kw):
    return plt.subplots(figsize=(width, height), layout="constrained", **kw)


# --- fixed styles --------------------------------------------------------------------------------

def method_colours(methods) -> dict[str, tuple]:
    """One colour per method, the same in every figure: the registry's methods in their order on
    seaborn's colour-blind palette (CE black), anything else after them."""
    palette = [sns.color_palette("colorblind", 10)[i] for i in PALETTE_ORDER]
    known = [m for m in stats.METHOD_ORDER if m != stats.Analysis.baseline]
    out = {stats.Analysis.baseline: (0.0, 0.0, 0.0)}
    out.update({m: palette[i % len(palette)] for i, m in enumerate(known)})
    extra = sorted(set(methods) - set(out))
    out.update({m: palette[(len(known) + i) % len(palette)] for i, m in enumerate(extra)})
    return out


def source_dashes(sources) -> dict[str, object]:
    order = SOURCE_ORDER + sorted(set(sources) - set(SOURCE_ORDER))
    return {s: DASHES[i % len(DASHES)] for i, s in enumerate(order)}


def band(values) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean over seeds, the main tables' interval:
    inside the metric's range (a single seed gives a zero-width band)."""
    mean, low, high = stats.bounded_interval(values)
    return (mean, mean) if low != low else (low, high)


SEVERAL_SOURCES = "chosen teacher source"


def facets(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Method families read from the runs themselves (no method named here): methods run under
    several teacher sources (the teacher is an axis), methods with a teacher of their own, and
    methods with no teacher; the baseline stands in every family."""
    sources = frame.groupby("method")["teacher_source"].agg(lambda s: set(s) - {"", "none"})
    groups = {SEVERAL_SOURCES: [m for m, s in sources.items() if len(s) > 1],
              "teacher of its own": [m for m, s in sources.items() if len(s) == 1],
              "no teacher": [m for m, s in sources.items() if not s]}
    return {name: ms for name, ms in groups.items() if ms}


def _legend_below(fig, handles: list, ncol: int) -> None:
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False,
               handlelength=2.6, columnspacing=1.2)


def _style_handles(methods, sources, settings, colours, dashes) -> list:
    handles = [Line2D([], [], color=colours[m], lw=2, label=m)
               for m in stats.variant_order(methods)]
    shown = [s for s in SOURCE_ORDER + sorted(set(sources) - set(SOURCE_ORDER))
             if s in sources and s not in ("", "none")]
    if len(shown) > 1:
        handles += [Line2D([], [], color="0.3", ls=dashes[s], lw=1.3, label=f"teacher: {s}")
                    for s in shown]
    if "tuned" in settings:
        handles += [Line2D([], [], color="0.3", lw=1.3, label="reference values"),
                    Line2D([], [], color="0.3", lw=1.3, marker="o", ms=3, label="tuned")]
    return handles


#: A variant's role, drawn the same way in every figure (colour is the method's): the marker of
#: its points and the line style of its curves.
ROLE_STYLE = {"reference values": ("o", "-"), "tuned": ("s", "-"),
              "mechanism control": ("^", ":"), "baseline budget": ("D", "-.")}


def role(variant: str) -> str:
    """``reference values``, ``tuned``, ``mechanism control`` or ``baseline budget``."""
    if stats.is_control(variant):
        return "mechanism control"
    if stats.is_budget(variant):
        return "baseline budget"
    return "tuned" if stats.is_tuned(variant) else "reference values"


def _role_handles(variants, marker: bool) -> list:
    """Legend entries for the roles present (grey: the colour is the method's)."""
    present = {role(v) for v in variants}
    if present == {"reference values"}:
        return []
    return [Line2D([], [], color="0.3", lw=0 if marker else 1.3,
                   marker=ROLE_STYLE[r][0] if marker else None,
                   ls="none" if marker else ROLE_STYLE[r][1], ms=4,
                   markerfacecolor="white" if r == "mechanism control" else "0.3", label=r)
            for r in ROLE_STYLE if r in present]


# --- figures -------------------------------------------------------------------------------------

def forest_figure(st: pd.DataFrame, dataset: str, arch: str, margin: float,
                  baseline: str = "ce"):
    """Each variant's paired difference to the baseline, sorted, with its 95% interval, one
    panel per setting; the marker and colour give the verdict, the shaded band is the
    equivalence margin. ``st`` is the statistics table (percentage points)."""
    _theme()
    d = st[(st["dataset"] == dataset) & (st["arch"] == arch) & (st["baseline"] == baseline)]
    settings = [s for s in ("reference", "tuned") if (d["setting"] == s).any()]
    if not settings:
        return None
    heights = [max(1.2, 0.17 * (d["setting"] == s).sum() + 0.55) for s in settings]
    fig, axes = _figure(sum(heights) + 0.7, nrows=len(settings), squeeze=False,
                        gridspec_kw={"height_ratios": heights})
    for ax, setting in zip(axes[:, 0], settings):
        g = d[d["setting"] == setting].sort_values("mean_diff", kind="stable")
        values = pd.concat([g["ci_low"], g["ci_high"], g["mean_diff"]]).dropna()
        low, high = min(values.min(), -margin), max(values.max(), margin)  # NaN CI: one seed
        symlog = high - low > 8  # a few huge losses would flatten every small difference
        y = np.arange(len(g))
        ax.axvspan(-margin, margin, color="0.88", zorder=0, lw=0)
        ax.axvline(0, color="0.35", lw=0.8, zorder=1)
        for yi, (_, r) in zip(y, g.iterrows()):
            marker, colour = VERDICT_STYLE[r["verdict"]]
            if not np.isnan(r["ci_low"]):
                ax.plot([r["ci_low"], r["ci_high"]], [yi, yi], color=colour, lw=1.4, zorder=2)
            fragile = bool(r.get("fragile", False))  # hollow: the verdict is fragile
            ax.plot([r["mean_diff"]], [yi], marker=marker, color=colour, ms=5, zorder=3,
                    ls="none", markerfacecolor="white" if fragile else colour)
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
    handles = [Line2D([], [], marker=m, color=c, ls="-", lw=1.2, ms=5, label=v)
               for v, (m, c) in VERDICT_STYLE.items()]
    handles.append(matplotlib.patches.Patch(color="0.88", label=f"±{margin:g} equivalence margin"))
    if "fragile" in d and d["fragile"].astype(bool).any():
        handles.append(Line2D([], [], marker="o", color="0.3", markerfacecolor="white", ls="none",
                              ms=5, label="hollow: fragile verdict"))
    _legend_below(fig, handles, ncol=6 if len(handles) > 5 else 5)
    return fig


def forest(st: pd.DataFrame, dataset: str, arch: str, folder: Path, margin: float,
           baseline: str = "ce") -> list[Path]:
    fig = forest_figure(st, dataset, arch, margin, baseline)
    return [] if fig is None else save(fig, folder, f"forest_{dataset}_{arch}")


def accuracy_figure(runs: pd.DataFrame, dataset: str):
    """Final-epoch test top-1 per variant (rows, readable names) and architecture (panels):
    mean with its 95% bootstrap interval, one dot per seed, the baseline's mean a dashed line."""
    _theme()
    d = runs[runs["dataset"] == dataset].copy()
    d["top1"] = d["final_test_top1"] * 100
    order = stats.variant_order(d["variant"])
    archs = sorted(d["arch"].unique())
    colours = method_colours(d["method"].unique())
    method = dict(zip(d["variant"], d["method"]))
    fig, axes = _figure(0.16 * len(order) + 1.0, ncols=len(archs), sharey=True, squeeze=False)
    for ax, arch in zip(axes[0], archs):
        a = d[d["arch"] == arch]
        for i, v in enumerate(order):
            x = a.loc[a["variant"] == v, "top1"].to_numpy(float)
            if not len(x):
                continue
            lo, hi = band(x)
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
    return save(accuracy_figure(runs, dataset), folder, f"accuracy_{dataset}")


def curves_figure(epochs: pd.DataFrame, dataset: str, metric: str = "test_top1",
                  ylabel: str = "test top-1 (%)"):
    """``metric`` against epoch: rows = architectures, columns = method families
    (:func:`facets`); colour = method, dash = teacher source, markers = tuned values; the
    baseline in every panel; mean over seeds with a 95% bootstrap band; one y-range for all."""
    _theme()
    d = epochs[(epochs["dataset"] == dataset) & epochs[metric].notna()
               & epochs["epoch"].notna()].copy()
    if d.empty:
        return None
    d["value"] = d[metric] * 100
    archs = sorted(d["arch"].unique())
    groups = facets(d)
    colours = method_colours(d["method"].unique())
    dashes = source_dashes(d["teacher_source"].unique())
    fig, axes = _figure(1.9 * len(archs) + 1.2, nrows=len(archs), ncols=len(groups),
                        sharex=True, sharey=True, squeeze=False)
    summary = (d.groupby(["arch", "variant", "epoch"])["value"]
               .agg(["mean", lambda x: band(x.to_numpy(float))]).reset_index())
    summary.columns = ["arch", "variant", "epoch", "mean", "band"]
    info = d.drop_duplicates("variant").set_index("variant")[["method", "teacher_source"]]
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
                ax.set_ylabel(f"{arch}\n{ylabel}")
            if row == len(archs) - 1:
                ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    seeds = int(d.groupby(["arch", "variant"])["seed"].nunique().max())
    fig.suptitle(f"{dataset}: {ylabel} per epoch (mean over {seeds} seeds, 95% bootstrap band)")
    several = d["method"].isin(groups.get(SEVERAL_SOURCES, []))
    handles = _style_handles(d["method"].unique(), set(d.loc[several, "teacher_source"]),
                             set(), colours, dashes) + _role_handles(d["variant"].unique(), False)
    _legend_below(fig, handles, ncol=5)
    return fig


def curves(epochs: pd.DataFrame, dataset: str, folder: Path, metric: str = "test_top1",
           ylabel: str = "test top-1 (%)", name: str = "curves") -> list[Path]:
    fig = curves_figure(epochs, dataset, metric, ylabel)
    return [] if fig is None else save(fig, folder, f"{name}_{dataset}")


#: The accuracy-cost figure shows this many points below the baseline's best; lower points sit
#: on the axis as ▼ (their values are in the tables).
COST_WINDOW = 6.0


def cost_figure(points: pd.DataFrame, dataset: str, baseline: str = "ce"):
    """Accuracy against compute, counted two ways: one point per variant (mean final-epoch test
    top-1 with its 95% bootstrap interval) at the images it forwarded over its whole run (top
    row) and at its measured training seconds (bottom row, when recorded), both relative to the
    baseline's, one column per architecture; the baseline's variants (an epoch ladder, when the
    grid has one) joined by a dashed line. ``points``: dataset, arch, variant, method,
    rel_images, rel_seconds, mean, low, high."""
    _theme()
    d = points[points["dataset"] == dataset]
    if d.empty:
        return None
    archs = sorted(d["arch"].unique())
    colours = method_colours(d["method"].unique())
    xs = [("rel_images", f"images forwarded per run / {baseline}'s")]
    if "rel_seconds" in d and d["rel_seconds"].notna().all():
        xs.append(("rel_seconds", f"training seconds per run / {baseline}'s"))
    fig, axes = _figure(3.0 * len(xs), ncols=len(archs), nrows=len(xs), squeeze=False)
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
    handles += _role_handles(d["variant"].unique(), True)
    if (ladder > 1).any():
        handles.append(Line2D([], [], color=colours[baseline], ls="--", lw=1,
                              label=f"{baseline} at its epoch budgets"))
    _legend_below(fig, handles, ncol=6)
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
    ax.set_ylim(bottom=floor - 0.1)  # the ▼ of a point below the window sit inside the axes
    ax.set_title(f" ({below} below the axis, ▼)" if below else "")
    ax.set_xlabel(label)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g×"))


def _ladder(points: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The baseline's own points at its epoch budgets (``ce``, ``ce@2x``, ...)."""
    return points[[stats.budget_factor(v, baseline) is not None for v in points["variant"]]]


def cost(points: pd.DataFrame, dataset: str, folder: Path, baseline: str = "ce") -> list[Path]:
    fig = cost_figure(points, dataset, baseline)
    return [] if fig is None else save(fig, folder, f"accuracy_cost_{dataset}")


def lattice_figure(lat: pd.DataFrame, dataset: str):
    """The rectification effect over the lattice: rows = teacher sources, columns =
    architectures, each panel a heat-map over (alpha, T) of the mean paired difference (e.g.
    DR-KD − Tf-KD self, points), written in each square with its 95% interval; a verdict other
    than inconclusive is named under the number. One colour scale for every panel, centred on 0
    and linear within ±1 point (symmetric log beyond), so that a large effect does not wash
    out the small ones."""
    _theme()
    d = lat[lat["dataset"] == dataset]
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
    fig, axes = _figure(height, PAGE_WIDTH, nrows=len(sources), ncols=len(archs), squeeze=False)
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
                text = f"{r['mean_diff']:+.2f}\n[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]"
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
    fig, axes = _figure(0.32 * len(sources) + 1.5, ncols=len(archs), sharey=True,
                        squeeze=False)
    for ax, arch in zip(axes[0], archs):
        for i, source in enumerate(sources):
            g = d[(d["arch"] == arch) & (d["teacher_source"] == source)]
            if g.empty:
                continue
            r = g.iloc[0]
            marker, colour = VERDICT_STYLE[r["verdict"]]
            ax.plot([r["ci_low"], r["ci_high"]], [i, i], color=colour, lw=1.4)
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
    _legend_below(fig, handles, ncol=len(handles))
    return fig


def lattice(lat: pd.DataFrame, dataset: str, folder: Path) -> list[Path]:
    fig = lattice_figure(lat, dataset)
    return [] if fig is None else save(fig, folder, f"lattice_{dataset}")


def landscape_figure(trials: pd.DataFrame):
    """Validation accuracy over each Optuna study's searched hyperparameters: two parameters as
    axes (colour = final validation top-1) or one against the accuracy; pruned or failed trials
    grey crosses, trials still running hollow circles (never counted as pruned), the best
    finished trial a star."""
    _theme()
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
    fig, grid = _figure(2.1 * rows + 0.8, ncols=cols, nrows=rows, squeeze=False)
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
    _legend_below(fig, handles, ncol=4)
    return fig


def landscape(trials: pd.DataFrame, folder: Path) -> list[Path]:
    fig = landscape_figure(trials)
    return [] if fig is None else save(fig, folder, "tuning_landscape")


# --- layout checks -------------------------------------------------------------------------------

def overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of text boxes that overlap where one of them is a legend or a title (the figure's
    title or an axes' title): matplotlib's rendered extents, in display pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes: list[tuple[str, object, bool]] = []
    if fig._suptitle is not None and fig._suptitle.get_text():
        boxes.append(("suptitle", fig._suptitle.get_window_extent(renderer), True))
    for i, leg in enumerate(fig.legends):
        boxes.append((f"figure legend {i}", leg.get_window_extent(renderer), True))
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            if t.get_text():
                boxes.append((f"axes {i} title", t.get_window_extent(renderer), True))
        if ax.get_legend() is not None:
            boxes.append((f"axes {i} legend", ax.get_legend().get_window_extent(renderer), True))
        for name, label in (("xlabel", ax.xaxis.label), ("ylabel", ax.yaxis.label)):
            if label.get_text():
                boxes.append((f"axes {i} {name}", label.get_window_extent(renderer), False))
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        shown = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
        shown += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        for t in shown:  # the labels drawn: inside the view, visible, not empty
            if t.get_text() and t.get_visible():
                boxes.append((f"axes {i} tick {t.get_text()}", t.get_window_extent(renderer),
                              False))
    out = []
    for i, (na, a, ka) in enumerate(boxes):
        for nb, b, kb in boxes[i + 1:]:
            if (ka or kb) and a.overlaps(b) and a.width > 0 and b.width > 0:
                out.append((na, nb))
    return out


def aggregate_figure(agg: pd.DataFrame, taus: np.ndarray, curves: dict, methods: dict[str, str],
                     baseline: str = "ce", sources: dict[str, str] | None = None):
    """The answer across tasks: per variant the IQM of its score against its baseline (column
    ``baseline``: tuned CE for a tuned variant; points, 95% stratified-bootstrap interval; a
    row whose baseline is not ``baseline`` names it), its probability of improvement over it, and
    the performance profiles (share of runs whose score exceeds tau). Colour = method; a
    variant's teacher source is the line style and the marker (named in the legend)."""
    _theme()
    order = list(agg["variant"])
    colours = method_colours(set(methods.values()))
    sources = sources or {}
    dashes = source_dashes(set(sources.values()))
    shown = [s for s in dict.fromkeys(sources.get(v, "") for v in order)]
    markers = {s: "osD^v<>"[i % 7] for i, s in enumerate(shown)}
    height = max(2.4, 0.22 * len(order) + 1.2)
    fig, (ax_iqm, ax_poi, ax_prof) = _figure(height, ncols=3)
    y = np.arange(len(order))[::-1]
    for yi, (_, r) in zip(y, agg.iterrows()):
        c = colours[methods.get(r["variant"], r["variant"])]
        mk = markers[sources.get(r["variant"], "")]
        ax_iqm.errorbar(r["iqm"], yi, xerr=[[r["iqm"] - r["iqm_low"]], [r["iqm_high"] - r["iqm"]]],
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
    lo = min(agg["iqm_low"].min(), 0)
    hi = max(agg["iqm_high"].max(), 0)
    pad = 0.08 * (hi - lo or 1)
    ax_iqm.set_xlim(lo - pad, hi + pad)
    ax_poi.set_xlim(0, 1)
    ax_iqm.set_xlabel("IQM of score − baseline (points)")
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
    ax_prof.set_xlabel("tau (points)")
    ax_prof.set_ylabel("share of runs: score > tau")
    ax_prof.set_title("performance profiles")
    handles = [Line2D([], [], color=colours[methods.get(v, v)], lw=1.2,
                      ls=dashes[sources.get(v, "")], marker=markers[sources.get(v, "")], ms=4,
                      label=v) for v in order]
    _legend_below(fig, handles, ncol=min(4, len(handles)))
    return fig


def aggregate(agg: pd.DataFrame, taus: np.ndarray, curves: dict, methods: dict[str, str],
              folder: Path, baseline: str = "ce", sources: dict[str, str] | None = None
              ) -> list[Path]:
    return save(aggregate_figure(agg, taus, curves, methods, baseline, sources), folder,
                "aggregate")
