"""Write the report: tables under ``OUT/tables``, figures under ``OUT/figures`` and
``OUT/README.md``, the page a reader opens: what the data is (read from the data), the verdicts
with the forest plots, every figure embedded, every table linked, a glossary, and every
comparison in words. Files are built in a temporary folder and swapped in, so a crash leaves the
previous report whole; the same input gives byte-identical files."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import aggregate, load, plots, stats, tables, webpage
from .folders import of_grid
from .plots.drawing import Drawing, Drawn

PROTOCOL = """## Protocol and statistics

The main tables give the **final-epoch** test top-1, mean ± std over seeds, and the gain over
{base} of the same architecture. Model selection never looks at the test set: the
*best-validation-epoch* column selects on the validation split carved from the training set. The
papers' protocol (best epoch *on the test set*) is shown only as a labelled, optimistic extra.
Intervals of an accuracy or a share are 95% percentile-bootstrap intervals over seeds (they stay
inside [0, 100]).

Each comparison is paired by seed: mean difference with a 95% Student-t interval over **seeds
and test images** (the test set's sampling variance of the difference added to the seeds':
measured from the runs' per-image correctness where every run kept it, else the conservative
bound that takes the two models' errors as independent; column `test_bound`; the seeds-only
interval stays beside it, `ci_low`/`ci_high`; the verdict's is `ci_low_total`/`ci_high_total`),
a two-sided t-test with that
interval's SE adjusted by Holm within its declared family, a TOST equivalence test, and the minimum
detectable difference (MDE) at {power:.0%} power and at the comparison's own Holm level (the
i-th smallest p of m in a family is tested at α / (m − i + 1); column `mde_holm`, and `mde` at
α unadjusted). Its verdict is one of *better*, *worse*
(adjusted p < α), *equivalent* (adjusted TOST p < α: the difference lies within the margin) or
*inconclusive* (neither: the data cannot tell, which is not evidence of no difference). Settings:
{analysis}.
"""

RANKING_CAPTION = ("Rank of the mean (1 = best; ties share the lower rank); its 95% interval and "
                   "P(rank 1) from {n} paired bootstrap resamples of the seeds; P(> {base}) = "
                   "P(X > {base}) over all seed pairs (Mann-Whitney U / nm, Agarwal et al. 2021).")


SENSITIVITY_CAPTION = ("eq_bound: the smallest margin (points) at which the unadjusted TOST "
                       "would call the pair equivalent. A verdict is *fragile* when it changes at "
                       "half or twice the margin, under Wilcoxon signed-rank tests, or under the "
                       "widest Holm family, every comparison the report states (columns "
                       "verdict_*).")

AGGREGATE_CAPTION = ("Score = final-epoch test top-1 − the baseline's (column `baseline`: {base}, "
                     "or {base}-tuned for a tuned variant, as in the per-task verdicts) of the "
                     "same task and seed, in points. IQM: 25% trimmed mean over all runs of all "
                     "tasks, of the scores in points (iqm) and of the scores divided per task by "
                     "the baseline's seed SD in that task (iqm_sd: a common scale, each task "
                     "counted by its own noise); "
                     "p_improve: P(X > Y), per task Mann-Whitney U / nm, mean over tasks "
                     "(rliable.metrics; scale-free); intervals: 95% percentiles of {n} "
                     "stratified bootstrap resamples (runs within each task), drawn by this "
                     "project with numpy (rliable's own bootstrap cannot import beside pandas 3). "
                     "The per-task verdicts are the primary evidence.")


@dataclass
class Page:
    """What the report's README shows: figures (embedded) and tables (linked), each with its
    caption, in the order they were written (a figure drawn in a child process takes its place
    when added and its paths when :meth:`resolve` waits for it)."""

    figures: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str, str]] = field(default_factory=list)
    forests: list[tuple[str, str]] = field(default_factory=list)
    pending: list[tuple] = field(default_factory=list)

    def add(self, paths: list[Path] | Drawn, what: str, root: Path, forest: bool = False) -> None:
        self.pending.append((paths, what, root, forest))

    def resolve(self) -> None:
        for paths, what, root, forest in self.pending:
            for p in paths.paths() if isinstance(paths, Drawn) else paths:
                rel = str(p.relative_to(root))
                if p.suffix == ".png":
                    (self.forests if forest else self.figures).append((rel, what))
                elif p.suffix == ".md":
                    self.tables.append((rel, what))
        self.pending.clear()


def from_tracking(uri: str, out: Path, analysis: stats.Analysis = stats.Analysis(),
                  cells: set[str] | None = None, grid: str | None = None) -> list[Path]:
    """The report of the store at ``uri``; with ``cells`` (a grid's cell hashes), its training
    runs are those cells' only, so that an older run under the same label with other settings
    (a changed default, an edited plugin) never mixes with the current one (a cell another grid
    trained first counts: it is the same cell); with ``grid``, its studies and trials are that
    grid's (or of no grid), never another config's."""
    epochs = load.epochs_from_tracking(uri)
    if cells is not None and len(epochs):
        keep = (epochs["kind"] != "train") | epochs["cell_hash"].isin(cells)
        epochs = epochs[keep]
    if grid is not None and len(epochs):
        other = of_grid(epochs[epochs["kind"] != "train"], grid)
        epochs = pd.concat([epochs[epochs["kind"] == "train"] if cells is not None
                            else of_grid(epochs[epochs["kind"] == "train"], grid), other])
    return build(epochs, out, source=store_source(uri), analysis=analysis)


def mixed_cells(epochs: pd.DataFrame) -> pd.DataFrame:
    """(dataset, arch, variant, seed) keys whose finished training runs carry more than one
    cell hash: one label, several settings; a report over them would pool them."""
    columns = ["dataset", "arch", "variant", "seed", "hashes"]
    if epochs.empty or "cell_hash" not in epochs:
        return pd.DataFrame(columns=columns)
    done = epochs[(epochs["kind"] == "train") & (epochs["status"] == "FINISHED")]
    n = done.groupby(["dataset", "arch", "variant", "seed"])["cell_hash"].nunique()
    return n[n > 1].rename("hashes").reset_index()


def from_csv(path: Path, out: Path, analysis: stats.Analysis = stats.Analysis()) -> list[Path]:
    return build(load.epochs_from_csv(path), out, source=csv_source(path), analysis=analysis)


def store_source(uri: str) -> str:
    short = uri.rsplit("/", 2)[-1] if uri.startswith("sqlite:") else uri
    return f"the tracking store `{short}`"


def csv_source(path: Path) -> str:
    return f"`{Path(path).name}` (exported runs)"


def build(epochs: pd.DataFrame, out: Path, source: str = "tracked runs",
          analysis: stats.Analysis = stats.Analysis()) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".report-") as tmp:
        tmp = Path(tmp)
        with Drawing() as draw:  # figures drawn side by side, one process per core
            _write_all(epochs, tmp, source, analysis, draw)
        webpage.write(tmp)  # report.html: the same report in one self-contained page
        written = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
        for sub in ("tables", "figures"):
            target = out / sub
            if target.exists():
                shutil.rmtree(target)
            if (tmp / sub).exists():
                (tmp / sub).rename(target)
        (tmp / "report.html").replace(out / "report.html")
        (tmp / "README.md").replace(out / "README.md")
    return [out / rel for rel in written]


def _write_all(epochs: pd.DataFrame, tmp: Path, source: str, analysis: stats.Analysis,
               draw: Drawing) -> None:
    train = epochs[epochs["kind"] == "train"] if "kind" in epochs else epochs
    finished = train[train["status"] == "FINISHED"] if len(train) else train
    runs = load.runs_from_epochs(finished)
    page = Page()
    tdir, fdir = tmp / "tables", tmp / "figures"
    base = analysis.baseline

    def add(paths: list[Path], what: str, forest: bool = False) -> None:
        page.add(paths, what, tmp, forest)

    # every comparison the report states, adjusted together (one pair, one verdict), then
    # shown in two tables: the equal-compute ones and the others
    everything = tables.answer_table(runs, finished, analysis=analysis) if len(runs) else None
    st = eq = None
    if everything is not None:
        at_compute = everything["setting"] == "equal compute"
        st = everything[~at_compute].drop(columns=stats.COST_COLUMNS).reset_index(drop=True)
        eq = everything[at_compute].reset_index(drop=True)
    lat = tables.lattice_table(st, runs, finished)
    datasets = sorted(runs["dataset"].unique()) if len(runs) else []
    every_run = runs
    if len(runs):  # the lattice's many fixed points have their own table and heat-map
        runs = runs[~runs["variant"].map(stats.is_lattice)]
    add(draw(plots.tuned, st, fdir, analysis.margin, base),
        "Tuned against tuned, every task: each tuned variant's paired difference to each tuned "
        "baseline (a panel per baseline: tuned CE first, then a tuned rival of the same "
        "teacher), with the interval its verdict uses; marker = verdict; hollow = fragile; "
        "shaded = the ±"
        f"{analysis.margin:g}-point equivalence margin", forest=True)
    for d in datasets:
        for arch in sorted(runs.loc[runs["dataset"] == d, "arch"].unique()):
            add(draw(plots.forest, st, d, arch, fdir, analysis.margin, base),
                f"{d} / {arch}: each variant's paired difference to {base} (95% CI), sorted; "
                f"marker = verdict; shaded = the ±{analysis.margin:g}-point equivalence margin",
                forest=True)
        display, numeric = tables.main_table(runs, d)
        add(tables.write(display, tdir, f"main_{d}", index=True, numeric=numeric),
            f"{d}: methods × architectures, final-epoch test top-1 mean ± std (n), gain over "
            f"{base}, best in bold")
        display, numeric = tables.ranking_table(runs, d, analysis=analysis)
        add(tables.write(display, tdir, f"ranking_{d}", numeric=numeric,
                         caption=RANKING_CAPTION.format(n=analysis.bootstrap, base=base)),
            f"{d}: the variants ranked per architecture and setting, with each rank's 95% "
            f"interval, P(rank 1) (paired bootstrap over seeds) and P(> {base})")
        add(draw(plots.accuracy, runs, d, fdir),
            f"{d}: final-epoch test top-1 per variant and architecture, 95% percentile-bootstrap "
            "interval over seeds")
        points = tables.cost_points(finished, runs, d, base)
        if not points.empty:
            add(draw(plots.cost, points, d, fdir, base),
                f"{d}: accuracy against the images forwarded over a run (student and teacher "
                f"models; top) and against the measured training seconds (bottom), relative to "
                f"{base}; dashed: {base} at its epoch budgets")
        if not lat.empty:
            add(draw(plots.lattice, lat, d, fdir),
                f"{d}: the rectification effect at identical (α, T) per teacher source "
                "(paired difference, 95% CI; verdict named where not inconclusive)")
        add(draw(plots.curves, finished, d, fdir),
            f"{d}: test top-1 against epoch, mean over seeds with a 95% percentile-bootstrap band")
        for column in sorted(c for c in finished.columns if c.startswith("diag_")):
            shown = finished[(finished["dataset"] == d) & finished[column].notna()]
            if len(shown):
                name = column[len("diag_"):]
                add(draw(plots.curves, shown, d, fdir, column,
                         f"{name.replace('_', ' ')} (%)", f"diag_{name}"),
                    f"{d}: diagnostic `{name}` per epoch (mean over seeds, 95% bootstrap band), "
                    "for the variants that log it: " + _meaning(shown, name))
    if st is not None:
        add(tables.write(tables.shown(st), tdir, "statistics", numeric=st,
                         caption="Paired differences in percentage points. "
                                 f"{analysis.describe()}. {SENSITIVITY_CAPTION}"),
            f"paired differences over seeds (percentage points): each method − {base}, DR-KD − "
            "Tf-KD self (same teacher source, same setting), tuned − reference values; 95% CI "
            "over seeds and test images (and over seeds alone), t-test p, Holm-adjusted p, TOST "
            "equivalence p, MDE, verdict, its family, "
            "its equivalence bound and whether it is fragile")
        if eq is not None and len(eq):
            add(tables.write(tables.shown(eq), tdir, "equal_compute", numeric=eq,
                             caption=f"Each variant against {base} at its own compute "
                                     f"(percentage points); a tuned variant against tuned {base}; "
                                     "images and training seconds relative to "
                                     f"{base} at its epochs. {analysis.describe()}. "
                                     f"{SENSITIVITY_CAPTION}"),
                f"gain at equal compute: each variant − {base} re-run at the epochs that "
                f"forward as many images (`{base}@2x`: twice its epochs); images and measured "
                f"training time relative to {base}'s; 95% CI, Holm-adjusted p, verdict")
        ladder = stats.ladder(runs, "final_test_top1", analysis)
        if len(ladder) > len(ladder.groupby(["dataset", "arch"])):  # more than one rung a task
            add(tables.write(ladder, tdir, "convergence_ladder",
                             caption=f"{base}'s epoch budgets, each against twice its epochs "
                                     "(percentage points, paired by seed; Holm within each "
                                     f"task's ladder; TOST at ±{analysis.margin:g}). "
                                     "first_converged: the smallest budget whose double is "
                                     "equivalent to it"),
                f"the convergence ladder: {base} at each epoch budget against twice its epochs "
                "per task, with the smallest budget where training longer no longer moves it")
        if not lat.empty:
            add(tables.write(lat, tdir, "lattice"),
                "the rectification lattice: each point (teacher source, α, T) with the paired "
                "difference, its 95% CI, Holm-adjusted p and verdict, and the teacher's error")
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
        note = "ours beside published numbers where dataset, architecture and method match"
        if pub.empty:
            note += " (none match the datasets in this store)"
        add(tables.write(pub if not pub.empty else pd.DataFrame(
            columns=["dataset", "arch", "method", "published_top1", "source"]),
            tdir, "published_comparison"), note)
        add(tables.write(tables.missing_cells(runs), tdir, "missing_cells"),
            "cells with fewer finished seeds than the most complete cell")
        studies = epochs[epochs["kind"].isin(["trial", "rescore"])] if "kind" in epochs \
            else epochs.iloc[:0]
        cost = tables.cost_table(finished, studies)
        if not cost.empty:
            add(tables.write(cost, tdir, "cost"),
                f"measured cost per variant against {base} of the same architecture: training "
                "time per epoch, images forwarded per epoch (student and a separate teacher), "
                "the teacher's extra memory, and for a tuned variant the images its study "
                "forwarded (trials and re-scores)")
    add(tables.write(tables.failures_table(train), tdir, "failed_runs"),
        "runs that failed or did not finish, with the reason")
    trials = epochs[epochs["kind"] == "trial"] if "kind" in epochs else epochs.iloc[:0]
    t = _trial_frame(trials) if len(trials) else None
    if t is not None:
        chosen = tables.tuning_table(epochs[epochs["kind"].isin(["trial", "rescore"])],
                                     used=tables.trials_used(epochs))
        add(tables.write(chosen, tdir, "tuning_choice"),
            "each study's choice and how far to trust it: winner and runner-up (validation "
            "top-1, mean over the trial's seeds), their margin, the winner's SD over its seeds, "
            "and its mean on fresh seeds with the drop (the winner's curse)")
        add(tables.write(_trial_table(t), tdir, "tuning_trials", numeric=t),
            "Optuna trials: study, state, the searched hyperparameters, validation accuracy")
        add(draw(plots.landscape, t, fdir),
            "Optuna: validation accuracy over each study's searched hyperparameters, a figure per "
            "task (finished trials coloured by it; pruned: grey ×, failed: red +, still running: "
            "hollow)")
    if analysis.aggregate and len(runs):
        agg = aggregate.aggregate(runs, analysis)
        if len(agg):
            methods = dict(zip(runs["variant"], runs["method"]))
            taus, curves = aggregate.profiles(runs, list(agg["variant"]), analysis)
            sources = dict(zip(runs["variant"], runs["teacher_source"].fillna("")))
            add(draw(plots.aggregate, agg, taus, curves, methods, fdir, base, sources),
                f"across {int(agg['tasks'].iloc[0])} tasks (dataset × condition × architecture): "
                f"IQM of each variant's score − its baseline ({base}; {base}-tuned for a tuned "
                "variant) standardised per task by the baseline's seed SD, its probability of "
                "improvement over that baseline, and performance profiles of the standardised "
                "scores; 95% stratified-bootstrap intervals (rliable's statistics, resampled "
                "here)",
                forest=True)
            shown = agg.round({c: 2 for c in ("iqm", "iqm_low", "iqm_high", "iqm_sd",
                                              "iqm_sd_low", "iqm_sd_high", "mean")}).round(
                {c: 3 for c in agg.columns if c.startswith("p_improve")})
            caption = AGGREGATE_CAPTION.format(base=base, n=analysis.bootstrap)
            add(tables.write(shown, tdir, "aggregate", numeric=agg, caption=caption),
                f"one answer across tasks: IQM of score − {base} ({base}-tuned for a tuned "
                f"variant) in points and standardised per task by {base}'s seed SD, probability "
                "of improvement over that baseline and over Tf-KD self, 95% stratified-bootstrap "
                "intervals (rliable's statistics, resampled here)")
    n_bad = len(tables.failures_table(train))
    page.resolve()
    (tmp / "README.md").write_text(readme(page, every_run, everything, trials, source, n_bad,
                                          analysis))


def readme(page: Page, runs: pd.DataFrame, st: pd.DataFrame | None, trials: pd.DataFrame,
           source: str, n_bad: int, analysis: stats.Analysis) -> str:
    """The report page: the data as it is, the verdicts and forest plots, the figures, the
    tables, the glossary, every comparison in words, and the protocol."""
    lines = ["# Report", "",
             f"Written by `drkd-bench report` from {source}: {len(runs)} finished training "
             f"runs, {n_bad} failed or unfinished. Accuracies are percentages on the test split.",
             ""]
    lines += _data_lines(runs, trials)
    if st is not None and len(st):
        lines += ["", "## Verdicts", "",
                  f"Each comparison ends in one of four words ({analysis.describe()}):", ""]
        lines += ["| family | comparisons | " + " | ".join(stats.VERDICTS) + " | fragile |",
                  "|---|---|" + "---|" * (len(stats.VERDICTS) + 1)]
        for family, g in st.groupby("family", sort=False):
            lines.append(f"| {family} | {len(g)} | " + " | ".join(
                str(int((g["verdict"] == v).sum())) for v in stats.VERDICTS) + " | "
                + str(int(g["fragile"].astype(bool).sum())) + " |")
        lines += ["", f"The equivalence margin ±{analysis.margin:g} points: "
                  f"{analysis.margin_reason}. " + _margin_in_sds(runs, analysis)]
        lines += _convergence_lines(st, analysis)
        lines += ["", "Every comparison in words: [below](#every-comparison-in-words); the "
                  "numbers: [tables/statistics.md](tables/statistics.md)."]
    for rel, what in page.forests:
        lines += ["", f"![{what}]({rel})", "", f"*{what}.*"]
    if page.figures:
        lines += ["", "## Figures"]
        for rel, what in page.figures:
            pdf = rel[:-len(".png")] + ".pdf"
            lines += ["", f"![{what}]({rel})", "", f"*{what}* ([PDF]({pdf}))"]
    if page.tables:
        lines += ["", "## Tables", "", "| table | what it is |", "|---|---|"]
        for rel, what in page.tables:
            stem = rel[:-len(".md")]
            lines.append(f"| [{Path(stem).name}]({rel}) ([CSV]({stem}.csv), [LaTeX]({stem}.tex))"
                         f" | {what} |")
    lines += [""] + _glossary(runs, st)
    if st is not None and len(st):
        lines += ["", "## Every comparison in words", "",
                  "Verdict, mean difference in points [95% CI], Holm-adjusted p (and the "
                  "adjusted TOST p where no difference was found), minimum detectable difference "
                  "at the declared power. *Inconclusive* means the seeds cannot tell; it is not "
                  "evidence of no difference."]
        for family, g in st.groupby("family", sort=False):
            lines += ["", f"### {family}", ""]
            lines += [f"- `{r['variant']}` − `{r['baseline']}`: {stats.sentence(r)}"
                      for _, r in g.iterrows()]
    lines += ["", PROTOCOL.format(base=analysis.baseline, power=analysis.power,
                                  analysis=analysis.describe()).rstrip()]
    return "\n".join(lines) + "\n"


def _margin_in_sds(runs: pd.DataFrame, analysis: stats.Analysis) -> str:
    """The margin in units of the baseline's seed SD (final test top-1), per task."""
    base = runs[runs["variant"] == analysis.baseline]
    parts = []
    for (d, a), g in base.groupby(["dataset", "arch"], sort=True):
        sd = float(g["final_test_top1"].std(ddof=1)) * 100
        if sd == sd and sd > 0:
            parts.append(f"{d}/{a} {analysis.margin / sd:.2f} (SD {sd:.2f})")
    return ("In units of " + analysis.baseline + "'s seed SD: " + "; ".join(parts) + ".") \
        if parts else ""


def _convergence_lines(st: pd.DataFrame, analysis: stats.Analysis) -> list[str]:
    """Whether the baseline has saturated per dataset x architecture, and the warning when not."""
    conv = stats.convergence(st, analysis.baseline)
    if conv.empty:
        return []
    out = ["", "### Has the baseline converged?", "",
           f"{analysis.baseline} at twice its epochs − {analysis.baseline} per dataset × "
           "architecture: *equivalent* says more epochs no longer move it.", ""]
    pt = stats.points_text
    for _, r in conv.iterrows():
        if not r["checked"]:
            out.append(f"- {r['dataset']} / {r['arch']}: not checked (no "
                       f"`{analysis.baseline}@2x` runs).")
            continue
        numbers = (f"{pt(r['mean_diff'])} [{pt(r['ci_low_total'])}, "
                   f"{pt(r['ci_high_total'])}]")
        if r["converged"]:
            out.append(f"- {r['dataset']} / {r['arch']}: converged (*equivalent*, {numbers}).")
        else:
            out.append(f"- {r['dataset']} / {r['arch']}: **not converged** (*{r['verdict']}*, "
                       f"{numbers}): "
                       "every comparison of this task sits where training longer still moves "
                       f"{analysis.baseline}; read them as statements about this budget only.")
    return out


def _data_lines(runs: pd.DataFrame, trials: pd.DataFrame) -> list[str]:
    """What the runs are, read from them: per dataset its architectures, variants, seeds per
    cell and epochs; the metric and the selection rule."""
    if runs.empty:
        return ["No finished training run: nothing to compare."]
    out = ["## The data", ""]
    for d, g in runs.groupby("dataset", sort=True):
        seeds = g.groupby(stats.CELL)["seed"].nunique()
        epochs = g["epochs"].dropna().astype(int) if "epochs" in g else pd.Series(dtype=int)
        n_seeds = f"{seeds.min()}" if seeds.min() == seeds.max() else \
            f"{seeds.min()} to {seeds.max()}"
        n_epochs = "" if epochs.empty else (
            f"{epochs.min()}" if epochs.min() == epochs.max() else
            f"{epochs.min()} to {epochs.max()}")
        archs = ", ".join(f"`{a}`" for a in sorted(g["arch"].unique()))
        out.append(f"- **{d}**: architectures {archs}; "
                   f"{g['variant'].nunique()} variants; **{n_seeds} seeds** per cell"
                   + (f"; {n_epochs} epochs" if n_epochs else "") + ".")
    tuned = any(stats.is_tuned(v) for v in runs["variant"])
    out += ["", "Metric: the test top-1 at the **final epoch** of each run (no selection on the "
            "test set)." + (" Variants ending in `-tuned` train with the hyperparameters of "
                            "their Optuna study's best trial, chosen on the validation split"
                            + (f" ({trials['study'].nunique()} studies)" if len(trials) else "")
                            + "; the others with their reference values." if tuned else "")]
    return out


def _glossary(runs: pd.DataFrame, st: pd.DataFrame | None) -> list[str]:
    """The glossary's entries for the words this report uses: method and variant names,
    teacher sources, diagnostics and the statistics' words."""
    glossary = pd.read_csv(Path(__file__).with_name("glossary.csv"))
    words = set()
    if len(runs):
        words |= set(runs["method"]) | set(runs.get("teacher_source", pd.Series(dtype=str)))
        words |= {c[len("final_diag_"):] for c in runs.columns if c.startswith("final_diag_")}
        if any(stats.is_tuned(v) for v in runs["variant"]):
            words.add(stats.TUNED_SUFFIX)
    if st is not None and len(st):
        words |= {"MDE", "TOST", "Holm"} | set(st["verdict"])
    rows = glossary[glossary["term"].isin(words)]
    if rows.empty:
        return []
    return ["## Glossary", "", "| word | meaning |", "|---|---|"] + [
        f"| `{r.term}` | {r.meaning} |" for r in rows.itertuples()]


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
    for column in sorted(c for c in first.columns if c.startswith("param.hp.")) + [
            c for c in tables.SEARCHED_TRAIN if c in first.columns]:
        values = pd.to_numeric(first[column], errors="coerce")
        varies = values.groupby(first.get("study", "")).nunique(dropna=True).max()
        if values.notna().any() and varies > 1:
            out[column.split(".", 2)[-1]] = values
    out["value"] = pd.to_numeric(first.get("val_top1"), errors="coerce")
    return out.sort_values(["study", "trial"]).reset_index(drop=True)


def _trial_table(t: pd.DataFrame) -> pd.DataFrame:
    """The trials as the table shows them: hyperparameters as searched (4 significant digits,
    so that 0.0612 and 0.0613 stay apart) and the validation top-1 in percent."""
    shown = t.drop(columns=["value"])
    for column in shown.columns[3:]:
        shown[column] = [f"{v:.4g}" if v == v else "" for v in shown[column]]
    shown["val_top1 (%)"] = [f"{100 * v:.2f}" if v == v else "" for v in t["value"]]
    return shown
