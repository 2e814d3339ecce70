"""The fifth edition's convergence ladder from its committed parts: each rung against twice its
epochs (paired by seed, Holm within the task, TOST at +-0.25 points), on validation top-1 (what
decides a task's budget) and on test top-1 (reported beside it), and the mean per rung.

    python scripts/ladder5.py [--figures DIR] [PARTS...]
        (default parts: results/published/fifth-edition/ladder/parts; --figures: also draw
        DIR/ladder.png and .pdf, each rung's mean validation and test top-1 and the budget named)
"""
import sys
from pathlib import Path

import pandas as pd

from analysis import load, stats

ROOT = Path(__file__).resolve().parents[1]


def main(paths: list[Path], figures: Path | None = None) -> str:
    epochs = pd.concat([load.epochs_from_csv(p) for p in paths], ignore_index=True)
    done = epochs[(epochs["kind"] == "train") & (epochs["status"] == "FINISHED")]
    runs = load.runs_from_epochs(done)
    analysis = stats.Analysis.from_mapping({"margin": 0.25})
    out = [f"{len(runs)} finished CE runs from {', '.join(p.name for p in paths)}", ""]
    columns = ["dataset", "arch", "epochs", "epochs_double", "n_pairs", "mean_diff", "ci_low_total",
               "ci_high_total", "p_holm", "p_tost_holm", "verdict"]
    for metric, words in (("final_val_top1", "validation top-1 (decides the budget)"),
                          ("final_test_top1", "test top-1 (reported beside it)")):
        ladder = stats.ladder(runs, metric, analysis, scale=100.0)
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
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    figures = None
    if args[:1] == ["--figures"]:
        figures, args = Path(args[1]), args[2:]
    given = [Path(a) for a in args]
    parts = given or sorted((ROOT / "results/published/fifth-edition/ladder/parts").glob("*.gz"))
    print(main(parts, figures))
