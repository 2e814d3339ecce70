"""Conditions as an axis: label noise (exact, deterministic, never on the test split, in the
hash), conditions of one config, the noise diagnostics on a worked example, and the aggregate
across tasks against rliable's own statistics."""
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import methods
from analysis import aggregate, stats
from benchmark import config, data
from benchmark.jobs import grid, runner, train


def _changed_per_class(clean: torch.Tensor, noisy: torch.Tensor) -> dict[int, tuple[int, int]]:
    return {int(c): (int(((clean == c) & (noisy != clean)).sum()), int((clean == c).sum()))
            for c in clean.unique()}


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_noise_changes_exactly_the_declared_fraction_per_class_and_never_the_test_split(kind,
                                                                                       rate):
    clean = data.load("digits", val_fraction=0.2)
    noisy = data.load("digits", val_fraction=0.2, noise=data.Noise(kind, rate, 3))
    again = data.load("digits", val_fraction=0.2, noise=data.Noise(kind, rate, 3))
    assert torch.equal(noisy.train_y, again.train_y) and torch.equal(noisy.val_y, again.val_y)
    # the same images (the split is drawn on the clean labels); test labels untouched
    assert torch.equal(noisy.train_x, clean.train_x) and torch.equal(noisy.val_x, clean.val_x)
    assert torch.equal(noisy.test_y, clean.test_y) and torch.equal(noisy.test_x, clean.test_x)
    for split in ("train", "val"):
        c, n = getattr(clean, f"{split}_y"), getattr(noisy, f"{split}_y")
        for label, (changed, count) in _changed_per_class(c, n).items():
            assert changed == round(rate * count), (split, label)
        assert torch.equal(getattr(noisy, f"{split}_noisy"), n != c)
        if kind == "pair":  # class c always becomes c + 1 mod K
            moved = n != c
            assert torch.equal(n[moved], (c[moved] + 1) % 10)
    other = data.load("digits", val_fraction=0.2, noise=data.Noise(kind, rate, 4))
    assert not torch.equal(other.train_y, noisy.train_y)  # another seed, another draw


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0.0, 0.95), classes=st.integers(2, 7), seed=st.integers(0, 10 ** 6))
def test_symmetric_noise_draws_another_class_exactly_round_rate_n(rate, classes, seed):
    labels = np.repeat(np.arange(classes), 13)
    out = data.Noise("symmetric", rate, seed).corrupt(labels, classes,
                                                      np.random.default_rng(seed))
    assert out.min() >= 0 and out.max() < classes
    for c in range(classes):
        assert int((out[labels == c] != c).sum()) == round(rate * 13)


def _grid(tmp_path, body: str):
    path = tmp_path / "g.yaml"
    path.write_text("seeds: [0]\narchitectures: [mlp]\nmethods: [ce]\n" + body)
    return config.load_grid(str(path))


def test_conditions_are_rows_of_one_config_and_noise_enters_the_hash(tmp_path):
    g = _grid(tmp_path, "datasets: {digits: {val_fraction: 0.1}}\nconditions:\n  clean: {}\n"
                        "  sym40: {noise: {kind: symmetric, rate: 0.4}}\n"
                        "  small: {train_subset: 600}\n")
    cells = {c.key: c for c in grid.expand(g)}
    assert sorted(cells) == ["digits:clean/mlp/ce/seed0", "digits:small/mlp/ce/seed0",
                             "digits:sym40/mlp/ce/seed0"]
    plain = grid.expand(_grid(tmp_path, "datasets: {digits: {val_fraction: 0.1}}\n"))[0]
    clean, noisy = cells["digits:clean/mlp/ce/seed0"], cells["digits:sym40/mlp/ce/seed0"]
    assert clean.hash == plain.hash  # a clean condition is the dataset itself (a label only)
    assert noisy.hash != clean.hash
    assert "noise" not in clean.identity()["data"] and noisy.identity()["data"]["noise"] == \
        "symmetric"
    tags = noisy.tags()
    assert tags["dataset"] == "digits:sym40" and tags["condition"] == "sym40"
    assert tags["label_noise"] == "symmetric 40% (seed 0)" and "diag.memorised" in tags
    loaded = runner.load_data(noisy.data, None)
    assert loaded.train_noisy is not None and 0.35 < loaded.train_noisy.float().mean() < 0.45
    assert runner.dataset_input(noisy.data, None)["digest"] != \
        runner.dataset_input(clean.data, None)["digest"]


def test_per_seed_split_redraws_the_noise_per_seed(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("seeds: [0, 1]\narchitectures: [mlp]\nmethods: [ce]\ndatasets: {digits: "
                    "{split: per-seed, noise: {kind: pair, rate: 0.2, seed: 5}}}\n")
    a, b = grid.expand(config.load_grid(str(path)))
    assert (a.data.noise_seed, b.data.noise_seed) == (5, 6)
    da, db = runner.load_data(a.data, None), runner.load_data(b.data, None)
    assert not torch.equal(da.train_noisy, db.train_noisy)


@pytest.mark.parametrize("body, message", [
    ("datasets: {digits: {noise: {kind: symmetric, rate: 1.0}}}",
     r"noise.rate must lie in \(0, 1\), got 1.0"),
    ("datasets: {digits: {noise: {kind: symmetric, rate: -0.1}}}", r"noise.rate must lie in"),
    ("datasets: {digits: {noise: {kind: symmetric, rate: .nan}}}",
     r"noise.rate must be finite and lie in \(0, 1\), got nan"),
    ("datasets: {digits: {noise: {kind: asymmetric, rate: 0.2}}}",
     "noise.kind must be one of: symmetric, pair \\(got 'asymmetric'\\)"),
    ("datasets: {digits: {noise: {kind: pair}}}", "datasets.digits.noise: missing key 'rate'"),
    ("datasets: {digits: {noise: {kind: pair, rate: 0}}}", r"noise.rate must lie in \(0, 1\)"),
    ("datasets: {digits: {noise: {kind: pair, rate: 0.2, sed: 1}}}", "unknown key 'sed'"),
    ("datasets: {digits: {}}\nconditions: {a: {noise: {kind: pair, rate: 0.2}}, "
     "b: {noise: {kind: pair, rate: 0.2}}}", "'b' and 'a' give digits the same data"),
    ("datasets: {digits: {}}\nconditions: {a: {epochs: 3}}", "unknown key 'epochs'"),
    ("datasets: {digits: {}}\nanalysis: {aggregate: true}",
     "an aggregate across tasks needs at least two tasks"),
])
def test_bad_conditions_are_one_line_errors(tmp_path, body, message):
    with pytest.raises(config.ConfigError, match=message):
        _grid(tmp_path, body)


def test_noise_on_a_dataset_without_two_classes_is_refused(tmp_path):
    folder = tmp_path / "one"
    (folder / "only").mkdir(parents=True)
    from PIL import Image

    for i in range(8):
        Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(folder / "only" / f"{i}.png")
    with pytest.raises(config.ConfigError,
                       match="fewer than two classes|a classifier needs at least two"):
        _grid(tmp_path, f"datasets: {{mine: {{kind: folder, path: {folder}, val_fraction: 0.5,"
                        " noise: {kind: pair, rate: 0.2}}}\n")


def test_noise_diagnostics_on_a_worked_batch():
    # six samples; rows 1, 2 and 4 carry a noisy (wrong) given label
    y = torch.tensor([0, 2, 1, 1, 0, 2])
    noisy = torch.tensor([False, True, True, False, True, False])
    logits = torch.tensor([[5., 0, 0],   # predicts 0 = y      (clean)
                           [0, 0, 5.],   # predicts 2 = y      (noisy: memorised)
                           [5., 0, 0],   # predicts 0 != y 1   (noisy: not memorised)
                           [0, 5., 0],   # predicts 1 = y      (clean)
                           [5., 0, 0],   # predicts 0 = y      (noisy: memorised)
                           [5., 0, 0]])  # predicts 0 != y 2   (clean)
    # DR-KD rectifies the rows whose teacher's top class is not the given label
    teacher = torch.tensor([[5., 0, 0], [0, 5., 0], [5., 0, 0], [0, 5., 0], [0, 5., 0],
                            [0, 0, 5.]])
    terms = methods.get("drkd").terms(logits, y, teacher)
    mask = terms["events"]["rectified"]
    assert mask.tolist() == [False, True, True, False, True, False]
    assert terms["rectified"].item() == pytest.approx(3 / 6)
    counts = train.noise_counts(logits, y, noisy, terms["events"])
    assert counts["memorised"].tolist() == [2, 3]        # 2 of the 3 noisy samples fitted
    assert counts["rectified_noisy"].tolist() == [3, 3]  # every rectification wrote a wrong label
    clean_teacher = teacher.clone()
    clean_teacher[5] = torch.tensor([5., 0, 0])  # row 5: clean label, wrong teacher: rectified
    events = methods.get("drkd").terms(logits, y, clean_teacher)["events"]
    assert train.noise_counts(logits, y, noisy, events)["rectified_noisy"].tolist() == [3, 4]


def test_a_noisy_run_logs_the_diagnostics_per_epoch():
    spec = config.make_spec("digits", "mlp", "drkd", 0, {"teacher": "online"},
                            {"epochs": 2, "batch_size": 128}, noise="symmetric", noise_rate=0.4)
    d = runner.load_data(spec.data, None)
    history = train.train(spec, d, device="cpu").history
    for row in history:
        assert 0 <= row["diag_memorised"] <= 1 and 0 <= row["diag_rectified_noisy"] <= 1
    clean = config.make_spec("digits", "mlp", "drkd", 0, {"teacher": "online"},
                             {"epochs": 1, "batch_size": 128})
    row = train.train(clean, runner.load_data(clean.data, None), device="cpu").history[0]
    assert "diag_memorised" not in row and "diag_rectified_noisy" not in row


def _runs(rng, tasks, variants, seeds=5):
    rows = []
    for t, (d, a) in enumerate(tasks):
        for v, shift in variants.items():
            for s in range(seeds):
                rows.append({"dataset": d, "arch": a, "variant": v, "method": v.split("-")[0],
                             "seed": s, "final_test_top1": 0.8 + 0.01 * t + shift
                             + 0.01 * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_aggregate_equals_rliables_statistics_on_a_fixture():
    from rliable import metrics as rl

    rng = np.random.default_rng(0)
    tasks = [("digits", "mlp"), ("digits", "cnn8"), ("digits:sym40", "mlp")]
    runs = _runs(rng, tasks, {"ce": 0.0, "drkd-online": 0.01, "tfkd-self-online": 0.005})
    agg = aggregate.aggregate(runs, stats.Analysis(bootstrap=200)).set_index("variant")
    x, y = aggregate.score_matrices(runs, "drkd-online", "ce")
    assert x.shape == (5, 3)
    scores = x - y
    row = agg.loc["drkd-online"]
    assert row["iqm"] == pytest.approx(rl.aggregate_iqm(scores))
    assert row["iqm"] == pytest.approx(scipy.stats.trim_mean(scores.ravel(), 0.25))
    assert row["p_improve_ce"] == pytest.approx(rl.probability_of_improvement(x, y))
    # P(X > Y) by hand: per task the share of (x, y) pairs with x > y, mean over tasks
    by_hand = np.mean([np.mean(x[:, t][:, None] > y[:, t][None, :]) for t in range(3)])
    assert row["p_improve_ce"] == pytest.approx(by_hand)
    assert row["tfkd_self"] == "tfkd-self-online"
    rx, ry = aggregate.score_matrices(runs, "drkd-online", "tfkd-self-online")
    assert row["p_improve_tfkd_self"] == pytest.approx(rl.probability_of_improvement(rx, ry))
    assert row["iqm_low"] <= row["iqm"] <= row["iqm_high"]
    assert row["p_improve_ce_low"] <= row["p_improve_ce"] <= row["p_improve_ce_high"]
    # on the common scale: each task's scores over CE's seed SD in that task
    assert row["iqm_sd"] == pytest.approx(rl.aggregate_iqm(scores / y.std(axis=0, ddof=1)))
    assert row["iqm_sd_low"] <= row["iqm_sd"] <= row["iqm_sd_high"]
    # stretching one task's accuracies about a point (every variant, 8x) moves the IQM in
    # points, never the standardised one nor P(improvement)
    wide = runs.copy()
    task = wide["dataset"] == "digits:sym40"
    wide.loc[task, "final_test_top1"] = 0.5 + 8 * (wide.loc[task, "final_test_top1"] - 0.5)
    stretched = aggregate.aggregate(wide, stats.Analysis(bootstrap=200)).set_index("variant")
    assert stretched.loc["drkd-online", "iqm_sd"] == pytest.approx(row["iqm_sd"])
    assert stretched.loc["drkd-online", "p_improve_ce"] == pytest.approx(row["p_improve_ce"])
    assert stretched.loc["drkd-online", "iqm"] != pytest.approx(row["iqm"])
    taus, curves = aggregate.profiles(runs, ["drkd-online"], stats.Analysis(bootstrap=200))
    curve, low, high = curves["drkd-online"]
    assert curve[0] == 1.0 or curve[0] == pytest.approx(np.mean(scores > taus[0]))
    assert np.all(np.diff(curve) <= 0) and np.all(low <= curve + 1e-12)


def test_a_tuned_variants_aggregate_is_read_against_tuned_ce_as_its_verdicts_are():
    """The per-task verdicts read drkd-online-tuned against ce-tuned (tuned against tuned); the
    aggregate of the same variant must answer the same question, not one against untuned CE."""
    rng = np.random.default_rng(3)
    tasks = [("digits", "mlp"), ("digits", "cnn8")]
    runs = _runs(rng, tasks, {"ce": 0.0, "ce-tuned": 0.02, "drkd-online-tuned": 0.03,
                              "lsr": 0.01})
    agg = aggregate.aggregate(runs, stats.Analysis(bootstrap=200)).set_index("variant")
    assert agg.loc["drkd-online-tuned", "baseline"] == "ce-tuned"
    assert agg.loc["lsr", "baseline"] == "ce" and agg.loc["ce-tuned", "baseline"] == "ce"
    x, y = aggregate.score_matrices(runs, "drkd-online-tuned", "ce-tuned")
    assert agg.loc["drkd-online-tuned", "iqm"] == pytest.approx(
        scipy.stats.trim_mean((x - y).ravel(), 0.25))
    taus, curves = aggregate.profiles(runs, ["drkd-online-tuned"], stats.Analysis(bootstrap=200))
    standard = aggregate.standardised(x - y, y)  # the profiles' scale: tuned CE's seed SDs
    assert curves["drkd-online-tuned"][0][0] == pytest.approx(np.mean(standard > taus[0]))
    assert stats.baseline_for("drkd-online-tuned", {"ce"}) == "ce"  # no tuned CE: plain CE


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10 ** 6), n=st.integers(2, 6), m=st.integers(2, 6),
       tasks=st.integers(1, 4))
def test_vectorised_probability_of_improvement_equals_rliables(seed, n, m, tasks):
    from rliable import metrics as rl

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, (3, n, tasks)).astype(float)  # ties on purpose
    y = rng.integers(0, 4, (3, m, tasks)).astype(float)
    y[0, :min(n, m)] = x[0, :min(n, m)]
    many = aggregate.poi_many(x, y)
    for i in range(3):
        assert many[i] == pytest.approx(rl.probability_of_improvement(x[i], y[i]))


def test_stratified_bootstrap_draws_runs_within_each_task():
    m = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    idx = aggregate.stratified_resamples(3, 2, 50, np.random.default_rng(1))
    res = aggregate._resample(m, idx)
    assert set(np.unique(res[..., 0])) <= {1.0, 2.0, 3.0}  # task 0 only ever shows its own runs
    assert set(np.unique(res[..., 1])) <= {10.0, 20.0, 30.0}
    same = np.ones((4, 2))
    assert aggregate.interval(same, lambda s: float(s.mean()), 100,
                              np.random.default_rng(0)) == (1.0, 1.0)


def test_aggregate_over_one_task_is_refused():
    runs = _runs(np.random.default_rng(0), [("digits", "mlp")], {"ce": 0.0, "lsr": 0.01})
    with pytest.raises(aggregate.AggregateError, match="at least two tasks"):
        aggregate.aggregate(runs)


def test_report_aggregate_over_one_task_is_one_line_and_writes_nothing(tmp_path, capsys):
    from pathlib import Path

    from benchmark import cli

    root = Path(__file__).resolve().parents[1] / "results" / "published" / "runs.csv"
    frame = pd.read_csv(root)
    one = frame[(frame["dataset"] == "digits") & (frame["arch"] == frame["arch"].iloc[0])]
    csv = tmp_path / "one.csv"
    one.to_csv(csv, index=False)
    out = tmp_path / "out"
    code = cli.main(["report", "--from", str(csv), "--out", str(out), "--aggregate"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "an aggregate across tasks needs at least two tasks" in err
    assert not out.exists()


def test_a_grid_and_its_studies_run_task_by_task(capsys, tmp_path):
    from benchmark import cli

    assert cli.main(["grid", "label-noise", "--dry-run", "--task", "digits:sym40/*",
                     "--task", "digits:clean/mlp"]) == 0
    keys = [line.split()[1] for line in capsys.readouterr().out.splitlines()
            if line.strip()[:1].isdigit()]
    tasks = {k.rsplit("/", 2)[0] for k in keys}
    assert tasks == {"digits:sym40/cnn8", "digits:sym40/mlp", "digits:clean/mlp"}
    full = grid.expand(config.load_grid("label-noise"))
    assert sorted(keys) == sorted(c.key for c in full if f"{c.data.task}/{c.arch}" in tasks)
    results = tmp_path / "results"
    assert cli.main(["grid", "label-noise", "--task", "cifar*/*", "--results", str(results)]) == 2
    assert "matches no task of this config (digits:clean/cnn8," in capsys.readouterr().err
    assert not results.exists()


def test_a_task_of_a_tuned_grid_needs_only_its_own_studies(capsys, tmp_path):
    from benchmark import cli

    results = tmp_path / "results"
    # no study yet: the error names the selected task's study, not the first task's
    assert cli.main(["grid", "paper-question", "--dry-run", "--task", "fashion-mnist:sym40/mlp",
                     "--results", str(results)]) == 2
    assert "no tuned values for study 'fashion-mnist:sym40/mlp/ce'" in capsys.readouterr().err
    assert cli.main(["tune", "paper-question", "--show", "--task", "digits:clean/cnn8",
                     "--results", str(results)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown and all(line.startswith("digits:clean/cnn8/") for line in shown), shown
    assert len(shown) == 5  # ce, drkd and tfkd-self with online and pretrained teachers
