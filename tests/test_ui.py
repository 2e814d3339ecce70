"""The grid at a glance in the tools researchers open: the ui command, MLflow's own fields, clean
parameters, Optuna study descriptions, and the terminal's per-cell lines."""
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from benchmark import cli, config
from benchmark.jobs import runner, tune
from benchmark.store import location, tracking, ui


def small_grid(tmp_path, **extra):
    cfg = {"name": "glance", "seeds": [0, 1], "datasets": {"digits": None},
           "architectures": ["mlp"], "train": {"epochs": 2, "batch_size": 64},
           "methods": ["ce", "tfkd-self"], **extra}
    path = tmp_path / "glance.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.slow
def test_ui_command_serves_the_store_and_its_results_view(tmp_path, results):
    path = small_grid(tmp_path, tune={"trials": 1, "seed": 0})
    assert cli.main(["grid", path, "--results", str(results), "--no-report", "--quiet",
                     "--workers", "1"]) == 0
    assert cli.main(["tune", path, "--results", str(results), "--method", "tfkd-self"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "ui", "--results",
                             str(results), "--port", "0", "--dashboard-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        starting = proc.stderr.readline()  # at once, before the server answers: not silent
        assert starting.startswith("starting the MLflow UI"), starting
        line = proc.stdout.readline()  # one URL, the results view's: never the bare root
        assert re.findall(r"http://\S+", line) and len(re.findall(r"http://\S+", line)) == 1
        url = re.search(r"http://\S+", line).group(0)
        # the view of the newest grid, named in the line
        assert ui.OPEN_PATH in url and url.endswith("viewStateShareKey=" + ui.grid_view_key(
            "glance")) and "results of grid glance" in line
        dashboard = proc.stdout.readline()
        assert ui.dashboard_command() is None or dashboard.startswith("optuna-dashboard")
        if ui.dashboard_command() is not None:  # optional; installed with the test extra
            with urllib.request.urlopen(re.search(r"http://\S+", dashboard).group(0)
                                        + "api/studies", timeout=120) as answer:
                studies = json.loads(answer.read())["study_summaries"]
            assert [s["study_name"] for s in studies] == ["digits/mlp/tfkd-self"]
            attrs = {a["key"] for a in studies[0]["user_attrs"]}
            assert {"dataset", "arch", "variant", "search_space", "storage"} <= attrs
        base = url.split(ui.OPEN_PATH)[0]
        with urllib.request.urlopen(base + ui.OPEN_PATH, timeout=120) as page:
            assert b'localStorage.setItem("mlflow.workflowType_v1"' in page.read()
        with urllib.request.urlopen(base + "/", timeout=120) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        assert "workflowType=machine_learning" in url  # training mode, not the GenAI pages
        experiment_id = re.search(r"experiments/(\d+)/runs\?", url).group(1)
        view = ui.results_view("glance")
        body = json.dumps({"experiment_ids": [experiment_id], "filter": view["searchFilter"],
                           "max_results": 100}).encode()
        req = urllib.request.Request(base + "/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as answer:
            runs = json.loads(answer.read())["runs"]
        names = sorted(r["info"]["run_name"] for r in runs)  # grid runs only: no trials
        assert names == ["digits/mlp/ce/seed0", "digits/mlp/ce/seed1",
                         "digits/mlp/tfkd-self/seed0", "digits/mlp/tfkd-self/seed1"]
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get?experiment_id="
                                    f"{experiment_id}", timeout=120) as answer:
            tags = {t["key"]: t["value"] for t in
                    json.loads(answer.read())["experiment"]["tags"]}
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        assert json.loads(tags["mlflow.sharedViewState." + ui.grid_view_key("glance")]) == view
        assert json.loads(tags["mlflow.sharedViewState." + ui.VIEW_KEY]) == ui.results_view()
        assert view["orderByAsc"]  # the grid's order: CE first, not last
        every = json.loads(tags["mlflow.sharedViewState." + ui.ALL_RUNS_KEY])
        assert every["searchFilter"] == "tags.kind = 'train'"  # failed runs shown too
        assert proc.poll() is None  # still serving
        # one viewer's server: the MLflow UI and one web worker, no job runner (15 otherwise)
        server = _session_of(location.default_uri(results))
        assert len(server) == 2 and not any("huey" in cmd for cmd in server), server
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    # stopping the command stops every server process it started
    time.sleep(1)
    venv = str(Path(sys.executable).parent)
    left = [cmd for _sid, cmd in _processes().values()
            if str(results) in cmd or ("huey" in cmd and venv in cmd)]
    assert not left, left


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (session id, command line) of every process there is."""
    procs = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            sid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
        procs[int(entry.name)] = (sid, cmd)
    return procs


def _session_of(marker: str) -> list[str]:
    """The command lines of every process in the session of the MLflow process whose command
    line holds ``marker``."""
    procs = _processes()
    leader = next(sid for sid, cmd in procs.values() if marker in cmd and "mlflow" in cmd)
    return [cmd for sid, cmd in procs.values() if sid == leader]


def test_every_run_says_what_it_is_in_mlflows_own_fields(tmp_path, results):
    path = small_grid(tmp_path, methods=["ce", "lsr"], tune={"trials": 1, "seed": 0})
    assert cli.main(["grid", path, "--results", str(results), "--no-report", "--quiet",
                     "--workers", "1"]) == 0
    assert cli.main(["tune", path, "--results", str(results), "--method", "lsr"]) == 0
    t = tracking.Tracker(results=results)
    kinds = {}
    for run in t.runs():
        tags = run.data.tags
        kinds.setdefault(tags["kind"], []).append(run)
        assert tags["mlflow.user"] and tags["mlflow.source.name"] == "drkd-bench"
        for value in run.data.params.values():
            assert value not in ("None", "()", "[]"), run.data.params
        for value in run.data.metrics.values():
            assert len(f"{value:.15g}".lstrip("-0.").replace(".", "")) <= 6 or value == int(value)
    assert set(kinds) == {"train", "study", "trial"}
    for run in kinds["train"]:
        assert run.data.tags["grid"] == "glance"
        assert "on digits with mlp" in run.data.tags["mlflow.note.content"]
        inputs = MlflowClient(t.uri).get_run(run.info.run_id).inputs.dataset_inputs
        assert inputs and len(inputs[0].dataset.digest) == 16
        assert inputs[0].dataset.name == "digits"
        assert run.data.params["train.milestones"] == "none"
    digests = {MlflowClient(t.uri).get_run(r.info.run_id).inputs.dataset_inputs[0].dataset.digest
               for r in kinds["train"]}
    assert len(digests) == 1  # the same data, the same digest


def test_studies_name_their_metric_and_say_what_they_are(tmp_path, results):
    path = small_grid(tmp_path, methods=["lsr"], tune={"trials": 2, "seed": 0})
    rdb = f"sqlite:///{tmp_path / 'studies.db'}"
    for storage in (None, rdb):
        assert cli.main(["tune", path, "--results", str(results)]
                        + (["--storage", storage] if storage else [])) == 0
    journal = optuna.load_study(study_name="digits/mlp/lsr",
                                storage=tune.open_storage(None, results))
    relational = optuna.load_study(study_name="digits/mlp/lsr", storage=tune.open_storage(rdb))
    for study in (journal, relational):
        assert study.metric_names == ["val_top1"]
        attrs = study.user_attrs
        assert attrs["dataset"] == "digits" and attrs["arch"] == "mlp"
        assert attrs["variant"] == "lsr" and set(attrs["search_space"]) == {"smoothing"}
    assert all("heartbeat" in t.user_attrs for t in journal.trials)  # the journal needs it
    assert not any("heartbeat" in t.user_attrs for t in relational.trials)  # Optuna's own


def test_grid_prints_one_line_per_cell_and_epochs_only_when_verbose(tmp_path, capsys):
    path = small_grid(tmp_path, seeds=[0], methods=["ce"])
    assert cli.main(["grid", path, "--results", str(tmp_path / "a"), "--no-report",
                     "--workers", "1"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert re.search(r"digits/mlp/ce/seed0: val \d+\.\d\d%, test \d+\.\d\d% \(\d+\.\ds\)", text)
    assert " ep " not in text
    assert cli.main(["grid", path, "--results", str(tmp_path / "b"), "--no-report",
                     "--workers", "1", "--verbose"]) == 0
    out = capsys.readouterr()
    assert (out.out + out.err).count(" ep ") == 2


def test_grid_report_is_one_run_that_every_cell_run_links_to(tmp_path, results):
    path = small_grid(tmp_path, seeds=[0, 1], methods=["ce", "lsr"])
    assert cli.main(["grid", path, "--results", str(results), "--quiet", "--workers", "1"]) == 0
    t = tracking.Tracker(results=results)
    reports = t.runs("tags.kind = 'report'")
    assert len(reports) == 1 and reports[0].data.tags["grid"] == "glance"
    rid = reports[0].info.run_id
    names = {a.path for a in MlflowClient(t.uri).list_artifacts(rid)}
    assert {"report.html", "tables", "figures"} <= names and "README.md" not in names
    figures = {a.path for a in MlflowClient(t.uri).list_artifacts(rid, "figures")}
    assert "figures/forest_digits_mlp.png" in figures
    cells = t.runs("tags.kind = 'train'")
    assert len(cells) == 4
    for run in cells:
        note = run.data.tags["mlflow.note.content"]
        assert run.data.tags["report_run"] == rid
        assert f"/runs/{rid}/artifacts/report.html?workflowType=machine_learning)" in note
        assert "viewStateShareKey=" + ui.VIEW_KEY in note
        assert note.startswith("ce (ce") or note.startswith("lsr (lsr")
    # a second report replaces the links instead of piling them up
    assert cli.main(["grid", path, "--results", str(results), "--quiet", "--workers", "1"]) == 0
    note = t.runs("tags.kind = 'train'")[0].data.tags["mlflow.note.content"]
    assert note.count("[The grid's report") == 1
    assert len(t.runs("tags.kind = 'report'")) == 1  # the older report is superseded
    # the way in from the experiment's page: its description links to the current report
    [current] = t.runs("tags.kind = 'report'")
    description = MlflowClient(t.uri).get_experiment(t.experiment_id).tags["mlflow.note.content"]
    assert "\n" not in description  # one line: MLflow folds away all but the first
    assert (f": [glance](#/experiments/{t.experiment_id}/runs/{current.info.run_id}/artifacts/"
            "report.html?workflowType=machine_learning)") in description
    assert rid not in description  # not the superseded one


def test_a_finished_grid_cell_is_tagged_kind_train(results):
    t = tracking.Tracker(results=results)
    s = config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 1})
    runner.run_cell(s, t)
    assert t.finished(s.hash).data.tags["kind"] == "train"


class _Exited:  # a server that stops at once: serve() returns after its first lines
    pid = 0

    def poll(self):
        return 0


@pytest.fixture
def exited_servers(monkeypatch):
    """``ui.serve``'s servers replaced by ones that stop at once, so it returns after its first
    lines."""
    monkeypatch.setattr(ui, "_start", lambda argv, env=None: _Exited())
    monkeypatch.setattr(ui, "_stop", lambda proc: None)
    monkeypatch.setattr(ui, "wait_until_up", lambda url, proc: None)


def test_ui_says_why_the_dashboard_is_not_started(tmp_path, monkeypatch, results,
                                                  exited_servers):
    monkeypatch.setattr(ui, "install_view", lambda tracker, grid=None: ui.VIEW_KEY)
    tracker = tracking.Tracker(location.default_uri(results), results=results)
    lines: list[str] = []
    urls: list[str] = []
    ui.serve(tracker, str(results / "optuna.journal"), port=5999, say=urls.append,
             note=lines.append)
    assert lines[0].startswith("starting the MLflow UI")
    assert len(urls) == 1 and urls[0].startswith("MLflow UI (results by dataset, arch, variant): "
                                                 "http://127.0.0.1:5999/drkd-bench/open#")
    assert any(line.startswith("optuna-dashboard not started: no Optuna studies at "
                               + str(results / "optuna.journal")) for line in lines), lines


def test_a_grids_results_view_holds_its_own_runs_only_and_shows_the_grid(results):
    """Two grids on one store: the 'add your method' example's 3 runs at 10 epochs pooled with
    the quick grid's 3 at 20 under one label. Each grid's view selects its own runs; the view of
    every grid shows the grid as a column; ui opens the newest grid's."""
    t = tracking.Tracker(location.default_uri(results), results=results)
    for grid in ("quick", "example"):
        for seed in range(3):
            rid = t.new_run(f"digits/cnn8/ce/seed{seed}", {"kind": "train", "grid": grid,
                                                           "seed": str(seed)})
            t.set_status(rid, "FINISHED")
    assert ui.newest_grid(t) == "example"
    key = ui.install_view(t, "quick")
    assert key == ui.grid_view_key("quick") != ui.VIEW_KEY
    stored = json.loads(t.client.get_experiment(t.experiment_id).tags[
        "mlflow.sharedViewState." + key])
    found = t.client.search_runs([t.experiment_id], stored["searchFilter"])
    assert len(found) == 3 and {r.data.tags["grid"] for r in found} == {"quick"}
    assert "tags.`grid`" in stored["selectedColumns"]
    assert "tags.`grid`" in ui.results_view()["selectedColumns"]
    assert ui.grid_view_key("my grid/v2") == ui.VIEW_KEY + "-my_grid_v2"


def test_a_finished_run_shows_its_results_in_per_cent_test_top1_first(results, tmp_path):
    """MLflow prints a metric as stored: the runs table showed fractions with float noise
    ("0.9822223...") where the CLI and report speak per cent. A finished run also logs its final
    fractions in per cent with one decimal, and the results view shows those, test top-1 first."""
    t = tracking.Tracker(location.default_uri(results), results=results)
    rid = t.new_run("digits/cnn8/ce/seed0", {"kind": "train", "grid": "quick", "seed": "0"})
    history = [{"epoch": 1, "test_top1": 0.5, "val_top1": 0.5, "test_ece": 0.2, "val_ece": 0.2},
               {"epoch": 2, "test_top1": 0.98222223, "val_top1": 0.9764705, "test_ece": 0.01249,
                "val_ece": 0.0351, "test_nll": 0.07}]
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    t.finish(rid, {"key": "k"}, history, model, logged=0)
    metrics = t.client.get_run(rid).data.metrics
    assert metrics["acc_test_pct"] == 98.2 and metrics["acc_val_pct"] == 97.6
    assert metrics["ece_test_pct"] == 1.2 and metrics["ece_val_pct"] == 3.5
    assert metrics["test_top1"] == pytest.approx(0.98222223)  # the fraction stays the record
    columns = ui.results_view("quick")["selectedColumns"]
    metrics = [c for c in columns if c.startswith("metrics.")]
    # MLflow sorts the metric columns by name: test top-1 in per cent must sort first
    assert sorted(metrics)[0] == metrics[0] == "metrics.`acc_test_pct`"
    assert "metrics.`test_top1`" not in columns


def test_the_view_shows_per_cent_for_runs_older_than_the_per_cent_metrics(results,
                                                                          exited_servers):
    """A store whose runs finished before the per-cent metrics existed: ``ui`` logs them from
    each finished run's final fractions, once (a grid's own runs log them as they finish, so
    a grid's end does not scan the store)."""
    t = tracking.Tracker(location.default_uri(results), results=results)
    rid = t.new_run("digits/mlp/ce/seed0", {"kind": "train", "grid": "old", "seed": "0"},
                    {"train.epochs": 30})
    t.log_epochs(rid, [{"epoch": 30, "test_top1": 0.9733, "val_top1": 0.95, "test_ece": 0.02,
                        "val_ece": 0.03}])
    t.set_status(rid, "FINISHED")
    unfinished = t.new_run("digits/mlp/ce/seed1", {"kind": "train", "grid": "old", "seed": "1"})
    t.log_epochs(unfinished, [{"epoch": 3, "test_top1": 0.5}])
    ui.install_view(t, "old")  # what a grid's end does: no scan
    assert "acc_test_pct" not in t.client.get_run(rid).data.metrics
    ui.serve(t, None, port=5998, say=lambda line: None, note=lambda line: None)
    metrics = t.client.get_run(rid).data.metrics
    assert metrics["acc_test_pct"] == 97.3 and metrics["ece_val_pct"] == 3.0
    assert "acc_test_pct" not in t.client.get_run(unfinished).data.metrics
    assert t.backfill_percent() == 0  # once
