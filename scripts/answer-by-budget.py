"""The fifth edition's answer against the training budget, from the exported runs of its rungs
(each rung a grid trained and tuned at its own epochs, exported with 'drkd-bench export'):
every tuned-against-tuned comparison at each budget, Holm within the declared families of the
grid it came from (each PART one grid: the edition's comparisons keep its report's verdicts,
a rung's are adjusted among themselves), written as tables/answer_by_budget.csv and
figures/answer_budget.png under OUT (the fifth edition's: results/published/fifth-edition/budget,
beside the report's own tables and figures).

    python scripts/answer-by-budget.py OUT PART.csv.gz [PART.csv.gz ...] [--config NAME]
        [--budgets LADDER/tables/ladder_budgets.csv ...]
"""
import argparse
from pathlib import Path

import pandas as pd

from analysis import load, plots, stats


def comparisons(parts: list[Path], analysis: stats.Analysis) -> pd.DataFrame:
    """Every tuned-against-tuned comparison of each part at its budgets, Holm within each
    part's families: a part is one grid, known by its path (two grids' exports may share a file
    name, runs.csv.gz, in their own folders)."""
    runs = [load.finished_runs_from_csv(part).assign(part=str(part.resolve())) for part in parts]
    return stats.by_budget(pd.concat(runs, ignore_index=True), "final_test_top1", analysis,
                           100.0, scope="part")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("parts", type=Path, nargs="+")
    p.add_argument("--config", help="the grid config whose analysis block declares the families")
    p.add_argument("--budgets", type=Path, action="append", default=[],
                   help="a ladder's ladder_budgets.csv: each task's converged budget, marked in "
                   "the figure, and a task trained short of it said so (repeatable)")
    args = p.parse_args()
    analysis = stats.Analysis()
    if args.config:
        from benchmark import config

        analysis = config.load_grid(args.config).analysis_settings()
    frame = comparisons(args.parts, analysis)
    if frame.empty:
        raise SystemExit("no tuned-against-tuned comparison in these parts")
    (args.out / "tables").mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "tables" / "answer_by_budget.csv", index=False, float_format="%.10g")
    converged: dict[tuple[str, str], int | None] = {}
    for path in args.budgets:  # a task in two ladders: the first given names its budget
        table = pd.read_csv(path)
        for d, a, b in zip(table["dataset"], table["arch"], table["budget"]):
            converged.setdefault((d, a), int(b) if str(b).isdigit() else None)
    plots.budget(frame, args.out / "figures", analysis.margin, converged)
    print(f"{len(frame)} comparisons at {frame['epochs'].nunique()} budgets written under "
          f"{args.out}")


if __name__ == "__main__":
    main()
