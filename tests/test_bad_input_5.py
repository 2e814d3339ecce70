"""The fifth bad-input corpus (round five, the newest surfaces): corrupt or truncated runs CSVs,
a baseline that names no variant, argparse's prefix matching, seeds the generators cannot take,
a plugin dataset whose loader raises or returns nothing, an output stream that fails, a
training subset larger than the data, and flags a command accepts but does not use. Each case
failed before its fix (a traceback, a late failure, a silent acceptance); now: exit code 2, one
line naming what is wrong, nothing written."""
import gzip
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_bad_input import _nothing_written, _one_line  # the corpus' shared checks

from benchmark import cli

ROOT = Path(__file__).resolve().parents[1]
EDITION = ROOT / "results" / "published" / "paper-question" / "runs.csv.gz"
BASE = {"name": "b", "seeds": [0], "architectures": ["mlp"], "methods": ["ce"],
        "datasets": ["digits"], "train": {"epochs": 1, "batch_size": 32}}


def _cfg(tmp_path, **over):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**BASE, **over}))
    return str(path)


@pytest.fixture(scope="module")
def broken_csvs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    head = EDITION.read_bytes()[:200_000]
    (folder / "truncated.csv.gz").write_bytes(head)  # a gzip stream cut short
    (folder / "corrupt.csv.gz").write_bytes(head[:20] + b"\x00" * 5000 + head[5020:60_000])
    (folder / "binary.csv").write_bytes(gzip.decompress(gzip.compress(b"\xff\xfe\x00" * 999)))
    return folder


@pytest.mark.parametrize("name", ["truncated.csv.gz", "corrupt.csv.gz", "binary.csv"])
@pytest.mark.parametrize("command", ["report", "plan", "reproduce"])
def test_a_corrupt_runs_csv_is_one_line(broken_csvs, tmp_path, capsys, name, command):
    path = str(broken_csvs / name)
    argv = {"report": ["report", "--from", path, "--results", str(tmp_path / "r")],
            "plan": ["plan", "--from", path], "reproduce": ["reproduce", path]}[command]
    _one_line(capsys, cli.main(argv), name)
    _nothing_written(tmp_path)


def test_a_baseline_that_names_no_variant_is_refused_before_training(tmp_path, capsys):
    cfg = _cfg(tmp_path, analysis={"baseline": "lsr"})
    _one_line(capsys, cli.main(["grid", cfg, "--results", str(tmp_path / "r")]),
              "analysis.baseline: 'lsr' is not a variant of this grid")
    _nothing_written(tmp_path)


@pytest.mark.parametrize("argv, needle", [
    (["grid", "quick", "--seed", "3", "--dry-run"], "unrecognized arguments: --seed"),
    (["tune", "quick", "--seeds", "3"], "unrecognized arguments: --seeds"),
    (["report", "--fam", "dataset"], "unrecognized arguments: --fam"),
])
def test_a_flag_is_never_taken_for_another_by_its_prefix(tmp_path, capsys, argv, needle):
    _one_line(capsys, cli.main(argv + ["--results", str(tmp_path / "r")]), needle)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("seed", ["-1", str(2 ** 31), str(2 ** 70)])
def test_a_seed_the_generators_cannot_take_is_refused_before_the_store(tmp_path, capsys, seed):
    argv = ["train", "--dataset", "digits", "--method", "ce", "--epochs", "1", "--seed", seed,
            "--results", str(tmp_path / "r")]
    _one_line(capsys, cli.main(argv), "--seed")
    _nothing_written(tmp_path)


@pytest.mark.parametrize("body, needle", [
    ("raise RuntimeError('the server is down')", "its loader failed: RuntimeError: the server"),
    ("return None", "its loader returned None, not (x_train, y_train, x_test, y_test)"),
    ("return (1, 2)", "its loader returned a tuple of 2, not (x_train, y_train, x_test, y_test)"),
])
def test_a_plugin_dataset_whose_loader_fails_is_one_line(tmp_path, capsys, body, needle):
    name = f"plug{abs(hash(body)) % 10**6}"
    plugin = tmp_path / f"{name}.py"
    plugin.write_text(f"""
from benchmark import data


def load(root=None):
    {body}


data.register(data.DatasetSpec({name!r}, load, 10, (0.5,), (0.5,), data.Augment(), "mlp",
                               "a test"))
""")
    cfg = _cfg(tmp_path, datasets=[name], plugins=[str(plugin)])
    _one_line(capsys, cli.main(["grid", cfg, "--results", str(tmp_path / "r")]), needle)
    _nothing_written(tmp_path)


def test_a_failing_output_stream_is_one_line():
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "benchmark.cli", "schema"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], done.stderr


def test_a_training_subset_larger_than_the_data_is_refused(tmp_path, capsys):
    cfg = _cfg(tmp_path, datasets={"digits": {"train_subset": 5000}})
    _one_line(capsys, cli.main(["grid", cfg, "--results", str(tmp_path / "r")]),
              "train_subset 5000 is more than digits' 1347 training images")
    _nothing_written(tmp_path)


def test_plan_refuses_a_flag_it_does_not_use(tmp_path, capsys):
    _one_line(capsys, cli.main(["plan", "--from", str(EDITION), "--aggregate"]),
              "unrecognized arguments: --aggregate")


def test_a_rerun_on_a_full_disk_is_one_line_from_the_sweep_of_interrupted_runs(
        tmp_path, capsys, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from benchmark import config
    from benchmark.jobs import grid
    from benchmark.store.tracking import Tracker

    cfg = _cfg(tmp_path)
    cell = grid.expand(config.load_grid(cfg))[0]
    tracker = Tracker(results=tmp_path / "r")  # an earlier run killed mid-cell: still RUNNING
    tracker.new_run("killed", {"kind": "train", "cell_hash": cell.hash})

    def full(self, *args, **kwargs):
        raise MlflowException("(sqlite3.OperationalError) database or disk is full")

    monkeypatch.setattr(MlflowClient, "set_terminated", full)
    monkeypatch.setattr(MlflowClient, "log_batch", full)
    code = cli.main(["grid", cfg, "--results", str(tmp_path / "r"), "--workers", "1"])
    _one_line(capsys, code, "the tracking store cannot be written: its disk is full")
