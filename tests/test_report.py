"""Reports from a store filled with known synthetic runs: exact table cells, paired differences
and intervals; partial stores; figures written; identical on regeneration and from the CSV."""
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric
from scipy import stats as sps

from analysis import load, report, stats, tables
from benchmark import cli
from benchmark.store import tracking

T_975_DF2 = 4.302652729911275  # Student t quantile, 2 degrees of freedom

FINAL = {  # variant -> final test top-1 per seed 0, 1, 2
    "ce": [0.90, 0.92, 0.94],
    "tfkd-self": [0.905, 0.935, 0.945],
    "drkd-online": [0.91, 0.95, 0.96],
}


def add_run(client, exp, variant, seed, finals, arch="cnn8", status="FINISHED", epochs=3,
            reason=None, dataset="digits"):
    method = variant.split("-online")[0]
    key = f"{dataset}/{arch}/{variant}/seed{seed}"
    tags = {"kind": "train", "dataset": dataset, "arch": arch, "method": method,
            "variant": variant, "seed": str(seed), "cell_key": key, "cell_hash": f"h{key}"}
    if variant.startswith("drkd"):
        tags["teacher_source"] = "online"
    run = client.create_run(exp, tags=tags, run_name=key)
    rid = run.info.run_id
    history = []
    for e in range(1, epochs + 1):
        # test accuracy rises to the final value; validation peaks at epoch 2
        row = {"epoch": e, "train_loss": 1.0 / e, "test_top1": finals - 0.01 * (epochs - e),
               "val_top1": 0.8 + (0.05 if e == 2 else 0.0), "test_ece": 0.02 * e,
               "test_nll": 0.3}
        if variant.startswith("drkd"):
            row["diag_rectified"] = 0.5 / e
            row["diag_teacher_top1"] = 1 - 0.5 / e
        history.append(row)
        client.log_batch(rid, metrics=[Metric(k, v, 0, e) for k, v in row.items()
                                       if k != "epoch"])
    if status == "FINISHED":
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "metrics.json"
            p.write_text(json.dumps(history))
            client.log_artifact(rid, str(p))
    if reason:
        client.set_tag(rid, "failure_reason", reason)
    client.set_terminated(rid, status)
    return rid


@pytest.fixture
def store(results):
    tracker = tracking.Tracker(results=results)
    client = tracker.client
    for variant, finals in FINAL.items():
        for seed, value in enumerate(finals):
            add_run(client, tracker.experiment_id, variant, seed, value)
    return tracker


def test_tables_hold_exact_means_std_gains_and_paired_intervals(store, results):
    epochs = load.epochs_from_tracking(store.uri)
    runs = load.runs_from_epochs(epochs)
    assert len(runs) == 9
    display, numeric = tables.main_table(runs, "digits")
    assert display.loc["ce", "cnn8"] == "92.00 ± 2.00 (n=3)"
    sd = math.sqrt(((91 - 94) ** 2 + (95 - 94) ** 2 + (96 - 94) ** 2) / 2)
    assert display.loc["drkd-online", "cnn8"] == f"**94.00 ± {sd:.2f}** (n=3) +2.00"
    assert display.loc["tfkd-self", "cnn8"].endswith("(n=3) +0.83")  # (90.5+93.5+94.5)/3 - 92
    assert list(display.index) == ["ce", "tfkd-self", "drkd-online"]
    row = numeric[numeric["variant"] == "drkd-online"].iloc[0]
    assert row["mean"] == pytest.approx(94.0) and row["gain_over_ce"] == pytest.approx(2.0)
    # the accuracy's interval is the percentile bootstrap of the mean: inside [min, max]
    assert 91 <= row["ci_low"] < 94 < row["ci_high"] <= 96

    st = tables.stats_table(runs)
    d = st[(st["variant"] == "drkd-online") & (st["baseline"] == "ce")].iloc[0]
    # per-seed differences 1, 3, 2 points: mean 2, sd 1
    half = T_975_DF2 * 1.0 / math.sqrt(3)
    assert d["n_pairs"] == 3 and d["mean_diff"] == pytest.approx(2.0)
    # intervals are kept to 1e-4 points (stats.DIFF_DIGITS: the stored accuracies are float32)
    assert d["ci_low"] == pytest.approx(2 - half, abs=1e-4)
    assert d["ci_high"] == pytest.approx(2 + half, abs=1e-4)
    t_stat = 2.0 / (1.0 / math.sqrt(3))
    assert d["p_seeds"] == pytest.approx(2 * sps.t.sf(t_stat, 2))
    # these runs kept no per-image correctness: the verdict's interval adds digits' 450 test
    # images with the two models' errors taken as independent (94% and 92% accurate)
    assert d["test_bound"] == "independent errors"
    se = math.sqrt(1 / 3 + (0.94 * 0.06 + 0.92 * 0.08) / 450 * 1e4)
    assert (d["ci_low_total"], d["ci_high_total"]) == pytest.approx(
        (2 - T_975_DF2 * se, 2 + T_975_DF2 * se), abs=1e-4)
    assert d["p_value"] == pytest.approx(2 * sps.t.sf(2.0 / se, 2))
    assert d["verdict"] == "inconclusive"  # Holm over 3 comparisons, TOST at 0.5 fails
    vs_self = st[(st["variant"] == "drkd-online") & (st["baseline"] == "tfkd-self")].iloc[0]
    assert vs_self["mean_diff"] == round((0.5 + 1.5 + 1.5) / 3, 4)

    sel = tables.selection_table(runs).set_index("variant")
    assert sel.loc["ce", "final_epoch"] == pytest.approx(92.0)
    assert sel.loc["ce", "best_val_epoch"] == pytest.approx(91.0)  # epoch 2 is 1 point lower
    assert sel.loc["ce", "best_test_epoch_optimistic"] == pytest.approx(92.0)
    cal = tables.calibration_table(runs).set_index("variant")
    assert cal.loc["ce", "ece_mean"] == pytest.approx(6.0)


def test_histories_of_a_local_store_are_read_in_place(store, monkeypatch):
    """A store whose artifacts lie in a local folder is read there, not copied out run by run
    through MLflow's download (24 ms a run); the rows are those the download gave."""
    import mlflow

    downloaded = load.epochs_from_tracking(store.uri)

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", refuse)
    in_place = load.epochs_from_tracking(store.uri)
    assert in_place["epoch"].notna().sum() == downloaded["epoch"].notna().sum() > 0
    pd.testing.assert_frame_equal(in_place, downloaded)
    assert load._local_artifact("s3://bucket/run/artifacts", "metrics.json") is None


def test_verdicts():
    nan = float("nan")
    assert stats.verdict({"mean_diff": 1.0, "p_holm": 0.01, "p_tost_holm": 0.9}) == "better"
    assert stats.verdict({"mean_diff": -1.0, "p_holm": 0.049, "p_tost_holm": 0.9}) == "worse"
    assert stats.verdict({"mean_diff": 0.1, "p_holm": 0.5, "p_tost_holm": 0.01}) == "equivalent"
    assert stats.verdict({"mean_diff": 0.1, "p_holm": 0.5, "p_tost_holm": 0.2}) == "inconclusive"
    assert stats.verdict({"mean_diff": 0.1, "p_holm": nan, "p_tost_holm": nan}) == "inconclusive"
    assert stats.verdict({"mean_diff": 1.0, "p_holm": 0.05, "p_tost_holm": 0.9}) == "inconclusive"


@pytest.mark.slow
def test_report_files_regenerate_identically_and_from_the_exported_csv(store, results, tmp_path):
    out_a, out_b, out_c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    written = report.from_tracking(store.uri, out_a)
    report.from_tracking(store.uri, out_b)
    assert (out_a / "README.md").is_file()
    for p in written:
        rel = p.relative_to(out_a)
        assert p.stat().st_size > 0
        assert p.read_bytes() == (out_b / rel).read_bytes(), rel
    pngs = [p for p in written if p.suffix == ".png"]
    assert {p.stem for p in pngs} == {"accuracy_digits", "curves_digits", "forest_digits_cnn8",
                                      "diag_rectified_digits", "diag_teacher_top1_digits"}
    assert all(p.stat().st_size > 10_000 for p in pngs)
    csv = tmp_path / "runs.csv"
    assert cli.main(["export", "--results", str(results), "--out", str(csv)]) == 0
    frame = pd.read_csv(csv)
    assert frame["run_id"].nunique() == 9 and len(frame) == 27
    assert {"cell_key", "variant", "seed", "epoch", "test_top1", "val_top1"} <= set(frame.columns)
    assert cli.main(["report", "--from", str(csv), "--out", str(out_c)]) == 0
    for p in (out_a / "tables").iterdir():
        assert p.read_bytes() == (out_c / "tables" / p.name).read_bytes(), p.name


def test_partial_store_lists_failed_and_missing_cells(results, tmp_path):
    tracker = tracking.Tracker(results=results)
    client = tracker.client
    add_run(client, tracker.experiment_id, "ce", 0, 0.9)
    add_run(client, tracker.experiment_id, "ce", 1, 0.92)
    add_run(client, tracker.experiment_id, "drkd-online", 0, 0.93)
    add_run(client, tracker.experiment_id, "drkd-online", 1, 0.5, status="FAILED",
            reason="TrainingDiverged: loss is nan at epoch 2")
    out = tmp_path / "out"
    report.from_tracking(tracker.uri, out)
    failed = (out / "tables" / "failed_runs.md").read_text()
    assert "digits/cnn8/drkd-online/seed1" in failed and "loss is nan" in failed
    missing = pd.read_csv(out / "tables" / "missing_cells.csv")
    assert missing.to_dict("records") == [{"dataset": "digits", "arch": "cnn8",
                                           "variant": "drkd-online", "seeds": 1,
                                           "expected": 2}]
    main = (out / "tables" / "main_digits.md").read_text()
    assert "| drkd-online | **93.00** (n=1) +2.00 |" in main
    st = pd.read_csv(out / "tables" / "statistics.csv")
    assert st.iloc[0]["verdict"] == "inconclusive" and st.iloc[0]["n_pairs"] == 1
    assert "inconclusive: +3.00 (n = 1)" in (out / "README.md").read_text()


def test_empty_store_and_published_numbers(results, tmp_path):
    tracker = tracking.Tracker(results=results)
    out = tmp_path / "out"
    report.from_tracking(tracker.uri, out)
    assert "0 finished training runs" in (out / "README.md").read_text()
    pub = tables.published()
    row = pub[(pub["arch"] == "resnet18") & (pub["method"] == "tfkd-reg")].iloc[0]
    assert row["top1"] == pytest.approx(77.36) and "Tf-KD" in row["source"]
    assert not ((pub["dataset"] == "tiny-imagenet").any())  # unknown numbers are never invented
    client = tracker.client
    add_run(client, tracker.experiment_id, "ce", 0, 0.7588, arch="resnet18", dataset="cifar100")
    runs = load.runs_from_epochs(load.epochs_from_tracking(tracker.uri))
    comp = tables.published_table(runs)
    assert comp.iloc[0]["published_top1"] == pytest.approx(75.87)
    assert comp.iloc[0]["ours_best_test_epoch"] == pytest.approx(75.88)


def test_report_command_without_store_is_one_line(tmp_path, capsys):
    assert cli.main(["report", "--results", str(tmp_path / "none")]) == 2
    assert "no tracking store" in capsys.readouterr().err


def test_missing_cells_are_counted_per_dataset_grid():
    runs = pd.DataFrame({"dataset": ["a"] * 4 + ["b"] * 3,
                         "arch": ["x", "x", "x", "x", "y", "y", "y"],
                         "variant": ["ce", "ce", "kd", "kd", "ce", "ce", "kd"],
                         "seed": [0, 1, 0, 1, 0, 1, 0]})
    missing = tables.missing_cells(runs)
    assert missing.to_dict("records") == [{"dataset": "b", "arch": "y", "variant": "kd",
                                           "seeds": 1, "expected": 2}]


def _runs(finals: dict[str, list[float]], arch="cnn8") -> pd.DataFrame:
    rows = []
    for variant, values in finals.items():
        method = "ce" if variant == "ce" else variant.split("-")[0]
        if variant.startswith("tfkd-self"):
            method = "tfkd-self"
        source = "online" if "-online" in variant else ""
        for seed, v in enumerate(values):
            rows.append({"dataset": "digits", "arch": arch, "variant": variant,
                         "method": method, "teacher_source": source, "seed": seed,
                         "final_test_top1": v})
    return pd.DataFrame(rows)


FIELD = {"ce": [0.90, 0.92, 0.94], "lsr": [0.91, 0.93, 0.92], "lsr-tuned": [0.95, 0.95, 0.95],
         "tfkd-self-online": [0.89, 0.90, 0.91], "tfkd-self-online-tuned": [0.93, 0.93, 0.96],
         "drkd-online": [0.92, 0.92, 0.93], "drkd-online-tuned": [0.90, 0.91, 0.92]}


def test_tuned_variants_are_compared_like_for_like():
    runs = _runs(FIELD)
    pairs = stats.comparisons(runs)
    assert ("drkd-online", "tfkd-self-online") in pairs
    assert ("drkd-online-tuned", "tfkd-self-online-tuned") in pairs
    assert ("drkd-online-tuned", "tfkd-self-online") not in pairs
    assert {("lsr-tuned", "lsr"), ("drkd-online-tuned", "drkd-online"),
            ("tfkd-self-online-tuned", "tfkd-self-online")} <= set(pairs)
    assert ("lsr-tuned", "ce") in pairs
    p = stats.paired(runs, "final_test_top1").set_index(["variant", "baseline"])
    assert p.loc[("lsr-tuned", "lsr"), "mean_diff"] == pytest.approx(0.03)
    assert p.loc[("drkd-online-tuned", "tfkd-self-online-tuned"), "mean_diff"] == \
        pytest.approx(-0.03)


def test_ranking_table_ranks_reference_and_tuned_with_their_uncertainty():
    display, numeric = tables.ranking_table(_runs(FIELD), "digits")
    ref = display[display["setting"] == "reference"]
    tuned = display[display["setting"] == "tuned"]
    # reference means 92.00, 92.00, 90.00, 92.33; tuned 92.00 (ce), 95.00, 94.00, 91.00
    assert list(zip(ref["variant"], ref["rank"])) == [
        ("drkd-online", 1), ("ce", 2), ("lsr", 2), ("tfkd-self-online", 4)]
    assert list(zip(tuned["variant"], tuned["rank"])) == [
        ("lsr-tuned", 1), ("tfkd-self-online-tuned", 2), ("ce", 3), ("drkd-online-tuned", 4)]
    lsr = tuned[tuned["variant"] == "lsr-tuned"].iloc[0]
    assert lsr["top-1 mean ± std (n)"] == "95.00 ± 0.00 (n=3)"
    # lsr-tuned (0.95 on every seed) against ce (0.90, 0.92, 0.94): 9 of 9 pairs above
    assert lsr["P(> ce)"] == "1.00"
    # tfkd-self-online against ce: pairs (x > y) of 0.89, 0.90, 0.91 vs 0.90, 0.92, 0.94: 1 of 9
    # above (0.91 > 0.90) and one tie (0.90 = 0.90) counting one half: 1.5 / 9
    tf = numeric[numeric["variant"] == "tfkd-self-online"].iloc[0]
    assert tf["p_improvement"] == pytest.approx(1.5 / 9)
    ce = numeric[numeric["variant"] == "ce"]
    assert sorted(ce["setting"]) == ["reference", "tuned"] and ce["p_improvement"].isna().all()
    assert ((1 <= numeric["rank_low"]) & (numeric["rank_low"] <= numeric["rank_high"])
            & (numeric["rank_high"] <= 4)).all()


def test_tuned_values_lists_what_the_study_changed():
    epochs = pd.DataFrame([
        {"run_id": "a", "dataset": "digits", "arch": "mlp", "variant": "lsr",
         "param.hp.smoothing": "0.1"},
        {"run_id": "b", "dataset": "digits", "arch": "mlp", "variant": "lsr-tuned",
         "param.hp.smoothing": "0.3399"},
        {"run_id": "c", "dataset": "digits", "arch": "mlp", "variant": "drkd-online-tuned",
         "param.hp.alpha": "0.5", "param.hp.teacher": "online"}])
    out = tables.tuned_values(epochs)
    assert out.to_dict("records") == [
        {"dataset": "digits", "arch": "mlp", "variant": "lsr-tuned", "alpha": "",
         "smoothing": "0.3399"},
        {"dataset": "digits", "arch": "mlp", "variant": "drkd-online-tuned", "alpha": "0.5",
         "smoothing": ""}]


#: The gains printed in the Tf-KD tables (yuanli2333/Teacher-free-Knowledge-Distillation@d000ab3,
#: figures/Tf-self.png and figures/Reg-Normal-LSR.png), in brackets beside each top-1.
TFKD_PRINTED_GAINS = {
    ("mobilenetv2", "tfkd-self"): 2.58, ("shufflenetv2", "tfkd-self"): 1.89,
    ("resnet18", "tfkd-self"): 1.23, ("googlenet", "tfkd-self"): 1.45,
    ("densenet121", "tfkd-self"): 1.22, ("resnext29", "tfkd-self"): 1.05,
    ("mobilenetv2", "tfkd-reg"): 2.50, ("shufflenetv2", "tfkd-reg"): 1.75,
    ("resnet18", "tfkd-reg"): 1.49, ("googlenet", "tfkd-reg"): 1.07,
    ("mobilenetv2", "lsr"): 0.94, ("shufflenetv2", "lsr"): 0.49, ("resnet18", "lsr"): 1.39,
    ("googlenet", "lsr"): 0.92}


def test_every_published_row_was_checked_and_its_baseline_is_its_tables():
    from analysis import tables

    pub = tables.published()
    assert pub["checked"].str.len().gt(20).all(), "record how each row was checked"
    tfkd = pub[pub["source"].str.startswith("Yuan")].set_index(["arch", "method"])
    for key, gain in TFKD_PRINTED_GAINS.items():
        row = tfkd.loc[key]
        assert round(row["top1"] - row["ce_top1"], 2) == gain, key


def test_model_selection_with_a_sparse_test_record_chooses_among_tested_epochs():
    # train.test_every = 2 over 3 epochs: the test split at epochs 2 and 3 only; the best
    # validation epoch overall (1) has no test value, so the selection is among 2 and 3
    epochs = pd.DataFrame({
        "run_id": ["r"] * 3, "dataset": "digits", "arch": "cnn8", "variant": "ce", "seed": 0,
        "kind": "train", "status": "FINISHED", "epoch": [1, 2, 3],
        "val_top1": [0.9, 0.8, 0.7], "test_top1": [np.nan, 0.85, 0.75]})
    run = load.runs_from_epochs(epochs).iloc[0]
    assert run["best_val_epoch"] == 2 and run["best_val_test_top1"] == 0.85
    assert run["final_test_top1"] == 0.75 and run["best_test_top1"] == 0.85


def test_tuning_trials_read_as_searched_and_in_percent():
    from analysis import report

    trials = pd.DataFrame({"run_id": ["a", "b", "c"], "study": ["s", "s", "s"],
                           "trial": [0, 1, 2], "state": ["COMPLETE"] * 3,
                           "param.hp.alpha": [0.9, 0.61234, 0.5],
                           "param.train.lr": [0.1, 0.06123, 0.0612],
                           "val_top1": [0.8627, 0.8620, 0.85]})
    frame = report._trial_table(report._trial_frame(trials))
    assert frame["val_top1 (%)"].tolist() == ["86.27", "86.20", "85.00"]
    assert frame["alpha"].tolist() == ["0.9", "0.6123", "0.5"]
    assert frame["lr"].tolist() == ["0.1", "0.06123", "0.0612"]  # two values, told apart


def test_the_trial_a_grid_used_is_read_off_what_its_tuned_cells_trained_with():
    from analysis import tables

    rows = [{"run_id": f"t{n}", "kind": "trial", "study": "d/a/drkd-online", "trial": n,
             "status": "FINISHED", "state": "COMPLETE", "param.hp.alpha": alpha,
             "param.train.lr": 0.1, "val_top1": 0.85, "variant": "", "dataset": "d", "arch": "a"}
            for n, alpha in ((0, 0.9), (1, 0.5), (2, 0.7))]  # all tied: Optuna's best is 0
    rows += [{"run_id": f"g{s}", "kind": "train", "study": "", "trial": "", "status": "FINISHED",
              "state": "", "param.hp.alpha": 0.7, "param.train.lr": 0.1, "val_top1": 0.8,
              "variant": "drkd-online-tuned", "dataset": "d", "arch": "a"} for s in (0, 1)]
    epochs = pd.DataFrame(rows)
    assert tables.trials_used(epochs) == {"d/a/drkd-online": "2"}
    table = tables.tuning_table(epochs[epochs["kind"] == "trial"],
                                used=tables.trials_used(epochs)).iloc[0]
    assert (str(table["winner_trial"]), str(table["chosen_trial"])) == ("0", "2")


def test_the_reports_choice_among_re_scored_trials_is_the_rescorings_own_rule():
    """Ties in the fresh mean: the report's tuning_choice and the re-scoring pick the same
    trial (the higher tuning value, then the earlier trial: tune.choice.rescored_rank)."""
    import optuna

    from analysis import tables
    from benchmark.jobs.tune.choice import rescored_rank

    tuning = {1: 0.90, 2: 0.92, 3: 0.92}
    fresh = {1: 0.95, 2: 0.95, 3: 0.95}  # every fresh mean tied
    rows = [{"run_id": f"t{n}", "kind": "trial", "study": "d/a/lsr", "trial": n,
             "status": "FINISHED", "state": "COMPLETE", "val_top1": v}
            for n, v in tuning.items()]
    rows += [{"run_id": f"r{n}", "kind": "rescore", "study": "d/a/lsr", "trial": n,
              "status": "FINISHED", "state": "", "val_top1": fresh[n],
              "selected_val_top1": tuning[n], "reference": "false"} for n in tuning]
    table = tables.tuning_table(pd.DataFrame(rows)).iloc[0]

    def trial(number, value):
        t = optuna.trial.create_trial(value=value)
        t.number = number
        return t

    ours = min(tuning, key=lambda n: rescored_rank(trial(n, tuning[n]), fresh[n]))
    assert str(table["chosen_trial"]) == str(ours) == "2"
