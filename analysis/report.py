"""Write the report: tables under ``OUT/tables``, figures under ``OUT/figures`` and
``OUT/README.md`` listing them. Files are built in a temporary folder and swapped in, so a crash
leaves the previous report whole; the same input gives byte-identical files."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from . import load, plots, stats, tables

INTRO = """# Report

Written by `drkd-bench report` from {source}. {n_runs} finished training runs, {n_bad} failed or
unfinished. Accuracies are percentages on the test split.

Protocol: the main tables give the **final-epoch** test top-1, mean ± std over seeds (n = seeds),
and the gain over CE of the same architecture. Model selection never looks at the test set: the
*best-validation-epoch* column selects on the validation split carved from the training set. The
papers' protocol (best epoch *on the test set*) is shown only as a labelled, optimistic extra.
Statistics: paired by seed, mean difference with a 95% Student-t interval and a two-sided paired
t-test; with 3 seeds, intervals are wide and p-values coarse.

| file | what it is |
|---|---|
"""


def from_tracking(uri: str, out: Path) -> list[Path]:
    return build(load.epochs_from_tracking(uri), out, source=store_source(uri))


def from_csv(path: Path, out: Path) -> list[Path]:
    return build(load.epochs_from_csv(path), out, source=csv_source(path))


def store_source(uri: str) -> str:
    short = uri.rsplit("/", 2)[-1] if uri.startswith("sqlite:") else uri
    return f"the tracking store `{short}`"


def csv_source(path: Path) -> str:
    return f"`{Path(path).name}` (exported runs)"


def build(epochs: pd.DataFrame, out: Path, source: str = "tracked runs") -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".report-") as tmp:
        tmp = Path(tmp)
        entries = _write_all(epochs, tmp, source)
        for sub in ("tables", "figures"):
            target = out / sub
            if target.exists():
                shutil.rmtree(target)
            if (tmp / sub).exists():
                (tmp / sub).rename(target)
        (tmp / "README.md").replace(out / "README.md")
    return [out / rel for rel, _ in entries] + [out / "README.md"]


def _write_all(epochs: pd.DataFrame, tmp: Path, source: str) -> list[tuple[str, str]]:
    train = epochs[epochs["kind"] == "train"] if "kind" in epochs else epochs
    finished = train[train["status"] == "FINISHED"] if len(train) else train
    runs = load.runs_from_epochs(finished)
    entries: list[tuple[str, str]] = []
    tdir, fdir = tmp / "tables", tmp / "figures"

    def add(paths: list[Path], what: str) -> None:
        for p in paths:
            entries.append((str(p.relative_to(tmp)), what))

    datasets = sorted(runs["dataset"].unique()) if len(runs) else []
    for d in datasets:
        display, numeric = tables.main_table(runs, d)
        add(tables.write(display, tdir, f"main_{d}", index=True, numeric=numeric),
            f"{d}: methods x architectures, final-epoch test top-1 mean ± std (n), gain over CE, "
            "best in bold")
        if any(stats.is_tuned(v) for v in runs.loc[runs["dataset"] == d, "variant"]):
            display, numeric = tables.ranking_table(runs, d)
            add(tables.write(display, tdir, f"ranking_{d}", index=True, numeric=numeric),
                f"{d}: every method at its reference values and with its own hyperparameters "
                "tuned under the equal budget, side by side, with each setting's ranking "
                "(final-epoch test top-1 mean ± std (n); rank 1 = best mean)")
        add(plots.accuracy(runs, d, fdir),
            f"{d}: final-epoch test top-1 per method and architecture, 95% Student-t CI over "
            "seeds (the statistics table's interval)")
        add(plots.curves(finished, d, fdir), f"{d}: test top-1 against epoch, mean over seeds "
                                             "with a 95% Student-t band")
        for column in sorted(c for c in finished.columns if c.startswith("diag_")):
            shown = finished[(finished["dataset"] == d) & finished[column].notna()]
            if len(shown):
                name = column[len("diag_"):]
                add(plots.curves(shown, d, fdir, column, f"{name.replace('_', ' ')} (%)",
                                 f"diag_{name}"),
                    f"{d}: diagnostic `{name}` per epoch (mean over seeds, 95% Student-t band), "
                    "for the variants that log it: " + _meaning(shown, name))
    if len(runs):
        st = tables.stats_table(runs)
        add(tables.write(st, tdir, "statistics"), "paired differences over seeds (percentage "
            "points): each method - CE, DR-KD - Tf-KD self (same teacher source, same "
            "setting), tuned - reference values; 95% CI, paired t-test p, verdict")
        add(tables.write(tables.selection_table(runs), tdir, "model_selection"),
            "test top-1 at the final epoch, at the best validation epoch (honest selection) and "
            "at the best test epoch (papers' protocol, optimistic)")
        tuned = tables.tuned_values(finished)
        if not tuned.empty:
            add(tables.write(tuned, tdir, "tuned_values"),
                "the hyperparameters each tuned variant trained with (its study's best trial "
                "on the validation split)")
        add(tables.write(tables.calibration_table(runs), tdir, "calibration"),
            "final-epoch test ECE (%, 15 bins) and NLL, mean and std over seeds")
        pub = tables.published_table(runs)
        note = ("ours beside published numbers where dataset, architecture and method match")
        if pub.empty:
            note += " (none match the datasets in this store)"
        add(tables.write(pub if not pub.empty else pd.DataFrame(
            columns=["dataset", "arch", "method", "published_top1", "source"]),
            tdir, "published_comparison"), note)
        add(tables.write(tables.missing_cells(runs), tdir, "missing_cells"),
            "cells with fewer finished seeds than the most complete cell")
        cost = tables.cost_table(finished)
        if not cost.empty:
            add(tables.write(cost, tdir, "cost"),
                "measured cost per variant against CE of the same architecture: training time "
                "per epoch, images forwarded per epoch (student and a separate teacher), the "
                "teacher's extra memory")
    add(tables.write(tables.failures_table(train), tdir, "failed_runs"),
        "runs that failed or did not finish, with the reason")
    trials = epochs[epochs["kind"] == "trial"] if "kind" in epochs else epochs.iloc[:0]
    if len(trials):
        t = _trial_frame(trials)
        add(tables.write(t, tdir, "tuning_trials"), "Optuna trials: study, state, the searched "
                                                     "hyperparameters, validation accuracy")
        add(plots.landscape(t, fdir),
            "Optuna: validation accuracy over each study's searched hyperparameters")
    n_bad = len(tables.failures_table(train))
    text = INTRO.format(source=source, n_runs=len(runs), n_bad=n_bad)
    text += "".join(f"| `{rel}` | {what} |\n" for rel, what in entries)
    (tmp / "README.md").write_text(text)
    return entries


def _meaning(frame: pd.DataFrame, name: str) -> str:
    """What a diagnostic means, as its runs were tagged (``diag.<name>``)."""
    column = f"tag.diag.{name}"
    if column in frame and frame[column].notna().any():
        return str(frame[column].dropna().iloc[0])
    return "logged by the method"


def _trial_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: study, trial, state, every hyperparameter the study searched (those
    that vary between its trials) and the validation accuracy."""
    first = trials.groupby("run_id", sort=False).last().reset_index()
    out = pd.DataFrame({"study": first.get("study", ""),
                        "trial": pd.to_numeric(first["trial"], errors="coerce"),
                        "state": first["state"]})
    for column in sorted(c for c in first.columns if c.startswith("param.hp.")):
        values = pd.to_numeric(first[column], errors="coerce")
        varies = values.groupby(first.get("study", "")).nunique(dropna=True).max()
        if values.notna().any() and varies > 1:
            out[column[len("param.hp."):]] = values
    out["value"] = pd.to_numeric(first.get("val_top1"), errors="coerce")
    return out.sort_values(["study", "trial"]).reset_index(drop=True)
