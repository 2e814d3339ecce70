"""The report's tables as DataFrames, and writers for Markdown, CSV and LaTeX.

Accuracies are shown in percent. Every table is computed from the ``runs`` frame of
:mod:`analysis.load` (finished training runs only).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .precision import CSV_DIGITS

PCT = 100.0



def _fmt(x: float, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    x = round(x, digits) + 0.0  # no "-0.00"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _mean_std(row) -> str:
    """``mean ± std`` of a summary row (percent), the mean alone for a single value."""
    return f"{_fmt(row['mean'])} ± {_fmt(row['std'])}" if row["n"] > 1 else _fmt(row["mean"])


def main_table(runs: pd.DataFrame, dataset: str, metric: str = "final_test_top1"
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table, numeric long table). Display: variants x architectures, each cell
    ``mean ± std (n=k)`` of ``metric`` in percent and the gain over CE; the best mean of each
    column in bold (ties all bold)."""
    s = stats.summarize(runs[runs["dataset"] == dataset], metric)
    s[["mean", "std", "ci_low", "ci_high"]] *= PCT
    ce = s[s["variant"] == "ce"].set_index("arch")["mean"]
    s["gain_over_ce"] = [m - ce[a] if a in ce.index and v != "ce" else np.nan
                         for a, v, m in zip(s["arch"], s["variant"], s["mean"])]
    archs = sorted(s["arch"].unique())
    variants = stats.variant_order(s["variant"])
    display = pd.DataFrame(index=pd.Index(variants, name="method"), columns=archs, dtype=object)
    for arch in archs:
        col = s[s["arch"] == arch]
        best = col["mean"].max()
        for _, r in col.iterrows():
            text = _mean_std(r)
            if r["mean"] == best:
                text = f"**{text}**"
            text += f" (n={r['n']})"
            if not np.isnan(r["gain_over_ce"]):
                text += f" {_fmt(r['gain_over_ce'], sign=True)}"
            display.loc[r["variant"], arch] = text
    display = display.fillna("")
    order = {v: i for i, v in enumerate(variants)}
    long = s.assign(_o=s["variant"].map(order)).sort_values(["arch", "_o"]).drop(columns="_o")
    return display, long.reset_index(drop=True)


def ranking_table(runs: pd.DataFrame, dataset: str, metric: str = "final_test_top1",
                  analysis: stats.Analysis = stats.Analysis()
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display, numeric): per architecture and setting (``reference``; ``tuned`` when the grid
    has tuned variants, each variant with nothing to tune standing in both), every variant by
    rank of its mean (1 = best; ties share the lower rank) with ``mean ± std (n)``, the rank's
    95% interval and the probability of ranking first under a paired bootstrap over seeds, and
    the probability of improvement over the baseline P(X > CE) (see
    :func:`stats.rank_uncertainty`)."""
    r = stats.rank_uncertainty(runs[runs["dataset"] == dataset], metric, analysis)
    s = stats.summarize(runs[runs["dataset"] == dataset], metric)
    s[["mean", "std"]] *= PCT
    text = {(row["arch"], row["variant"]): f"{_mean_std(row)} (n={row['n']})"
            for _, row in s.iterrows()}
    r["mean"] *= PCT
    r = r.sort_values(["arch", "setting", "rank", "variant"], kind="stable").reset_index(drop=True)
    base = analysis.baseline
    display = pd.DataFrame({
        "arch": r["arch"], "setting": r["setting"], "rank": r["rank"].astype(int),
        "variant": r["variant"],
        "top-1 mean ± std (n)": [text[(a, v)] for a, v in zip(r["arch"], r["variant"])],
        "rank 95% interval": ["" if np.isnan(lo) else f"{int(lo)}–{int(hi)}"
                              for lo, hi in zip(r["rank_low"], r["rank_high"])],
        "P(rank 1)": [_fmt(x) for x in r["p_first"]],
        f"P(> {base})": [_fmt(x) for x in r["p_improvement"]]})
    return display, r


#: The training settings a study may search (``tune.optimiser``), as the runs record them.
SEARCHED_TRAIN = ["param.train.lr", "param.train.weight_decay"]


def trials_used(epochs: pd.DataFrame) -> dict[str, str]:
    """Per study, the trial whose searched values the grid's tuned cells trained with (read off
    the runs: what was trained, whichever rule chose it when the edition ran)."""
    if epochs.empty or "kind" not in epochs or "study" not in epochs:
        return {}
    last = epochs.groupby("run_id", sort=False).last()
    trials = last[last["kind"] == "trial"]
    tuned = last[(last["kind"] == "train") & last["variant"].map(stats.is_tuned).astype(bool)]
    out = {}
    for (d, a, v), g in tuned.groupby(["dataset", "arch", "variant"], sort=True):
        study = f"{d}/{a}/{stats.reference_of(v)}"
        candidates = trials[trials["study"] == study]
        columns = [c for c in candidates.columns if (c.startswith("param.hp.") or
                   c in SEARCHED_TRAIN) and pd.to_numeric(candidates[c], errors="coerce")
                   .nunique() > 1]
        if candidates.empty or not columns:
            continue
        ran = pd.to_numeric(g[columns].iloc[0], errors="coerce").to_numpy(float)
        for _, t in candidates.iterrows():
            if np.allclose(pd.to_numeric(t[columns], errors="coerce").to_numpy(float), ran,
                           rtol=1e-9, equal_nan=True):
                out[study] = str(t["trial"])
                break
    return out


def tuning_table(trials: pd.DataFrame, used: dict[str, str] | None = None) -> pd.DataFrame:
    """Per study, what a reader needs to judge its choice: complete trials, the images they
    forwarded (passes over the training set are in ``tuning_trials``), the winner's validation
    top-1 (mean over its seeds, percent), the runner-up's, the margin between them, the
    winner's SD over its seeds (how much one fixed setting moves from seed to seed), and, when
    re-scored, its mean on fresh seeds and the drop (the winner's curse). ``trials``: the
    ``kind`` trial and rescore runs of the export (one row per run, latest metrics); ``used``:
    the trial the grid's tuned cells trained with (:func:`trials_used`), the chosen one when
    a study was not re-scored."""
    columns = ["study", "trials", "seeds_per_trial", "images", "winner_trial", "winner",
               "runner_up", "margin", "winner_seed_sd", "rescored", "rescore_seeds", "drop",
               "margin_vs_sd", "chosen_trial", "chosen_rescored", "reference_trial",
               "reference_rescored"]
    if trials.empty or "study" not in trials:
        return pd.DataFrame(columns=columns)
    last = trials.groupby("run_id", sort=False).last().reset_index()
    state = last["state"] if "state" in last else pd.Series("", index=last.index)
    # complete trials only: a pruned one stopped early (older stores marked it FINISHED)
    done = last[(last["kind"] == "trial") & (last["status"] == "FINISHED")
                & ~state.isin(["PRUNED", "FAIL", "RUNNING"])]
    rows = []
    for study, g in done.groupby("study", sort=True):
        # the study's own order (tune.best_trial, Optuna's): value, then the earlier trial
        g = g.assign(value=pd.to_numeric(g["val_top1"], errors="coerce") * PCT,
                     number=pd.to_numeric(g["trial"], errors="coerce")).dropna(subset=["value"])
        g = g.assign(neg=-g["value"]).sort_values(["neg", "number"], kind="stable")
        if g.empty:
            continue
        sd = g.get("trial_val_sd", pd.Series(np.nan, index=g.index))
        top = g.iloc[0]
        runner = g["value"].iloc[1] if len(g) > 1 else np.nan
        row = {"study": study, "trials": len(g),
               "seeds_per_trial": int(pd.to_numeric(g.get("trial_seeds", pd.Series([1])))
                                      .fillna(1).max()),
               "images": (f"{pd.to_numeric(g['trial_images'], errors='coerce').sum():,.0f}"
                          if "trial_images" in g else ""),
               "winner_trial": top["trial"], "winner": top["value"], "runner_up": runner,
               "margin": top["value"] - runner,
               "winner_seed_sd": float(pd.to_numeric(sd, errors="coerce").loc[top.name]) * PCT,
               "rescored": np.nan, "rescore_seeds": 0, "drop": np.nan}
        scored = last[(last["kind"] == "rescore") & (last["study"] == study)]
        again = scored[scored["trial"].astype(str) == str(top["trial"])]
        if len(again):
            r = again.iloc[-1]
            row.update(rescored=float(r["val_top1"]) * PCT,
                       rescore_seeds=int(float(r.get("trial_seeds", 0))),
                       drop=float(r["val_top1"]) * PCT - top["value"])
        row.update(chosen_trial=(used or {}).get(study, top["trial"]),
                   chosen_rescored=row["rescored"],
                   reference_trial="", reference_rescored=np.nan)
        if len(scored):  # the choice: the best mean on fresh seeds among the re-scored
            fresh = scored.assign(fresh=pd.to_numeric(scored["val_top1"], errors="coerce")
                                  * PCT, sel=pd.to_numeric(scored.get("selected_val_top1"),
                                                           errors="coerce"),
                                  number=pd.to_numeric(scored["trial"], errors="coerce"))
            fresh = fresh.sort_values(["fresh", "sel", "number"], ascending=[False, False, True],
                                      kind="stable")
            row.update(chosen_trial=fresh["trial"].iloc[0],
                       chosen_rescored=float(fresh["fresh"].iloc[0]))
            if "reference" in fresh:
                ref = fresh[fresh["reference"].astype(str).str.lower() == "true"]
                if len(ref):
                    row.update(reference_trial=ref["trial"].iloc[0],
                               reference_rescored=float(ref["fresh"].iloc[0]))
        row["margin_vs_sd"] = row["margin"] / row["winner_seed_sd"] \
            if row["winner_seed_sd"] > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def tuned_values(epochs: pd.DataFrame) -> pd.DataFrame:
    """The hyperparameters each tuned variant trained with (its study's best trial), one row
    per (dataset, arch, variant); only the method's searched values, as the runs recorded them."""
    columns = ["dataset", "arch", "variant"]
    if epochs.empty or "variant" not in epochs:
        return pd.DataFrame(columns=columns)
    first = epochs[[stats.is_tuned(v) for v in epochs["variant"]]].groupby("run_id").first()
    if first.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, g in first.groupby(columns, sort=True):
        row = dict(zip(columns, key))
        reference = epochs[(epochs["dataset"] == key[0]) & (epochs["arch"] == key[1])
                           & (epochs["variant"] == stats.reference_of(key[2]))]
        for c in sorted(c for c in g.columns if c.startswith("param.hp.")) + [
                c for c in SEARCHED_TRAIN if c in g.columns]:
            value = pd.to_numeric(g[c], errors="coerce").dropna()
            ref = pd.to_numeric(reference[c], errors="coerce").dropna() if c in reference \
                else pd.Series(dtype=float)
            if len(value) and not (len(ref) and np.isclose(value.iloc[0], ref.iloc[0])):
                row[c.split(".", 2)[-1]] = f"{value.iloc[0]:.4g}"
        rows.append(row)
    out = pd.DataFrame(rows).fillna("")
    return _ordered(out[columns + sorted(c for c in out.columns if c not in columns)])


def stats_table(runs: pd.DataFrame, metric: str = "final_test_top1",
                analysis: stats.Analysis = stats.Analysis()) -> pd.DataFrame:
    """Every paired comparison in percentage points (:func:`stats.paired`)."""
    return stats.paired(runs, metric, analysis, scale=PCT)


def equal_compute_table(runs: pd.DataFrame, epochs: pd.DataFrame,
                        metric: str = "final_test_top1",
                        analysis: stats.Analysis = stats.Analysis()) -> pd.DataFrame:
    """Each variant's gain over the baseline at its own compute (:func:`stats.equal_compute`),
    in percentage points, with the images each side forwarded relative to the baseline's."""
    return stats.equal_compute(runs, epochs, metric, analysis, scale=PCT)


def answer_table(runs: pd.DataFrame, epochs: pd.DataFrame, metric: str = "final_test_top1",
                 analysis: stats.Analysis = stats.Analysis()) -> pd.DataFrame:
    """Every comparison of the report in percentage points, adjusted together, with each
    verdict's sensitivity (:func:`stats.answer`)."""
    return stats.answer(runs, epochs, metric, analysis, scale=PCT)


def shown(frame: pd.DataFrame) -> pd.DataFrame:
    """A comparisons frame as the Markdown/LaTeX tables show it: the alternative verdicts
    folded into one ``fragile`` column naming what moves the verdict."""
    out = frame.drop(columns=[c for c in stats.SENSITIVITY[1:] if c in frame])
    if "fragile" in frame:
        out["fragile"] = [stats.fragile_why(r) for _, r in frame.iterrows()]
    return out


LATTICE_COLUMNS = ["dataset", "arch", "teacher_source", "alpha", "temperature", "variant",
                   "baseline", "teacher_error", "n_pairs", "mean_diff", "ci_low_total",
                   "ci_high_total", "p_holm", "verdict"]


def lattice_table(st: pd.DataFrame, runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """The rectification lattice: each lattice comparison of the statistics table (a method
    against its rival at identical teacher source, alpha and T: DR-KD − Tf-KD self), with its
    lattice point read from the labels and the rival's teacher error (percent: 100 − its
    teacher's mean top-1 on the training batches over epochs and seeds)."""
    d = st[st["setting"] == "rectification lattice"] if st is not None else st
    if d is None or d.empty:
        return pd.DataFrame(columns=LATTICE_COLUMNS)
    source = dict(zip(zip(runs["dataset"], runs["arch"], runs["variant"]),
                      runs["teacher_source"]))
    error = {}
    if "diag_teacher_top1" in epochs:
        e = epochs.dropna(subset=["diag_teacher_top1"])
        error = (100 - e.groupby(stats.CELL)["diag_teacher_top1"].mean() * PCT).to_dict()
    rows = []
    for _, r in d.iterrows():
        point = stats.LATTICE.match(r["variant"])
        key = (r["dataset"], r["arch"], r["baseline"])
        rows.append({**{c: r[c] for c in ("dataset", "arch", "variant", "baseline", "n_pairs",
                                          "mean_diff", "ci_low_total", "ci_high_total",
                                          "p_holm",
                                          "verdict")},
                     "teacher_source": source.get(key, ""),
                     "alpha": float(point["alpha"]), "temperature": float(point["temperature"]),
                     "teacher_error": error.get(key, np.nan)})
    return (pd.DataFrame(rows, columns=LATTICE_COLUMNS)
            .sort_values(["dataset", "arch", "teacher_source", "temperature", "alpha"])
            .reset_index(drop=True))


def selection_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Final epoch, best-validation epoch (honest selection) and best-test epoch (the papers'
    optimistic protocol) test top-1, mean over seeds, in percent."""
    cols = {"final_test_top1": "final_epoch", "best_val_test_top1": "best_val_epoch",
            "best_test_top1": "best_test_epoch_optimistic"}
    g = runs.groupby(stats.CELL)[[c for c in cols if c in runs]].agg(["mean", "count"])
    out = pd.DataFrame(index=g.index)
    for c, name in cols.items():
        if c in runs:
            out[name] = g[(c, "mean")] * PCT
    out["n"] = g[("final_test_top1", "count")] if "final_test_top1" in runs else 0
    return _ordered(out.reset_index())


def calibration_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Final-epoch test ECE (percent) and NLL, mean and std over seeds."""
    rows = []
    for key, g in runs.groupby(stats.CELL):
        row = dict(zip(stats.CELL, key))
        row["n"] = len(g)
        for metric, scale in (("final_test_ece", PCT), ("final_test_nll", 1.0)):
            if metric in g:
                x = g[metric].dropna().to_numpy(float) * scale
                name = metric.replace("final_test_", "")
                row[f"{name}_mean"] = x.mean() if len(x) else np.nan
                row[f"{name}_std"] = x.std(ddof=1) if len(x) > 1 else np.nan
        rows.append(row)
    return _ordered(pd.DataFrame(rows))


def published() -> pd.DataFrame:
    return pd.read_csv(Path(__file__).with_name("published.csv"))


def published_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Our numbers beside the published ones wherever dataset, architecture and method match.
    Published numbers are the best test epoch of one run: compare them with our
    ``ours_best_test_epoch`` column, not with the honest final-epoch mean."""
    pub = published()
    if runs.empty:
        return pd.DataFrame()
    ours = runs.groupby(["dataset", "arch", "method", "variant"]).agg(
        ours_final_mean=("final_test_top1", "mean"), ours_final_std=("final_test_top1", "std"),
        ours_best_test_epoch=("best_test_top1", "mean"), n=("final_test_top1", "count"))
    ours[["ours_final_mean", "ours_final_std", "ours_best_test_epoch"]] *= PCT
    merged = ours.reset_index().merge(pub, on=["dataset", "arch", "method"], how="inner")
    return merged.rename(columns={"top1": "published_top1"})


def failures_table(epochs: pd.DataFrame) -> pd.DataFrame:
    if epochs.empty:
        return pd.DataFrame(columns=["cell_key", "status", "failure_reason"])
    first = epochs.groupby("run_id", sort=False).first().reset_index()
    bad = first[(first["status"] != "FINISHED") & (first["kind"] == "train")]
    return bad[["cell_key", "status", "failure_reason"]].sort_values("cell_key").reset_index(
        drop=True)


def missing_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, the (arch, variant) cells of its grid (every arch and variant seen on that
    dataset) with fewer finished seeds than the dataset's most complete cell."""
    columns = ["dataset", "arch", "variant", "seeds", "expected"]
    parts = []
    for dataset, d in runs.groupby("dataset", sort=True):
        counts = d.groupby(["arch", "variant"])["seed"].nunique()
        grid = pd.MultiIndex.from_product(
            [sorted(d["arch"].unique()), sorted(d["variant"].unique())], names=["arch", "variant"])
        counts = counts.reindex(grid, fill_value=0)
        short = counts[counts < counts.max()].rename("seeds").reset_index()
        parts.append(short.assign(dataset=dataset, expected=counts.max())[columns])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def study_images(trials: pd.DataFrame) -> dict[str, float]:
    """Per study: the images its trials and re-scores forwarded (each run's ``trial_images``,
    summed): the compute a tuned variant spent before it ran."""
    if trials.empty or "trial_images" not in trials or "study" not in trials:
        return {}
    last = trials.groupby("run_id", sort=False).last()
    spent = pd.to_numeric(last["trial_images"], errors="coerce")
    return spent.groupby(last["study"]).sum().to_dict()


def cost_table(epochs: pd.DataFrame, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (dataset, arch, variant), from the runs' own per-epoch cost records: the training-phase
    seconds per epoch relative to CE of the same dataset and architecture (mean over seeds and
    epochs), the images the student and a separate teacher model forward per epoch (relative to
    CE's), and the teacher's extra memory in MB. Empty when the runs carry no cost records."""
    columns = ["dataset", "arch", "variant", "time_vs_ce", "images_vs_ce", "student_images",
               "teacher_images", "teacher_state_mb", "n", "study_images"]
    spent = study_images(trials) if trials is not None else {}
    needed = {"cost_train_seconds", "cost_student_images", "cost_teacher_images"}
    if epochs.empty or not needed <= set(epochs.columns):
        return pd.DataFrame(columns=columns)
    e = epochs.dropna(subset=sorted(needed))
    per = e.groupby(stats.CELL).agg(
        seconds=("cost_train_seconds", "mean"), student_images=("cost_student_images", "mean"),
        teacher_images=("cost_teacher_images", "mean"),
        teacher_state_mb=("cost_teacher_state_mb", "max"), n=("run_id", "nunique")).reset_index()
    rows = []
    for (d, a), g in per.groupby(["dataset", "arch"], sort=True):
        ce = g[g["variant"] == "ce"]
        base_s = ce["seconds"].iloc[0] if len(ce) else np.nan
        base_i = (ce["student_images"] + ce["teacher_images"]).iloc[0] if len(ce) else np.nan
        for _, r in g.iterrows():
            rows.append({"dataset": d, "arch": a, "variant": r["variant"],
                         "time_vs_ce": _fmt(r["seconds"] / base_s, 2),
                         "images_vs_ce": _fmt((r["student_images"] + r["teacher_images"])
                                              / base_i, 2),
                         "student_images": int(r["student_images"]),
                         "teacher_images": int(r["teacher_images"]),
                         "teacher_state_mb": _fmt(r["teacher_state_mb"], 2), "n": int(r["n"]),
                         "study_images": _fmt(spent.get(
                             f"{d}/{a}/{stats.reference_of(r['variant'])}", np.nan), 0)
                         if stats.is_tuned(r["variant"]) else ""})
    out = _ordered(pd.DataFrame(rows, columns=columns))
    return out if spent else out.drop(columns="study_images")


def cost_points(epochs: pd.DataFrame, runs: pd.DataFrame, dataset: str, baseline: str = "ce"
                ) -> pd.DataFrame:
    """Per (arch, variant) of ``dataset``: the images the student and a separate teacher model
    forwarded over a whole run (the sum of the runs' per-epoch cost records, mean over seeds)
    relative to the baseline's, and the final-epoch test top-1 (percent) with its 95% bootstrap
    interval. Empty without cost records or without the baseline."""
    columns = ["dataset", "arch", "variant", "method", "rel_images", "rel_seconds", "mean",
               "low", "high", "n"]
    needed = {"cost_student_images", "cost_teacher_images"}
    if epochs.empty or not needed <= set(epochs.columns) or runs.empty:
        return pd.DataFrame(columns=columns)
    e = epochs[epochs["dataset"] == dataset].dropna(subset=sorted(needed))
    per_run = (e.assign(images=e["cost_student_images"] + e["cost_teacher_images"])
               .groupby(["arch", "variant", "run_id"])["images"].sum()
               .groupby(["arch", "variant"]).mean())
    seconds = (e.groupby(["arch", "variant", "run_id"])["cost_train_seconds"].sum()
               .groupby(["arch", "variant"]).mean()) if "cost_train_seconds" in e else None
    rows = []
    r = runs[runs["dataset"] == dataset]
    for (arch, variant), g in r.groupby(["arch", "variant"], sort=True):
        if (arch, variant) not in per_run.index or (arch, baseline) not in per_run.index:
            continue
        mean, low, high = stats.bounded_interval(g["final_test_top1"].to_numpy(float) * PCT)
        rows.append({"dataset": dataset, "arch": arch, "variant": variant,
                     "method": g["method"].iloc[0],
                     "rel_images": per_run[(arch, variant)] / per_run[(arch, baseline)],
                     "rel_seconds": (seconds[(arch, variant)] / seconds[(arch, baseline)]
                                     if seconds is not None else np.nan),
                     "mean": mean, "low": low if low == low else mean,
                     "high": high if high == high else mean, "n": len(g)})
    return pd.DataFrame(rows, columns=columns)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    order = {v: i for i, v in enumerate(stats.variant_order(frame["variant"]))}
    return (frame.assign(_o=frame["variant"].map(order))
            .sort_values(["dataset", "arch", "_o"]).drop(columns="_o").reset_index(drop=True))


# --- writers ------------------------------------------------------------------------------------

def _cell(x) -> str:
    if isinstance(x, float):
        return "" if np.isnan(x) else (f"{x:.4g}" if abs(x) < 1e-2 and x else f"{x:.2f}")
    return str(x)


def to_markdown(frame: pd.DataFrame, index: bool = False) -> str:
    f = frame.reset_index() if index else frame
    head = "| " + " | ".join(map(str, f.columns)) + " |"
    rule = "|" + "|".join("---" for _ in f.columns) + "|"
    body = ["| " + " | ".join(_cell(x) for x in row) + " |" for row in f.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _tex(text: str) -> str:
    text = str(text)
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"),
                 ("#", "\\#"), ("±", "$\\pm$")):
        text = text.replace(a, b)
    while "**" in text:
        text = text.replace("**", "\\textbf{", 1).replace("**", "}", 1)
    return text


def to_latex(frame: pd.DataFrame, index: bool = False) -> str:
    f = frame.reset_index() if index else frame
    lines = ["\\begin{tabular}{" + "l" * len(f.columns) + "}", "\\toprule",
             " & ".join(_tex(c) for c in f.columns) + " \\\\", "\\midrule"]
    lines += [" & ".join(_tex(_cell(x)) for x in row) + " \\\\"
              for row in f.itertuples(index=False)]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def write(frame: pd.DataFrame, folder: Path, name: str, index: bool = False,
          numeric: pd.DataFrame | None = None, caption: str = "") -> list[Path]:
    """``name.md`` and ``name.tex`` from ``frame`` (``caption`` above the table, a comment in
    LaTeX); ``name.csv`` from ``numeric`` (``CSV_DIGITS`` significant digits) or ``frame``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.md", folder / f"{name}.csv", folder / f"{name}.tex"]
    head_md = f"{caption}\n\n" if caption else ""
    head_tex = "".join(f"% {line}\n" for line in caption.splitlines())
    paths[0].write_text(head_md + to_markdown(frame, index))
    (numeric if numeric is not None else frame).to_csv(paths[1], index=index and numeric is None,
                                                       float_format=f"%.{CSV_DIGITS}g")
    paths[2].write_text(head_tex + to_latex(frame, index))
    return paths
