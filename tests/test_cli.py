"""The command line: help, listing, and one-line errors with exit code 2 that write nothing."""
import subprocess
import sys

import pytest

from benchmark import cli


def test_list_shows_methods_hyperparameters_architectures_datasets(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("drkd", "tfkd-reg", "temperature", "search [", "resnet18", "timm:<name>",
                 "tiny-imagenet", "quick", "ps-kd", "cs-kd", "zipf-ls", "dlb",
                 "follows lgcnsai/PS-KD-Pytorch@", "batches=class-paired", "previous-epoch|ema",
                 "teacher-sources"):
        assert word in out


@pytest.mark.parametrize("argv,needle", [
    (["train", "--dataset", "mnist", "--method", "ce"], "unknown dataset 'mnist'"),
    (["train", "--dataset", "digits", "--method", "kd"], "unknown method 'kd'"),
    (["train", "--dataset", "digits", "--method", "drkd", "--set", "alpha=2"], "[0, 1]"),
    (["train", "--dataset", "digits", "--method", "drkd", "--set", "teacher=oracle"],
     "pretrained, online"),
    (["train", "--dataset", "digits", "--method", "ce", "--arch", "resnet19"], "resnet18"),
    (["train", "--dataset", "digits", "--method", "lsr", "--set", "colour=red"],
     "not a hyperparameter of lsr"),
    (["train", "--dataset", "digits", "--method", "lsr", "--set", "novalue"], "KEY=VALUE"),
    (["train", "--dataset", "digits", "--method", "ce", "--epochs", "0"], "epochs must be"),
    (["train", "--dataset", "digits", "--method", "ce", "--set", "batch_size=x"],
     "expected an integer"),
    (["train", "--method", "ce"], "--dataset"),
    (["grid", "nonexistent-config"], "shipped: "),
    (["grid", "quick", "--workers", "0"], "--workers"),
    (["grid", "quick", "--set", "train.epoch=1", "--dry-run"], "unknown key 'epoch'"),
    (["grid", "quick", "--set", "train.epochs=abc"], "train.epochs: expected an integer"),
    (["grid", "quick", "--set", "train=3", "--set", "train.epochs=2"], "is not a mapping"),
    (["grid", "quick", "--set", "seeds=[0, 10000]"], "seeds"),
    (["train", "--dataset", "digits", "--method", "ce", "--set", "train.epochs=0"],
     "epochs must be"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2_writing_nothing(argv, needle, tmp_path, capsys):
    results = tmp_path / "results"
    code = cli.main(argv + ["--results", str(results)] if argv[0] in ("train", "grid") else argv)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and err.count("\n") == 1 and err.startswith("drkd-bench: error:")
    assert not results.exists()


def test_missing_dataset_files_fail_cleanly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code = cli.main(["train", "--dataset", "cifar10", "--method", "ce", "--data-root",
                     str(tmp_path / "data"), "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2 and "looked in" in err and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


def test_help_lists_every_registered_method():
    import re

    import methods

    def unwrapped(help_text: str) -> str:  # argparse wraps lines after a hyphen
        return re.sub(r"-\s+", "-", help_text)

    text = unwrapped(cli.build_parser().format_help())
    train = unwrapped(cli.build_parser()._subparsers._group_actions[0].choices["train"]
                      .format_help())
    for name in methods.names():
        assert name in text and name in train, name


@pytest.mark.slow
def test_console_script_help_and_error_without_traceback():
    exe = [sys.executable, "-m", "benchmark.cli"]
    out = subprocess.run(exe + ["--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "grid" in out.stdout and "examples:" in out.stdout
    out = subprocess.run(exe + ["train", "--dataset", "digits", "--method", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_version_prints_the_installed_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"drkd-bench {metadata.version('drkd-bench')}"


def test_set_changes_a_shipped_grid_as_its_file_would_and_its_cells_hash_anew(capsys):
    from benchmark import config
    from benchmark.jobs import grid

    plain = {s.key: s.hash for s in grid.expand(config.load_grid("quick"))}
    one = grid.expand(config.load_grid("quick", {"train.epochs": 1}))
    assert [s.key for s in one] == list(plain) and {s.train.epochs for s in one} == {1}
    assert not {s.hash for s in one} & set(plain.values())
    two = config.load_grid("quick", {"seeds": [0, 1], "datasets.digits.val_fraction": 0.2})
    assert two.seeds == (0, 1) and two.datasets["digits"][0].val_fraction == 0.2
    assert cli.main(["grid", "quick", "--set", "train.epochs=1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("quick: 72 cells") and out.count(" 1 epochs") == 72


def test_export_to_a_gz_name_writes_gzip(tmp_path):
    """--out runs.csv.gz wrote plain text under a .gz name (the temporary file's name hid the
    suffix from pandas): the published parts are gzipped and read back as such."""
    import gzip

    from analysis import load

    results = tmp_path / "results"
    assert cli.main(["train", "--dataset", "digits", "--arch", "mlp", "--method", "ce",
                     "--epochs", "1", "--results", str(results)]) == 0
    out = tmp_path / "part.csv.gz"
    assert cli.main(["export", "--results", str(results), "--out", str(out)]) == 0
    with gzip.open(out, "rt") as f:
        assert f.readline().startswith("run_id,")
    epochs = load.epochs_from_csv(out)
    assert len(epochs) == 1
    # the run kept its per-test-image correctness: 450 bits whose mean is its test top-1
    from analysis.stats.testset import unpack_correct

    run = load.runs_from_epochs(epochs).iloc[0]
    assert run["final_test_images"] == 450
    bits = unpack_correct(run["final_test_correct"], 450)
    assert bits.mean() == pytest.approx(run["final_test_top1"], abs=1e-6)


def test_export_every_k_keeps_every_kth_epoch_and_the_last(tmp_path):
    from analysis import load

    results = tmp_path / "results"
    assert cli.main(["train", "--dataset", "digits", "--arch", "mlp", "--method", "ce",
                     "--epochs", "5", "--results", str(results)]) == 0
    out = tmp_path / "thin.csv"
    assert cli.main(["export", "--results", str(results), "--out", str(out),
                     "--every", "2"]) == 0
    epochs = load.epochs_from_csv(out)
    assert epochs["epoch"].tolist() == [2, 4, 5]
    runs = load.runs_from_epochs(epochs)  # the final metrics are the run's own
    assert runs["epochs"].tolist() == [5] and runs["final_test_correct"].notna().all()
    assert cli.main(["export", "--results", str(results), "--every", "0"]) == 2
