"""Optuna studies on digits: pruning, continuation, two workers on one SQLite study, stale trials,
MLflow parent/child runs, tuned values flowing into grids, and no test split during tuning."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from benchmark import cli, config
from benchmark.jobs import grid, train, tune
from benchmark.store import location

CFG = {
    "name": "tune-tiny",
    "seeds": [0],
    "datasets": {"digits": None},
    "architectures": ["mlp"],
    "train": {"epochs": 4, "batch_size": 64},
    "methods": [{"method": "drkd", "teacher": "online"}],
    "tune": {"trials": 8, "seed": 0, "space": {"temperature": [1.0, 20.0]}},
}


@pytest.fixture
def cfg_path(tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(CFG))
    return str(path)


def load(results, name="digits/mlp/drkd-online", storage=None):
    return optuna.load_study(study_name=name, storage=tune.open_storage(storage, results))


def test_study_prunes_continues_and_never_reads_the_test_split(cfg_path, results, monkeypatch,
                                                                capsys):
    prefixes = []
    real_metrics, real_train = train.classification_metrics, train.train

    def spy_metrics(logits, targets, prefix):
        prefixes.append(prefix)
        return real_metrics(logits, targets, prefix)

    def spy_train(spec, data, *a, **k):
        assert data.test_x is None and data.test_y is None
        return real_train(spec, data, *a, **k)

    monkeypatch.setattr(train, "classification_metrics", spy_metrics)
    monkeypatch.setattr(train, "train", spy_train)
    assert cli.main(["tune", cfg_path, "--results", str(results), "--pruning"]) == 0
    assert "test" not in prefixes and "val" in prefixes
    study = load(results)
    states = [t.state for t in study.trials]
    assert len(states) == 8
    assert optuna.trial.TrialState.PRUNED in states
    assert optuna.trial.TrialState.COMPLETE in states
    for t in study.trials:
        assert 1.0 <= t.params["temperature"] <= 20.0 and 0.05 <= t.params["alpha"] <= 0.99
    out = capsys.readouterr().out
    assert "digits/mlp/drkd-online: 8 trials" in out and "s/trial" in out
    # a line per finished trial: state, value, running best
    assert len(re.findall(r"drkd-online trial \d+: (complete|pruned), ", out)) == 8
    assert re.search(r"trial \d+: pruned, last val_top1 \d+\.\d\d% at epoch \d+; best val_top1 "
                     r"\d+\.\d\d% \(trial \d+\)", out)

    assert cli.main(["tune", cfg_path, "--results", str(results), "--trials", "3",
                     "--pruning"]) == 0
    assert len(load(results).trials) == 11  # the same study goes on
    assert cli.main(["tune", cfg_path, "--results", str(results), "--show"]) == 0
    assert "11 trials" in capsys.readouterr().out

    client = MlflowClient(location.default_uri(results))
    exp = client.get_experiment_by_name(location.EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kind") == "study"]
    children = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert len(parents) == 1 and len(children) == 11
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert {c.data.tags["state"] for c in children} == {"COMPLETE", "PRUNED"}
    status = {c.data.tags["state"]: c.info.status for c in children}
    # pruned is neither failed nor finished: MLflow draws KILLED (stopped on purpose) apart
    assert status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}
    best = load(results).best_trial
    from benchmark.jobs.tune import choice

    assert load(results).user_attrs["objective"] == choice.RULE  # the rule best_trial applies
    # the study's run says which trial the grid uses, and where every trial is
    parent = MlflowClient(location.default_uri(results)).get_run(parents[0].info.run_id)
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("Optuna study digits/mlp/") and "drkd-bench ui" in note
    assert f"The grid uses trial {best.number}, the best complete trial." in note
    assert parent.data.tags["chosen_trial"] == str(best.number)
    # ... as links: the study and its chosen trial in optuna-dashboard, as drkd-bench ui serves
    study = load(results)
    page = f"http://127.0.0.1:8080/dashboard/studies/{study._study_id}"
    assert f"[{page}]({page})" in note
    assert f"[trial {best.number}]({page}/trials?numbers={best.number})" in note
    # and each trial's note in optuna-dashboard (Markdown) links to its MLflow run
    from optuna_dashboard._note import get_note_from_system_attrs

    attrs = study._storage.get_study_system_attrs(study._study_id)
    for t in study.trials:
        run_id = t.user_attrs["mlflow_run_id"]
        body = get_note_from_system_attrs(attrs, t._trial_id)["body"]
        assert (f"[{run_id}](http://127.0.0.1:5000/drkd-bench/open#/experiments/"
                f"{exp.experiment_id}/runs/{run_id}?workflowType=machine_learning)") in body
    assert parents[0].data.metrics["best_val_top1"] == pytest.approx(best.value)
    assert parents[0].data.metrics["best_temperature"] == pytest.approx(  # 6 digits stored
        best.params["temperature"], rel=1e-5)


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(cfg_path, results, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert cli.main(["tune", cfg_path, "--results", str(results), "--storage", url,
                     "--workers", "2", "--trials", "6"]) == 0
    study = load(results, storage=url)
    assert len(study.trials) == 6
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
               for t in study.trials)


def test_tuned_values_flow_into_a_grid_and_missing_study_is_one_error(cfg_path, results,
                                                                      tmp_path, capsys):
    gcfg = {**CFG, "methods": [{"method": "drkd", "teacher": "online",
                                "hyperparameters": "tuned"}]}
    gpath = tmp_path / "grid.yaml"
    gpath.write_text(yaml.safe_dump(gcfg))
    code = cli.main(["grid", str(gpath), "--results", str(results), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "digits/mlp/drkd-online" in err and "drkd-bench tune" in err
    assert cli.main(["tune", cfg_path, "--results", str(results), "--trials", "4"]) == 0
    best = load(results).best_trial.params
    cells = grid.expand(config.load_grid(str(gpath)), tune.default_storage(results))
    assert cells[0].label == "drkd-online-tuned"
    assert cells[0].hyperparameters["temperature"] == pytest.approx(best["temperature"])
    assert cells[0].hyperparameters["alpha"] == pytest.approx(best["alpha"])


def test_stale_running_journal_trial_is_failed_and_requeued(results):
    storage = tune.open_storage(None, results)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask()
    trial.suggest_float("alpha", 0, 1)
    trial.set_user_attr("heartbeat", 0.0)  # a worker that died long ago
    assert tune.fail_stale_journal_trials(study, grace=60) == 1
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].params == study.trials[0].params or \
        study.trials[1].system_attrs.get("fixed_params") == study.trials[0].params


def test_without_a_tune_block_a_study_does_not_prune(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in CFG.items() if k != "tune"}))
    assert tune.protocol({})["pruning"] is False
    assert [s.pruning for s in tune.studies(config.load_grid(str(path)))] == [False]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_show_calls_a_trial_whose_process_died_dead_and_tune_says_it_requeued_it(
        cfg_path, results, capsys):
    import socket

    assert cli.main(["tune", cfg_path, "--results", str(results), "--trials", "1"]) == 0
    study = load(results)
    trial = study.ask()  # a trial whose worker was killed: RUNNING, its process gone
    trial.suggest_float("alpha", 0.05, 0.99)
    trial.set_user_attr("process", f"{socket.gethostname()} {_dead_pid()}")
    trial.set_user_attr("heartbeat", time.time())
    capsys.readouterr()
    assert cli.main(["tune", cfg_path, "--results", str(results), "--show"]) == 0
    out = capsys.readouterr().out
    assert "dead 1 (process gone" in out and "running" not in out
    assert cli.main(["tune", cfg_path, "--results", str(results), "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 trial(s) whose process died marked failed" in out
    assert "fail 1 (1 re-queued: its process died)" in out
    assert re.search(r"; 1 new in \d+\.\ds", out)  # the re-queued trial ran, and counts


def test_ce_only_config_has_nothing_to_tune(tmp_path, capsys):
    path = tmp_path / "ce.yaml"
    path.write_text(yaml.safe_dump({**CFG, "methods": ["ce"], "tune": {"trials": 2}}))
    assert cli.main(["tune", str(path), "--results", str(tmp_path / "r")]) == 2
    assert "nothing to tune" in capsys.readouterr().err


def test_worker_shares_sum_to_the_requested_trials():
    assert tune.shares(6, 2) == [3, 3]
    assert tune.shares(7, 3) == [3, 2, 2]
    assert tune.shares(1, 2) == [1, 0]


def test_a_tuned_variant_and_its_reference_twin_are_one_study(tmp_path):
    both = {**CFG, "methods": [{"method": "drkd", "teacher": "online"},
                               {"method": "drkd", "teacher": "online",
                                "hyperparameters": "tuned"}, "ce"]}
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump(both))
    assert [s.name for s in tune.studies(config.load_grid(str(path)))] == [
        "digits/mlp/drkd-online"]


def test_up_to_tops_a_study_up_to_its_budget_and_never_past_it(cfg_path, results, capsys):
    base = ["tune", cfg_path, "--results", str(results), "--up-to"]
    assert cli.main([*base, "--trials", "3"]) == 0
    assert len(load(results).trials) == 3
    # an interrupted worker left a RUNNING trial: it is not part of the spent budget
    load(results).ask()
    assert cli.main([*base, "--trials", "5"]) == 0
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert len(load(results).get_trials(states=done)) == 5
    capsys.readouterr()
    assert cli.main([*base, "--trials", "5"]) == 0
    assert len(load(results).get_trials(states=done)) == 5
    assert "budget already spent" in capsys.readouterr().out


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.slow
def test_killed_tune_leaves_no_orphan_worker(cfg_path, tmp_path):
    """Killing `tune --workers 2` used to leave both workers training (and then failing on a
    deleted journal): they now die with it."""
    cmd = [sys.executable, "-m", "benchmark.cli", "tune", cfg_path, "--results",
           str(tmp_path / "r"), "--workers", "2", "--trials", "50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers, server = time.time() + 600, [], []  # bounds a hang only
    while time.time() < deadline and len(workers) < 2:
        # the workers: forked by the fork server (not multiprocessing's resource tracker)
        server = [c for c in _children(proc.pid) if _cmdline(c).find(b"forkserver") >= 0]
        workers = [w for c in server for w in _children(c)]
        time.sleep(0.1)
    assert len(workers) == 2, "the tuning workers never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 120
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers + server):
        time.sleep(0.1)
    alive = [w for w in workers + server if Path(f"/proc/{w}").exists()]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive


def test_the_studys_stated_rule_is_the_rule_best_trial_applies():
    """The objective attribute said ties were broken by validation NLL; the code keeps the
    earlier trial. One rule: stated in words where it is applied, and applied as stated."""
    from benchmark.jobs.tune import choice

    study = optuna.create_study(direction="maximize")
    for value, nll in ((0.9412, 0.30), (0.9412, 0.10), (0.90, 0.05)):
        trial = study.ask()
        trial.set_user_attr("val_nll", nll)
        study.tell(trial, value)
    assert choice.best_trial(study).number == 0  # the earlier of the tie, whatever its NLL
    assert "earlier trial among equal values" in choice.RULE and "NLL" not in choice.RULE


def _protocol_cfg(tmp_path, tune_block, methods=None):
    cfg = {**CFG, "methods": methods or [
        "ce", {"method": "drkd", "teacher": "online"},
        {"method": "drkd", "teacher": "pretrained"}], "tune": tune_block}
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return config.load_grid(str(path))


def test_equal_effort_gives_every_study_of_a_task_the_same_trials(tmp_path):
    """With a budget in images the pretrained teacher's study got half the trials (its forward
    counts); with trials_per_dimension every study of the task gets the same count, set by the
    task's largest search space, whatever the teacher costs."""
    space = {"temperature": [1.0, 20.0], "alpha": [0.05, 0.99]}
    budget = tune.studies(_protocol_cfg(tmp_path, {"budget": 16, "optimiser": True,
                                                  "space": space}))
    counts = {s.name.split("/")[-1]: s.trials for s in budget}
    assert counts["drkd-pretrained"] < counts["drkd-online"]  # the round-four rule: unequal
    equal = tune.studies(_protocol_cfg(tmp_path, {"trials_per_dimension": 3, "optimiser": True,
                                                 "space": space}))
    dims = {s.name.split("/")[-1]: len(s.space) for s in equal}
    assert dims["ce"] < dims["drkd-online"]  # CE searches lr and weight decay only
    assert {s.trials for s in equal} == {3 * max(dims.values())}
    # the count does not depend on which methods a command tunes
    cfg = _protocol_cfg(tmp_path, {"trials_per_dimension": 3, "optimiser": True,
                                   "space": space})
    assert [s.trials for s in tune.studies(cfg, "ce")] == [3 * max(dims.values())]


def test_k_fold_tuning_validates_every_training_image_once_and_teachers_skip_the_fold(tmp_path):
    from benchmark.jobs import runner
    from benchmark.jobs.tune.objective import trial_spec

    s = tune.studies(_protocol_cfg(tmp_path, {"folds": 3, "trials": 2},
                                   ["ce", {"method": "drkd", "teacher": "pretrained"}]))
    study = next(x for x in s if x.name.endswith("drkd-pretrained"))
    assert len(study.seeds) == 3
    specs = [trial_spec(study, {}, seed) for seed in study.seeds]
    assert [(d.data.folds, d.data.fold) for d in specs] == [(3, 0), (3, 1), (3, 2)]
    loaded = [runner.load_data(d.data, None) for d in specs]
    n = len(loaded[0].train_y) + len(loaded[0].val_y)  # the training split, every fold
    assert sum(len(d.val_y) for d in loaded) == n  # each image validated once
    assert all(len(d.test_y) == 450 for d in loaded)  # the test split is never a fold
    # the self-teacher of the seed that validates on fold i trained without fold i
    assert [study.teacher_for(seed).data.fold for seed in study.seeds] == [0, 1, 2]
    # a spec without folds hashes as before (the keys enter the hash only when set)
    assert "folds" not in str(study.spec.identity())
    assert "folds" in str(specs[0].identity())


def test_fold_settings_and_seeds_per_trial_that_disagree_are_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**CFG, "tune": {"folds": 3, "seeds_per_trial": 2}}))
    assert cli.main(["tune", str(path), "--results", str(tmp_path / "r")]) == 2
    assert "seeds_per_trial must be 3" in capsys.readouterr().err


def test_the_rescoring_tie_break_is_the_stated_rule():
    """Among re-scored candidates: the higher fresh mean, then the higher tuning value, then the
    earlier trial; the rule's text says so."""
    from benchmark.jobs.tune.choice import RULE, rescored_rank

    def trial(number, value):
        return _numbered(optuna.trial.create_trial(value=value), number)

    a, b, c = trial(1, 0.90), trial(2, 0.92), trial(3, 0.92)
    order = sorted([(a, 0.95), (b, 0.95), (c, 0.95)], key=lambda p: rescored_rank(*p))
    assert [t.number for t, _ in order] == [2, 3, 1]
    assert min([(a, 0.96), (b, 0.95)], key=lambda p: rescored_rank(*p))[0].number == 1
    assert "highest fresh mean, then the higher tuning value, then the earlier trial" in RULE


def _numbered(t, number):
    t.number = number
    return t
