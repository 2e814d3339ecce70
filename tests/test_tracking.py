"""One tracked run per training run in a real SQLite MLflow store: parameters, per-epoch
metrics, tags, provenance, artifacts; self-teachers trained once and reused; resuming logs each
epoch once."""
import json
import shutil

import torch
from mlflow import MlflowClient

from benchmark import cli, config
from benchmark.jobs import runner
from benchmark.models import teachers
from benchmark.store import location, tracking


def runs_by_key(tracker):
    return {r.info.run_name: r for r in tracker.runs()}


def test_train_command_tracks_run_and_trains_missing_self_teacher(results, capsys):
    argv = ["train", "--dataset", "digits", "--method", "drkd", "--epochs", "2",
            "--results", str(results), "--set", "temperature=3"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "digits/cnn8/drkd/seed0" in out and "test top-1" in out
    tracker = tracking.Tracker(results=results)
    runs = runs_by_key(tracker)
    assert set(runs) == {"digits/cnn8/ce/seed0", "digits/cnn8/drkd/seed0"}
    run = runs["digits/cnn8/drkd/seed0"]
    assert run.info.status == "FINISHED"
    tags, params = run.data.tags, run.data.params
    assert tags["dataset"] == "digits" and tags["arch"] == "cnn8" and tags["method"] == "drkd"
    assert tags["seed"] == "0" and tags["teacher_source"] == "pretrained"
    assert tags["fidelity"] == "paper" and len(tags["cell_hash"]) == 16
    assert "version.torch" in tags and "platform" in tags
    assert params["hp.temperature"] == "3.0" and params["hp.kl_reduction"] == "batchmean"
    assert params["effective_lr"] == str(0.1 * 64 / 128) and params["effective_batch_size"] == "64"
    client = MlflowClient(tracker.uri)
    history = client.get_metric_history(run.info.run_id, "diag_rectified")
    assert [m.step for m in history] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "config.json", "checkpoint"} <= artifacts
    model_path = tracker.download(run.info.run_id, location.MODEL_ARTIFACT, results / "dl")
    model = teachers.load_model(model_path, "cnn8", 1, 10, 8, "cpu")  # weights_only=True
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
    saved = json.loads((tracker.download(run.info.run_id, "metrics.json", results / "dl")
                        ).read_text())
    assert [r["epoch"] for r in saved] == [1, 2]

    # a second KD method of the same cell reuses the CE teacher; the same command is a no-op
    assert cli.main(argv[:4] + ["tfkd-self"] + argv[5:9]) == 0
    assert cli.main(argv) == 0
    assert "already finished" in capsys.readouterr().out
    names = [r.info.run_name for r in tracker.runs()]
    assert sorted(names) == ["digits/cnn8/ce/seed0", "digits/cnn8/drkd/seed0",
                             "digits/cnn8/tfkd-self/seed0"]
    assert not (results / "checkpoints" / run.data.tags["cell_hash"]).exists()


def test_online_teacher_needs_no_ce_run(results):
    tracker = tracking.Tracker(results=results)
    s = config.make_spec("digits", "mlp", "drkd", 0, {"teacher": "online"}, {"epochs": 1})
    runner.run_cell(s, tracker)
    assert [r.info.run_name for r in tracker.runs()] == ["digits/mlp/drkd-online/seed0"]
    assert runs_by_key(tracker)["digits/mlp/drkd-online/seed0"].data.tags[
        "teacher_source"] == "online"


def test_interrupted_cell_resumes_in_the_same_run_logging_each_epoch_once(results):
    tracker = tracking.Tracker(results=results)
    s = config.make_spec("digits", "cnn8", "lsr", 0, {}, {"epochs": 4})
    first = runner.run_cell(s, tracker, stop_after=2)
    assert tracker.finished(s.hash) is None
    second = runner.run_cell(s, tracker)
    assert second.run_id == first.run_id
    client = MlflowClient(tracker.uri)
    steps = [m.step for m in client.get_metric_history(second.run_id, "test_top1")]
    assert steps == [1, 2, 3, 4]
    reference = runner.run_cell(s, tracking.Tracker(results=results / "other"))
    assert reference.final["test_top1"] == second.final["test_top1"]
    assert reference.final["train_loss"] == second.final["train_loss"]


def test_failed_cell_is_recorded_with_its_reason(results):
    tracker = tracking.Tracker(results=results)
    s = config.make_spec("digits", "cnn8", "ce", 0, {}, {"epochs": 2, "lr": 1e6})
    try:
        runner.run_cell(s, tracker)
        raise AssertionError("expected a failure")
    except runner.CellFailed as e:
        assert "TrainingDiverged" in str(e)
    run = tracker.runs()[0]
    assert run.info.status == "FAILED" and "loss is" in run.data.tags["failure_reason"]


def test_any_tracking_uri_is_accepted(tmp_path):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    tracker = tracking.Tracker(uri, results=tmp_path / "r")
    s = config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 1})
    runner.run_cell(s, tracker)
    assert (tmp_path / "elsewhere.db").is_file()
    assert tracker.finished(s.hash) is not None


def test_restart_without_checkpoint_supersedes_the_partial_run(results):
    """A cell retried on a machine that lacks its epoch checkpoint starts a fresh run; the old
    one is marked superseded, so no step is logged twice and only one run finishes."""
    tracker = tracking.Tracker(results=results)
    s = config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 3})
    first = runner.run_cell(s, tracker, stop_after=2)
    shutil.rmtree(results / "checkpoints" / s.hash)
    second = runner.run_cell(s, tracker)
    assert second.run_id != first.run_id
    runs = {r.info.run_id: r for r in tracker.runs()}
    assert runs[first.run_id].data.tags["kind"] == "superseded"
    assert runs[first.run_id].info.status == "KILLED"
    assert runs[second.run_id].info.status == "FINISHED"
    client = MlflowClient(tracker.uri)
    assert [m.step for m in client.get_metric_history(second.run_id, "test_top1")] == [1, 2, 3]


def test_a_new_store_is_a_copy_of_the_cached_empty_store_with_mlflows_own_schema(tmp_path,
                                                                                  monkeypatch):
    import sqlite3

    def schema(folder):  # tables, indexes and every column (MLflow writes its CHECK lists in
        # set order, which varies between processes, so the CREATE texts are not compared)
        with sqlite3.connect(folder / "mlflow.db") as db:
            names = sorted(db.execute("select type, name from sqlite_master"))
            columns = {n: db.execute(f"pragma table_info('{n}')").fetchall()
                       for kind, n in names if kind == "table"}
            return names, columns, db.execute("select version_num from alembic_version").fetchall()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRKD_CACHE", "off")
    tracking.Tracker(results=tmp_path / "mlflows")  # MLflow's migrations, no template
    monkeypatch.setenv("DRKD_CACHE", str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()
    tracking.Tracker(results=tmp_path / "first")  # migrations, then the empty copy is kept
    template = location.template_path()
    assert template.is_file() and template.parent == tmp_path / "cache"
    copied = tracking.Tracker(results=tmp_path / "second")  # a copy of the template
    assert schema(tmp_path / "second") == schema(tmp_path / "mlflows") == schema(tmp_path / "first")
    with sqlite3.connect(tmp_path / "second" / "mlflow.db") as db:
        assert db.execute("select name, artifact_location from experiments order by 1").fetchall() \
            == [("Default", str(tmp_path / "mlruns" / "0")),
                ("drkd-bench", (tmp_path / "second" / "mlartifacts").as_uri())]
    run = copied.client.create_run(copied.experiment_id)
    copied.client.log_metric(run.info.run_id, "val_top1", 0.5)
    assert copied.client.get_run(run.info.run_id).data.metrics == {"val_top1": 0.5}
