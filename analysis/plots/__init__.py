"""The report's figures, sized for a paper page: every figure is at most ``PAGE_WIDTH`` inches
wide at ``DPI`` (PNG, and a vector PDF beside it), fonts readable at print size, legends outside
the data and never over a title, one fixed colour-blind-safe colour per method in every figure,
intervals inside the metric's range. Each ``*_figure`` function returns the matplotlib figure
(the tests measure it); the plain functions save it and return the paths. Fixed metadata make a
regenerated file identical.

Modules: ``style`` (sizes, colours, markers, legends, saving), one module per figure family
(``forest``, ``accuracy``, ``curves``, ``cost``, ``lattice``, ``landscape``, ``aggregate``,
``budget``, ``ladder``),
``layout`` (the overlap check the tests use) and ``drawing`` (figures drawn side by side in
forked processes).
"""

from .accuracy import accuracy, accuracy_figure
from .aggregate import aggregate, aggregate_figure
from .budget import budget, budget_figure
from .cost import COST_WINDOW, cost, cost_figure
from .curves import curves, curves_figure
from .forest import forest, forest_figure, tuned, tuned_figure
from .ladder import ladder, ladder_figure
from .landscape import landscape, landscape_figure
from .lattice import lattice, lattice_figure
from .layout import overlaps
from .style import (
    DASHES,
    DPI,
    FONT,
    PAGE_WIDTH,
    PALETTE_ORDER,
    PDF_META,
    PNG_META,
    ROLE_STYLE,
    SEVERAL_SOURCES,
    SOURCE_ORDER,
    SYMLOG_TICKS,
    VERDICT_STYLE,
    band,
    facets,
    method_colours,
    role,
    save,
    source_dashes,
)

__all__ = [
    "COST_WINDOW",
    "DASHES",
    "DPI",
    "FONT",
    "PAGE_WIDTH",
    "PALETTE_ORDER",
    "PDF_META",
    "PNG_META",
    "ROLE_STYLE",
    "SEVERAL_SOURCES",
    "SOURCE_ORDER",
    "SYMLOG_TICKS",
    "VERDICT_STYLE",
    "accuracy",
    "accuracy_figure",
    "aggregate",
    "aggregate_figure",
    "budget",
    "budget_figure",
    "band",
    "cost",
    "cost_figure",
    "curves",
    "curves_figure",
    "facets",
    "forest",
    "forest_figure",
    "ladder",
    "ladder_figure",
    "landscape",
    "landscape_figure",
    "lattice",
    "lattice_figure",
    "method_colours",
    "overlaps",
    "role",
    "save",
    "source_dashes",
    "tuned",
    "tuned_figure",
]
