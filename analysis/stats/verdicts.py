"""The one sentence the report writes about a comparison: its verdict, then the numbers that
carry it."""
from __future__ import annotations

import numpy as np

from analysis.stats.fragility import fragile_why


def sentence(row, digits: int = 2) -> str:
    """The words the report writes about one comparison: its verdict, then the numbers that
    carry it (the only way the report speaks of a comparison): the verdict's interval, over
    seeds and test images where the row has one."""
    def f_(x: float) -> str:
        return points_text(x, digits)
    if row["n_pairs"] >= 1 and row["mean_diff"] == 0 and not (row["sd_diff"] > 0) \
            and row["ci_low"] == row["ci_high"] == 0 and not row.get("se_images", 0) > 0:
        return f"identical: all {row['n_pairs']} paired differences are 0 (the same runs)"
    lo, hi = row.get("ci_low_total", row["ci_low"]), row.get("ci_high_total", row["ci_high"])
    interval = "" if np.isnan(lo) else f" [{f_(lo)}, {f_(hi)}]"  # the verdict's
    text = f"{row['verdict']}: {f_(row['mean_diff'])}{interval}"
    if not np.isnan(row["p_holm"]):
        text += f", Holm p {_p(row['p_holm'])}"
    if row["verdict"] in ("equivalent", "inconclusive") and not np.isnan(row["p_tost_holm"]):
        text += f", TOST p {_p(row['p_tost_holm'])}"
    mde = row.get("mde_holm", row["mde"])  # at the comparison's Holm level, where known
    if not np.isnan(mde):
        text += f", MDE {mde:.{digits}f}"
    text += f" (n = {int(row['n_pairs'])})"
    why = fragile_why(row) if "fragile" in row else ""
    if why:
        text = f"*fragile* {text}; {why}"
    return text


def points_text(x: float, digits: int = 2) -> str:
    """A difference in points as a reader rounds the table's value: its decimal digits (not
    the binary float's: 0.475 is +0.48, not +0.47), half away from zero, rounded once; signed."""
    from decimal import ROUND_HALF_UP, Decimal

    if x != x:
        return "nan"
    q = Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{abs(q):.{digits}f}"
    return ("-" if x < 0 else "+") + text


def verdict_interval(frame):
    """``frame`` with the verdict's interval in ``ci_low_total``/``ci_high_total``: a frame of
    comparisons made before the test images counted (only the seeds' ``ci_low``/``ci_high``)
    gets those."""
    if "ci_low_total" in frame or "ci_low" not in frame:
        return frame
    return frame.assign(ci_low_total=frame["ci_low"], ci_high_total=frame["ci_high"])


def _p(p: float) -> str:
    """Three significant digits (two below 0.001), so that 0.0497 never reads as 0.05."""
    return f"{p:.2g}" if p < 0.001 else f"{p:.3g}"
