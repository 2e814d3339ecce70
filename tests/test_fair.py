"""Fair comparisons: compute matching, mechanism controls, the rectification lattice and the
honest tuning protocol (a budget in images, k seeds per trial, CE's optimiser tuned, re-scored
winners)."""
import dataclasses

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

import methods
from analysis import stats, tables
from benchmark import cli, config, data
from benchmark.config import compute
from benchmark.data import plans
from benchmark.jobs import grid, tune
from benchmark.models import teachers

BASE = {
    "name": "fair-tiny",
    "seeds": [0, 1],
    "datasets": {"digits": None},
    "architectures": ["mlp"],
    "train": {"epochs": 20, "batch_size": 64},
    "methods": ["ce", "dlb", {"method": "dlb", "control": True}, "cs-kd",
                {"method": "cs-kd", "control": True}, {"method": "drkd", "teacher": "pretrained"},
                {"method": "drkd", "teacher": "online"}],
}


def write(tmp_path, **changes):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}))
    return str(path)


# --- compute matching ----------------------------------------------------------------------------

def every_variant():
    for name in methods.names():
        m = methods.get(name)
        sources = m.params["teacher"].choices if m.teacher == "param" else [None]
        for source in sources:
            yield name, ({} if source is None else {"teacher": source})


@pytest.mark.parametrize("name,hp", list(every_variant()))
def test_matched_epochs_forward_the_variants_images_within_one_batch(name, hp):
    # the real digits training split and the quick grid's batch and epochs
    n = len(data.load("digits").train_y)
    batch, epochs = 64, 20
    factor = compute.cost_factor(name, hp)
    ce_epochs = compute.matched_epochs(epochs, factor)
    mine = compute.run_images(name, hp, n, batch, epochs)
    theirs = compute.run_images("ce", {}, n, batch, ce_epochs)
    assert abs(mine - theirs) <= batch, (name, hp, factor, ce_epochs, mine, theirs)


def test_the_counted_images_are_what_the_training_loop_logs(tmp_path):
    from benchmark.jobs import train

    d = data.load("digits", train_subset=300)
    for name, hp in [("dlb", {}), ("cs-kd", {}), ("drkd", {"teacher": "ema"}), ("ce", {})]:
        spec = config.make_spec("digits", "mlp", name, 0, hp, {"epochs": 2, "batch_size": 32},
                                train_subset=300)
        logged = sum(r["cost_student_images"] + r["cost_teacher_images"]
                     for r in train.train(spec, d).history)
        assert logged == compute.run_images(name, hp, len(d.train_y), 32, 2), name


def test_cost_factors_of_the_field():
    assert compute.cost_factor("ce", {}) == 1.0
    assert compute.cost_factor("drkd", {"teacher": "online"}) == 1.0
    assert compute.cost_factor("ps-kd", {}) == 1.0
    for name, hp in [("dlb", {}), ("cs-kd", {}), ("drkd", {"teacher": "pretrained"}),
                     ("tfkd-self", {"teacher": "ema"})]:
        assert compute.cost_factor(name, hp) == 2.0, name
    assert teachers.extra_forward("pretrained") and not teachers.extra_forward("online")


def test_compute_section_adds_the_baseline_at_its_ladder_and_matched_epochs(tmp_path):
    cfg = config.load_grid(write(tmp_path, compute={"ladder": [1.5], "match": "images"}))
    cells = grid.expand(cfg)
    epochs = {c.label: c.train.epochs for c in cells if c.seed == 0}
    assert epochs["ce"] == 20 and epochs["ce@1.5x"] == 30 and epochs["ce@2x"] == 40
    assert epochs["dlb"] == 20 and "ce@1x" not in epochs
    assert {c.label for c in cells if c.method == "ce"} == {"ce", "ce@1.5x", "ce@2x"}
    # the self-teacher of drkd-pretrained stays the 20-epoch CE cell
    teacher = next(c for c in cells if c.label == "drkd-pretrained").teacher_spec()
    assert teacher.hash == next(c for c in cells if c.label == "ce" and c.seed == 0).hash


def test_dry_run_shows_matched_cells_with_epochs_and_the_controls(tmp_path, capsys):
    path = write(tmp_path, compute={"ladder": [2], "match": "images"})
    assert cli.main(["grid", path, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "digits/mlp/ce@2x/seed0  40 epochs" in out
    assert "ce@2x: 40 epochs (ladder 2x; matches the images of cs-kd, cs-kd-control, dlb," in out
    assert "dlb-control: dlb with alpha=0.0" in out
    assert "cs-kd-control: cs-kd with lam=0.0" in out


@pytest.mark.parametrize("section,message", [
    ({"compute": {"baseline": "lsr", "ladder": [2]}}, "compute.baseline: 'lsr' is not a variant"),
    ({"compute": {"ladder": [0]}}, "compute.ladder: expected a list of finite positive multiples"),
    ({"compute": {"match": "time"}}, "compute.match must be one of: images (got 'time')"),
    ({"compute": {}}, "compute: give a ladder, match: images, or both"),
    ({"methods": ["ce", {"method": "lsr", "control": True}]},
     "control: method 'lsr' has no control; methods with one: cs-kd, dlb"),
    ({"methods": ["ce", {"method": "dlb", "control": True, "alpha": 1}]},
     "'alpha' is fixed by the control"),
    ({"lattice": {"teacher": ["online"], "alpha": [1.5], "temperature": [4]}},
     "alpha=1.5 is not valid"),
    ({"lattice": {"teacher": ["online"], "alpha": [0.5]}}, "lattice: missing key 'temperature'"),
    ({"tune": {"trials": 0}}, "tune.trials must be >= 1, got 0"),
    ({"tune": {"budget": 100, "pruning": True}}, "pruning cannot be combined with a budget"),
    ({"tune": {"space": {"lr": [0.01, 0.2]}}}, "tune.space.lr: no method of this config"),
])
def test_bad_fair_sections_are_one_line(tmp_path, section, message):
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.load_grid(write(tmp_path, **section))


# --- mechanism controls --------------------------------------------------------------------------

def _grads(loss, params):
    return torch.autograd.grad(loss, params)


def test_dlb_control_is_exactly_ce_over_the_overlap_batch():
    torch.manual_seed(0)
    model = torch.nn.Linear(12, 5)
    x, y = torch.randn(16, 12), torch.randint(0, 5, (16,))
    teacher = torch.randn(8, 5)  # the previous step's logits of the repeated half
    hp = methods.get("dlb").resolve(methods.get("dlb").control)
    loss = methods.get("dlb").loss(model(x), y, teacher, **hp)
    ce = F.cross_entropy(model(x), y)
    assert torch.equal(loss, ce)
    for a, b in zip(_grads(loss, list(model.parameters())), _grads(ce, list(model.parameters()))):
        assert torch.equal(a, b)


def test_cskd_control_is_exactly_ce_on_the_anchors():
    torch.manual_seed(1)
    model = torch.nn.Linear(12, 5)
    x, y = torch.randn(16, 12), torch.randint(0, 5, (16,))
    partners = model(torch.randn(16, 12)).detach()
    hp = methods.get("cs-kd").resolve(methods.get("cs-kd").control)
    loss = methods.get("cs-kd").loss(model(x), y, partners, **hp)
    ce = F.cross_entropy(model(x), y)
    assert torch.equal(loss, ce)
    for a, b in zip(_grads(loss, list(model.parameters())), _grads(ce, list(model.parameters()))):
        assert torch.equal(a, b)


def test_controls_keep_their_plans_compute():
    assert compute.cost_factor("dlb", {"alpha": 0.0}) == compute.cost_factor("dlb", {})
    plan = plans.make("class-paired", torch.arange(64) % 4, 8, torch.Generator().manual_seed(0))
    assert all(b.paired is not None for b in plan.epoch())


# --- statistics ----------------------------------------------------------------------------------

def _runs(values: dict[str, list[float]], method: dict[str, str] | None = None,
          source: dict[str, str] | None = None) -> pd.DataFrame:
    rows = []
    for v, xs in values.items():
        for seed, x in enumerate(xs):
            rows.append({"run_id": f"{v}-{seed}", "dataset": "d", "arch": "a", "variant": v,
                         "method": (method or {}).get(v, v.split("@")[0].split("-")[0]),
                         "teacher_source": (source or {}).get(v, "none"), "seed": seed,
                         "final_test_top1": x})
    return pd.DataFrame(rows)


def test_comparisons_name_each_question():
    runs = _runs({"ce": [.9, .91, .92], "ce@2x": [.91, .92, .94], "dlb": [.92, .93, .93],
                  "dlb-control": [.91, .91, .93]},
                 method={"dlb-control": "dlb"})
    st = stats.paired(runs, "final_test_top1", scale=100)
    got = {(r.variant, r.baseline): r.setting for r in st.itertuples()}
    assert got == {("ce@2x", "ce"): "compute ladder", ("dlb", "ce"): "reference",
                   ("dlb-control", "ce"): "reference", ("dlb", "dlb-control"): "vs control"}


def test_equal_compute_pairs_each_variant_with_the_baseline_at_its_images():
    runs = _runs({"ce": [.90, .91, .92], "ce@2x": [.91, .93, .93], "dlb": [.92, .93, .95],
                  "lsr": [.91, .91, .93]})
    images = {"ce": 100.0, "ce@2x": 200.0, "dlb": 199.0, "lsr": 100.0}
    epochs = runs[["run_id", "dataset", "arch", "variant"]].assign(
        cost_student_images=runs["variant"].map(images), cost_teacher_images=0.0)
    seconds = {"ce": 1.0, "ce@2x": 1.9, "dlb": 1.5, "lsr": 1.0}
    epochs["cost_train_seconds"] = runs["variant"].map(seconds)
    eq = stats.equal_compute(runs, epochs, "final_test_top1", scale=100)
    # lsr forwards CE's own images: that pair is the statistics table's, never a second verdict
    assert list(zip(eq["variant"], eq["baseline"])) == [("dlb", "ce@2x")]
    dlb = eq[eq["variant"] == "dlb"].iloc[0]
    assert dlb["mean_diff"] == pytest.approx(100 * np.mean([.01, .0, .02]))
    assert dlb["images_ratio"] == pytest.approx(1.99) and dlb["baseline_ratio"] == 2.0
    assert dlb["time_ratio"] == pytest.approx(1.5)
    assert dlb["baseline_time_ratio"] == pytest.approx(1.9)
    assert set(eq["setting"]) == {"equal compute"}


def test_one_pair_one_verdict_and_tuned_meets_tuned_ce_only():
    runs = _runs({"ce": [.90, .91, .92], "ce@2x": [.91, .93, .93], "dlb": [.92, .93, .95],
                  "lsr": [.91, .91, .93], "ce-tuned": [.91, .92, .92],
                  "lsr-tuned": [.92, .91, .94]})
    images = {"ce": 100.0, "ce@2x": 200.0, "dlb": 199.0, "lsr": 100.0, "ce-tuned": 100.0,
              "lsr-tuned": 100.0}
    epochs = runs[["run_id", "dataset", "arch", "variant"]].assign(
        cost_student_images=runs["variant"].map(images), cost_teacher_images=0.0,
        cost_train_seconds=1.0)
    everything = stats.answer(runs, epochs, "final_test_top1", scale=100)
    pairs = list(zip(everything["dataset"], everything["arch"], everything["variant"],
                     everything["baseline"]))
    assert len(pairs) == len(set(pairs))  # no pair twice
    assert ("lsr-tuned", "ce") not in set(zip(everything["variant"], everything["baseline"]))
    # the declared default families: the headline (tuned against tuned) and the field, Holm
    # within each
    from statsmodels.stats.multitest import multipletests

    headline = everything["setting"] == "tuned"
    assert set(everything.loc[headline, "family"]) == {"headline"}
    assert set(everything.loc[~headline, "family"]) == {"field"}
    assert headline.sum() == 1 and (~headline).sum() >= 3
    for _, fam in everything.groupby("family"):
        assert fam["p_holm"].tolist() == pytest.approx(
            multipletests(fam["p_value"], method="holm")[1].tolist())


def test_lattice_pairs_twins_only_and_the_table_reads_the_point():
    values = {"ce": [.9, .9, .9]}
    method, source = {}, {}
    for m in ("tfkd-self", "drkd"):
        for a in ("0.1", "0.5"):
            label = f"{m}-online-a{a}-T4"
            values[label] = [.9 + (0.01 if m == "drkd" and a == "0.5" else 0) + s / 1000
                             for s in range(3)]
            method[label], source[label] = m, "online"
    runs = _runs(values, method, source)
    st = stats.paired(runs, "final_test_top1", scale=100)
    lat_rows = st[st["setting"] == "rectification lattice"]
    assert set(zip(lat_rows["variant"], lat_rows["baseline"])) == {
        ("drkd-online-a0.1-T4", "tfkd-self-online-a0.1-T4"),
        ("drkd-online-a0.5-T4", "tfkd-self-online-a0.5-T4")}
    assert not (st["variant"].str.contains("-a0") & (st["baseline"] == "ce")).any()
    epochs = runs.assign(diag_teacher_top1=0.8)
    lat = tables.lattice_table(st, runs, epochs)
    point = lat[lat["alpha"] == 0.5].iloc[0]
    assert point["temperature"] == 4.0 and point["teacher_source"] == "online"
    assert point["mean_diff"] == pytest.approx(1.0)
    assert point["teacher_error"] == pytest.approx(20.0)


# --- the honest tuning protocol ------------------------------------------------------------------

HONEST = {
    "name": "honest",
    "seeds": [0],
    "datasets": {"digits": {"train_subset": 300}},
    "architectures": ["mlp"],
    "train": {"epochs": 2, "batch_size": 64},
    "methods": ["ce", "dlb"],
    "tune": {"budget": 16, "seeds_per_trial": 2, "optimiser": True, "rescore": 2},
}


@pytest.fixture(scope="module")
def honest_studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("honest")
    path = root / "honest.yaml"
    path.write_text(yaml.safe_dump(HONEST))
    results = root / "results"
    assert cli.main(["tune", str(path), "--results", str(results)]) == 0
    storage = tune.open_storage(None, results)
    return {n: optuna.load_study(study_name=n, storage=storage)
            for n in ("digits/mlp/ce", "digits/mlp/dlb")}, path, results


def test_budget_in_images_is_equal_across_variants_read_back_from_the_store(honest_studies):
    studies, _, _ = honest_studies
    ce, dlb = studies["digits/mlp/ce"], studies["digits/mlp/dlb"]
    # CE trials cost 2 seeds x 2 epochs x 1 = 4: 16 // 4 = 4; DLB's cost twice as much: 2
    assert len(ce.trials) == 4 and len(dlb.trials) == 2
    spent = {n: sum(t.user_attrs["images"] for t in s.trials) for n, s in studies.items()}
    # equal up to DLB's first step (no repeated half): one batch per seed
    assert abs(spent["digits/mlp/ce"] - spent["digits/mlp/dlb"]) <= 2 * 2 * 64
    assert spent["digits/mlp/ce"] == 4 * 2 * 2 * (270 // 64) * 64


def test_a_trials_score_is_the_mean_of_its_seeds_and_ce_tunes_its_optimiser(honest_studies):
    studies, _, _ = honest_studies
    for study in studies.values():
        for t in study.trials:
            assert len(t.user_attrs["seed_values"]) == 2
            assert t.value == float(np.mean(t.user_attrs["seed_values"]))
            assert {"lr", "weight_decay"} <= set(t.params)
        assert study.user_attrs["pruning"] is False


def test_reference_is_trial_0_and_the_choice_is_made_on_fresh_seeds(honest_studies, capsys):
    studies, path, results = honest_studies
    ce = studies["digits/mlp/ce"]
    first = min(ce.trials, key=lambda t: t.number)
    assert first.number == 0 and first.user_attrs["reference"] is True
    assert first.params == {"lr": 0.1, "weight_decay": 5e-4}  # CE at its reference values
    dlb0 = min(studies["digits/mlp/dlb"].trials, key=lambda t: t.number)
    assert dlb0.user_attrs["reference"] and dlb0.params["alpha"] == 1.0  # DLB's defaults
    rescores = {int(k): v for k, v in ce.user_attrs["rescores"].items()}
    pool = [t.number for t in tune.candidates(ce)]
    assert sorted(rescores) == sorted(pool) and 0 in pool  # the top 3 and the reference
    for v in rescores.values():  # fresh seeds: tuning's, never a trial's or the grid's
        assert v["seeds"] == [tune.RESCORE_SEED + tune.TRIAL_SEED,
                              tune.RESCORE_SEED + tune.TRIAL_SEED + 1]
        assert v["value"] == float(np.mean(v["values"]))
    choice = ce.user_attrs["choice"]
    assert choice["trial"] == max(rescores, key=lambda n: (rescores[n]["value"],
                                                          rescores[n]["selected"], -n))
    assert tune.chosen_trial(ce).number == choice["trial"]
    # a rerun spends nothing more and re-scores nothing
    assert cli.main(["tune", str(path), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert out.count("budget already spent") == 2 and "re-scored on 2 fresh seeds" in out
    again = optuna.load_study(study_name="digits/mlp/ce",
                              storage=tune.open_storage(None, results))
    assert len(again.trials) == 4 and again.user_attrs["rescores"] == ce.user_attrs["rescores"]


def test_rescoring_on_two_workers_gives_each_candidate_the_score_of_one_worker(honest_studies):
    # re-scoring ran in the command's one process after the study, whatever --workers said
    from benchmark.store.runtime import Runtime

    studies, path, results = honest_studies
    s = next(s for s in tune.studies(config.load_grid(str(path))) if s.name == "digits/mlp/ce")
    pool = tune.candidates(studies[s.name])
    seeds = [tune.RESCORE_SEED + 7, tune.RESCORE_SEED + 8]  # seeds the fixture did not use
    rt = Runtime(results=str(results), device="cpu")
    tracker = rt.tracker()
    # the same threads per process on both sides (a worker's share of the cores)
    one = dataclasses.replace(rt, threads=rt.for_workers(results, tracker.uri, 2).threads)
    before = torch.get_num_threads()
    try:
        one.apply()
        alone = dict((t.number, got) for t, got in tune._rescores(s, pool, seeds, tracker, one))
    finally:
        torch.set_num_threads(before)
    shared = dict((t.number, got) for t, got in
                  tune._rescores(s, pool, seeds, tracker, rt, workers=2))
    assert len(pool) >= 3 and sorted(shared) == sorted(alone) == sorted(t.number for t in pool)
    assert shared == alone  # bit for bit: values, SDs, NLLs, images


def test_no_trial_run_is_an_evaluated_cell(honest_studies):
    studies, path, _ = honest_studies
    cfg = config.load_grid(str(path))
    cells = {c.hash for c in grid.expand(cfg, str(path.parent / "results" / "optuna.journal"))
             if not c.label.endswith("-tuned")}
    for s in tune.studies(cfg):
        study = studies[s.name]
        for t in study.trials:
            for seed in s.seeds + tuple(tune.RESCORE_SEED + s.spec.seed + i for i in range(2)):
                assert tune.trial_spec(s, dict(t.params), seed).hash not in cells
        assert min(s.seeds) >= tune.TRIAL_SEED > max(cfg.seeds)
    bad = dict(HONEST, seeds=[tune.RESCORE_SEED])
    p = path.parent / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(config.ConfigError, match="seeds from 10000 on are tuning's"):
        config.load_grid(str(p))


def test_the_report_shows_each_studys_margin_sd_and_rescore(honest_studies):
    from analysis import load

    _, _, results = honest_studies
    epochs = load.epochs_from_tracking(f"sqlite:///{results}/mlflow.db")
    table = tables.tuning_table(epochs[epochs["kind"].isin(["trial", "rescore"])])
    ce = table[table["study"] == "digits/mlp/ce"].iloc[0]
    study = optuna.load_study(study_name="digits/mlp/ce",
                              storage=tune.open_storage(None, results))
    values = sorted((t.value for t in study.trials), reverse=True)
    assert ce["trials"] == 4 and ce["seeds_per_trial"] == 2
    assert ce["winner"] == pytest.approx(100 * values[0], abs=1e-3)
    assert ce["margin"] == pytest.approx(100 * (values[0] - values[1]), abs=1e-3)
    rescores = study.user_attrs["rescores"]
    best = str(tune.best_trial(study).number)
    assert ce["rescored"] == pytest.approx(100 * rescores[best]["value"], abs=1e-3)
    assert ce["drop"] == pytest.approx(ce["rescored"] - ce["winner"])
    assert str(ce["chosen_trial"]) == str(study.user_attrs["choice"]["trial"])
    # the reference trial (trial 0, the reference values) is re-scored too: its fresh mean is
    # in the table (it was empty in every row: the tag reads "True", the table looked for "true")
    reference = [t for t in study.trials if t.user_attrs.get("reference")]
    assert str(ce["reference_trial"]).split(".")[0] == str(reference[0].number)
    assert ce["reference_rescored"] == pytest.approx(
        100 * rescores[str(reference[0].number)]["value"], abs=1e-3)
    assert str(ce["reference_trial"]) == "0"
    assert ce["reference_rescored"] == pytest.approx(100 * rescores["0"]["value"], abs=1e-3)


def test_tuned_optimiser_settings_flow_into_the_grid(honest_studies, tmp_path):
    studies, path, results = honest_studies
    raw = yaml.safe_load(open(path))
    raw["methods"] = ["ce", {"method": "ce", "hyperparameters": "tuned"}]
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump(raw))
    cfg = config.load_grid(str(p))
    storage = str(results / "optuna.journal")
    cells = grid.expand(cfg, storage)
    chosen = tune.chosen_trial(studies["digits/mlp/ce"])  # the re-scored choice
    ce = next(c for c in cells if c.label == "ce")
    if chosen.user_attrs.get("reference"):  # the reference won: ce's cell stands for ce-tuned
        assert not any(c.label == "ce-tuned" for c in cells)
        assert grid.coincident(cfg, storage) == {ce.hash: ["ce-tuned"]}
        return
    tuned = next(c for c in cells if c.label == "ce-tuned")
    params = chosen.params
    assert tuned.train.lr == params["lr"] and tuned.train.weight_decay == params["weight_decay"]
    assert tuned.hyperparameters == {} and grid.coincident(cfg, storage) == {}


def test_a_cell_that_stands_for_a_tuned_variant_is_reported_under_both_labels(tmp_path):
    from analysis import load
    from benchmark.store import tracking

    t = tracking.Tracker(results=tmp_path / "r")
    spec = config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 1})
    from benchmark.jobs import runner

    runner.run_cell(spec, t)
    assert grid.tag_aliases(t, {spec.hash: ["ce-tuned"]}) == 1
    epochs = load.epochs_from_tracking(t.uri)
    runs = load.runs_from_epochs(epochs)
    assert sorted(runs["variant"]) == ["ce", "ce-tuned"]
    a, b = runs.sort_values("variant")["final_test_top1"]
    assert a == b and runs["cell_hash"].nunique() == 1


def test_tune_help_names_the_protocol_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["tune", "--help"])
    out = capsys.readouterr().out
    for option in ("--budget", "--seeds-per-trial", "--optimiser", "--pruning", "--rescore"):
        assert option in out


def test_a_tuned_variants_cost_includes_its_study(honest_studies):
    from analysis import load

    _, _, results = honest_studies
    epochs = load.epochs_from_tracking(f"sqlite:///{results}/mlflow.db")
    studies = epochs[epochs["kind"].isin(["trial", "rescore"])]
    spent = tables.study_images(studies)
    last = studies.groupby("run_id").last()
    ce_runs = last[last["study"] == "digits/mlp/ce"]
    assert spent["digits/mlp/ce"] == pytest.approx(ce_runs["trial_images"].astype(float).sum())
    optuna_side = optuna.load_study(study_name="digits/mlp/ce",
                                    storage=tune.open_storage(None, results))
    trials_only = sum(t.user_attrs["images"] for t in optuna_side.trials)
    assert spent["digits/mlp/ce"] > trials_only  # the re-scores count too


def test_tuned_dr_kd_meets_tuned_tf_kd_self_over_one_search_space():
    import methods

    d, t = (methods.get(m).search_space() for m in ("drkd", "tfkd-self"))  # any teacher source
    assert {k: (p.low, p.high, p.log) for k, p in d.items()} == \
        {k: (p.low, p.high, p.log) for k, p in t.items()}
    cells = pd.DataFrame({"variant": ["ce", "ce-tuned", "tfkd-self-online-tuned",
                                      "drkd-online-tuned"],
                          "method": ["ce", "ce", "tfkd-self", "drkd"],
                          "teacher_source": ["", "", "online", "online"]})
    assert ("drkd-online-tuned", "tfkd-self-online-tuned") in stats.comparisons(cells)


def test_a_tuned_variant_that_searched_the_optimiser_distils_from_the_grids_ce_cell(
        tmp_path, monkeypatch):
    # found in the fourth edition's digits phase: drkd-pretrained-tuned trained with its tuned
    # lr and weight_decay distilled from a CE trained at those settings (a second "ce" run per
    # seed), while its study's trials distilled from the grid's CE cell
    from benchmark.jobs import reproduce

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({
        "seeds": 2, "datasets": ["digits"], "architectures": ["mlp"], "train": {"epochs": 2},
        "methods": ["ce", {"method": "drkd", "teacher": "pretrained",
                           "hyperparameters": "tuned"}],
        "tune": {"optimiser": True, "trials": 2}}))
    cfg = config.load_grid(str(path))
    monkeypatch.setattr(tune, "tuned_hyperparameters", lambda *a, **k: {
        "alpha": 0.5, "temperature": 4.0, "lr": 0.05, "weight_decay": 1e-4})
    cells = grid.expand(cfg)
    ce = {c.seed: c for c in cells if c.label == "ce"}
    tuned = [c for c in cells if c.label == "drkd-pretrained-tuned"]
    assert len(cells) == 4 and len(tuned) == 2  # no CE at the tuned lr beside the grid's CE
    for c in tuned:
        assert (c.train.lr, c.train.weight_decay) == (0.05, 1e-4)
        assert c.teacher_spec().hash == ce[c.seed].hash
        from benchmark.store.tracking import param_text  # as MLflow records the parameters

        assert reproduce.spec_from_params(
            {k: param_text(v) for k, v in c.flat_params().items()}).hash == c.hash
    study = next(s for s in tune.studies(cfg) if s.name.endswith("drkd-pretrained"))
    assert study.teacher.train == ce[0].train  # the trials' teacher: the grid's CE settings
