"""Faults without loss or confusion: two grids on one store, cell claims and their takeover,
killed tuning trials, stores that are not MLflow stores, a UI port already taken, variants that
collapse into one."""
import os
import socket
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
import yaml

from benchmark import cli, config
from benchmark.jobs import tune
from benchmark.store import location
from benchmark.store.claims import Claims

TWO = {"name": "two", "seeds": [0, 1], "datasets": {"digits": {"train_subset": 300}},
       "architectures": ["mlp"], "train": {"epochs": 3, "batch_size": 64},
       "methods": ["ce", "lsr", {"method": "drkd", "teacher": "pretrained"}]}


def _grid(path, results, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "grid", str(path), "--results", str(results),
         "--workers", "1", "--quiet", "--no-report", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_writer_killed_inside_a_transaction_leaves_a_store_that_still_opens(
        tmp_path, kill_writer_mid_transaction):
    from benchmark.store import location, tracking

    t = tracking.Tracker(results=tmp_path / "r")
    run_id, _ = t.start("h" * 16, "cell", {"kind": "train", "note": "before"}, {"a": 1})
    db = tmp_path / "r" / "mlflow.db"
    journal = kill_writer_mid_transaction(db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # the symptom, read-only
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as ro:
            ro.execute("select count(*) from tags").fetchall()
    location.check_sqlite_store(db)  # no error: the journal is rolled back
    assert not journal.exists()
    again = tracking.Tracker(results=tmp_path / "r")  # and the store is whole, as committed
    assert again.client.get_run(run_id).data.tags["note"] == "before"
    kill_writer_mid_transaction(db)
    assert cli.main(["export", "--results", str(tmp_path / "r"), "--out",
                     str(tmp_path / "runs.csv")]) == 0


@pytest.mark.parametrize("initialised", [False, True], ids=["fresh store", "initialised store"])
@pytest.mark.slow
def test_two_grids_started_together_share_the_cells(tmp_path, initialised):
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(TWO))
    results = tmp_path / "r"
    if initialised:  # the schema exists before both start
        subprocess.run([sys.executable, "-c", "from benchmark.store.tracking import Tracker; "
                        f"Tracker(None, results={str(results)!r})"], check=True, timeout=300)
    procs = [_grid(path, results) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    db = sqlite3.connect(results / "mlflow.db")
    per_cell = db.execute("select t.value, r.status from runs r join tags t on r.run_uuid = "
                          "t.run_uuid and t.key = 'cell_hash'").fetchall()
    assert len(per_cell) == 6 and {s for _, s in per_cell} == {"FINISHED"}
    assert len({h for h, _ in per_cell}) == 6  # every cell once
    twice = db.execute("select run_uuid, step from metrics where key = 'val_top1' group by "
                       "run_uuid, step having count(*) > 1").fetchall()
    assert twice == []
    trained = sum(int(out.split(" trained")[0].split()[-1]) for out, _ in outs)
    assert trained == 6  # between them, each cell trained once
    assert not any((results / "mlflow.db.claims").iterdir())  # every claim released


@pytest.mark.slow
def test_two_grids_in_two_results_folders_on_one_store_never_train_a_cell_twice(tmp_path):
    """The claims lived in each results folder: two grids started together with --results r1
    and --results r2 on one --tracking-uri finished 8, then 11 training runs for 6 cells. The
    claims now live beside the store they protect."""
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(TWO))
    store = tmp_path / "shared" / "mlflow.db"
    store.parent.mkdir()
    subprocess.run([sys.executable, "-c", "from benchmark.store.tracking import Tracker; "
                    f"Tracker('sqlite:///{store}', results={str(tmp_path / 'shared')!r})"],
                   check=True, timeout=300)
    procs = [_grid(path, tmp_path / f"r{i}", "--tracking-uri", f"sqlite:///{store}")
             for i in (1, 2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    db = sqlite3.connect(store)
    per_cell = db.execute("select t.value from runs r join tags t on r.run_uuid = t.run_uuid "
                          "and t.key = 'cell_hash' where r.status = 'FINISHED'").fetchall()
    assert len(per_cell) == 6 and len(set(per_cell)) == 6  # n never exceeds the seeds
    assert sum(int(out.split(" trained")[0].split()[-1]) for out, _ in outs) == 6
    assert not (tmp_path / "r1" / "claims").exists() and not (tmp_path / "r2" / "claims").exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_run_the_store_could_not_fail_is_marked_failed_at_the_next_start(tmp_path,
                                                                           monkeypatch):
    # a full disk: the cell's checkpoint cannot be written and neither can its FAILED status
    # (the store is on the same disk), so the run was left RUNNING; the next grid marks it
    # FAILED with the reason before it resumes anything, and leaves a live holder's run alone
    import errno

    from benchmark.jobs import grid, train
    from benchmark.store import tracking
    from benchmark.store.tracking import Tracker

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(train, "save_atomic", full)
    monkeypatch.setattr(Tracker, "fail", lambda self, run_id, reason: (_ for _ in ()).throw(
        sqlite3.OperationalError("database or disk is full")))
    raw = {**TWO, "seeds": [0], "methods": ["ce", "lsr"]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    results = tmp_path / "r"
    assert cli.main(["grid", str(path), "--results", str(results), "--workers", "1",
                     "--no-report", "--quiet"]) == 1
    monkeypatch.undo()
    t = tracking.Tracker(results=results)
    [stuck] = t.runs()
    assert stuck.info.status == "RUNNING"  # what the user saw in the UI
    cells = grid.expand(config.load_grid(str(path)))
    live = next(c for c in cells if c.hash != stuck.data.tags["cell_hash"])
    other_id, _ = t.start(live.hash, live.key, {**live.tags(), "kind": "train"}, {})
    folder = location.claims_folder(t.uri, results)
    folder.mkdir(exist_ok=True)
    (folder / live.hash).write_text(f"{socket.gethostname()} 1\n")  # pid 1: alive
    reaped = grid.reap_interrupted(t, cells, Claims(folder))
    assert reaped == [stuck.info.run_id]
    run = t.client.get_run(stuck.info.run_id)
    assert run.info.status == "FAILED" and run.data.tags["failure_reason"] == grid.INTERRUPTED
    assert t.client.get_run(other_id).info.status == "RUNNING"


def test_claims_are_respected_while_alive_and_taken_over_when_stale(tmp_path):
    mine, theirs = Claims(tmp_path, grace=60), Claims(tmp_path, grace=60)
    theirs.me = f"{socket.gethostname()} {os.getppid()}"  # a live process of this host
    assert theirs.acquire("cell") and not mine.acquire("cell")
    assert mine.claimed_elsewhere("cell")
    os.utime(tmp_path / "cell", (time.time() - 120, time.time() - 120))  # silent for 2 min
    assert mine.acquire("cell") and not mine.claimed_elsewhere("cell")
    mine.release("cell")
    (tmp_path / "gone").write_text(f"{socket.gethostname()} {_dead_pid()}\n")  # its holder died
    assert mine.acquire("gone")
    mine.close()
    theirs.close()
    assert not (tmp_path / "gone").exists()


def test_a_killed_trial_and_its_run_are_marked_failed_when_the_study_is_next_opened(tmp_path):
    from benchmark.store.tracking import Tracker

    tracker = Tracker(None, results=tmp_path / "r")
    run_id = tracker.new_run("trial", {"kind": "trial"})
    study = optuna.create_study(study_name="s", direction="maximize",
                                storage=tune.open_storage(None, tmp_path / "r"))
    trial = study.ask()
    trial.suggest_float("alpha", 0, 1)
    trial.set_user_attr("mlflow_run_id", run_id)
    trial.set_user_attr("heartbeat", time.time())  # fresh: only the dead process tells
    trial.set_user_attr("process", f"{socket.gethostname()} {_dead_pid()}")
    assert tune.fail_stale_journal_trials(study, tracker=tracker) == 1
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == "its process died"


@pytest.mark.parametrize("content,message", [
    (b"", "empty file (0 bytes), not an MLflow store"),
    (b"hello, not a database", "not a SQLite file"),
    (None, "a SQLite database of something else (tables: songs)"),
])
def test_a_store_file_that_is_not_mlflow_is_refused_and_left_alone(tmp_path, content, message,
                                                                   capsys):
    store = tmp_path / "store.db"
    if content is None:
        with sqlite3.connect(store) as db:
            db.execute("create table songs (name text)")
    else:
        store.write_bytes(content)
    before = store.read_bytes()
    assert cli.main(["export", "--tracking-uri", f"sqlite:///{store}", "--results",
                     str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert store.read_bytes() == before


def test_ui_refuses_a_port_that_is_taken(tmp_path, capsys):
    from benchmark.store.tracking import Tracker

    Tracker(None, results=tmp_path / "r")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["ui", "--results", str(tmp_path / "r"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port} is already in use" in err and "serving" not in err


def test_variants_that_collapse_into_one_are_refused(tmp_path):
    raw = {**TWO, "methods": ["ce", {"method": "lsr"}, {"method": "lsr", "smoothing": 0.1,
                                                        "label": "lsr-again"}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match="'lsr-again' and 'lsr' are the same variant"):
        config.load_grid(str(path))


def test_a_full_disk_is_one_line_per_cell_the_run_failed_and_the_grid_stops(tmp_path, capsys,
                                                                           monkeypatch):
    import errno

    from benchmark.jobs import train

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(train, "save_atomic", full)
    raw = {**TWO, "methods": ["ce", "lsr"]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    results = tmp_path / "r"
    assert cli.main(["grid", str(path), "--results", str(results), "--workers", "1",
                     "--no-report"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "FAILED digits/mlp/ce/seed0: no space left on device (" in err + out
    assert "stopping: no space left on device" in err + out
    assert "1 failed" not in out and "4 failed" in out  # one tried, three never started
    db = sqlite3.connect(results / "mlflow.db")
    rows = db.execute("select r.status, t.value from runs r join tags t on r.run_uuid = "
                      "t.run_uuid and t.key = 'failure_reason'").fetchall()
    assert len(rows) == 1 and rows[0][0] == "FAILED"
    assert rows[0][1].startswith("no space left on device (")


def test_a_report_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from analysis import report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r" / "tables"))

    monkeypatch.setattr(report, "build", full)
    csv = tmp_path / "runs.csv"
    import shutil
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parents[1] / "results" / "published" / "runs.csv", csv)
    assert cli.main(["report", "--from", str(csv), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("drkd-bench: report not written: no space left on device "
                           f"({tmp_path / 'r' / 'tables'})")


@pytest.mark.slow
def test_a_label_whose_settings_changed_never_pools_old_and_new_runs(tmp_path, capsys):
    import pandas as pd

    results = tmp_path / "r"
    for smoothing in (0.1, 0.3):  # the same label, a changed value: two cells per seed
        raw = {**TWO, "seeds": [0], "train": {"epochs": 2, "batch_size": 64},
               "methods": ["ce", {"method": "lsr", "smoothing": smoothing}]}
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(raw))
        assert cli.main(["grid", str(path), "--results", str(results), "--workers", "1",
                         "--quiet"]) == 0
    table = pd.read_csv(results / "two" / "tables" / "main_digits.csv").set_index("variant")
    assert table.loc["lsr", "n"] == 1  # the grid's report: its own lsr cell, not both
    capsys.readouterr()
    assert cli.main(["report", "--results", str(results), "--out", str(tmp_path / "all")]) == 0
    err = capsys.readouterr().err
    assert "1 cells have finished runs with different settings under one label (e.g. " \
           "digits/mlp/lsr/seed0: 2 cell hashes)" in err
