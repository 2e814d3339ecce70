"""Grids end to end: order and dependencies, resuming after SIGKILL, failures, config errors."""
import dataclasses
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml

from benchmark import cli, config
from benchmark.jobs import grid, tune
from benchmark.store import runtime, tracking

TINY = {
    "name": "tiny",
    "seeds": [0, 1],
    "datasets": {"digits": {"val_fraction": 0.1}},
    "architectures": ["mlp"],
    "train": {"epochs": 2, "batch_size": 64},
    "methods": ["ce", "tfkd-self", {"method": "drkd", "teacher": "online"}],
}


def write(tmp_path, cfg, name="grid.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def finished_runs(results):
    t = tracking.Tracker(results=results)
    return t, [r for r in t.runs() if r.info.status == "FINISHED"
               and r.data.tags.get("kind") == "train"]


def test_expand_orders_teachers_first_and_adds_missing_ce(tmp_path):
    cfg = {**TINY, "methods": [{"method": "drkd", "teacher": "pretrained"}, "lsr"]}
    cells = grid.expand(config.load_grid(write(tmp_path, cfg)))
    keys = [c.key for c in cells]
    assert keys == ["digits/mlp/ce/seed0", "digits/mlp/drkd-pretrained/seed0",
                    "digits/mlp/lsr/seed0", "digits/mlp/ce/seed1",
                    "digits/mlp/drkd-pretrained/seed1", "digits/mlp/lsr/seed1"]
    deps = grid.dependencies(cells)
    assert deps[cells[1].hash] == cells[0].hash and cells[2].hash not in deps


def test_dry_run_prints_cells_without_training(tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(["grid", write(tmp_path, TINY), "--dry-run", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "tiny: 6 cells" in out and "(after digits/mlp/ce/seed0)" in out
    assert not results.exists()


@pytest.mark.slow
def test_tiny_grid_end_to_end_then_rerun_skips_everything(tmp_path, capsys):
    results = tmp_path / "results"
    path = write(tmp_path, TINY)
    assert cli.main(["grid", path, "--results", str(results), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "6 trained, 0 already done, 0 failed" in out
    t, runs = finished_runs(results)
    assert len(runs) == 6
    assert len(t.runs("tags.kind = 'report'")) == 1  # the report, as one run of its own
    assert (results / "tiny" / "tables" / "main_digits.md").is_file()
    assert (results / "tiny" / "figures" / "accuracy_digits.png").stat().st_size > 1000
    assert "[tiny/README.md](tiny/README.md)" in (results / "README.md").read_text()
    assert cli.main(["grid", path, "--results", str(results), "--quiet", "--no-report"]) == 0
    assert "0 trained, 6 already done" in capsys.readouterr().out
    assert len(finished_runs(results)[1]) == 6
    # a dry run of the finished grid marks every cell done
    assert cli.main(["grid", path, "--results", str(results), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tiny: 6 cells, 6 finished in sqlite:///" in out
    assert sum(line.endswith("epochs  done") or line.endswith(")  done")
               for line in out.splitlines()) == 6


def test_a_worker_forked_by_the_server_takes_the_commands_environment(monkeypatch):
    """Workers are forked by a fork server that imported torch and MLflow once; they must see
    the environment of the command that starts them (a data root, CUDA_VISIBLE_DEVICES), not
    the one the server inherited when it started."""
    runtime.start_worker_server()  # the server's environment: without DRKD_PROBE
    monkeypatch.setenv("DRKD_PROBE", "set after the server started")
    ctx = runtime.worker_context()
    devices = ctx.Queue()
    devices.put("cpu")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=grid._init_worker,
                             initargs=(runtime.Runtime(device="cpu", threads=1), ctx.Queue(),
                                       devices, dict(os.environ))) as pool:
        seen = pool.submit(_env, "DRKD_PROBE").result(timeout=600)
        assert "torch._dynamo" in pool.submit(_imported).result(timeout=600)  # preloaded
    assert seen == "set after the server started"


def _imported() -> set[str]:
    return set(sys.modules)


def _env(name: str) -> str | None:
    return os.environ.get(name)


@pytest.mark.slow
def test_two_workers_respect_teacher_dependencies(tmp_path, capsys):
    results = tmp_path / "results"
    cfg = {**TINY, "methods": ["ce", "tfkd-self", {"method": "drkd", "teacher": "pretrained"}]}
    code = cli.main(["grid", write(tmp_path, cfg), "--results", str(results), "--quiet",
                     "--workers", "2", "--no-report"])
    assert code == 0
    _, runs = finished_runs(results)
    assert len(runs) == 6
    by_key = {r.info.run_name: r for r in runs}
    for seed in (0, 1):
        ce = by_key[f"digits/mlp/ce/seed{seed}"]
        for kd in ("tfkd-self", "drkd-pretrained"):
            assert by_key[f"digits/mlp/{kd}/seed{seed}"].info.start_time >= ce.info.end_time


@pytest.mark.slow
def test_failing_cell_does_not_stop_the_others(tmp_path, capsys):
    results = tmp_path / "results"
    cfg = {**TINY, "seeds": [0], "architectures": {"mlp": {"train": {"lr": 1.0e6}},
                                                    "cnn8": None}}
    code = cli.main(["grid", write(tmp_path, cfg), "--results", str(results), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "3 trained, 0 already done, 3 failed" in out
    assert "failed digits/mlp/ce/seed0: TrainingDiverged" in out
    assert "failed digits/mlp/tfkd-self/seed0: its self-teacher failed" in out
    t = tracking.Tracker(results=results)
    states = {r.info.run_name: r.info.status for r in t.runs()}
    assert states["digits/mlp/ce/seed0"] == "FAILED"
    assert states["digits/mlp/drkd-online/seed0"] == "FAILED"
    assert states["digits/cnn8/tfkd-self/seed0"] == "FINISHED"
    failed = (results / cfg["name"] / "tables" / "failed_runs.md").read_text()
    assert "digits/mlp/ce/seed0" in failed and "TrainingDiverged" in failed


def _final_metrics(results):
    _, runs = finished_runs(results)
    return {r.info.run_name: (r.data.metrics["test_top1"], r.data.metrics["train_loss"])
            for r in runs}


@pytest.mark.slow
def test_sigkilled_grid_resumes_every_cell_exactly_once_with_identical_metrics(
        tmp_path, kill_writer_mid_transaction):
    # mlp: its epochs take milliseconds, so the run's cost is the killed grid's start-up; the
    # kill still lands mid-cell (the grid is killed as soon as the first epoch checkpoint exists).
    # The resumed and the clean grid run here, with the same two workers of one thread each.
    cfg = {**TINY, "seeds": [0], "architectures": ["mlp"], "train": {"epochs": 6}}
    path = write(tmp_path, cfg)
    killed = tmp_path / "killed"
    def cmd(results):
        return ["grid", path, "--results", str(results), "--quiet", "--no-report",
                "--checkpoint-every", "0", "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli"] + cmd(killed),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # a bound on a hang, not a speed target
    ckpts = []
    while time.time() < deadline and not ckpts:  # kill once a cell has a mid-run checkpoint
        ckpts = list((killed / "checkpoints").glob("*/last.pt"))
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpts, "the grid never reached a mid-run checkpoint"
    before = {r.info.run_name: r.info.status for r in tracking.Tracker(results=killed).runs()}
    assert "RUNNING" in before.values()  # a cell was interrupted mid-way
    # and a writer killed inside a store transaction, every time (a kill of the grid lands in
    # one by chance): the hot journal it leaves must not lock the user out of the resume
    kill_writer_mid_transaction(killed / "mlflow.db")
    assert cli.main(cmd(killed)) == 0
    t = tracking.Tracker(results=killed)
    hashes = [r.data.tags["cell_hash"] for r in t.runs()]
    assert len(hashes) == len(set(hashes)) == 3  # every cell exactly once
    assert all(r.info.status == "FINISHED" for r in t.runs())
    clean = tmp_path / "clean"
    assert cli.main(cmd(clean)) == 0
    assert _final_metrics(killed) == _final_metrics(clean)


INVALID = [
    ({**TINY, "colour": "red"}, "unknown key 'colour'"),
    ({k: v for k, v in TINY.items() if k != "seeds"}, "missing key 'seeds'"),
    ({**TINY, "seeds": "three"}, "seeds: expected"),
    ({**TINY, "seeds": [0, 0]}, "duplicate seeds"),
    ({**TINY, "datasets": {"mnist": None}}, "unknown dataset; choose one of: digits"),
    ({**TINY, "datasets": {"digits": {"val_fraction": 1.5}}}, "val_fraction must lie in (0, 1)"),
    ({**TINY, "datasets": {"digits": {"splits": 2}}}, "unknown key 'splits'"),
    ({**TINY, "datasets": {"digits": {"split": "sometimes"}}}, "split must be one of"),
    ({**TINY, "architectures": ["resnet19"]}, "unknown architecture 'resnet19'"),
    ({**TINY, "methods": ["kd"]}, "unknown method 'kd'"),
    ({**TINY, "methods": [{"method": "drkd", "alpha": 2}]}, "must lie in [0, 1]"),
    ({**TINY, "methods": [{"method": "drkd", "teacher": "oracle"}]}, "pretrained, online"),
    ({**TINY, "methods": [{"method": "lsr", "temperature": 3}]}, "no hyperparameter"),
    ({**TINY, "methods": ["ce", "ce"]}, "duplicate variant label 'ce'"),
    ({**TINY, "train": {"epochs": "ten"}}, "train.epochs: expected an integer, got 'ten'"),
    ({**TINY, "train": {"epochs": 0}}, "epochs must be >= 1"),
    ({**TINY, "train": {"schedule": "linear"}}, "schedule must be one of"),
    ({**TINY, "train": {"milestones": [1.5]}}, "train.milestones.0: expected an integer"),
    ({**TINY, "methods": [{"method": "drkd", "per_arch": {"cnn8": {"alpha": 0.5}}}]},
     "not in architectures"),
    ({**TINY, "methods": [{"method": "drkd", "hyperparameters": "best"}]},
     "hyperparameters must be one of: tuned (got 'best')"),
    ({**TINY, "methods": []}, "non-empty list"),
    ({**TINY, "methods": ["lsr"], "tune": {"space": {"smoothnig": [0.1, 0.3]}}},
     "no method of this config searches 'smoothnig'; searched: smoothing"),
    ({**TINY, "methods": ["ce"], "tune": {"space": {"smoothnig": [0.1, 0.3]}}},
     "no method of this config searches 'smoothnig'; searched: (none)"),
    ({**TINY, "methods": ["ce"], "tune": {"space": {"lr": [0.01, 0.3]}}},
     "no method of this config searches 'lr'; searched: (none)"),
    ({**TINY, "methods": ["lsr"], "tune": {"space": {"smoothing": [0.1, 1.5]}}},
     "1.5 is outside what lsr accepts"),
    ("just a string", "mapping at the top level"),
]


@pytest.mark.parametrize("cfg,needle", INVALID, ids=[n for _, n in INVALID])
def test_invalid_config_gives_one_line_exit_2_and_writes_nothing(tmp_path, capsys, cfg, needle):
    path = write(tmp_path, cfg, "bad.yaml")
    results = tmp_path / "results"
    assert cli.main(["grid", path, "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "bad.yaml" in err
    assert not results.exists()


@pytest.mark.parametrize("text,needle", [
    ("seeds: [0]\nseeds: [1]\n", "key 'seeds' given twice (first on line 1)"),
    ("train:\n  epochs: 2\n  lr: 0.1\n  epochs: 3\n", "line 4: key 'epochs' given twice"),
    ("methods:\n  - {method: drkd, alpha: 0.5, alpha: 0.9}\n", "key 'alpha' given twice"),
])
def test_a_key_given_twice_at_any_depth_is_one_line(tmp_path, capsys, text, needle):
    path = tmp_path / "dup.yaml"
    path.write_text(text + "datasets: [digits]\narchitectures: [mlp]\n"
                    + ("" if text.startswith("seeds") else "seeds: [0]\n")
                    + ("" if "methods" in text else "methods: [ce]\n"))
    results = tmp_path / "results"
    assert cli.main(["grid", str(path), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "dup.yaml" in err and err.count("\n") == 1, err
    assert not results.exists()


def test_a_split_that_empties_a_class_fails_before_anything_is_written(tmp_path, capsys):
    path = write(tmp_path, {**TINY, "datasets": {"digits": {"val_fraction": 0.001}}}, "s.yaml")
    results = tmp_path / "results"
    assert cli.main(["grid", path, "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "val_fraction 0.001 leaves class 0 (" in err and "no validation image" in err, err
    assert err.count("\n") == 1 and not results.exists()


def test_not_yaml_is_one_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("seeds: [0, 1\nmethods: x")
    assert cli.main(["grid", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(config.shipped_configs()))
def test_shipped_configs_validate(name):
    """Every shipped config loads and expands; a variant that reads tuned values has its study
    among the config's own studies (its values exist only after `drkd-bench tune`)."""
    cfg = config.load_grid(name)
    fixed = dataclasses.replace(cfg, variants=tuple(v for v in cfg.variants if not v.tuned))
    cells = grid.expand(fixed)
    assert cells and Path(config.resolve_config_path(name)).is_file()
    if cfg.tuned_variants():
        names = {s.name for s in tune.studies(cfg)}
        for d, _, a in cfg.tasks():  # a dataset may train some of the architectures only
            assert {tune.study_name(d, a, v) for v in cfg.tuned_variants()} <= names


@pytest.mark.slow
def test_two_shipped_grids_in_one_folder_each_keep_their_own_complete_report(tmp_path, capsys):
    """The second grid's report replaced the first's README, report.html and figures and
    deleted what it did not draw; each grid now owns RESULTS/<grid>/, listed in RESULTS/README.md,
    and each table counts its own grid's runs only."""
    import pandas as pd

    results = tmp_path / "results"
    (results / "published" / "tables").mkdir(parents=True)  # a committed edition: no grid's
    (results / "published" / "README.md").write_text("# an edition\n")
    small = ["--set", "seeds=[0, 1]", "--set", "architectures=[mlp]", "--set", "train.epochs=2",
             "--results", str(results), "--quiet", "--workers", "1"]
    assert cli.main(["grid", "quick", "--set", "methods=[ce, lsr]"] + small) == 0
    quick = {p.relative_to(results / "quick"): p.read_bytes()
             for p in (results / "quick").rglob("*") if p.is_file()}
    assert cli.main(["grid", "teacher-sources", "--set",
                     "methods=[ce, {method: drkd, teacher: online}]"] + small) == 0
    assert "2 already done" in capsys.readouterr().out  # the CE cells: one cell, both grids
    after = {p.relative_to(results / "quick"): p.read_bytes()
             for p in (results / "quick").rglob("*") if p.is_file()}
    assert after == quick  # nothing of the first grid's report touched
    for name, variants in (("quick", {"ce", "lsr"}), ("teacher-sources", {"ce", "drkd-online"})):
        table = pd.read_csv(results / name / "tables" / "main_digits.csv")
        assert set(table["variant"]) == variants and set(table["n"]) == {2}, name
        assert (results / name / "report.html").is_file()
    index = (results / "README.md").read_text()
    assert "[quick/README.md](quick/README.md)" in index
    assert "[teacher-sources/README.md](teacher-sources/README.md)" in index
    assert "published" not in index
    t = tracking.Tracker(results=results)
    tagged = {r.data.tags.get("grid") for r in t.runs("tags.kind = 'train'")}
    assert tagged == {"quick", "teacher-sources"}
    assert all(len(r.data.tags.get("grid_config", "")) == 16
               for r in t.runs("tags.kind = 'train'"))
    # the store's reports from the command: one per grid, or pooled only when asked, saying so
    assert cli.main(["report", "--results", str(results), "--grid", "quick"]) == 0
    assert set(pd.read_csv(results / "quick" / "tables" / "main_digits.csv")["variant"]) \
        == {"ce", "lsr"}
    capsys.readouterr()
    assert cli.main(["report", "--results", str(results), "--pool-grids"]) == 0
    assert "pooling 2 grid(s) (quick, teacher-sources)" in capsys.readouterr().out
    assert set(pd.read_csv(results / "all-grids" / "tables" / "main_digits.csv")["variant"]) \
        == {"ce", "lsr", "drkd-online"}


@pytest.mark.slow
def test_done_in_a_committed_part_skips_its_cells_on_a_new_store(tmp_path, capsys):
    """A grid stopped on one machine resumes on another from its exported part: cells finished
    there are not retrained here, except a self-teacher a remaining cell needs the weights of."""
    cfg = {**TINY, "train": {"epochs": 1, "batch_size": 64},
           "methods": ["ce", "tfkd-self"]}
    path = write(tmp_path, cfg)
    old, new = tmp_path / "old", tmp_path / "new"
    # the old machine finished seed 0 (ce and tfkd-self)
    assert cli.main(["grid", path, "--results", str(old), "--seeds", "1", "--quiet",
                     "--no-report", "--workers", "1"]) == 0
    part = tmp_path / "part1.csv.gz"
    assert cli.main(["export", "--results", str(old), "--out", str(part)]) == 0
    capsys.readouterr()
    assert cli.main(["grid", path, "--results", str(new), "--dry-run", "--done-in",
                     str(part)]) == 0
    out = capsys.readouterr().out
    assert "tiny: 4 cells, 2 finished in " in out and str(part) in out
    assert out.count("  done") == 2
    assert cli.main(["grid", path, "--results", str(new), "--quiet", "--no-report",
                     "--workers", "1", "--done-in", str(part)]) == 0
    assert "2 trained, 2 already done, 0 failed" in capsys.readouterr().out
    assert {r.data.tags["seed"] for r in finished_runs(new)[1]} == {"1"}


def test_done_in_a_file_that_is_not_an_export_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.csv"
    bad.write_text("a,b\n1,2\n")
    for f in (bad, tmp_path / "missing.csv.gz"):
        assert cli.main(["grid", write(tmp_path, TINY), "--dry-run", "--done-in", str(f)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("drkd-bench: error: --done-in") and "\n" not in err and str(f) in err


def test_task_train_gives_each_task_its_own_budget(tmp_path, capsys):
    """A converged budget per task: patterns over 'dataset:condition/arch', applied in order
    after the dataset's and the architecture's keys; a pattern that matches nothing is one
    line."""
    cfg = {**TINY, "architectures": ["mlp", "cnn8"], "methods": ["ce"],
           "conditions": {"clean": {}, "sym40": {"noise": {"kind": "symmetric", "rate": 0.4}}},
           "task_train": {"digits:*/mlp": {"epochs": 6}, "digits:sym40/cnn8": {"epochs": 3}}}
    grid_cfg = config.load_grid(write(tmp_path, cfg))
    epochs = {(d, a): grid_cfg.train_for(d, a).epochs for d, _, a in grid_cfg.tasks()}
    assert epochs == {("digits:clean", "mlp"): 6, ("digits:sym40", "mlp"): 6,
                      ("digits:clean", "cnn8"): 2, ("digits:sym40", "cnn8"): 3}
    cells = grid.expand(grid_cfg)
    assert {c.key.rsplit("/", 1)[0]: c.train.epochs for c in cells}[
        "digits:sym40/cnn8/ce"] == 3
    bad = {**cfg, "task_train": {"fashion-mnist:*/mlp": {"epochs": 6}}}
    assert cli.main(["grid", write(tmp_path, bad, "bad.yaml"), "--dry-run"]) == 2
    assert "task_train: 'fashion-mnist:*/mlp' matches no task" in capsys.readouterr().err


def test_k_fold_split_gives_each_seed_its_fold_of_one_partition(tmp_path):
    """split: k-fold with folds: 3: seed s validates on fold s mod 3 of one partition, so three
    seeds validate every training image once; the noise is drawn per seed."""
    from benchmark.jobs import runner

    cfg = {**TINY, "seeds": [0, 1, 2, 3], "methods": ["ce"],
           "datasets": {"digits": {"split": "k-fold", "folds": 3,
                                   "noise": {"kind": "symmetric", "rate": 0.2}}}}
    cells = grid.expand(config.load_grid(write(tmp_path, cfg)))
    assert [(c.seed, c.data.fold) for c in cells] == [(0, 0), (1, 1), (2, 2), (3, 0)]
    assert len({c.data.noise_seed for c in cells}) == 4
    vals = [runner.load_data(c.data, None) for c in cells[:3]]
    pool = len(vals[0].train_y) + len(vals[0].val_y)
    assert sum(len(v.val_y) for v in vals) == pool
    bad = {**cfg, "datasets": {"digits": {"split": "k-fold"}}}
    with pytest.raises(config.ConfigError, match="k-fold needs folds"):
        config.load_grid(write(tmp_path, bad, "bad.yaml"))
