"""The fifth edition's convergence ladder from its committed parts: each rung against twice its
epochs (paired by seed, Holm within the task, TOST at +-0.25 points), on validation top-1 (what
decides a task's budget) and on test top-1 (reported beside it), and the mean per rung.

    python scripts/ladder5.py [--figures DIR] [--tables DIR] [PARTS...]
        (default parts: results/published/fifth-edition/ladder/parts; --figures: also draw
        DIR/ladder.png and .pdf, each rung's mean validation and test top-1 and the budget named;
        --tables: also write DIR/ladder.csv, every doubling on validation and test, and
        DIR/ladder_budgets.csv, the budget each task's rule names, and DIR/ladder_means.csv, each
        rung's mean validation and test top-1 in points and its runs)
"""
import sys
from pathlib import Path

import pandas as pd

from analysis import load, stats

ROOT = Path(__file__).resolve().parents[1]


def main(paths: list[Path], figures: Path | None = None, tables: Path | None = None) -> str:
    epochs = pd.concat([load.epochs_from_csv(p) for p in paths], ignore_index=True)
    done = epochs[(epochs["kind"] == "train") & (epochs["status"] == "FINISHED")]
    runs = load.runs_from_epochs(done)
    analysis = stats.Analysis.from_mapping({"margin": 0.25})
    out = [f"{len(runs)} finished CE runs from {', '.join(p.name for p in paths)}", ""]
    columns = ["dataset", "arch", "epochs", "epochs_double", "n_pairs", "mean_diff", "ci_low_total",
               "ci_high_total", "p_holm", "p_tost_holm", "verdict"]
    doublings = []
    for metric, words in (("final_val_top1", "validation top-1 (decides the budget)"),
                          ("final_test_top1", "test top-1 (reported beside it)")):
        ladder = stats.ladder(runs, metric, analysis, scale=100.0)
        doublings.append(ladder[columns].assign(metric=metric))
        out += [f"## Doubling the epochs: {words}", "",
                ladder[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"), ""]
    means = (runs.groupby(["dataset", "arch", "variant"])[["final_val_top1", "final_test_top1"]]
             .agg(["mean", "std", "count"]).mul([100, 100, 1, 100, 100, 1]).round(2))
    out += ["## Mean, SD (points) and runs per rung", "", means.to_string(), ""]
    budgets = stats.ladder_budgets(runs, "final_val_top1", analysis, 100.0)
    out += ["## The budget each task's rule names (validation decides)", "",
            budgets.to_string(index=False), ""]
    if figures is not None:
        from analysis import plots

        plots.ladder(runs, budgets, figures)
    if tables is not None:
        tables.mkdir(parents=True, exist_ok=True)
        pd.concat(doublings, ignore_index=True).to_csv(tables / "ladder.csv", index=False,
                                                       float_format="%.10g")
        budgets.to_csv(tables / "ladder_budgets.csv", index=False)
        flat = runs.assign(epochs=runs["epochs"].astype(int))
        (flat.groupby(["dataset", "arch", "epochs"], sort=True)
         .agg(val_top1=("final_val_top1", "mean"), test_top1=("final_test_top1", "mean"),
              runs=("final_test_top1", "size"))
         .mul([100, 100, 1]).reset_index()
         .to_csv(tables / "ladder_means.csv", index=False, float_format="%.10g"))
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    folders: dict[str, Path | None] = {"--figures": None, "--tables": None}
    while args[:1] and args[0] in folders:
        folders[args[0]], args = Path(args[1]), args[2:]
    given = [Path(a) for a in args]
    parts = given or sorted((ROOT / "results/published/fifth-edition/ladder/parts").glob("*.gz"))
    print(main(parts, folders["--figures"], folders["--tables"]))
