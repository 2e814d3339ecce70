"""The precision of the tables: how many digits a CSV keeps, the precision each column is
declared at (what the report and README print), and comparing two tables at it, so that a rebuild
on another chip, whose last places differ, is the same table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Every table's numbers are written with ``CSV_DIGITS`` significant digits: far beyond what any
#: sentence prints, and short of the last places that differ between chips (a p-value's 17th
#: digit differs between an AVX2 and an AVX-512 machine for the same statistics).
CSV_DIGITS = 10
#: The precision a number is *declared* at, per column: what the report and the README print
#: and what a rebuild is compared at (:func:`differences`). p-values: 4 significant digits;
#: differences, intervals, SDs and accuracies in points: 2 decimals; any other number: 6
#: significant digits.
P_VALUE_COLUMNS = ("p_value", "p_holm", "p_tost", "p_tost_holm")
POINT_COLUMNS = ("mean_diff", "ci_low", "ci_high", "sd_diff", "mde", "mde_holm", "eq_bound",
                 "ci_low_total", "ci_high_total", "gain_over_ce", "iqm", "iqm_low", "iqm_high")


def declared(column: str) -> tuple[str, int]:
    """A column's declared precision: ("significant", digits) or ("decimals", digits)."""
    if column in P_VALUE_COLUMNS:
        return "significant", 4
    if column in POINT_COLUMNS:
        return "decimals", 2
    return "significant", 6


def _unit(value: float, precision: tuple[str, int]) -> float:
    """One unit in the last declared place of ``value``."""
    kind, digits = precision
    if kind == "decimals" or value == 0:
        return 10.0 ** -digits
    return 10.0 ** (np.floor(np.log10(abs(value))) - digits + 1)


def differences(a: Path, b: Path) -> list[str]:
    """Where two CSV tables differ at their columns' declared precision (:func:`declared`):
    the same columns, the same rows, the same text in every non-numeric cell, and numbers
    within one unit of their last declared place (so a rounding boundary crossed by noise far
    below that place is no difference). Empty when they agree."""
    x, y = pd.read_csv(a), pd.read_csv(b)
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return [f"{a.name}: columns or rows differ ({list(x.columns)} x {len(x)} vs "
                f"{list(y.columns)} x {len(y)})"]
    out = []
    for col in x.columns:
        u, v = x[col], y[col]
        if pd.api.types.is_numeric_dtype(u) and pd.api.types.is_numeric_dtype(v):
            for i, (p, q) in enumerate(zip(u.to_numpy(float), v.to_numpy(float))):
                if np.isnan(p) and np.isnan(q):
                    continue
                if np.isnan(p) != np.isnan(q) or abs(p - q) > _unit(max(abs(p), abs(q)),
                                                                    declared(col)):
                    out.append(f"{a.name} row {i} {col}: {p!r} vs {q!r}")
        elif not u.astype(str).equals(v.astype(str)):
            i = int(np.flatnonzero(u.astype(str).to_numpy() != v.astype(str).to_numpy())[0])
            out.append(f"{a.name} row {i} {col}: {u.iloc[i]!r} vs {v.iloc[i]!r}")
    return out
