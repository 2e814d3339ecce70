"""The figures' shared style: page size, fonts, one colour per method, dashes per teacher
source, markers per role, legends below the data, and saving with fixed metadata."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis import stats  # noqa: E402

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
#: Line patterns by teacher source (SOURCE_ORDER): every source a legend can show has its own
#: (partner and previous-batch were solid, like pretrained: three legend entries alike).
DASHES = ["-", "-", "-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)),
          (0, (3, 1, 1, 1)), (0, (8, 2))]


def save(fig, folder: Path, name: str) -> list[Path]:
    """PNG (at ``DPI``) and PDF of ``fig`` at its own size (no tight bounding box: the figure's
    width is the page width it was built for)."""
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    fig.savefig(png, dpi=DPI, metadata=PNG_META)
    fig.savefig(pdf, metadata=PDF_META)
    plt.close(fig)
    return [png, pdf]


def theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", rc={
        "font.size": FONT, "axes.titlesize": FONT + 1, "axes.labelsize": FONT,
        "xtick.labelsize": FONT - 1, "ytick.labelsize": FONT - 1, "legend.fontsize": FONT - 1,
        "figure.titlesize": FONT + 2, "legend.title_fontsize": FONT})
    matplotlib.rcParams["svg.hashsalt"] = "drkd-bench"
    matplotlib.rcParams["pdf.compression"] = 6


def new_figure(height: float, width: float = PAGE_WIDTH, **kw):
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


def legend_below(fig, handles: list, ncol: int) -> None:
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False,
               handlelength=2.6, columnspacing=1.2)


def style_handles(methods, sources, settings, colours, dashes) -> list:
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


def role_handles(variants, marker: bool, lines: bool = False) -> list:
    """Legend entries for the roles present (grey: the colour is the method's). ``lines``: the
    curves' roles, marked on lines whose pattern is the teacher source's, so each role is its
    marker alone and reference values (unmarked) have no entry."""
    present = {role(v) for v in variants}
    if present == {"reference values"}:
        return []
    if lines:
        return [Line2D([], [], color="0.3", ls="none", marker=ROLE_STYLE[r][0], ms=4,
                       markerfacecolor="white" if r == "mechanism control" else "0.3",
                       label=f"{r} (marked)") for r in ROLE_STYLE
                if r in present and r != "reference values"]
    return [Line2D([], [], color="0.3", lw=0 if marker else 1.3,
                   marker=ROLE_STYLE[r][0] if marker else None,
                   ls="none" if marker else ROLE_STYLE[r][1], ms=4,
                   markerfacecolor="white" if r == "mechanism control" else "0.3", label=r)
            for r in ROLE_STYLE if r in present]
