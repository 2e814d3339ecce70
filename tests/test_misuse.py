"""Defects found when the harness was tried as a new user would: each test failed before its fix.

Bad input: exit code 2 (1 for a run that diverges), one line on stderr, no traceback, nothing
written to the store."""
import dataclasses
import gzip
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from mlflow import MlflowClient

from benchmark import cli, config, data
from benchmark.jobs import grid, runner, train, tune
from benchmark.store import tracking

REPO = Path(__file__).resolve().parents[1]


def one_line_error(capsys, code, expect_code=2):
    err = capsys.readouterr().err
    assert code == expect_code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def write_cfg(tmp_path, **extra):
    cfg = {"name": "t", "seeds": [0], "datasets": {"digits": None}, "architectures": ["mlp"],
           "train": {"epochs": 2, "batch_size": 64}, **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


# --- tuning ---------------------------------------------------------------------------------------

def test_variants_differing_in_anything_get_their_own_study(tmp_path):
    path = write_cfg(tmp_path, methods=[
        {"method": "drkd", "fidelity": "paper", "label": "drkd-paper"},
        {"method": "drkd", "fidelity": "code", "label": "drkd-code"}])
    names = [s.name for s in tune.studies(config.load_grid(path))]
    assert names == ["digits/mlp/drkd-paper", "digits/mlp/drkd-code"]


def test_two_studies_never_propose_the_same_first_trial(tmp_path):
    firsts = []
    for name in ("digits/mlp/a", "digits/mlp/b"):
        sampler = optuna.samplers.TPESampler(seed=tune.sampler_seed(name, 0))
        study = optuna.create_study(sampler=sampler)
        firsts.append(study.ask().suggest_float("alpha", 0, 1))
    assert firsts[0] != firsts[1]
    assert tune.sampler_seed("x", 0) == tune.sampler_seed("x", 0)  # stable across processes


@pytest.mark.slow
def test_tuning_distils_from_a_tracked_ce_teacher_of_its_own_seed_never_a_grid_cell(tmp_path,
                                                                                   results):
    path = write_cfg(tmp_path, methods=["tfkd-self"],
                     tune={"trials": 2, "epochs": 1, "seed": 0})
    cfg = config.load_grid(path)
    assert cli.main(["tune", path, "--results", str(results), "--workers", "1"]) == 0
    [study] = tune.studies(cfg)
    teacher = study.teacher_for(study.seeds[0])
    assert teacher.seed == tune.TRIAL_SEED and teacher.train.epochs == 2  # the grid's epochs
    t = tracking.Tracker(results=results)
    run = t.finished(teacher.hash)
    assert run is not None and run.data.tags["kind"] == "tuning-teacher"  # not a report's cell
    cells = grid.expand(cfg)
    assert teacher.hash not in {c.hash for c in cells}
    out = grid.run(cells, t, quiet=True)  # the grid trains its own CE cells
    assert not out.skipped


@pytest.mark.slow
def test_study_parent_run_ends_and_links_to_its_trials(tmp_path, results):
    path = write_cfg(tmp_path, methods=[{"method": "lsr"}], tune={"trials": 2, "seed": 0})
    other = str(tmp_path / "other.journal")
    for storage in (None, other):
        argv = ["tune", path, "--results", str(results), "--trials", "2", "--workers", "2"]
        assert cli.main(argv + (["--storage", storage] if storage else [])) == 0
    t = tracking.Tracker(results=results)
    parents = t.runs("tags.kind = 'study'")
    assert len(parents) == 2  # one per (study, storage), even with two racing workers
    assert {p.info.status for p in parents} == {"FINISHED"}
    assert len({p.data.tags["storage"] for p in parents}) == 2
    for p in parents:
        trials = t.runs(f"tags.kind = 'trial' and tags.`mlflow.parentRunId` = "
                        f"'{p.info.run_id}'")
        assert len(trials) == 2
        assert len({r.data.tags["trial"] for r in trials}) == 2  # no duplicate names
    study = optuna.load_study(study_name="digits/mlp/lsr", storage=tune.open_storage(other))
    ids = {tr.user_attrs["mlflow_run_id"] for tr in study.trials}
    assert all(t.client.get_run(i).data.tags["kind"] == "trial" for i in ids)


def test_best_trial_is_the_one_optuna_and_its_dashboard_call_best():
    # tied values with different NLLs: tune once preferred trial 2 (lower NLL) while
    # optuna-dashboard's "Best Trial" badge sat on trial 1; one rule now, Optuna's
    study = optuna.create_study(direction="maximize")
    for value, nll in ((0.9, 0.5), (1.0, 0.4), (1.0, 0.2), (1.0, 0.2)):
        trial = study.ask()
        trial.suggest_float("alpha", 0, 1)
        trial.set_user_attr("val_nll", nll)
        study.tell(trial, value)
    assert tune.best_trial(study).number == study.best_trial.number == 1
    assert [t.number for t in tune.candidates(study)] == [1, 2, 3]


# --- identity of a result -------------------------------------------------------------------------

def test_precision_is_hashed_and_a_shipped_cells_hash_is_pinned():
    cells = grid.expand(config.load_grid("quick"))
    first = cells[0]
    assert first.key == "digits/cnn8/ce/seed0" and first.train.precision == "fp32"
    # Pinned: an accidental change of what goes into every hash must be a deliberate edit here.
    assert first.hash == "3c83f58fa74a9f87"
    bf16 = dataclasses.replace(first, train=dataclasses.replace(first.train, precision="bf16"))
    assert bf16.hash != first.hash
    compiled = dataclasses.replace(first, train=dataclasses.replace(first.train, compile=True))
    assert compiled.hash not in (first.hash, bf16.hash)


def test_runs_are_tagged_with_their_device(results):
    t = tracking.Tracker(results=results)
    s = config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 1})
    runner.run_cell(s, t)
    tags = t.finished(s.hash).data.tags
    assert tags["device"] == "cpu"
    # the kernels' instruction set, which a CPU model name does not fix
    assert tags["cpu_capability"] == torch.backends.cpu.get_cpu_capability() != ""


# --- the store ------------------------------------------------------------------------------------

def test_a_moved_results_folder_keeps_working(tmp_path, capsys):
    first = tmp_path / "first"
    s = config.make_spec("digits", "mlp", "tfkd-self", 0, {}, {"epochs": 1})
    runner.run_cell(s.teacher_spec(), tracking.Tracker(results=first))
    moved = tmp_path / "elsewhere" / "results"
    shutil.copytree(first, moved)
    first.rename(tmp_path / "hidden")  # the original is gone
    t = tracking.Tracker(results=moved)
    out = runner.run_cell(s, t, train_teacher=False)  # needs the CE teacher's artifact
    assert out.final["test_top1"] > 0.1
    for run in t.runs():
        assert run.info.artifact_uri.startswith(moved.resolve().as_uri())
    assert cli.main(["report", "--results", str(moved)]) == 0
    assert (moved / "single-runs" / "tables" / "main_digits.md").is_file()  # no grid's runs
    files = MlflowClient(t.uri).list_artifacts(out.run_id)
    assert {f.path for f in files} >= {"metrics.json", "checkpoint"}  # what the UI lists


def _tree(folder):
    """Every file under ``folder`` with its bytes' sha256 (the store's bytes included)."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_copied_results_folder_is_independent_of_the_original(tmp_path):
    original = tmp_path / "results"
    s = config.make_spec("digits", "mlp", "tfkd-self", 0, {}, {"epochs": 1})
    runner.run_cell(s.teacher_spec(), tracking.Tracker(results=original))
    before = _tree(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)  # cp -a: the original stays where it is
    t = tracking.Tracker(results=copy)
    out = runner.run_cell(s, t, train_teacher=False)  # a new cell, and the teacher's artifact
    assert out.final["test_top1"] > 0.1
    assert cli.main(["report", "--results", str(copy)]) == 0
    assert _tree(original) == before  # not a byte of the original changed
    for run in t.runs():  # every location, old runs' too, is the copy's (what its UI shows)
        assert run.info.artifact_uri.startswith(copy.resolve().as_uri())
    assert t.client.get_experiment(t.experiment_id).artifact_location.startswith(
        copy.resolve().as_uri())


def test_save_atomic_uses_a_temporary_name_of_its_own(tmp_path, monkeypatch):
    names = []
    real = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: (names.append(Path(f).name), real(obj, f)))
    train.save_atomic({"a": 1}, tmp_path / "last.pt")
    assert names and str(os.getpid()) in names[0] and names[0] != "last.pt.tmp"
    assert (tmp_path / "last.pt").is_file() and len(list(tmp_path.iterdir())) == 1


# --- input ----------------------------------------------------------------------------------------

def test_scientific_notation_is_a_float_on_the_command_line_and_in_yaml(tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(["train", "--dataset", "digits", "--arch", "mlp", "--method", "ce",
                     "--epochs", "1", "--set", "lr=1e-3", "--set", "weight_decay=5e-4",
                     "--results", str(results)]) == 0
    params = tracking.Tracker(results=results).runs()[0].data.params
    assert float(params["train.lr"]) == 1e-3
    path = tmp_path / "g.yaml"
    path.write_text("seeds: [0]\ndatasets: [digits]\narchitectures: [mlp]\nmethods: [ce]\n"
                    "train: {lr: 1e-3, weight_decay: 5e-4}\n")
    s = grid.expand(config.load_grid(str(path)))[0]
    assert s.train.lr == 1e-3 and s.train.weight_decay == 5e-4


@pytest.mark.parametrize("extra,needle", [
    (["--tracking-uri", "foo://bar"], "unsupported scheme 'foo'"),
    (["--tracking-uri", "sqlite://relative-without-slash"], "sqlite:///"),
    (["--device", "tpu"], "--device 'tpu'"),
    (["--device", "cuda:7"], "--device 'cuda:7'"),
])
def test_bad_store_and_device_are_one_line(tmp_path, capsys, extra, needle):
    results = tmp_path / "results"
    code = cli.main(["train", "--dataset", "digits", "--method", "ce", "--epochs", "1",
                     "--results", str(results), *extra])
    assert needle in one_line_error(capsys, code)
    assert not results.exists()


def test_results_folder_that_cannot_be_created_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main(["train", "--dataset", "digits", "--method", "ce", "--epochs", "1",
                     "--results", str(blocker / "results")])
    assert "cannot create the results folder" in one_line_error(capsys, code)


def test_malformed_optuna_storage_is_one_line(tmp_path, capsys):
    path = write_cfg(tmp_path, methods=["lsr"])
    code = cli.main(["tune", path, "--results", str(tmp_path / "r"), "--storage",
                     "postgresql+nodriver://x/y"])
    assert "Optuna storage" in one_line_error(capsys, code)
    assert not (tmp_path / "r").exists()  # nothing written


def test_report_from_a_missing_or_malformed_csv_is_one_line(tmp_path, capsys):
    code = cli.main(["report", "--from", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")])
    assert "no such file" in one_line_error(capsys, code)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    code = cli.main(["report", "--from", str(bad), "--out", str(tmp_path / "o")])
    assert "not a runs CSV" in one_line_error(capsys, code)
    assert not (tmp_path / "o").exists()


def test_report_and_export_into_an_unwritable_folder_are_one_line(tmp_path, capsys):
    csv = REPO / "results" / "published" / "runs.csv"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main(["report", "--from", str(csv), "--out", str(blocker / "out")])
    assert "cannot write to" in one_line_error(capsys, code)
    results = tmp_path / "results"
    runner.run_cell(config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 1}),
                    tracking.Tracker(results=results))
    code = cli.main(["export", "--results", str(results), "--out", str(blocker / "x.csv")])
    assert "cannot write to" in one_line_error(capsys, code)


def test_a_diverging_train_is_one_line_and_exit_1(tmp_path, capsys):
    code = cli.main(["train", "--dataset", "digits", "--arch", "mlp", "--method", "ce",
                     "--epochs", "2", "--set", "lr=1e6", "--results", str(tmp_path / "r")])
    err = one_line_error(capsys, code, expect_code=1)
    assert "TrainingDiverged" in err and "epoch 1" in err


# --- corrupt dataset files: one line naming the file ----------------------------------------------

def _cli_train(dataset, root, tmp_path):
    return cli.main(["train", "--dataset", dataset, "--method", "ce", "--data-root", str(root),
                     "--results", str(tmp_path / "results")])


def test_corrupt_idx_files_name_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data.builtin, "DEBIAN_FASHION", tmp_path / "none")
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for stem in data.FASHION_FILES.values():
        (folder / (stem + ".gz")).write_bytes(b"not gzip at all")
    err = one_line_error(capsys, _cli_train("fashion-mnist", tmp_path / "data", tmp_path))
    assert "idx" in err.lower() and ".gz" in err
    assert not (tmp_path / "results").exists()


def _fashion_files(folder):
    from test_data import make_fashion

    make_fashion(folder, n_train=60, n_test=20, gz=False)
    return {k: folder / stem for k, stem in data.FASHION_FILES.items()}


def test_an_idx_file_with_a_truncated_header_names_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data.builtin, "DEBIAN_FASHION", tmp_path / "none")
    files = _fashion_files(tmp_path / "data" / "fashion-mnist")
    files["train_x"].write_bytes(bytes([0, 0, 8, 3, 0, 0]))  # 3 dimensions, 2 bytes of them
    err = one_line_error(capsys, _cli_train("fashion-mnist", tmp_path / "data", tmp_path))
    assert "train-images-idx3-ubyte: truncated IDX header" in err
    assert not (tmp_path / "results").exists()


def test_idx_images_and_labels_that_disagree_name_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data.builtin, "DEBIAN_FASHION", tmp_path / "none")
    from test_data import write_idx

    files = _fashion_files(tmp_path / "data" / "fashion-mnist")
    write_idx(files["train_y"], np.arange(50) % 10, gz=False)  # 60 images, 50 labels
    err = one_line_error(capsys, _cli_train("fashion-mnist", tmp_path / "data", tmp_path))
    assert "60 images but train-labels-idx1-ubyte has 50 labels" in err
    assert not (tmp_path / "results").exists()


def test_corrupt_cifar_pickle_names_the_file(tmp_path, capsys):
    folder = tmp_path / "data" / "cifar-100-python"
    folder.mkdir(parents=True)
    (folder / "train").write_bytes(b"\x80\x04garbage")
    (folder / "test").write_bytes(b"")
    err = one_line_error(capsys, _cli_train("cifar100", tmp_path / "data", tmp_path))
    assert "cifar-100-python" in err and "not a CIFAR python batch" in err
    assert not (tmp_path / "results").exists()


def test_crafted_cifar_pickle_cannot_run_code(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "data" / "cifar-100-python"
    folder.mkdir(parents=True)
    payload = pickle.dumps({b"data": Evil(), b"fine_labels": [0]})
    for name in ("train", "test"):
        (folder / name).write_bytes(payload)
    err = one_line_error(capsys, _cli_train("cifar100", tmp_path / "data", tmp_path))
    assert "forbidden object" in err
    assert not marker.exists() and not (tmp_path / "results").exists()


def test_tiny_imagenet_without_annotations_names_the_file(tmp_path, capsys):
    base = tmp_path / "data" / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("n01\n")
    err = one_line_error(capsys, _cli_train("tiny-imagenet", tmp_path / "data", tmp_path))
    assert "val_annotations.txt: missing" in err
    assert not (tmp_path / "results").exists()


# --- repository -----------------------------------------------------------------------------------

def test_no_file_of_the_project_cites_a_document_outside_it():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    for name in tracked.stdout.split():
        path = REPO / name
        if path.suffix in (".py", ".yaml", ".md", ".toml") and path.is_file():
            assert "METHODS.md" not in path.read_text(errors="ignore") or name.endswith(
                "test_misuse.py"), name
    assert (REPO / "docs" / "methods.md").is_file()


def test_a_dataset_name_cannot_be_registered_twice():
    spec = data.get_spec("digits")
    with pytest.raises(data.DataError, match="already registered"):
        data.register(spec)
    assert data.get_spec("digits") is spec


def test_gzip_idx_reads_when_well_formed(tmp_path):  # the fix keeps good files readable
    raw = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    (tmp_path / "x.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.gz"), [1, 2, 3])


@pytest.mark.slow
def test_console_errors_carry_no_traceback_for_a_bad_tracking_uri(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "report", "--tracking-uri",
                          "foo://x", "--out", str(tmp_path / "o")], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr


# --- round three: bad stores, bad checkpoints ---------------------------------------------------

def test_an_unreadable_checkpoint_is_set_aside_and_the_cell_restarts(results, capsys):
    t = tracking.Tracker(results=results)
    s = config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 2})
    workdir = results / "checkpoints" / s.hash
    workdir.mkdir(parents=True)
    (workdir / train.CHECKPOINT).write_bytes(b"this is not a checkpoint")
    runner.run_cell(s, t)
    err = capsys.readouterr().err
    assert f"{s.key}: {workdir / train.CHECKPOINT} could not be read" in err
    run = t.finished(s.hash)
    assert run is not None and "restarts from epoch 0" in run.data.tags["checkpoint_reset"]
    assert len(list(results.glob(f"checkpoints/{s.hash}.last.pt.corrupt-*"))) == 1
    clean = tracking.Tracker(results=results.parent / "clean")
    runner.run_cell(s, clean)  # the same metrics as a cell that never had a bad file
    assert run.data.metrics["test_top1"] == clean.finished(s.hash).data.metrics["test_top1"]


def test_export_and_report_of_an_empty_store_say_so_and_write_nothing(results, tmp_path, capsys):
    tracking.Tracker(results=results)  # a store with no run
    out = tmp_path / "out"
    err = one_line_error(capsys, cli.main(["export", "--results", str(results), "--out",
                                           str(out / "runs.csv")]))
    assert "no runs in" in err and not out.exists()
    err = one_line_error(capsys, cli.main(["report", "--results", str(results), "--out",
                                           str(out)]))
    assert "no runs in" in err and not out.exists()


def test_reading_a_store_that_does_not_exist_never_creates_it(tmp_path, capsys):
    db = tmp_path / "nothing.db"
    for command in (["report", "--out", str(tmp_path / "o")], ["export"], ["ui"]):
        err = one_line_error(capsys, cli.main([*command, "--tracking-uri", f"sqlite:///{db}",
                                               "--results", str(tmp_path / "r")]))
        assert "no such store" in err and not db.exists(), command
    assert not (tmp_path / "o").exists()


def test_a_grid_asking_for_missing_tuned_values_leaves_no_journal(tmp_path, capsys):
    path = write_cfg(tmp_path, methods=[{"method": "lsr", "hyperparameters": "tuned"}])
    results = tmp_path / "results"
    err = one_line_error(capsys, cli.main(["grid", path, "--results", str(results)]))
    assert "no tuned values" in err
    assert not (results / "optuna.journal").exists() and not results.exists()
