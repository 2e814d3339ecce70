"""The fourth edition's answer in words, from its committed tables only (tables/statistics.csv,
tables/equal_compute.csv, tables/aggregate.csv): every claim is a verdict of its declared family
(the headline: Holm over every tuned-against-tuned comparison of the edition; the field: the
rest), with its interval over seeds and test images, fragile verdicts marked, the aggregate with
its intervals.
docs/results.md carries this text between its `answer-4:begin` and `answer-4:end` marks (README
held it until the fifth edition's answer took its place); a test rebuilds it from the tables and
compares.
Usage: python scripts/paper-question-answer.py [EDITION-FOLDER]   (prints it)
       python scripts/paper-question-answer.py --docs    (writes it into docs/results.md)
       python scripts/paper-question-answer.py --readme  (writes it into README.md)"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

EDITION = Path(__file__).resolve().parents[1] / "results" / "published" / "paper-question"
#: Task order and short names: the two digits students, then the two Fashion-MNIST ones.
TASKS = [("digits", "mlp", "digits `mlp`"), ("digits", "cnn8", "digits `cnn8`"),
         ("fashion-mnist", "mlp", "Fashion `mlp`"), ("fashion-mnist", "cnn28s", "Fashion `cnn28s`")]
ORDER = ["better", "equivalent", "inconclusive", "worse"]


def _num(x: float) -> str:
    """Two decimals, rounded once from the table's value as a reader rounds it."""
    from analysis.stats.verdicts import points_text

    return points_text(x).replace("-", "−")


def _entry(row) -> str:
    return f"{_num(row.mean_diff)} [{_num(row.ci_low_total)}, {_num(row.ci_high_total)}]"


def _verdicts(rows: list[tuple[str, object]]) -> str:
    """'*worse* on A (...) and B (...); *equivalent, fragile* on C (...)': grouped by verdict."""
    groups: dict[str, list[str]] = {}
    for name, row in rows:
        word = row.verdict + (", fragile" if bool(row.fragile) else "")
        groups.setdefault(word, []).append(f"{name} {_entry(row)}")
    words = sorted(groups, key=lambda w: (ORDER.index(w.split(",")[0]), w))
    parts = []
    for w in words:
        items = groups[w]
        listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        parts.append(f"*{w}* on {listed}")
    return "; ".join(parts)


def _rows(st: pd.DataFrame, condition: str, variant: str, baseline: str) -> list:
    out = []
    for d, a, name in TASKS:
        hit = st[(st["dataset"] == f"{d}:{condition}") & (st["arch"] == a)
                 & (st["variant"] == variant) & (st["baseline"] == baseline)]
        if len(hit) == 1:
            out.append((name, hit.iloc[0]))
    return out


def _seeds(st: pd.DataFrame) -> str:
    """'20 seeds per cell' when every cell has 20 seeds, else '20 seeds per cell (Fashion
    `cnn28s`: 15, its field 10)': the seeds of the headline (tuned) comparisons and of the
    field's, per task where they differ from the common count."""
    task = st["dataset"].str.split(":").str[0] + "/" + st["arch"]
    tuned = st["variant"].str.endswith("-tuned")
    head = st[tuned].groupby(task[tuned])["n_pairs"].max()
    field = st[~tuned].groupby(task[~tuned])["n_pairs"].max()
    common = int(pd.concat([head, field]).mode().max())
    odd = []
    for d, a, name in TASKS:
        h, f = head.get(f"{d}/{a}"), field.get(f"{d}/{a}")
        if (h is not None and h != common) or (f is not None and f != common):
            odd.append(f"{name}: {h if h is not None else f}"
                       + (f", its field {f}" if f is not None and h is not None and f != h
                          else ""))
    return f"{common} seeds per cell" + (f" ({'; '.join(odd)})" if odd else "")


def _pct(x: float) -> str:
    return f"{x:.2f}"


def answer(edition: Path = EDITION) -> str:
    tables = edition / "tables"
    st = pd.concat([pd.read_csv(tables / "statistics.csv"),
                    pd.read_csv(tables / "equal_compute.csv")], ignore_index=True)
    st = st.drop_duplicates(["dataset", "arch", "variant", "baseline"])
    agg = pd.read_csv(edition / "tables" / "aggregate.csv").set_index("variant")
    n = _seeds(st)
    have = {(d.split(":")[0], a, d.split(":")[1]) for d, a in zip(st["dataset"], st["arch"])}
    tasks = [name for d, a, name in TASKS if (d, a, "clean") in have]
    both = all((d, a, c) in have for d, a, _ in TASKS if (d, a, "clean") in have
               for c in ("clean", "sym40"))
    missing = [name for d, a, name in TASKS if (d, a, "clean") not in have]
    drkd = st[st["variant"].str.startswith("drkd-") & st["variant"].str.endswith("-tuned")]
    column = "mde_holm" if "mde_holm" in drkd else "mde"  # at each comparison's Holm level
    mde = {c: drkd[drkd["dataset"].str.endswith(":" + c)][column] for c in ("clean", "sym40")}
    reached = "; ".join(f"{'clean' if c == 'clean' else 'noisy'} {m.min():.2f}–{m.max():.2f}"
                        for c, m in mde.items() if len(m))
    family = (f"the family *{drkd['family'].iloc[0]}* "
              f"({int((st['family'] == drkd['family'].iloc[0]).sum())} comparisons: Holm over "
              "every tuned-against-tuned comparison of all tasks and conditions; the rest, "
              f"{int((st['family'] != drkd['family'].iloc[0]).sum())}, form the field)"
              if "family" in drkd and len(drkd) else "its family")
    bounds = set(drkd["test_bound"]) if "test_bound" in drkd else set()
    images = ("; the runs kept no per-image correctness, so the test set's share is the "
              "conservative bound that takes the two models' errors as independent"
              if bounds == {"independent errors"} else
              "; the test set's share measured from the runs' per-image correctness"
              if bounds == {"paired images"} else "")
    lines = [
        f"{len(have)} tasks: {', '.join(tasks[:-1]) + ' and ' + tasks[-1]} (Fashion: "
        "Fashion-MNIST's 5,000-image subset), "
        + ("each on clean labels and under 40% symmetric label noise" if both
           else "clean labels") + "; "
        f"30 epochs, {n}, final-epoch test top-1; every variant tuned on seeds "
        "disjoint from the evaluated ones, its reference values as trial 0; each claim about "
        f"tuned DR-KD is a verdict of {family}, ±0.5-point equivalence; paired difference in "
        "points [95% CI over seeds and test images" + images + "]; *fragile*: the verdict "
        "moves at half or twice the margin, under Wilcoxon tests or in the widest family "
        "(every comparison of the edition). The DR-KD "
        "comparisons' minimum detectable differences (80% power"
        + (", each at its Holm level" if column == "mde_holm" else "") + f"): {reached} points."
        + (f" Still training: {', '.join(missing)}, whose tasks join the aggregate and the "
           "wider-family checks when they finish." if missing else ""),
        ""]
    conv = _rows(st, "clean", "ce@2x", "ce")
    lines.append("* **Warning: not converged.** CE at 60 epochs − CE at 30: "
                 + _verdicts(conv) + ". Every verdict is about this 30-epoch budget.")
    # (condition, source) -> tuned DR-KD's rows against tuned CE and against tuned Tf-KD self
    heads = {(c, src): (_rows(st, c, f"drkd-{src}-tuned", "ce-tuned"),
                        _rows(st, c, f"drkd-{src}-tuned", f"tfkd-self-{src}-tuned"))
             for c in ("clean", "sym40") for src in ("online", "pretrained")}
    against = {"tuned CE": [row for vs_ce, _ in heads.values() for row in vs_ce],
               "tuned Tf-KD self": [row for _, vs_tf in heads.values() for row in vs_tf]}
    short = "* **In short**: " + "; ".join(
        f"of the {len(r)} comparisons of tuned DR-KD with {k}, {_tally(r, ('better',))}"
        for k, r in against.items()) + "."
    if "ci_low_total" in drkd and bounds == {"independent errors"}:
        below, above = int((drkd["ci_high"] < 0).sum()), int((drkd["ci_low"] > 0).sum())
        total = int(((drkd["ci_high_total"] < 0) | (drkd["ci_low_total"] > 0)).sum())
        decided = int(drkd["verdict"].isin(["better", "worse", "equivalent"]).sum())
        short += (
            f" What the test set costs: over the seeds alone, {below + above} of the "
            f"{len(drkd)} intervals of tuned DR-KD exclude 0 ({below} below, {above} above); "
            "with the test set's share added (SE "
            f"{drkd['se_images'].min():.2f}–{drkd['se_images'].max():.2f} points under the "
            f"conservative independence bound), {total} do, and {decided} "
            f"{'verdict is' if decided == 1 else 'verdicts are'} decided after Holm. The runs "
            "since round five keep their per-image correctness, which measures that share "
            "instead of bounding it.")
    lines.append(short)
    titles = {"clean": "Clean labels", "sym40": "40% symmetric noise"}
    for (condition, source), (vs_ce, vs_tf) in heads.items():
        lines.append(f"* **{titles[condition]}, `{source}` teacher**, tuned DR-KD − tuned CE: "
                     f"{_verdicts(vs_ce)}. Against tuned Tf-KD self: {_verdicts(vs_tf)}.")
    rows = [agg.loc[f"drkd-{src}-tuned"] for src in ("online", "pretrained")
            if f"drkd-{src}-tuned" in agg.index]
    if rows:
        def pair(col):
            return " / ".join(f"{_pct(r[col])} [{_pct(r[col + '_low'])}, {_pct(r[col + '_high'])}]"
                              for r in rows)
        iqm = " / ".join(f"{_num(r.iqm)} [{_num(r.iqm_low)}, {_num(r.iqm_high)}]" for r in rows)
        iqm_sd = " / ".join(f"{_num(r.iqm_sd)} [{_num(r.iqm_sd_low)}, {_num(r.iqm_sd_high)}]"
                            for r in rows) if "iqm_sd" in agg else ""
        lines.append(
            f"* **Across the {int(rows[0].tasks)} tasks** (rliable's statistics on this "
            "project's stratified bootstrap, the "
            f"{int(rows[0].runs_per_task)} seeds every task has, 95% stratified-bootstrap "
            "intervals over runs, which leave the test set's share out: narrower than the "
            "verdicts'), tuned DR-KD `online` / "
            "`pretrained`: IQM of its difference to tuned CE "
            + (f"{iqm_sd} in tuned CE's seed SDs (each task's difference over its own seed "
               f"noise), {iqm} in points" if iqm_sd else f"{iqm} points")
            + "; P(DR-KD > tuned CE) "
            f"{pair('p_improve_ce')}; P(DR-KD > tuned Tf-KD self) {pair('p_improve_tfkd_self')}.")
    field = []
    for v, name, base in (("lsr", "LSR", "ce"), ("ps-kd", "PS-KD", "ce"),
                          ("zipf-ls", "Zipf's LS", "ce"), ("cs-kd", "CS-KD", "ce@2x"),
                          ("dlb", "DLB", "ce@2x")):
        found = _rows(st, "clean", v, base)
        if found:
            field.append(f"{name} − {'CE' if base == 'ce' else 'CE at 60 epochs'}: "
                         + _tally(found))
    if field:
        lines.append(f"* **The field at reference values, clean labels** (verdicts over the "
                     f"{len(tasks)} clean tasks; CS-KD and DLB, which forward twice CE's images, "
                     "against CE at 60 epochs): " + "; ".join(field) + ".")
    lines.append("* **Not covered**: the paper's datasets and networks (CIFAR-100, Tiny "
                 "ImageNet, ResNets), training to convergence, and noise other than symmetric.")
    return "\n".join(lines) + "\n"


def _tally(rows: list, always: tuple[str, ...] = ()) -> str:
    """'2 equivalent, 1 inconclusive (fragile), 9 worse' (``always``: words said at 0 too)."""
    counts: dict[str, int] = {w: 0 for w in always}
    for _, row in rows:
        word = row.verdict + (" (fragile)" if bool(row.fragile) else "")
        counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: (ORDER.index(w.split(" ")[0]), w))
    return ", ".join(f"{counts[w]} {w}" for w in words)


BEGIN, END = "<!-- answer:begin -->\n", "<!-- answer:end -->"
#: Where this (the fourth) edition's answer lives since the fifth's took README's place.
DOCS = EDITION.parents[2] / "docs" / "results.md"
DOCS_BEGIN, DOCS_END = "<!-- answer-4:begin -->\n", "<!-- answer-4:end -->"


def write_block(path: Path, text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace what ``path`` holds between its ``begin`` and ``end`` marks with ``text``."""
    whole = path.read_text()
    head, rest = whole.split(begin)
    path.write_text(head + begin + text + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    if sys.argv[1:] == ["--docs"]:
        write_block(DOCS, answer(), DOCS_BEGIN, DOCS_END)
    elif sys.argv[1:] == ["--readme"]:
        write_block(EDITION.parents[2] / "README.md", answer())
    else:
        print(answer(Path(sys.argv[1]) if len(sys.argv) > 1 else EDITION), end="")
