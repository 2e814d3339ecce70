"""The fifth edition's headline in one family: every tuned-against-tuned comparison of its parts
(the digits grid, the Fashion-MNIST `mlp` grid), Holm over all of them together. Each part's
report adjusts within its own declared families; this is the widest family the edition has, so
a verdict the answer quotes from a part's family is checked against it
(scripts/fifth-edition-answer.py states the widest family's verdict where the two disagree).

    python scripts/fifth-edition-pooled.py OUT.csv PART.csv.gz [PART.csv.gz ...] [--config NAME]
"""
import argparse
from pathlib import Path

import pandas as pd

from analysis import load, stats


def pooled(parts: list[Path], analysis: stats.Analysis) -> pd.DataFrame:
    together = pd.concat([load.finished_runs_from_csv(part) for part in parts],
                         ignore_index=True).assign(part="edition")
    return stats.by_budget(together, "final_test_top1", analysis, 100.0, scope="part")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("parts", type=Path, nargs="+")
    p.add_argument("--config", help="the grid config whose analysis block declares the families")
    args = p.parse_args()
    analysis = stats.Analysis()
    if args.config:
        from benchmark import config

        analysis = config.load_grid(args.config).analysis_settings()
    frame = pooled(args.parts, analysis)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False, float_format="%.10g")
    print(f"{len(frame)} comparisons in {frame['family'].nunique()} family written to {args.out}")


if __name__ == "__main__":
    main()
