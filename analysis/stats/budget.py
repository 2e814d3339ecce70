"""The answer against the training budget: every paired comparison again at each budget the
runs were trained for, each budget's comparisons adjusted within their declared families as the
edition at that budget would state them."""
from __future__ import annotations

import pandas as pd

from analysis.stats.families import adjust
from analysis.stats.paired import HIDDEN, PAIR_COLUMNS, paired_rows
from analysis.stats.settings import Analysis


def by_budget(runs: pd.DataFrame, metric: str, analysis: Analysis = Analysis(),
              scale: float = 1.0, tuned_only: bool = True, scope: str = "epochs") -> pd.DataFrame:
    """One row per (budget, comparison): the runs of each budget (``epochs``: the epochs a run
    trained) compared as :func:`analysis.stats.paired` compares them, Holm within the declared
    families of one ``scope`` at a time, and the budget in ``epochs``. ``scope``: ``epochs``
    (every comparison at one budget together) or a column naming the grid each run came from
    (``part``: one exported grid): then a grid whose tasks train at different budgets (an
    edition, each task at its converged budget) keeps the families, and so the verdicts, that
    the grid's own report states, and a rung's comparisons are adjusted among themselves.
    ``tuned_only``: only the tuned-against-tuned comparisons (the answer's). Runs of one label
    at two budgets never pool: each budget is compared on its own runs."""
    columns = ["epochs"] + PAIR_COLUMNS
    if runs.empty or "epochs" not in runs or scope not in runs:
        return pd.DataFrame(columns=columns)
    out = []
    for _, group in runs.dropna(subset=[metric]).groupby(scope, sort=True):
        found = []
        for epochs, g in group.groupby("epochs", sort=True):
            rows = paired_rows(g, metric, analysis, scale)
            if tuned_only:
                rows = rows[rows["setting"] == "tuned"]
            if not rows.empty:
                found.append(rows.assign(epochs=int(epochs)))
        if not found:
            continue
        rows = pd.concat(found, ignore_index=True)
        out.append(adjust(rows, analysis).drop(columns=HIDDEN))
    if not out:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(out, ignore_index=True).sort_values("epochs", kind="stable")
    return frame[["epochs"] + [c for c in frame.columns if c != "epochs"]].reset_index(drop=True)
