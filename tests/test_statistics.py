"""The statistics a verdict rests on: checked against scipy and statsmodels, against a worked
example computed by hand, and for the invariants a reviewer relies on (no adjusted p below its
raw p, better/worse only below alpha after adjustment, intervals inside the metric's range)."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from analysis import plan, stats
from benchmark import cli, config


def _runs(finals: dict[str, list[float]], arch="cnn8", dataset="toy") -> pd.DataFrame:
    """Final test accuracies per variant and seed, on a data set whose test size is unknown (the
    seeds alone: the test images add nothing) unless ``dataset`` names a shipped one."""
    rows = []
    for variant, values in finals.items():
        method = variant.removesuffix("-tuned")
        for seed, v in enumerate(values):
            rows.append({"dataset": dataset, "arch": arch, "variant": variant, "method": method,
                         "teacher_source": "", "seed": seed, "final_test_top1": v})
    return pd.DataFrame(rows)


def test_worked_example_by_hand():
    """x = 91, 95, 96 and CE = 90, 92, 94 (percent): differences 1, 3, 2 points.

    mean d = 2, sd = 1, se = 1/sqrt(3) = 0.5774, df = 2.
    Paired t: t = 2 / 0.5774 = 3.4641; p = 2 * P(T2 > 3.4641) = 0.07418.
    95% CI: 2 ± 4.3027 * 0.5774 = [-0.4841, 4.4841].
    TOST at ±0.5: lower t = (2 + 0.5) / se = 4.3301, p = P(T2 > 4.3301) = 0.02471;
    upper t = (2 - 0.5) / se = 2.5981, p = P(T2 < 2.5981) = 0.93916; TOST p = max = 0.93916.
    MDE at 80% power, n = 3: d = 3.2640 standard deviations (noncentral t, statsmodels'
    TTestPower), so 3.2640 points.
    The comparison is alone in its family, so Holm leaves p unchanged: 0.074 > 0.05 and
    0.939 > 0.05: inconclusive. (A data set whose test size is unknown: the seeds alone.)
    """
    runs = _runs({"ce": [0.90, 0.92, 0.94], "lsr": [0.91, 0.95, 0.96]}, dataset="toy")
    row = stats.paired(runs, "final_test_top1", scale=100).iloc[0]
    assert row["test_bound"] == "none" and row["se_images"] == 0
    assert (row["ci_low_total"], row["ci_high_total"]) == (row["ci_low"], row["ci_high"])
    assert (row["variant"], row["baseline"], row["n_pairs"]) == ("lsr", "ce", 3)
    assert row["mean_diff"] == pytest.approx(2.0)
    assert row["sd_diff"] == pytest.approx(1.0)
    assert row["ci_low"] == pytest.approx(-0.4841, abs=1e-4)
    assert row["ci_high"] == pytest.approx(4.4841, abs=1e-4)
    assert row["p_value"] == pytest.approx(0.07418, abs=1e-5)
    assert row["p_holm"] == pytest.approx(row["p_value"])
    assert row["p_tost"] == pytest.approx(0.93916, abs=1e-5)
    assert row["mde"] == pytest.approx(3.2640, abs=1e-4)
    assert row["verdict"] == "inconclusive"
    assert stats.sentence(row) == ("inconclusive: +2.00 [-0.48, +4.48], Holm p 0.0742, "
                                   "TOST p 0.939, MDE 3.26 (n = 3)")
    # interval ends keep 6 decimals, so that the 2 a sentence prints are rounded once
    assert row["ci_low"] == pytest.approx(-0.484138, abs=5e-7)


def test_printed_numbers_are_rounded_once_half_away_from_zero():
    """A table's 0.475 is printed +0.48 (as a reader rounds it, not Python's binary 0.47499...),
    and an interval end stored with 6 decimals is rounded once: 0.024957 is +0.02 (stored with
    4 decimals it was 0.0250, printed +0.03)."""
    from analysis.stats.verdicts import points_text

    assert points_text(0.475) == "+0.48" and points_text(-0.735) == "-0.74"
    assert points_text(0.024957) == "+0.02" and points_text(0.025) == "+0.03"
    assert points_text(0.0) == "+0.00" and points_text(-0.0001) == "-0.00"
    assert points_text(1.23456, 1) == "+1.2"


def test_worked_example_with_the_test_images_by_hand():
    """The same runs on digits' 450 test images, which kept no per-image correctness: the bound
    that treats the two models' errors as independent.

    pa = 0.94, pb = 0.92: var_img = (0.94 x 0.06 + 0.92 x 0.08) / 450 = 2.8889e-4, in points^2
    2.8889 (se_images 1.6997 points). SE = sqrt(1/3 + 2.8889) = 1.7951, df = 2.
    t = 2 / 1.7951 = 1.1142, p = 2 P(T2 > 1.1142) = 0.38115;
    95% CI: 2 ± 4.3027 x 1.7951 = [-5.7235, 9.7235];
    TOST: P(T2 > 2.5 / 1.7951) = 0.1495, P(T2 < 1.5 / 1.7951) = 0.75436: 0.75436;
    MDE: 3.2640 x sqrt(1 + 3 x 2.8889) = 10.1483. The seed-only interval stays beside it.
    """
    runs = _runs({"ce": [0.90, 0.92, 0.94], "lsr": [0.91, 0.95, 0.96]}, dataset="digits")
    row = stats.paired(runs, "final_test_top1", scale=100).iloc[0]
    assert row["test_bound"] == "independent errors"
    assert row["se_images"] == pytest.approx(1.69967, abs=1e-5)
    assert (row["ci_low_total"], row["ci_high_total"]) == pytest.approx((-5.7235, 9.7235),
                                                                       abs=1e-4)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.4841, 4.4841), abs=1e-4)
    assert row["ci_high_total"] - row["ci_low_total"] > row["ci_high"] - row["ci_low"]
    assert row["p_value"] == pytest.approx(0.38115, abs=1e-5)
    assert row["p_seeds"] == pytest.approx(0.07418, abs=1e-5)
    assert row["p_tost"] == pytest.approx(0.75436, abs=1e-5)
    assert row["mde"] == pytest.approx(10.1483, abs=1e-4)
    assert row["verdict"] == "inconclusive"
    # a validation metric is no test-set sample: the seeds alone
    val = stats.paired(runs.rename(columns={"final_test_top1": "final_val_top1"}),
                       "final_val_top1", scale=100).iloc[0]
    assert val["test_bound"] == "none"
    assert val["ci_low_total"] == val["ci_low"] == pytest.approx(-0.4841, abs=1e-4)


def test_holm_by_hand():
    """p = 0.01, 0.04, 0.03 (m = 3). Sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04,
    raised to the running maximum 0.06. Adjusted: 0.03, 0.06, 0.06."""
    out = stats.holm(pd.Series([0.01, 0.04, np.nan, 0.03]))
    assert out.iloc[[0, 1, 3]].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(out.iloc[2])  # a missing p stays missing and does not count in m


def _field(rng: np.random.Generator, seeds: int = 5) -> pd.DataFrame:
    finals = {"ce": 0.8 + 0.01 * rng.standard_normal(seeds)}
    for i, shift in enumerate([0.0, 0.002, 0.01, -0.02, 0.03]):
        finals[f"m{i}"] = finals["ce"] + shift + 0.004 * rng.standard_normal(seeds)
        finals[f"m{i}-tuned"] = finals["ce"] + shift + 0.004 * rng.standard_normal(seeds)
    return _runs({k: list(v) for k, v in finals.items()})


def test_every_column_agrees_with_scipy_and_statsmodels():
    runs = _field(np.random.default_rng(3))
    margin = 0.7
    table = stats.paired(runs, "final_test_top1", stats.Analysis(margin=margin), scale=100)
    assert set(table["setting"]) == {"reference", "tuned", "tuned vs reference"}
    # the default families: tuned against tuned is the headline, the rest the field
    assert set(table.loc[table["setting"] == "tuned", "family"]) == {"headline"}
    assert set(table.loc[table["setting"] != "tuned", "family"]) == {"field"}
    for _, g in table.groupby("family"):
        assert g["p_holm"].tolist() == pytest.approx(
            multipletests(g["p_value"], method="holm")[1].tolist())
        assert g["p_tost_holm"].tolist() == pytest.approx(
            multipletests(g["p_tost"], method="holm")[1].tolist())
    wide = runs.pivot(index="seed", columns="variant", values="final_test_top1") * 100
    for _, r in table.iterrows():
        x, y = wide[r["variant"]], wide[r["baseline"]]
        assert r["p_value"] == pytest.approx(sps.ttest_rel(x, y).pvalue)
        assert r["p_tost"] == pytest.approx(ttost_paired(x.to_numpy(), y.to_numpy(),
                                                         -margin, margin)[0])
        sd = (x - y).std(ddof=1)
        assert r["mde"] == pytest.approx(sd * TTestPower().solve_power(
            nobs=5, alpha=0.05, power=0.8, effect_size=None))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), seeds=st.integers(2, 8),
       family=st.sampled_from([("dataset", "arch", "setting"), ("dataset",), ()]),
       margin=st.floats(0.05, 3))
def test_verdict_invariants(seed, seeds, family, margin):
    runs = _field(np.random.default_rng(seed), seeds)
    a = stats.Analysis(family=family, margin=margin)
    table = stats.paired(runs, "final_test_top1", a, scale=100)
    ok = table["p_value"].notna()
    assert (table.loc[ok, "p_holm"] >= table.loc[ok, "p_value"] - 1e-12).all()
    assert (table.loc[ok, "p_tost_holm"] >= table.loc[ok, "p_tost"] - 1e-12).all()
    assert set(table["verdict"]) <= set(stats.VERDICTS)
    decided = table[table["verdict"].isin(["better", "worse"])]
    assert (decided["p_holm"] < 0.05).all()
    assert ((decided["verdict"] == "better") == (decided["mean_diff"] > 0)).all()
    equivalent = table[table["verdict"] == "equivalent"]
    assert (equivalent["p_tost_holm"] < 0.05).all()
    # equivalence at 5% implies the 90% interval lies inside the margin, so the mean does too
    assert (equivalent["mean_diff"].abs() < margin).all()
    # headline (tuned) and field (reference, tuned vs reference), split by the keys given
    assert table["family"].nunique() == {(): 2, ("dataset",): 2}.get(family, 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=12))
def test_bounded_interval_stays_inside_the_metric(values):
    mean, low, high = stats.bounded_interval(values)
    assert min(values) - 1e-12 <= low <= mean + 1e-12
    assert mean - 1e-12 <= high <= max(values) + 1e-12


def test_accuracy_intervals_near_100_stay_below_100():
    runs = _runs({"ce": [1.0, 0.99, 1.0], "lsr": [0.2, 0.0, 0.01]})
    s = stats.summarize(runs, "final_test_top1").set_index("variant")
    assert s.loc["ce", "ci_high"] <= 1.0 and s.loc["lsr", "ci_low"] >= 0.0
    lo, hi = stats.t_interval(np.array([1.0, 0.99, 1.0]))[1:]  # what the t-interval would say
    assert hi > 1.0


def test_rank_uncertainty_of_a_clear_winner_and_a_coin_flip():
    runs = _runs({"ce": [0.80, 0.81, 0.82, 0.83], "best": [0.90, 0.91, 0.92, 0.93],
                  "a": [0.70, 0.72, 0.70, 0.72], "b": [0.72, 0.70, 0.72, 0.70]})
    r = stats.rank_uncertainty(runs, "final_test_top1").set_index("variant")
    assert r.loc["best", ["rank", "rank_low", "rank_high"]].tolist() == [1, 1, 1]
    assert r.loc["best", "p_first"] == 1.0 and r.loc["ce", "p_first"] == 0.0
    assert r.loc["best", "p_improvement"] == 1.0 and r.loc["a", "p_improvement"] == 0.0
    # a and b tie on the mean (rank 3 both) and swap places under resampling
    assert r.loc["a", "rank"] == r.loc["b", "rank"] == 3
    assert r.loc["a", "rank_low"] == 3 and r.loc["a", "rank_high"] == 4
    again = stats.rank_uncertainty(runs, "final_test_top1").set_index("variant")
    pd.testing.assert_frame_equal(r, again)  # a fixed bootstrap seed: the same report


def test_seeds_needed_and_mde_match_statsmodels():
    """SD 0.5 points, detect 0.3: effect size 0.6; statsmodels gives n = 23.79, so 24 seeds.
    At alpha / 10 (Holm's first step over 10 comparisons) more seeds are needed."""
    assert stats.seeds_needed(0.5, 0.3) == 24
    assert stats.seeds_needed(0.5, 0.3, alpha=0.005) > 24
    assert stats.mde(0.5, 24) <= 0.3 < stats.mde(0.5, 23)
    assert math.isnan(stats.mde(0.5, 1)) and stats.seeds_needed(0.0, 0.3) == 2
    # where statsmodels' power is NaN (numerically 1) the search stays monotone: SD 0.17, detect
    # 0.3 at alpha/18 needs 10 seeds (power 0.667 at 8, 0.879 at 10), not the 82 a NaN misled
    power = TTestPower()
    n = stats.seeds_needed(0.17, 0.3, alpha=0.05 / 18)
    assert power.power(effect_size=0.3 / 0.17, nobs=n - 1, alpha=0.05 / 18) < 0.8
    assert power.power(effect_size=0.3 / 0.17, nobs=n, alpha=0.05 / 18) >= 0.8
    assert n == 10


def test_analysis_settings_are_validated_with_the_key_named():
    a = stats.Analysis.from_mapping({"family": "dataset,arch", "margin": 1})
    assert a.family == ("dataset", "arch") and a.margin == 1.0
    assert stats.Analysis.from_mapping({"family": "all"}).family == ()
    for bad, key in (({"margin": 0}, "margin"), ({"family": ["seed"]}, "family"),
                     ({"alpha": 1.5}, "alpha"), ({"bootstrap": 10}, "bootstrap"),
                     ({"margni": 1}, "margni")):
        with pytest.raises(ValueError, match=key):
            stats.Analysis.from_mapping(bad)


def test_config_analysis_block_and_report_flags(tmp_path, capsys):
    text = config.resolve_config_path("quick").read_text()
    good = tmp_path / "good.yaml"
    good.write_text(text + "analysis:\n  margin: 0.25\n  family: [dataset, arch]\n")
    assert config.load_grid(str(good)).analysis_settings().margin == 0.25
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "analysis:\n  margin: -1\n")
    with pytest.raises(config.ConfigError, match=r"analysis\.margin"):
        config.load_grid(str(bad))
    csv = tmp_path / "runs.csv"
    csv.write_text("run_id,status,kind,dataset,arch,variant,seed\n")
    assert cli.main(["report", "--from", str(csv), "--margin", "-1",
                     "--out", str(tmp_path / "o")]) == 2
    assert "--margin" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _epochs(runs: pd.DataFrame) -> pd.DataFrame:
    e = runs.assign(run_id=[f"r{i}" for i in range(len(runs))], status="FINISHED",
                    kind="train", epoch=1, test_top1=runs["final_test_top1"],
                    cell_hash=[f"h{i}" for i in range(len(runs))])
    return e.drop(columns="final_test_top1")


def test_plan_sizes_each_comparison_from_the_pilot(tmp_path, capsys):
    runs = _field(np.random.default_rng(1))
    frame = plan.plan(_epochs(runs), detect=0.3, seeds=20)
    table = stats.paired(runs, "final_test_top1", scale=100)
    assert len(frame) == len(table)
    for _, r in frame.iterrows():
        assert r["seeds_needed"] == stats.seeds_needed(r["sd_diff"], 0.3)
        assert r["seeds_needed_holm"] >= r["seeds_needed"]
        assert r["mde_planned"] == pytest.approx(stats.mde(r["sd_diff"], 20))
    csv = tmp_path / "pilot.csv"
    _epochs(runs).to_csv(csv, index=False)
    out = tmp_path / "plan.csv"
    assert cli.main(["plan", "--from", str(csv), "--detect", "0.3", "--seeds", "20",
                     "--out", str(out), "--variant", "m1"]) == 0
    text = capsys.readouterr().out
    assert "m1 − ce" in text and "m2 − ce" not in text and "MDE@20" in text
    assert set(pd.read_csv(out)["variant"]) == {"m1"}
    assert cli.main(["plan", "--from", str(csv), "--detect", "0"]) == 2


def test_sensitivity_columns_on_a_worked_example_against_scipy_and_statsmodels():
    """Eight seeds; m1 gains 0.30 +- 0.2 points (a knife-edge 'equivalent' at +-0.5), m2 loses
    1 point clearly. The equivalence bound is the largest |end| of the 90% t interval; the
    half/twice-margin verdicts re-run the TOST at 0.25 and 1.0; the Wilcoxon verdicts use
    scipy's signed-rank tests (two-sided, and two one-sided at -+margin); the wider family is
    Holm over every comparison (the whole edition)."""
    ce = [0.90, 0.91, 0.92, 0.905, 0.915, 0.895, 0.925, 0.91]
    d1 = [0.001, 0.004, 0.002, 0.005, 0.003, 0.006, 0.000, 0.003]
    d2 = [-0.010, -0.012, -0.008, -0.011, -0.009, -0.010, -0.013, -0.007]
    runs = pd.concat([_runs({"ce": ce, "m1": list(np.add(ce, d1)), "m2": list(np.add(ce, d2))}),
                      _runs({"ce": ce, "m1": list(np.add(ce, d1))}, arch="mlp")])
    margin = 0.5
    a = stats.Analysis(margin=margin, family=("dataset", "arch"))  # one family per task
    table = stats.answer(runs, runs.iloc[:0], "final_test_top1", a, scale=100).set_index(
        ["arch", "variant"])
    r = table.loc[("cnn8", "m1")]
    x = np.add(ce, d1) * 100
    y = np.array(ce) * 100
    diff = x - y
    lo, hi = sps.t.interval(0.90, len(diff) - 1, loc=diff.mean(), scale=sps.sem(diff))
    assert r["eq_bound"] == pytest.approx(max(abs(lo), abs(hi)))
    # the margin at which TOST just passes is the bound: below it, not equivalent
    assert ttost_paired(x, y, -r["eq_bound"] * 1.001, r["eq_bound"] * 1.001)[0] < 0.05
    assert ttost_paired(x, y, -r["eq_bound"] * 0.999, r["eq_bound"] * 0.999)[0] > 0.05
    fam = table.loc["cnn8"]
    p_half = [ttost_paired(np.add(ce, d) * 100, y, -0.25, 0.25)[0] for d in (d1, d2)]
    holm_half = multipletests(p_half, method="holm")[1]
    p_holm = multipletests(fam["p_value"].to_numpy(), method="holm")[1][0]
    assert fam.loc["m1", "p_holm"] == pytest.approx(p_holm)
    expected_half = ("better" if p_holm < 0.05 else
                     "equivalent" if holm_half[0] < 0.05 else "inconclusive")
    assert r["verdict_half_margin"] == expected_half
    w = sps.wilcoxon(diff).pvalue
    w_tost = max(sps.wilcoxon(diff + margin, alternative="greater").pvalue,
                 sps.wilcoxon(diff - margin, alternative="less").pvalue)
    w2 = sps.wilcoxon((np.add(ce, d2) - np.array(ce)) * 100).pvalue
    holm_w = multipletests([w, w2], method="holm")[1]
    expected_w = ("better" if holm_w[0] < 0.05 else
                  "equivalent" if w_tost < 0.05 else "inconclusive")
    assert r["verdict_wilcoxon"] == expected_w
    # the wider family: Holm over the dataset's three comparisons, not the task's two
    wider = multipletests(table["p_value"].to_numpy(), method="holm")[1]
    assert table["p_value"].notna().all() and len(wider) == 3
    changed = r[["verdict_half_margin", "verdict_twice_margin", "verdict_wilcoxon",
                 "verdict_wider_family"]].ne(r["verdict"]).any()
    assert bool(r["fragile"]) == bool(changed)
    m2 = table.loc[("cnn8", "m2")]
    assert m2["verdict"] == "worse" and not m2["fragile"]  # a clear loss survives every check
    assert stats.fragile_why(m2) == ""
    if r["fragile"]:
        assert "*fragile*" in stats.sentence(r) and stats.fragile_why(r) in stats.sentence(r)


def test_convergence_reads_ce_at_twice_its_epochs():
    frame = pd.DataFrame([
        {"dataset": "d", "arch": "a", "variant": "ce@2x", "baseline": "ce",
         "verdict": "better", "mean_diff": 1.7, "ci_low": 1.5, "ci_high": 1.9},
        {"dataset": "d", "arch": "b", "variant": "ce@2x", "baseline": "ce",
         "verdict": "equivalent", "mean_diff": 0.1, "ci_low": -0.1, "ci_high": 0.3},
        {"dataset": "d", "arch": "c", "variant": "lsr", "baseline": "ce",
         "verdict": "better", "mean_diff": 0.1, "ci_low": 0.0, "ci_high": 0.3}])
    conv = stats.convergence(frame).set_index("arch")
    assert conv.loc["a", "checked"] and not conv.loc["a", "converged"]
    assert conv.loc["b", "converged"] and not conv.loc["c", "checked"]


def test_the_ladder_compares_each_budget_with_twice_its_epochs():
    noise = [0.0, 0.001, -0.001, 0.0005, -0.0005, 0.0]  # fractions: ±0.1 points
    finals = {"ce": [0.80 + e for e in noise],
              "ce@2x": [0.81 + e for e in noise[::-1]],           # +1 point on average
              "ce@4x": [0.81 + 0.5 * e for e in noise]}           # as 2x: equivalent
    runs = _runs(finals)
    runs["epochs"] = runs["variant"].map({"ce": 15, "ce@2x": 30, "ce@4x": 60})
    lad = stats.ladder(runs, "final_test_top1", stats.Analysis(margin=0.5))
    assert list(zip(lad["variant"], lad["baseline"])) == [("ce@2x", "ce"), ("ce@4x", "ce@2x")]
    assert lad["mean_diff"].tolist() == pytest.approx([1.0, 0.0], abs=1e-9)
    assert lad["verdict"].tolist() == ["better", "equivalent"]
    assert lad["epochs"].tolist() == [15, 30] and lad["epochs_double"].tolist() == [30, 60]
    assert lad["first_converged"].tolist() == [30, 30]
    # Holm within the task's ladder (2 comparisons): no adjusted p below its raw p
    assert (lad["p_holm"] >= lad["p_value"]).all()
    # a budget whose double is missing is not compared; no ladder at all: an empty frame
    assert stats.budget_factor("ce@2x", "ce") == 2.0 and stats.budget_factor("lsr", "ce") is None
    assert stats.ladder(runs[runs["variant"] != "ce@2x"], "final_test_top1").empty


def test_a_tuned_variant_meets_its_reference_when_it_is_labelled_as_a_lattice_point():
    # the third edition: drkd-online-tuned's reference values ran as drkd-online-a0.95-T6 only
    finals = {"ce": [.90, .91, .92], "drkd-online-a0.95-T6": [.91, .92, .93],
              "tfkd-self-online-a0.95-T6": [.90, .92, .92], "drkd-online-tuned": [.92, .92, .93]}
    runs = _runs(finals)
    runs["method"] = runs["variant"].map(lambda v: v.split("-online")[0])
    runs["teacher_source"] = "online"
    runs.loc[runs["variant"] == "ce", "teacher_source"] = ""
    table = stats.paired(runs, "final_test_top1", scale=100)
    row = table[(table["variant"] == "drkd-online-tuned")
                & (table["baseline"] == "drkd-online-a0.95-T6")]
    assert len(row) == 1 and row["setting"].iloc[0] == "tuned vs reference"


def test_identical_runs_are_said_to_be_identical():
    finals = {"ce": [.90, .91, .92], "ce-tuned": [.90, .91, .92], "lsr": [.91, .91, .93]}
    table = stats.paired(_runs(finals), "final_test_top1", scale=100).set_index("variant")
    assert stats.sentence(table.loc["ce-tuned"]) == \
        "identical: all 3 paired differences are 0 (the same runs)"
    assert stats.sentence(table.loc["lsr"]).startswith(table.loc["lsr", "verdict"] + ": +0.67")


def test_each_mde_is_also_given_at_its_holm_level():
    """The MDE at alpha overstated what a Holm-adjusted test can detect: the i-th smallest p of
    m is tested at alpha / (m - i + 1), and ``mde_holm`` is the MDE at that level."""
    from statsmodels.stats.power import TTestPower

    from analysis.stats.families import adjust

    frame = pd.DataFrame({"dataset": "d", "arch": "a", "setting": "s", "variant": ["x", "y", "z"],
                          "baseline": "b", "n_pairs": [10, 10, 10], "mean_diff": [1.0, 0.5, 0.1],
                          "ci_low": 0.0, "ci_high": 0.0, "sd_diff": [2.0, 1.0, 0.5],
                          "p_value": [0.2, 0.001, 0.03], "p_tost": 0.5, "mde": 0.0})
    out = adjust(frame, stats.Analysis()).set_index("variant")
    for variant, level, sd in (("y", 0.05 / 3, 1.0), ("z", 0.05 / 2, 0.5), ("x", 0.05, 2.0)):
        effect = TTestPower().solve_power(effect_size=None, nobs=10, alpha=level, power=0.8)
        # statsmodels' root is good to ~1e-6 here (at 10 seeds; not at few seeds, see below)
        assert out.loc[variant, "mde_holm"] == pytest.approx(effect * sd, rel=1e-5)
        power = TTestPower().power(effect_size=out.loc[variant, "mde_holm"] / sd, nobs=10,
                                   alpha=level)
        assert power == pytest.approx(0.8, abs=1e-8)
    assert out.loc["y", "mde_holm"] > 1.0 * TTestPower().solve_power(
        effect_size=None, nobs=10, alpha=0.05, power=0.8)  # wider than at alpha


def test_a_declared_family_changes_the_holm_p_of_a_comparison_outside_the_task(tmp_path):
    """Two tasks, each with m1 - ce: declared as one family (``analysis.families`` in a
    config), the cnn8 task's Holm p is statsmodels' Holm over both tasks' p values; split per
    task it is its own raw p. Comparisons no family names fall to the catch-all."""
    rng = np.random.default_rng(5)
    ce = 0.9 + 0.01 * rng.standard_normal(6)
    runs = pd.concat([
        _runs({"ce": list(ce), "m1": list(ce + 0.004 + 0.003 * rng.standard_normal(6)),
               "m2": list(ce + 0.003 * rng.standard_normal(6))}),
        _runs({"ce": list(ce), "m1": list(ce + 0.002 + 0.003 * rng.standard_normal(6))},
              arch="mlp")])
    text = config.resolve_config_path("quick").read_text()
    cfg = tmp_path / "declared.yaml"
    cfg.write_text(text + "analysis:\n  families:\n    headline: {variant: m1}\n"
                          "    rest: {}\n")
    declared = config.load_grid(str(cfg)).analysis_settings()
    assert [f.name for f in declared.families] == ["headline", "rest"]
    table = stats.paired(runs, "final_test_top1", declared, scale=100).set_index(
        ["arch", "variant"])
    assert table.loc[("cnn8", "m1"), "family"] == table.loc[("mlp", "m1"), "family"] == "headline"
    assert table.loc[("cnn8", "m2"), "family"] == "rest"
    both = table.xs("m1", level="variant")["p_value"]
    holm = multipletests(both.to_numpy(), method="holm")[1]
    assert table.loc[("cnn8", "m1"), "p_holm"] == pytest.approx(holm[both.index.get_loc("cnn8")])
    # declared alone, the same comparison keeps its raw p: the other task no longer counts
    alone = stats.Analysis(families=(stats.Family("one", (("arch", ("cnn8",)),
                                                          ("variant", ("m1",)))),
                                     stats.Family("rest")))
    own = stats.paired(runs, "final_test_top1", alone, scale=100).set_index(["arch", "variant"])
    assert own.loc[("cnn8", "m1"), "p_holm"] == pytest.approx(own.loc[("cnn8", "m1"), "p_value"])
    assert table.loc[("cnn8", "m1"), "p_holm"] > own.loc[("cnn8", "m1"), "p_holm"] * 1.01
    for bad in ("families: [headline]", "families: {h: {seed: '1'}}", "families: {h: 3}"):
        cfg.write_text(text + f"analysis:\n  {bad}\n")
        with pytest.raises(config.ConfigError, match=r"analysis\.families"):
            config.load_grid(str(cfg))


def _bits(s: str) -> str:
    """A correctness vector as a run tag keeps it (base64 of numpy.packbits)."""
    import base64

    return base64.b64encode(np.packbits(np.array([c == "1" for c in s]))).decode()


def test_paired_images_bound_by_hand():
    """Two seeds, a test set of 8 images; both sides kept their per-image correctness.

    lsr: 11110000, 11101000; ce: 11100000 twice. c_i = mean_s(lsr - ce) = 0,0,0,.5,.5,0,0,0:
    mean 0.125 (12.5 points), var(c, ddof 1) = 0.375 / 7 = 0.053571, / 8 = 0.0066964
    (66.964 points^2: se_images 8.1832). Both seeds differ by 12.5 points (SD 0), so the SE is
    the images' alone: t = 12.5 / 8.1832 = 1.5275, df 1, p = 1 - (2/pi) atan(t) = 0.36901;
    95% CI 12.5 ± 12.706 x 8.1832 = [-91.477, 116.477]. The seeds alone: no interval width, no p.
    """
    rows = []
    for variant, vectors in (("lsr", ["11110000", "11101000"]), ("ce", ["11100000"] * 2)):
        for seed, v in enumerate(vectors):
            rows.append({"dataset": "toy", "arch": "mlp", "variant": variant, "method": variant,
                         "teacher_source": "", "seed": seed, "run_id": f"{variant}{seed}",
                         "final_test_top1": v.count("1") / 8, "final_test_images": 8,
                         "final_test_correct": _bits(v)})
    row = stats.paired(pd.DataFrame(rows), "final_test_top1", scale=100).iloc[0]
    assert row["test_bound"] == "paired images"
    assert row["se_images"] == pytest.approx(8.18317, abs=1e-5)
    assert row["p_value"] == pytest.approx(0.36901, abs=1e-5)
    assert (row["ci_low_total"], row["ci_high_total"]) == pytest.approx((-91.477, 116.477),
                                                                       abs=1e-3)
    assert np.isnan(row["p_seeds"]) and row["ci_low"] == row["ci_high"] == 12.5
    # one run without its vector: the whole comparison falls back to the independence bound
    frame = pd.DataFrame(rows)
    frame.loc[0, "final_test_correct"] = np.nan
    assert stats.paired(frame, "final_test_top1", scale=100).iloc[0]["test_bound"] == \
        "independent errors"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=70), st.integers(0, 2**31 - 1))
def test_packed_correctness_unpacks_to_the_top1_it_was_computed_from(labels, seed):
    import torch

    from analysis.stats.testset import unpack_correct
    from benchmark.models.metrics import packed_correct, topk_accuracy

    targets = torch.tensor(labels)
    logits = torch.randn(len(labels), 5, generator=torch.Generator().manual_seed(seed))
    bits = unpack_correct(packed_correct(logits, targets), len(labels))
    assert bits.tolist() == (logits.argmax(1) == targets).tolist()
    assert bits.mean() == pytest.approx(topk_accuracy(logits, targets))
    with pytest.raises(ValueError):
        unpack_correct(packed_correct(logits, targets), len(labels) + 8)


def test_seeds_needed_where_scipys_noncentral_t_gives_nan():
    """Effect 7 SDs at 2 seeds: statsmodels' power is NaN, which was read as 1 (2 seeds
    enough). Its true power is 0.563 (400,000 simulated paired t-tests: 0.561), below 80%, so 3
    seeds are needed; at 20 SDs 2 seeds give 0.974 and suffice."""
    assert np.isnan(TTestPower().power(effect_size=7.0, nobs=2, alpha=0.05))
    assert stats.paired_power(7.0, 2) == pytest.approx(0.5627, abs=1e-4)
    assert stats.paired_power(20.0, 2) == pytest.approx(0.9735, abs=1e-4)
    assert stats.paired_power(3.0, 3) == pytest.approx(
        TTestPower().power(effect_size=3.0, nobs=3, alpha=0.05), abs=1e-9)
    assert stats.seeds_needed(1.0, 7.0) == 3
    assert stats.seeds_needed(1.0, 20.0) == 2


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 40), st.integers(1, 60), st.floats(0, 30), st.floats(0.1, 10))
def test_power_integrand_is_scipys_distributions_float_for_float(x, df, d, c):
    """The quadrature's integrand, written with scipy's special functions (the distribution
    objects' argument checks made the report's powers take seconds), is
    ``chi.pdf(x, df) * (norm.cdf(d - c x) + norm.cdf(-d - c x))`` to the last bits of the log
    (where the density underflows towards 1e-300 the sums' order moves half an ulp)."""
    from analysis.stats.power import _power_integrand

    want = sps.chi.pdf(x, df) * (sps.norm.cdf(d - c * x) + sps.norm.cdf(-d - c * x))
    assert _power_integrand(x, df, d, c) == pytest.approx(want, rel=1e-12, abs=0)


@pytest.mark.parametrize("n,family", [(2, 1), (3, 12), (5, 36), (10, 100), (30, 500)])
def test_mde_is_the_effect_whose_power_is_80_per_cent_at_holms_level(n, family):
    """statsmodels' solve_power returned roots with power far from 80% at few seeds and strict
    levels (5 seeds, alpha 0.05/36: 2.93 SDs, power 0.29; the root is 4.39): the MDE a report
    prints is the effect whose power, simulated, is 80%."""
    alpha = 0.05 / family
    effect = stats.mde(1.0, n, stats.Analysis(alpha=alpha))
    assert stats.paired_power(effect, n, alpha) == pytest.approx(0.8, abs=1e-6)
    if n == 5:
        assert effect == pytest.approx(4.390, abs=1e-3)
        rng = np.random.default_rng(5)
        x = rng.normal(effect, 1.0, size=(200_000, n))
        t = x.mean(1) / (x.std(1, ddof=1) / math.sqrt(n))
        assert (np.abs(t) > sps.t.ppf(1 - alpha / 2, n - 1)).mean() == pytest.approx(0.8, abs=0.005)


def test_the_test_sizes_the_statistics_assume_are_the_loaders():
    from analysis.stats.testset import TEST_IMAGES
    from benchmark import data

    assert TEST_IMAGES["digits"] == len(data.load("digits").test_y)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 3.0), st.floats(0.1, 2.0), st.floats(0.0, 0.02))
def test_seeds_needed_counts_the_test_sets_variance_which_seeds_do_not_shrink(sd, detect, var):
    """The returned n is the first whose power, with SE sqrt(sd^2 / n + var), reaches 80%; with
    no test-set variance it is the seeds-only count; where the test set alone keeps the power
    below 80% at any n, it is the cap."""
    from scipy.stats import norm

    def power(n):
        se = math.sqrt(sd * sd / n + var)
        return stats.paired_power(detect / (se * math.sqrt(n)), n)

    n = stats.seeds_needed(sd, detect, image_var=var, most=10**5)
    if var > 0 and detect / math.sqrt(var) <= norm.ppf(0.975) + norm.ppf(0.8):
        assert n == 10**5
    elif n < 10**5:
        assert power(n) >= 0.8 and (n == 2 or power(n - 1) < 0.8)
    assert stats.seeds_needed(sd, detect, image_var=0.0) == stats.seeds_needed(sd, detect)
    # digits' 450 test images, independent errors at 98%: SE 0.93 points; 0.3 is out of reach
    assert stats.seeds_needed(0.5, 0.3, image_var=2 * 0.98 * 0.02 / 450 * 1e4) == 10**7


def test_the_answer_by_budget_compares_each_budget_on_its_own_runs():
    """Tuned DR-KD and tuned CE at 30 and at 60 epochs, the same labels: each budget's
    difference is its own runs' (never the pooled 4 points), Holm within that budget."""
    rows = []
    for epochs, gain in ((30, -1.0), (60, 3.0)):
        for seed in range(5):
            base = 0.90 + 0.002 * seed
            for variant, value in (("ce", base - 0.01), ("ce-tuned", base),
                                   ("drkd-online-tuned", base + gain / 100 + 0.001 * seed)):
                rows.append({"dataset": "toy", "arch": "mlp", "variant": variant,
                             "method": variant.split("-")[0], "teacher_source": "",
                             "seed": seed, "epochs": epochs, "final_test_top1": value})
    frame = stats.by_budget(pd.DataFrame(rows), "final_test_top1", scale=100)
    assert frame["epochs"].tolist() == [30, 60]
    assert frame["mean_diff"].tolist() == pytest.approx([-1.0 + 0.2, 3.0 + 0.2])
    assert (frame["variant"] == "drkd-online-tuned").all()  # tuned against tuned only
    assert (frame["baseline"] == "ce-tuned").all()
    assert frame["p_holm"].tolist() == pytest.approx(frame["p_value"].tolist())  # one each
    assert stats.by_budget(pd.DataFrame(rows).drop(columns="epochs"), "final_test_top1").empty


def test_the_answer_by_budget_keeps_a_grids_own_families_when_scoped_by_grid():
    """An edition's grid trains task a at 30 epochs and task b at 60; a rung trains a at 60.
    Scoped by epochs, a@30 stands alone and b@60 shares Holm with the rung; scoped by grid, the
    edition's two comparisons share Holm (as its report states them) and the rung's stands
    alone, each row keeping the budget its runs trained."""
    rows = []
    for part, task, epochs, gain in (("edition", "a", 30, 1.0), ("edition", "b", 60, 2.0),
                                     ("rung-60", "a", 60, 3.0)):
        for seed in range(6):
            base = 0.90 + 0.002 * seed
            for variant, value in (("ce", base - 0.01), ("ce-tuned", base),
                                   ("drkd-online-tuned", base + (gain + 0.1 * seed) / 100)):
                rows.append({"dataset": "toy", "arch": task, "variant": variant,
                             "method": variant.split("-")[0], "teacher_source": "", "part": part,
                             "seed": seed, "epochs": epochs, "final_test_top1": value})
    runs = pd.DataFrame(rows)
    by_grid = stats.by_budget(runs, "final_test_top1", scale=100, scope="part")
    by_epochs = stats.by_budget(runs, "final_test_top1", scale=100)
    key = lambda f: {(r.arch, r.epochs): r for r in f.itertuples()}  # noqa: E731
    g, e = key(by_grid), key(by_epochs)
    assert set(g) == set(e) == {("a", 30), ("b", 60), ("a", 60)}
    p_a30, p_b, p_rung = (g[k].p_value for k in (("a", 30), ("b", 60), ("a", 60)))
    assert p_rung < p_b < p_a30  # larger gains, same spread
    # by grid: Holm over the edition's two, the rung alone
    assert g[("b", 60)].p_holm == pytest.approx(2 * p_b)
    assert g[("a", 30)].p_holm == pytest.approx(max(2 * p_b, p_a30))
    assert g[("a", 60)].p_holm == pytest.approx(p_rung)
    # by epochs: a@30 alone, b@60 with the rung's a@60
    assert e[("a", 30)].p_holm == pytest.approx(p_a30)
    assert e[("b", 60)].p_holm == pytest.approx(max(2 * p_rung, p_b))
    assert by_grid["epochs"].tolist() == sorted(by_grid["epochs"])


def test_the_ladder_names_each_tasks_budget_by_the_declared_rule():
    """Clean: the first rung whose doubling is equivalent (within ±0.5 here) or worse. Noisy:
    the curve peaks at 60 and falls (memorising): 60, though its doubling is worse only later.
    A ladder still gaining at every doubling names none and says how far it went."""
    rng = np.random.default_rng(1)
    means = {("toy:clean", "a"): [90.0, 92.0, 92.0, 92.0],  # 30->60 better, 60->120 equal
             ("toy:sym40", "a"): [80.0, 82.0, 81.9, 75.0],  # peak at 60 (flat to 120)
             ("toy:clean", "b"): [80.0, 83.0, 86.0, 89.0]}  # still gaining
    rows = []
    for (d, a), ms in means.items():
        for e, m in zip((30, 60, 120, 240), ms):
            label = "ce" if e == 30 else f"ce@{e // 30}x"
            for seed in range(10):
                rows.append({"dataset": d, "arch": a, "variant": label, "method": "ce",
                             "teacher_source": "", "seed": seed, "epochs": e,
                             "final_val_top1": (m + 0.05 * rng.standard_normal()) / 100})
    out = stats.ladder_budgets(pd.DataFrame(rows), "final_val_top1", scale=100.0).set_index(
        ["dataset", "arch"])
    assert out.loc[("toy:clean", "a"), "budget"] == 60
    assert out.loc[("toy:sym40", "a"), "budget"] == 60
    assert out.loc[("toy:sym40", "a"), "peak_rung"] == 60
    assert out.loc[("toy:clean", "b"), "budget"] == "none"
    assert out.loc[("toy:clean", "b"), "largest_rung"] == 240
