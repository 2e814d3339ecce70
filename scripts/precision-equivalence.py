"""The precision equivalence study's analysis: each arm (a results folder of
benchmark/configs/precision-equivalence.yaml run with one precision and memory format) against
fp32 contiguous, paired by task, method and seed, on the final test top-1 (and validation
top-1 beside it); Student-t interval, TOST within +-0.25 points, Holm over every comparison of
the study (one declared family). Writes the arms' exported runs (parts/), equivalence.csv, a
forest figure and README.md into OUT, with the chip the arms ran on.

    python scripts/precision-equivalence.py RESULTS OUT
    e.g. python scripts/precision-equivalence.py results/precision \
             results/published/precision-equivalence
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd

from analysis import load, stats
from analysis.stats.families import adjust
from analysis.stats.paired import HIDDEN, _pair_row

REFERENCE = "fp32-contiguous"
MARGIN = 0.25


def arms(results: Path) -> dict[str, pd.DataFrame]:
    """Each arm's epoch rows: from its store, else from the exported part already in OUT."""
    out = {}
    for folder in sorted(p for p in results.iterdir() if (p / "mlflow.db").is_file()):
        frame = load.epochs_from_tracking(f"sqlite:///{(folder / 'mlflow.db').resolve()}")
        out[folder.name] = frame[(frame["kind"] == "train") & (frame["status"] == "FINISHED")]
    return out


def compare(runs_by_arm: dict[str, pd.DataFrame], metric: str) -> pd.DataFrame:
    """Every arm against the reference, per task and method, Holm over the whole study."""
    analysis = dataclasses.replace(stats.Analysis.from_mapping({"margin": MARGIN}),
                                   family=("setting",))
    rows = []
    ref = runs_by_arm[REFERENCE]
    for arm, runs in sorted(runs_by_arm.items()):
        if arm == REFERENCE:
            continue
        both = pd.concat([ref.assign(variant=ref["variant"] + "@" + REFERENCE),
                          runs.assign(variant=runs["variant"] + "@" + arm)])
        for (_, _, method), g in both.groupby(
                ["dataset", "arch", both["variant"].str.split("@").str[0]]):
            names = set(g["variant"])
            if {f"{method}@{REFERENCE}", f"{method}@{arm}"} <= names:
                row = _pair_row(g, f"{method}@{arm}", f"{method}@{REFERENCE}", metric,
                                analysis, 100.0, "precision")
                rows.append({**row, "method": method, "arm": arm})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = adjust(frame, analysis).drop(columns=HIDDEN)
    # every paired difference exactly 0: no test applies (no variance), and none is needed
    same = (frame["n_pairs"] >= 2) & (frame["mean_diff"] == 0) & (frame["sd_diff"] == 0)
    frame.loc[same, "verdict"] = "identical"
    return frame


def figure(table: pd.DataFrame, path: Path) -> None:
    from analysis.plots import style

    style.theme()
    table = table.reset_index(drop=True)
    fig, ax = style.new_figure(0.32 * len(table) + 1.4)
    y = range(len(table))
    colours = {"equivalent": "#009E73", "identical": "#009E73", "inconclusive": "0.45",
               "better": "#0072B2", "worse": "#D55E00"}
    for i, r in table.iterrows():
        ax.errorbar(r["mean_diff"], i, xerr=[[r["mean_diff"] - r["ci_low_total"]],
                                             [r["ci_high_total"] - r["mean_diff"]]],
                    fmt="o", color=colours.get(r["verdict"], "k"), ms=4, capsize=2)
    ax.axvspan(-MARGIN, MARGIN, color="0.9", zorder=0)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(list(y), [f"{r.dataset}/{r.arch} {r.method}: {r.arm}"
                            for r in table.itertuples()])
    ax.invert_yaxis()
    ax.set_xlabel("final test top-1: arm − fp32 contiguous (points, 95% CI, paired by seed)")
    ax.set_title(f"Each arm against fp32 contiguous (shaded: ±{MARGIN} points; colour: "
                 "verdict, Holm over the study)")
    style.save(fig, path.parent, path.stem)


def main(results: Path, out: Path) -> None:
    from benchmark.store import provenance

    runs_by_arm = {}
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for arm, epochs in arms(results).items():
        committed = parts / f"{arm}.csv.gz"
        if committed.is_file():  # a store resumed elsewhere (grid --done-in): never lose a part
            # a cell both hold was retrained on purpose (the digits mlp runs again, to keep
            # their per-image correctness): the store's run replaces the part's
            done = load.epochs_from_csv(committed)
            done = done[~done["cell_hash"].isin(set(epochs["cell_hash"]))]
            epochs = pd.concat([done, epochs], ignore_index=True)
        epochs.to_csv(committed, index=False)
        runs_by_arm[arm] = load.runs_from_epochs(epochs)
    for part in sorted(parts.glob("*.csv.gz")):  # arms run on an earlier machine, committed
        arm = part.name.removesuffix(".csv.gz")
        if arm not in runs_by_arm:
            runs_by_arm[arm] = load.runs_from_epochs(load.epochs_from_csv(part))
    if REFERENCE not in runs_by_arm:
        raise SystemExit(f"no {REFERENCE} arm under {results} or {parts}: nothing to compare")
    test = compare(runs_by_arm, "final_test_top1")
    val = compare(runs_by_arm, "final_val_top1")
    if test.empty:
        raise SystemExit(f"no arm has finished a task beside {REFERENCE} yet "
                         f"({', '.join(sorted(runs_by_arm))}); the parts are in {parts}")
    columns = ["dataset", "arch", "method", "arm", "n_pairs", "mean_diff", "ci_low_total",
               "ci_high_total",
               "sd_diff", "p_holm", "p_tost_holm", "mde", "verdict"]
    test[columns].to_csv(out / "equivalence.csv", index=False, float_format="%.10g")
    val[columns].to_csv(out / "equivalence_validation.csv", index=False, float_format="%.10g")
    figure(test, out / "figures" / "precision_equivalence.png")
    chips = sorted({f"{provenance.cpu_vendor()} {provenance.cpu_model()} "
                    f"({provenance.cpu_capability()}; {provenance.cpu_flags()})"})
    lines = ["# Precision equivalence", "",
             "CE and DR-KD (online teacher, reference values) on the fourth edition's four "
             "tasks (clean labels, 30 epochs), seeds 200-209, each in fp32 contiguous (the "
             "reference) and in the arms below; final test top-1, arm − reference, paired by "
             f"seed; TOST within ±{MARGIN} points, Holm over every comparison of the study; "
             "*identical*: every paired difference is exactly 0 (bit-identical accuracies). "
             "Config: `benchmark/configs/precision-equivalence.yaml`; run: "
             "`scripts/precision-equivalence.sh`; this page: "
             "`scripts/precision-equivalence.py`.", "",
             f"Finished so far: {len(test)} of the study's 16 comparisons (4 tasks × 2 methods ×"
             " 2 arms); a comparison joins when both its arms have its task's 10 seeds.", "",
             f"Chip: {'; '.join(chips)} (the machine that wrote this page; each run's own chip "
             "is in its tags in `parts/`).", "",
             "```", test[columns].to_string(index=False, float_format=lambda x: f"{x:.3g}"),
             "```", "",
             "Validation top-1, the same comparisons: `equivalence_validation.csv`.", "",
             "![precision equivalence](figures/precision_equivalence.png)", ""]
    (out / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
