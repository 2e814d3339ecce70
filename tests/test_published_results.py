"""The committed results are exactly what the harness rebuilds from the committed raw records."""
from pathlib import Path

import pandas as pd
import pytest

from analysis import load, precision, report

RESULTS = Path(__file__).resolve().parents[1] / "results" / "published"
#: Each published edition: a folder with its raw records (runs.csv) and the report built from it.
EDITIONS = [RESULTS, RESULTS / "fashion-mnist-field", RESULTS / "digits-field",
            RESULTS / "fashion-mnist-power", RESULTS / "paper-question",
            RESULTS / "fifth-edition", RESULTS / "fifth-edition" / "fashion-mlp"]
#: The config an edition's report was built with (``report --config``), where one was.
REPORT_CONFIG = {"paper-question": "paper-question",
                 "fifth-edition": "paper-question-5-digits",
                 "fashion-mlp": "paper-question-5-fashion-mlp"}


def _figure_names_only(fig, folder, name):
    """plots.save without the drawing: this test checks tables, README and figure names (the
    figures themselves are drawn and measured in test_figures and test_report)."""
    import matplotlib.pyplot as plt

    plt.close(fig)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    for p in paths:
        p.write_bytes(b"")
    return paths


@pytest.mark.parametrize("edition", EDITIONS, ids=lambda p: p.name)
@pytest.mark.slow
def test_committed_tables_are_what_report_from_the_committed_csv_builds(edition, tmp_path,
                                                                       monkeypatch):
    from analysis import plots

    monkeypatch.setattr(plots.style, "save", _figure_names_only)
    monkeypatch.setattr(plots.drawing, "cores", lambda: 1)  # nothing to draw: no child processes
    # the figures' bootstrap bands (thousands of small resamples) are not in any table
    monkeypatch.setattr(plots.style, "band", lambda values: (float(values.mean()),) * 2)
    csv = load.edition_csv(edition)
    assert csv.is_file(), f"{csv} (drkd-bench export) must be committed"
    from analysis import stats
    from benchmark import config

    name = REPORT_CONFIG.get(edition.name)
    analysis = config.load_grid(name).analysis_settings() if name else stats.Analysis()
    report.from_csv(csv, tmp_path, analysis)
    committed = sorted(p.name for p in (edition / "tables").iterdir())
    rebuilt = sorted(p.name for p in (tmp_path / "tables").iterdir())
    assert committed == rebuilt
    for name in committed:
        if name.endswith(".csv"):  # the numbers at their declared precision, on any chip
            assert precision.differences(edition / "tables" / name, tmp_path / "tables" / name) \
                == [], name
        else:
            assert (edition / "tables" / name).read_bytes() == \
                (tmp_path / "tables" / name).read_bytes(), name
    assert (edition / "README.md").read_text() == (tmp_path / "README.md").read_text()
    figures = {p.name for p in (edition / "figures").glob("*.png")}
    assert figures == {p.name for p in (tmp_path / "figures").glob("*.png")}


def test_committed_records_cover_both_published_grids():
    frame = pd.read_csv(RESULTS / "runs.csv")
    finished = frame[(frame["status"] == "FINISHED") & (frame["kind"] == "train")]
    per_dataset = finished.groupby("dataset")["run_id"].nunique().to_dict()
    assert per_dataset == {"digits": 36, "fashion-mnist": 36}
    assert finished.groupby("dataset")["seed"].nunique().min() >= 3


def test_second_edition_covers_every_variant_reference_and_tuned_on_two_archs_5_seeds():
    frame = pd.read_csv(EDITIONS[1] / "runs.csv")
    finished = frame[(frame["status"] == "FINISHED") & (frame["kind"] == "train")]
    seeds = finished.groupby(["arch", "variant"])["seed"].nunique()
    assert set(finished["arch"]) == {"mlp", "cnn28s"}
    assert len(seeds) == 2 * 29 and seeds.min() == 5
    trials = frame[frame["kind"] == "trial"].drop_duplicates("run_id")
    done = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    per_study = done.groupby("study")["run_id"].nunique()
    assert len(per_study) == 2 * 14 and set(per_study) == {10}  # the equal budget


def test_third_edition_has_15_seeds_per_cell_and_a_table_for_each_question():
    edition = EDITIONS[3]
    frame = pd.read_csv(edition / "runs.csv")
    finished = frame[(frame["status"] == "FINISHED") & (frame["kind"] == "train")]
    seeds = finished.groupby(["arch", "variant"])["seed"].nunique()
    assert set(finished["arch"]) == {"mlp", "cnn28s"} and seeds.min() >= 15
    variants = set(finished["variant"])
    assert {"ce", "ce@2x", "dlb", "dlb-control", "cs-kd", "cs-kd-control", "zipf-ls",
            "ce-tuned", "drkd-online-tuned"} <= variants
    for source in ("online", "previous-epoch", "pretrained"):  # the lattice, per source
        assert {f"drkd-{source}-a0.95-T6", f"tfkd-self-{source}-a0.95-T6"} <= variants
    assert set(finished.loc[finished["variant"] == "zipf-ls", "fidelity"]) == {"paper"}
    stats = pd.read_csv(edition / "tables" / "statistics.csv")
    assert set(stats["verdict"]) <= {"better", "worse", "equivalent", "inconclusive"}
    assert {"vs control", "rectification lattice", "tuned"} <= set(stats["setting"])
    equal = pd.read_csv(edition / "tables" / "equal_compute.csv")
    doubled = equal[equal["variant"].isin(["dlb", "dlb-control", "cs-kd", "cs-kd-control"])]
    assert len(doubled) == 8 and set(doubled["baseline"]) == {"ce@2x"}  # CE at their images
    assert doubled["n_pairs"].min() >= 15
    # the honest protocol: equal budgets in images, 3 seeds per trial, re-scored winners
    choice = pd.read_csv(edition / "tables" / "tuning_choice.csv")
    assert len(choice) == 4 and choice["images"].nunique() == 1


def test_fourth_edition_tunes_on_disjoint_seeds_with_equal_budgets_and_reference_as_trial_0():
    edition = EDITIONS[4]
    frame = pd.read_csv(load.edition_csv(edition), low_memory=False)
    train = frame[(frame["status"] == "FINISHED") & (frame["kind"] == "train")]
    evaluated = set(train["seed"].astype(int))
    tuning = frame[frame["kind"].isin(["trial", "rescore"])]
    assert evaluated and not evaluated & set(tuning["seed"].dropna().astype(int))
    choice = pd.read_csv(edition / "tables" / "tuning_choice.csv")
    # equal budgets in images within a task: every study of a task forwarded the same images
    task = choice["study"].str.rsplit("/", n=1).str[0]  # digits:clean/cnn8/ce -> digits:clean/cnn8
    assert (choice.groupby(task)["images"].nunique() == 1).all()
    assert (choice["seeds_per_trial"] == 2).all() and len(choice) == 5 * task.nunique()
    tasks = train.groupby(["dataset", "arch"])["variant"].agg(set)
    for (dataset, arch), variants in tasks.items():
        assert {"ce-tuned", "drkd-online-tuned", "drkd-pretrained-tuned",
                "tfkd-self-online-tuned", "tfkd-self-pretrained-tuned"} <= variants, (dataset, arch)
    assert {d.split(":")[1] for d in train["dataset"]} == {"clean", "sym40"}
    agg = pd.read_csv(edition / "tables" / "aggregate.csv").set_index("variant")
    assert agg.loc["drkd-online-tuned", "baseline"] == "ce-tuned"


def test_readme_answer_is_the_fifth_editions_tables_in_words():
    """README's answer is scripts/fifth-edition-answer.py run on the committed tables: every
    number and verdict it states is one a reviewer finds in tables/statistics.csv of
    results/published/fifth-edition, its budget/ tables, the ladder's tables or the fourth
    edition's statistics; it names each task's converged budget."""
    import runpy

    root = RESULTS.parents[1]
    script = runpy.run_path(str(root / "scripts" / "fifth-edition-answer.py"))
    text = (root / "README.md").read_text()
    begin, end = script["BEGIN"], script["END"]
    assert text.count(begin) == 1 and text.count(end) == 1
    block = text.split(begin)[1].split(end)[0]
    assert block == script["answer"]()
    assert len([line for line in block.splitlines() if line.strip()]) <= 10
    assert "trained to convergence" in block and "digits `mlp` clean 120" in block


def test_docs_carry_the_fourth_editions_answer_rebuilt_from_its_tables():
    """docs/results.md keeps the fourth edition's answer (README's until the fifth edition's
    took its place): scripts/paper-question-answer.py on the committed tables, unchanged."""
    import runpy

    root = RESULTS.parents[1]
    script = runpy.run_path(str(root / "scripts" / "paper-question-answer.py"))
    text = (root / "docs" / "results.md").read_text()
    begin, end = script["DOCS_BEGIN"], script["DOCS_END"]
    assert text.count(begin) == 1 and text.count(end) == 1
    assert text.split(begin)[1].split(end)[0] == script["answer"](RESULTS / "paper-question")


def test_a_rebuild_compares_tables_at_their_declared_precision(tmp_path):
    """A p-value that differs in its 10th digit (the last places differ between chips) is the
    same table; one that differs in its 4th significant digit, or a point difference in its
    2nd decimal, is not."""
    source = RESULTS / "paper-question" / "tables" / "statistics.csv"
    frame = pd.read_csv(source)
    assert precision.differences(source, source) == []

    def perturbed(column, row, factor):
        changed = frame.copy()
        changed.loc[row, column] = changed.loc[row, column] * factor
        path = tmp_path / f"{column}-{factor}.csv"
        changed.to_csv(path, index=False, float_format="%.17g")
        return precision.differences(source, path)

    row = int(frame["p_value"].gt(0.01).idxmax())
    assert perturbed("p_value", row, 1 + 3e-10) == []
    assert perturbed("p_value", row, 1.003) != []
    big = int(frame["mean_diff"].abs().gt(0.5).idxmax())
    assert perturbed("mean_diff", big, 1 + 1e-9) == []
    assert perturbed("mean_diff", big, 1.05) != []


def test_the_fourth_editions_choice_table_has_each_reference_trials_fresh_mean():
    """tuning_choice.reference_rescored was empty in 40 of 40 rows: the records say "True"
    where the table looked for "true"."""
    epochs = load.epochs_from_csv(load.edition_csv(EDITIONS[4]), environment=False)
    from analysis import tables

    table = tables.tuning_table(epochs[epochs["kind"].isin(["trial", "rescore"])])
    assert len(table) == 40 and table["reference_rescored"].notna().all()
    assert (table["reference_trial"].astype(str).str.split(".").str[0] == "0").all()


def _digits_mlp_ladder(ladder: Path) -> None:
    """A ladder's two tables naming 120 epochs for clean digits `mlp` (120 -> 240 equivalent)."""
    pd.DataFrame([{"dataset": "digits:clean", "arch": "mlp", "first_equivalent_or_worse": 120,
                   "peak_rung": 480, "budget": 120, "largest_rung": 480}]).to_csv(
        ladder / "ladder_budgets.csv", index=False)
    pd.DataFrame([{"dataset": "digits:clean", "arch": "mlp", "epochs": 120,
                   "epochs_double": 240, "mean_diff": -0.02, "ci_low_total": -0.2,
                   "ci_high_total": 0.16, "verdict": "equivalent",
                   "metric": "final_val_top1"}]).to_csv(ladder / "ladder.csv", index=False)


def test_the_fifth_editions_answer_states_budgets_verdicts_and_what_moved(tmp_path):
    """scripts/fifth-edition-answer.py on a small edition written here: each task's budget and
    its doubling, every headline verdict with the interval it uses, the answer along the budget
    and against the fourth edition's verdict on the same comparison, in at most 10 lines."""
    import runpy

    script = runpy.run_path(str(RESULTS.parents[1] / "scripts" / "fifth-edition-answer.py"))
    edition, fourth, ladder = tmp_path / "e5", tmp_path / "e4", tmp_path / "ladder"
    for folder in (edition / "tables", edition / "budget" / "tables", fourth / "tables", ladder):
        folder.mkdir(parents=True)
    row = {"dataset": "digits:clean", "arch": "mlp", "setting": "tuned", "n_pairs": 20,
           "mean_diff": -0.31, "ci_low_total": -0.62, "ci_high_total": 0.004,
           "verdict": "inconclusive", "fragile": False, "family": "headline",
           "test_bound": "paired images", "mde_holm": 0.72}
    rows = [{**row, "variant": "drkd-online-tuned", "baseline": "ce-tuned"},
            {**row, "variant": "drkd-online-tuned", "baseline": "tfkd-self-online-tuned",
             "mean_diff": 0.1, "ci_low_total": -0.2, "ci_high_total": 0.4,
             "verdict": "equivalent", "fragile": True},
            {**row, "variant": "lsr", "baseline": "ce", "setting": "reference",
             "family": "field"}]
    pd.DataFrame(rows).to_csv(edition / "tables" / "statistics.csv", index=False)
    pd.DataFrame([{**rows[0], "verdict": "worse"}]).to_csv(fourth / "tables" / "statistics.csv",
                                                           index=False)
    _digits_mlp_ladder(ladder)
    pd.DataFrame([{"epochs": e, "dataset": "digits:clean", "arch": "mlp",
                   "variant": "drkd-online-tuned", "baseline": "ce-tuned", "mean_diff": d,
                   "verdict": v} for e, d, v in ((30, -1.5, "worse"),
                                                 (120, -0.31, "inconclusive"))]).to_csv(
        edition / "budget" / "tables" / "answer_by_budget.csv", index=False)
    text = script["answer"](edition, fourth, ladder)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) <= 10
    assert "epochs: digits `mlp` clean 120" in lines[0] and "20 seeds" in lines[0]
    assert "*headline* (2 comparisons" in lines[0] and "clean 0.72–0.72" in lines[0]
    assert "the plan's target, 0.3 points, is missed by all 2 (by up to 0.42 points)" in lines[0]
    assert "120→240 *equivalent* −0.02 [−0.20, +0.16]" in text
    assert ("tuned DR-KD − tuned CE: *inconclusive* on digits `mlp` −0.31 [−0.62, +0.00]. "
            "Against tuned Tf-KD self: *equivalent, fragile* on digits `mlp` +0.10 "
            "[−0.20, +0.40]") in text
    assert "changes along the ladder in 1 of 1 comparisons" in text
    assert "30 *worse* −1.50, 120 *inconclusive* −0.31" in text
    assert "1 changed: digits `mlp` clean drkd-online − ce *worse* → *inconclusive*" in text


def test_the_fifth_editions_answer_states_a_short_part_and_the_widest_familys_verdict(tmp_path):
    """A part trained short of convergence (its own report in a sub-folder) joins the answer
    with its budget and what CE's ladder still gains after it (peak 86.39 at 480 - 83.63 at 30 =
    +2.76); where one family of every headline comparison (pooled/headline.csv) disagrees with a
    part's own family, the wider family's verdict is the one stated."""
    import runpy

    script = runpy.run_path(str(RESULTS.parents[1] / "scripts" / "fifth-edition-answer.py"))
    edition, fourth, ladder = tmp_path / "e5", tmp_path / "e4", tmp_path / "ladder"
    short = edition / "fashion-mlp"
    for folder in (edition / "tables", edition / "budget" / "tables", edition / "pooled",
                   edition / "ladder" / "tables", short / "tables", fourth / "tables", ladder):
        folder.mkdir(parents=True)
    row = {"arch": "mlp", "setting": "tuned", "n_pairs": 20, "variant": "drkd-online-tuned",
           "baseline": "ce-tuned", "fragile": False, "family": "headline",
           "test_bound": "paired images", "mde_holm": 0.4}
    digits = {**row, "dataset": "digits:clean", "mean_diff": -0.31, "ci_low_total": -0.62,
              "ci_high_total": 0.004, "verdict": "inconclusive"}
    fashion = {**row, "dataset": "fashion-mnist:clean", "mean_diff": 0.4, "ci_low_total": 0.1,
               "ci_high_total": 0.7, "verdict": "better"}
    pd.DataFrame([digits]).to_csv(edition / "tables" / "statistics.csv", index=False)
    pd.DataFrame([fashion]).to_csv(short / "tables" / "statistics.csv", index=False)
    pd.DataFrame([digits, {**fashion, "verdict": "inconclusive"}]).to_csv(
        edition / "pooled" / "headline.csv", index=False)
    _digits_mlp_ladder(ladder)
    pd.DataFrame([{"epochs": e, "dataset": "fashion-mnist:clean", "arch": "mlp",
                   "test_top1": t, "val_top1": t} for e, t in ((30, 83.63), (60, 84.82),
                                                               (480, 86.39))]).to_csv(
        edition / "ladder" / "tables" / "ladder_means.csv", index=False)
    pd.DataFrame([{"epochs": 30, "dataset": "fashion-mnist:clean", "arch": "mlp",
                   "variant": "drkd-online-tuned", "baseline": "ce-tuned", "mean_diff": 0.4,
                   "verdict": "better"}]).to_csv(
        edition / "budget" / "tables" / "answer_by_budget.csv", index=False)
    text = script["answer"](edition, fourth, ladder)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) <= 10
    assert lines[0].startswith("2 tasks:")
    assert ("1 tasks **short of convergence**" in lines[0]
            and "Fashion `mlp` clean 30 (CE's ladder still gains +2.76 points of test top-1 by "
                "480 epochs)" in lines[0])
    assert "1 comparisons in the converged tasks' grid, 1 in the short part's" in lines[0]
    assert ("In one family of all 2 headline comparisons 1 verdicts change, stated so below: "
            "Fashion `mlp` clean drkd-online − ce *better* → *inconclusive*") in text
    assert "*inconclusive* on digits `mlp` −0.31 [−0.62, +0.00] and Fashion `mlp` +0.40" in text
    assert "*better*" not in text.split("stated so below")[1].split("\n", 1)[1]
    assert "`mlp` is answered short of it, above: `cnn28s`'s answer is still the fourth" in text


@pytest.mark.slow
def test_the_fifth_editions_widest_family_is_what_its_parts_rebuild(tmp_path):
    """pooled/headline.csv is scripts/fifth-edition-pooled.py on the committed records of the
    edition's parts (the digits grid and the Fashion-MNIST `mlp` part), one Holm family of every
    headline comparison; each part's own report adjusts within a smaller family, so no p value
    of the pool is below the part's own."""
    import runpy

    root = RESULTS.parents[1]
    script = runpy.run_path(str(root / "scripts" / "fifth-edition-pooled.py"))
    from benchmark import config

    edition = RESULTS / "fifth-edition"
    parts = [edition / "runs.csv.gz", edition / "fashion-mlp" / "runs.csv.gz"]
    analysis = config.load_grid("paper-question-5-digits").analysis_settings()
    script["pooled"](parts, analysis).to_csv(tmp_path / "headline.csv", index=False,
                                             float_format="%.10g")
    assert precision.differences(edition / "pooled" / "headline.csv",
                                 tmp_path / "headline.csv") == []
    wide = pd.read_csv(tmp_path / "headline.csv")
    keys = ["dataset", "arch", "variant", "baseline"]
    own = pd.concat([pd.read_csv(p.parent / "tables" / "statistics.csv") for p in parts])
    both = wide.merge(own[own["family"] == "headline"], on=keys, suffixes=("", "_own"))
    assert len(both) == len(wide) and wide["family"].nunique() == 1
    assert (both["p_holm"] >= both["p_holm_own"] - 1e-12).all()


def test_compute_from_a_part_is_mean_epoch_time_times_epochs(tmp_path):
    """scripts/store-compute.py on an exported part (its store gone): a run kept every 10th
    epoch row of 30, 2 s and 4 s per epoch on the kept rows: 3 s × 30 epochs = 90 s; tuning
    trials (no epochs in a part) are not counted; the chip and format come from the tags."""
    import runpy

    script = runpy.run_path(str(RESULTS.parents[1] / "scripts" / "store-compute.py"))
    base = {"run_id": "a", "status": "FINISHED", "kind": "train", "cell_key": "k",
            "cell_hash": "h", "dataset": "digits:clean", "arch": "mlp", "method": "ce",
            "variant": "ce", "seed": 0, "tag.cpu_vendor": "AuthenticAMD", "tag.cpu": "AMD EPYC",
            "tag.cpu_capability": "AVX512", "tag.memory_format": "contiguous",
            "param.train.precision": "fp32"}
    rows = [{**base, "epoch": 10, "epoch_seconds": 2.0},
            {**base, "epoch": 30, "epoch_seconds": 4.0},
            {**base, "run_id": "t", "kind": "trial", "val_top1": 0.9}]
    part = tmp_path / "part.csv.gz"
    pd.DataFrame(rows).to_csv(part, index=False)
    frame = script["runs_from_csv"](part)
    assert list(frame["seconds"]) == [90.0] and frame["chip"].iloc[0] == "AuthenticAMD AMD EPYC"
    text = script["main"]([part])
    assert "All tasks: 0.03 core-hours in 1 runs." in text and "contiguous" in text


def test_compute_counts_a_study_whose_trials_ran_side_by_side_by_its_trials():
    """A study of two workers ran 1 h of wall time while its trials' own runs add up to 1.8 h:
    its core time is 1.8 h (its wall time counted 1 h before, half its cores); a study of one
    worker, 2 h of wall time over 1.7 h of trials (the re-scores run after them), counts 2 h."""
    import runpy

    script = runpy.run_path(str(RESULTS.parents[1] / "scripts" / "store-compute.py"))
    rows = [("a", "study", 3600), ("a", "trial", 1800), ("a", "trial", 4680),
            ("a", "train", 1800), ("b", "study", 7200), ("b", "trial", 6120),
            ("b", "tuning-teacher", 360)]
    frame = pd.DataFrame(rows, columns=["task", "kind", "seconds"])
    table = script["core_hours"](frame)
    assert table.loc["a", "total core-hours"] == pytest.approx(1.8 + 0.5)
    assert table.loc["b", "total core-hours"] == pytest.approx(2.0 + 0.1)


def test_answer_by_budget_adjusts_two_grids_whose_exports_share_a_file_name_apart(tmp_path):
    """Every grid's export is called runs.csv.gz in its own folder (the fifth edition's digits
    grid and its Fashion-MNIST part): scripts/answer-by-budget.py keeps each part's comparisons
    in their own Holm family, so one grid's part given twice under the same file name in two
    folders gives each row twice with that grid's own adjusted p values (keyed by the file's
    name, the two were pooled into one family of twice the size)."""
    import runpy
    import shutil

    from benchmark import config

    script = runpy.run_path(str(RESULTS.parents[1] / "scripts" / "answer-by-budget.py"))
    part = RESULTS / "fifth-edition" / "digits" / "parts" / "rung-30.csv.gz"
    copies = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        copies.append(shutil.copy(part, tmp_path / folder / "runs.csv.gz"))
    analysis = config.load_grid("paper-question-5-digits").analysis_settings()
    alone = script["comparisons"]([part], analysis)
    twice = script["comparisons"]([Path(c) for c in copies], analysis)
    assert len(alone) > 1 and len(twice) == 2 * len(alone)
    keys = ["epochs", "dataset", "arch", "variant", "baseline"]
    for _, rows in twice.groupby(keys):
        mine = alone.set_index(keys).loc[tuple(rows.iloc[0][keys])]
        assert rows["p_holm"].tolist() == pytest.approx([mine["p_holm"]] * 2)
