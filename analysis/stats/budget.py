"""The answer against the training budget: every paired comparison again at each budget the
runs were trained for, each budget's comparisons adjusted within their declared families as the
edition at that budget would state them."""
from __future__ import annotations

import pandas as pd

from analysis.stats.families import adjust
from analysis.stats.paired import HIDDEN, PAIR_COLUMNS, paired_rows
from analysis.stats.settings import Analysis


def by_budget(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis(),
              scale: float = 1.0, tuned_only: bool = True) -> pd.DataFrame:
    """One row per (budget, comparison): the runs of each budget (``epochs``: the epochs a run
    trained) compared as :func:`analysis.stats.paired` compares them, Holm within the declared
    families of that budget alone, and the budget in ``epochs``. ``tuned_only``: only the
    tuned-against-tuned comparisons (the answer's). Runs of one label at two budgets never pool:
    each budget is compared on its own runs."""
    columns = ["epochs"] + PAIR_COLUMNS
    if runs.empty or "epochs" not in runs:
        return pd.DataFrame(columns=columns)
    out = []
    for epochs, g in runs.dropna(subset=[metric]).groupby("epochs", sort=True):
        rows = paired_rows(g, metric, analysis, scale)
        if tuned_only:
            rows = rows[rows["setting"] == "tuned"]
        if rows.empty:
            continue
        rows = adjust(rows.reset_index(drop=True), analysis).drop(columns=HIDDEN)
        out.append(rows.assign(epochs=int(epochs)))
    if not out:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(out, ignore_index=True)
    return frame[["epochs"] + [c for c in frame.columns if c != "epochs"]]
