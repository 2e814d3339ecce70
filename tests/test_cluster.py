"""Several machines, tried on one: a Ray cluster of 2 workers, an Optuna study shared by two
workers through a real PostgreSQL server, and an MLflow tracking server backed by PostgreSQL."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml

from benchmark import cli
from benchmark.jobs import tune
from benchmark.store import tracking

GRID = {"name": "cluster", "seeds": [0], "datasets": {"digits": None}, "architectures": ["mlp"],
        "train": {"epochs": 2}, "methods": ["ce", "tfkd-self"],
        "tune": {"trials": 4, "epochs": 3}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on a loopback port (Debian's postgresql package)."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    bindir = bins[-1].parent
    root = Path(tempfile.mkdtemp(prefix="drkd-pg-"))
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    run = lambda *cmd: subprocess.run(as_user + list(cmd), check=True, capture_output=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(root / "db"), "-A", "trust", "-U", "postgres")
    run(str(bindir / "pg_ctl"), "-D", str(root / "db"), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -h 127.0.0.1 -k {root}", "start")
    try:
        for db in ("optuna", "mlflow"):
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                db)
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(root / "db"), "-m", "fast",
                                  "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _grid(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(GRID))
    return str(path)


def _metrics(results):
    t = tracking.Tracker(results=results)
    return {r.info.run_name: (r.data.metrics["test_top1"], r.data.metrics["train_loss"])
            for r in t.runs() if r.info.status == "FINISHED"}


@pytest.mark.slow
def test_ray_grid_matches_local_and_fetches_the_teacher_through_artifacts(tmp_path):
    pytest.importorskip("ray")
    path = _grid(tmp_path)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert cli.main(["grid", path, "--results", str(local), "--workers", "2", "--quiet",
                     "--no-report"]) == 0
    code = cli.main(["grid", path, "--results", str(on_ray), "--workers", "2", "--quiet",
                     "--no-report", "--executor", "ray"])
    import ray

    ray.shutdown()
    assert code == 0
    assert _metrics(on_ray) == _metrics(local) and len(_metrics(local)) == 2
    t = tracking.Tracker(results=on_ray)
    runs = {r.info.run_name: r for r in t.runs()}
    ce, kd = runs["digits/mlp/ce/seed0"], runs["digits/mlp/tfkd-self/seed0"]
    assert kd.data.tags["teacher_run_id"] == ce.info.run_id
    # the CE cell kept no local copy: the KD task could only get the teacher from MLflow
    assert not (on_ray / "checkpoints" / ce.data.tags["cell_hash"]).exists()


@pytest.mark.slow
def test_two_tuning_workers_share_a_postgres_study(tmp_path, postgres):
    url = f"{postgres}/optuna"
    results = tmp_path / "results"
    assert cli.main(["tune", _grid(tmp_path), "--results", str(results), "--storage", url,
                     "--workers", "2", "--trials", "4"]) == 0
    study = optuna.load_study(study_name="digits/mlp/tfkd-self", storage=tune.open_storage(url))
    assert len(study.trials) == 4
    assert {t.state for t in study.trials} <= {optuna.trial.TrialState.COMPLETE,
                                               optuna.trial.TrialState.PRUNED}


@pytest.mark.slow
def test_mlflow_server_backed_by_postgres_serves_runs_and_teachers(tmp_path, postgres):
    port = free_port()
    artifacts = tmp_path / "artifacts"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"{postgres}/mlflow",
         "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1", "--port",
         str(port), "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no GenAI job runner
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600  # a bound on a hang, not a speed target
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")
        argv = ["train", "--dataset", "digits", "--arch", "mlp", "--method", "drkd",
                "--epochs", "2", "--tracking-uri", uri, "--results", str(tmp_path / "r")]
        assert cli.main(argv) == 0
        t = tracking.Tracker(uri, results=tmp_path / "r2")
        runs = {r.info.run_name: r for r in t.runs()}
        assert runs["digits/mlp/drkd/seed0"].data.tags["teacher_run_id"] == \
            runs["digits/mlp/ce/seed0"].info.run_id
        assert all(r.info.status == "FINISHED" for r in runs.values())
        assert any(artifacts.rglob("model.pt"))  # weights went through the server
    finally:
        server.terminate()
        server.wait(timeout=120)


def _raylets() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "raylet/raylet"], capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


def _finished(db: Path) -> int:
    import sqlite3

    if not db.is_file():
        return 0
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute("select count(*) from runs where status = 'FINISHED'").fetchone()[0]
        except sqlite3.OperationalError:  # the store's tables are not made yet
            return 0


@pytest.mark.slow
def test_a_grid_on_two_ray_nodes_finishes_every_cell_once_when_the_second_raylet_dies(tmp_path):
    """docs/usage.md's recipe on one machine: a head and a second node on 127.0.0.1, both with
    RAY_AUTH_MODE=token (the Ray that installs today refuses a node without it when a token
    exists), a grid on them; the second node's raylet is killed mid-grid. Ray retries the cells
    it held on the head; each cell finishes exactly once and no run stays RUNNING."""
    pytest.importorskip("ray")
    ray_cli = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # socket paths must stay short
    port = free_port()
    loopback = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    grid = {"name": "two-nodes", "seeds": [0, 1, 2], "datasets": {"digits": None},
            "architectures": ["mlp"], "train": {"epochs": 20}, "methods": ["ce", "lsr"]}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    results = tmp_path / "results"

    try:
        before = _raylets()
        subprocess.run([ray_cli, "start", "--head", "--port", str(port), "--temp-dir", str(temp),
                        "--include-dashboard", "false", *loopback], env=env, check=True,
                       capture_output=True, timeout=600)
        head = _raylets() - before
        subprocess.run([ray_cli, "start", "--address", f"127.0.0.1:{port}", *loopback], env=env,
                       check=True, capture_output=True, timeout=600)
        second = _raylets() - before - head
        assert len(head) == 1 and len(second) == 1
        job = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "grid", str(path),
                                "--results", str(results), "--executor", "ray", "--ray-address",
                                f"127.0.0.1:{port}", "--workers", "2", "--quiet", "--no-report"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        deadline = time.time() + 900  # a bound on a hang, not a speed target
        while _finished(results / "mlflow.db") < 1 and job.poll() is None \
                and time.time() < deadline:
            time.sleep(0.2)
        assert job.poll() is None, "the grid ended before the node could be killed"
        os.kill(second.pop(), 9)  # the second node's raylet, mid-grid
        output, _ = job.communicate(timeout=900)
        print(output)
        assert job.returncode == 0, output
    finally:
        subprocess.run(["pkill", "-9", "-f", str(temp)], capture_output=True)  # this test's Ray
        shutil.rmtree(temp, ignore_errors=True)
    t = tracking.Tracker(results=results)
    runs = [r for r in t.runs() if r.data.tags.get("kind", "train") == "train"]
    finished = [r.data.tags["cell_key"] for r in runs if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted(set(finished)) and len(finished) == 6
    assert not [r for r in runs if r.info.status == "RUNNING"]
