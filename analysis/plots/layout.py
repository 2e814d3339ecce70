"""Layout checks: which texts of a figure overlap (the tests hold every figure to none)."""
from __future__ import annotations

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")



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
