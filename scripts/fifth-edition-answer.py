"""The fifth edition's answer in words, from its committed tables only: tables/statistics.csv
and tables/aggregate.csv of the edition (the comparison at each task's converged budget),
budget/tables/answer_by_budget.csv (the answer at every rung of the ladder, each rung tuned at
its own budget), the ladder's ladder.csv and ladder_budgets.csv (the budgets), and the fourth
edition's tables/statistics.csv (the 30-epoch answer it replaces). A part trained short of
convergence (a folder of the edition with its own tables/statistics.csv: Fashion-MNIST `mlp`)
joins the verdicts with its budget (from answer_by_budget.csv) and the CE ladder's remaining
gain (ladder/tables/ladder_means.csv) stated; pooled/headline.csv (every part's headline in one
Holm family, scripts/fifth-edition-pooled.py) is the widest family: where its verdict differs
from a part's own, the wider one is stated. Every claim is a verdict of its declared family with
the interval the verdict uses.
README.md carries this text between its `answer:begin` and `answer:end` marks; a test rebuilds it
from the tables and compares.
Usage: python scripts/fifth-edition-answer.py [EDITION-FOLDER]   (prints it)
       python scripts/fifth-edition-answer.py --readme           (writes it into README.md)"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EDITION = ROOT / "results" / "published" / "fifth-edition"
FOURTH = ROOT / "results" / "published" / "paper-question"
LADDER = EDITION / "ladder-folds" / "tables"
#: the fourth edition's answer script: the same wording helpers (verdict lists, tallies, numbers)
_FOURTH = runpy.run_path(str(Path(__file__).with_name("paper-question-answer.py")))
_num, _entry, _verdicts, _rows, _tally, TASKS = (
    _FOURTH[k] for k in ("_num", "_entry", "_verdicts", "_rows", "_tally", "TASKS"))
BEGIN, END = _FOURTH["BEGIN"], _FOURTH["END"]
CONDITIONS = {"clean": "clean", "sym40": "40% noise"}
#: The smallest difference the edition was sized to detect at each comparison's Holm level.
TARGET = 0.3


def _budgets(ladder: Path) -> pd.DataFrame:
    """Per task the budget the ladder's rule names, with its doubling on validation."""
    budgets = pd.read_csv(ladder / "ladder_budgets.csv")
    doublings = pd.read_csv(ladder / "ladder.csv")
    val = doublings[doublings["metric"] == "final_val_top1"]
    rows = []
    for b in budgets.itertuples():
        hit = val[(val["dataset"] == b.dataset) & (val["arch"] == b.arch)
                  & (val["epochs"] == int(b.budget))]
        rows.append({"dataset": b.dataset, "arch": b.arch, "budget": int(b.budget),
                     "doubling": hit.iloc[0] if len(hit) else None})
    return pd.DataFrame(rows)


def _task_name(dataset: str, arch: str) -> str:
    for d, a, name in TASKS:
        if dataset.split(":")[0] == d and arch == a:
            return name
    return f"{dataset} `{arch}`"


def _short_parts(edition: Path) -> list[Path]:
    """The edition's parts trained short of convergence: its sub-folders with their own report."""
    return sorted(p.parents[1] for p in edition.glob("*/tables/statistics.csv"))


def _widest(st: pd.DataFrame, edition: Path) -> tuple[pd.DataFrame, str]:
    """The verdicts of the widest family (pooled/headline.csv) where they differ from each
    part's own, and the sentence that says how many changed and which ("" without it)."""
    path = edition / "pooled" / "headline.csv"
    if not path.is_file():
        return st, ""
    keys = ["dataset", "arch", "variant", "baseline"]
    pooled = pd.read_csv(path)
    wide = pooled[keys + ["verdict"]].rename(columns={"verdict": "wide"})
    st = st.merge(wide, on=keys, how="left")
    moved = st["wide"].notna() & (st["wide"] != st["verdict"])
    changed = [f"{_task_name(r.dataset, r.arch)} {CONDITIONS[r.dataset.split(':')[1]]} "
               f"{r.variant.removesuffix('-tuned')} − {r.baseline.removesuffix('-tuned')} "
               f"*{r.verdict}* → *{r.wide}*" for r in st[moved].itertuples()]
    st.loc[moved, "verdict"] = st.loc[moved, "wide"]
    if changed:
        said = f"{len(changed)} verdicts change, stated so below: " + ", ".join(changed)
    else:
        said = "every verdict stands"
    return (st.drop(columns="wide"),
            f" In one family of all {len(pooled)} headline comparisons {said}.")


def _short_budgets(edition: Path, tasks: list[tuple[str, str]]) -> str:
    """'Fashion `mlp` clean 30 (CE ... +2.76 points by 480 epochs), ...': each short task's
    budget (answer_by_budget.csv) and what its CE ladder still gains after it."""
    by_budget = edition / "budget" / "tables" / "answer_by_budget.csv"
    means_path = edition / "ladder" / "tables" / "ladder_means.csv"
    frame = pd.read_csv(by_budget) if by_budget.is_file() else pd.DataFrame()
    means = pd.read_csv(means_path) if means_path.is_file() else pd.DataFrame()
    out = []
    for d, a in tasks:
        hit = frame[(frame["dataset"] == d) & (frame["arch"] == a)] if len(frame) else frame
        if hit.empty or hit["epochs"].nunique() != 1:
            continue
        e = int(hit["epochs"].iloc[0])
        text = f"{_task_name(d, a)} {CONDITIONS[d.split(':')[1]]} {e}"
        ladder = means[(means["dataset"] == d) & (means["arch"] == a)] if len(means) else means
        at = ladder[ladder["epochs"] == e]
        if len(at) == 1:
            peak = ladder.loc[ladder["test_top1"].idxmax()]
            gain = float(peak["test_top1"] - at["test_top1"].iloc[0])
            text += (f" (CE's ladder still gains {_num(gain)} points of test top-1 by "
                     f"{int(peak['epochs'])} epochs)" if int(peak["epochs"]) > e else
                     " (CE's ladder peaks there)")
        out.append(text)
    return "; ".join(out)


def answer(edition: Path = EDITION, fourth: Path = FOURTH, ladder: Path = LADDER) -> str:
    own = pd.read_csv(edition / "tables" / "statistics.csv")
    short = [pd.read_csv(p / "tables" / "statistics.csv") for p in _short_parts(edition)]
    short_tasks = sorted({(d, a) for f in short for d, a in zip(f["dataset"], f["arch"])})
    st, widest = _widest(pd.concat([own, *short], ignore_index=True), edition)
    budgets = _budgets(ladder)
    have = sorted({(d, a) for d, a in zip(own["dataset"], own["arch"])})
    budgets = budgets[[(d, a) in have for d, a in zip(budgets["dataset"], budgets["arch"])]]
    drkd = st[st["variant"].str.startswith("drkd-") & st["variant"].str.endswith("-tuned")]
    seeds = sorted(set(drkd["n_pairs"].astype(int)))
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    mde = {c: drkd[drkd["dataset"].str.endswith(":" + c)]["mde_holm"] for c in CONDITIONS}
    reached = "; ".join(f"{CONDITIONS[c]} {m.min():.2f}–{m.max():.2f}"
                        for c, m in mde.items() if len(m))
    miss = drkd["mde_holm"] - TARGET
    over = int((miss > 0).sum())
    if over:
        which = f"all {len(drkd)}" if over == len(drkd) else f"{over} of {len(drkd)}"
        missed = (f"the plan's target, {TARGET:g} points, is missed by {which} (by up to "
                  f"{miss.max():.2f} points)")
    else:
        missed = f"every one within the plan's target, {TARGET:g} points"
    head = drkd["family"].iloc[0]
    own_head = int((own["family"] == head).sum())
    short_text = _short_budgets(edition, short_tasks)
    bounds = set(drkd["test_bound"])
    images = ("the test set's share measured from each run's per-image correctness"
              if bounds == {"paired images"} else
              "the test set's share from per-image correctness where both runs kept it, "
              "else the conservative independence bound")
    per_task = "; ".join(
        f"{_task_name(b.dataset, b.arch)} {CONDITIONS[b.dataset.split(':')[1]]} {b.budget}"
        for b in budgets.sort_values(["arch", "dataset"], ascending=[False, True]).itertuples())
    if short_text:
        shorts = (f"; and {len(short_tasks)} tasks **short of convergence**, at the budget the "
                  f"edition could afford (epochs: {short_text}; Fashion-MNIST: a 5,000-image "
                  "training subset, 10,000 test images)")
        family = (f"{own_head} comparisons in the converged tasks' grid, "
                  f"{int((st['family'] == head).sum()) - own_head} in the short part's: Holm "
                  "over every tuned-against-tuned comparison of each grid, and where one family "
                  "of all of them disagrees its verdict is stated")
    else:
        shorts = ""
        family = (f"{own_head} comparisons: Holm over every tuned-against-tuned comparison")
    lines = [
        f"{len(have) + len(short_tasks)} tasks: digits `mlp` and digits `cnn8` (scikit-learn's "
        "8×8 digits, 450 test images), each on clean labels and under 40% symmetric label "
        "noise, **each trained to convergence**, at the budget its CE ladder names (epochs: "
        f"{per_task}; the first rung, of 30 to 480 epochs, whose doubling is equivalent within "
        "±0.25 points on 5-fold validation, under noise the rung where validation peaks)"
        f"{shorts}; {n} seeds per comparison; every variant tuned with the same 12 trials, "
        "each 5-fold cross-validated on the training split, the best 3 and the reference "
        "values re-scored on 3 fresh seeds; each claim about tuned DR-KD is a verdict of the "
        f"family *{head}* ({family}; the rest, {int((st['family'] != head).sum())}, form the "
        "field), ±0.5-point "
        f"equivalence; paired difference in points [95% CI over seeds and test images, {images}]"
        "; *fragile*: the verdict moves at half or twice the margin, under Wilcoxon tests or in "
        "the widest family. Minimum detectable differences of the DR-KD comparisons (80% power "
        f"at each one's Holm level): {reached} points; {missed}.",
        ""]
    conv = []
    for b in budgets.itertuples():
        if b.doubling is not None:
            d = b.doubling
            conv.append(f"{_task_name(b.dataset, b.arch)} {CONDITIONS[b.dataset.split(':')[1]]} "
                        f"{int(d.epochs)}→{int(d.epochs_double)} *{d.verdict}* "
                        f"{_num(d.mean_diff)} [{_num(d.ci_low_total)}, {_num(d.ci_high_total)}]")
    lines.append("* **The budgets**: CE's validation top-1 from each budget to twice it: "
                 + "; ".join(conv) + " (under noise the budget is where validation peaks, and "
                 "CE falls after it as it memorises wrong labels; the ladder's table and "
                 "figure: `results/published/fifth-edition/ladder-folds/`).")
    heads = {(c, src): (_rows(st, c, f"drkd-{src}-tuned", "ce-tuned"),
                        _rows(st, c, f"drkd-{src}-tuned", f"tfkd-self-{src}-tuned"))
             for c in CONDITIONS for src in ("online", "pretrained")}
    against = {"tuned CE": [row for vs_ce, _ in heads.values() for row in vs_ce],
               "tuned Tf-KD self": [row for _, vs_tf in heads.values() for row in vs_tf]}
    lines.append("* **In short**: " + "; ".join(
        f"of the {len(r)} comparisons of tuned DR-KD with {k}, {_tally(r, ('better',))}"
        for k, r in against.items()) + "." + widest)
    titles = {"clean": "Clean labels", "sym40": "40% symmetric noise"}
    for (condition, source), (vs_ce, vs_tf) in heads.items():
        if vs_ce or vs_tf:
            lines.append(f"* **{titles[condition]}, `{source}` teacher**, tuned DR-KD − tuned "
                         f"CE: {_verdicts(vs_ce)}. Against tuned Tf-KD self: {_verdicts(vs_tf)}.")
    lines += _against_budget(edition)
    lines += _since_fourth(st, fourth)
    answered = sorted({a for d, a in short_tasks if d.startswith("fashion-mnist")})
    rest = [a for a in ("mlp", "cnn28s") if a not in answered]
    fashion = ("Fashion-MNIST at convergence (its CE ladder keeps gaining to 240–480 epochs, and "
               "tuning there is beyond this edition's 16 hours of a 2-core machine"
               + (f"; {', '.join(f'`{a}`' for a in answered)} is answered short of it, above"
                  if answered else "")
               + (": its answer is still the fourth edition's, at 30 epochs)" if not answered
                  else f": {' and '.join(f'`{a}`' for a in rest)}'s answer is still the fourth "
                  "edition's, at 30 epochs)" if rest else ")"))
    lines.append(f"* **Not covered**: {fashion}, the paper's datasets and networks (CIFAR-100, "
                 "Tiny ImageNet, ResNets), and noise other than symmetric.")
    return "\n".join(lines) + "\n"


def _against_budget(edition: Path) -> list[str]:
    """One line: per task and condition, tuned DR-KD − tuned CE at every rung that has it, and
    how many of those comparisons change verdict along the ladder."""
    path = edition / "budget" / "tables" / "answer_by_budget.csv"
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    frame = frame[frame["variant"].str.startswith("drkd-") & (frame["baseline"] == "ce-tuned")]
    parts, moved, total = [], 0, 0
    for (d, a, v), g in frame.groupby(["dataset", "arch", "variant"], sort=True):
        g = g.sort_values("epochs")
        if len(g) < 2:
            continue
        total += 1
        moved += g["verdict"].nunique() > 1
        steps = ", ".join(f"{int(r.epochs)} *{r.verdict}* {_num(r.mean_diff)}"
                          for r in g.itertuples())
        parts.append(f"{_task_name(d, a)} {CONDITIONS[d.split(':')[1]]} "
                     f"`{v.removesuffix('-tuned').removeprefix('drkd-')}`: {steps}")
    if not parts:
        return []
    return [f"* **Against the budget** (tuned DR-KD − tuned CE, each rung tuned at its own "
            f"budget, Holm within each rung's grid, the task's own budget with the edition's "
            f"verdict; `budget/figures/answer_budget.png`): the verdict "
            f"changes along the ladder in {moved} of {total} comparisons; "
            + "; ".join(parts) + "."]


def _since_fourth(st: pd.DataFrame, fourth: Path) -> list[str]:
    """What the same comparisons said at 30 epochs in the fourth edition (its own protocol)."""
    path = fourth / "tables" / "statistics.csv"
    if not path.is_file():
        return []
    old = pd.read_csv(path)
    keys = ["dataset", "arch", "variant", "baseline"]
    new = st[st["variant"].str.startswith("drkd-") & st["variant"].str.endswith("-tuned")]
    both = new.merge(old, on=keys, suffixes=("", "_30"))
    if both.empty:
        return []
    changed = both[both["verdict"] != both["verdict_30"]]
    said = (", ".join(f"{_task_name(r.dataset, r.arch)} {CONDITIONS[r.dataset.split(':')[1]]} "
                      f"{r.variant.removesuffix('-tuned')} − {r.baseline.removesuffix('-tuned')}"
                      f" *{r.verdict_30}* → *{r.verdict}*" for r in changed.itertuples())
            if len(changed) else "none")
    return [f"* **Against the 30-epoch answer** (the fourth edition's verdicts on the same "
            f"{len(both)} comparisons, with its own tuning protocol and seeds, so a change mixes "
            f"the budget with the protocol): {len(changed)} changed: {said}."]


if __name__ == "__main__":
    if sys.argv[1:] == ["--readme"]:
        _FOURTH["write_block"](ROOT / "README.md", answer())
    else:
        print(answer(Path(sys.argv[1]) if len(sys.argv) > 1 else EDITION), end="")
