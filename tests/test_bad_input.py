"""The fourth bad-input corpus (the newest surfaces): plugins that exit or declare malformed
parameters, the user's own data that cannot train, reproduce on editions it cannot use,
infinities and NaN. Each case failed before its fix (a traceback, a silent exit, exit 0, or a
store written); now: exit code 2, one line naming what is wrong, nothing written."""
import numpy as np
import pytest
import yaml
from PIL import Image

from benchmark import cli, data

BASE = {"name": "b", "seeds": [0], "architectures": ["mlp"], "methods": ["ce"],
        "train": {"epochs": 1, "batch_size": 32}}


def _cfg(tmp_path, **over):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**BASE, "datasets": ["digits"], **over}))
    return str(path)


def _one_line(capsys, code, needle):
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
    return err


def _nothing_written(tmp_path):
    results = tmp_path / "r"
    assert not results.exists() or not any(results.iterdir()), list(results.iterdir())


# --- plugins ---------------------------------------------------------------------------------

PARAM_PLUGIN = """
import methods
from methods.ce import ce_terms
methods.register(methods.Method(name="odd{n}", terms=ce_terms, params={{"beta": {param}}}))
"""


@pytest.mark.parametrize("body, needle", [
    ("import sys\nsys.exit(0)\n", "called sys.exit(0) while being imported"),
    ("import sys\nsys.exit(3)\n", "called sys.exit(3) while being imported"),
    (PARAM_PLUGIN.format(n=1, param="methods.Param(0.5, valid='0 to 1')"),
     "valid='0 to 1' is not an interval"),
    (PARAM_PLUGIN.format(n=2, param="methods.Param(0.5, valid='[0, 1]', low=0.9, high=0.1)"),
     "the search range has low=0.9 >= high=0.1"),
    (PARAM_PLUGIN.format(n=3, param="methods.Param(0.5, valid='[0, 1]', low=0, high=1, "
                                    "log=True)"),
     "a log-scale search range must start above 0"),
    (PARAM_PLUGIN.format(n=4, param="0.5"), "expected a methods.Param, got float"),
])
def test_a_plugin_that_exits_or_declares_a_bad_param_is_one_line(tmp_path, capsys, body,
                                                                  needle):
    (tmp_path / "bad.py").write_text(body)
    path = _cfg(tmp_path, plugins=["bad.py"])
    code = cli.main(["grid", path, "--results", str(tmp_path / "r")])
    assert "plugin 'bad.py'" in _one_line(capsys, code, needle)  # the plugin is named
    _nothing_written(tmp_path)


# --- the user's own data -----------------------------------------------------------------------

def _folder(root, classes=("a", "b"), size=8, n=6):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((size, size), 20 * i, np.uint8)).save(root / c / f"{i}.png")
    return root


def _npz(path, **over):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 255, (40, 8, 8), dtype=np.uint8),
              "y_train": np.arange(40) % 4, "x_test": rng.integers(0, 255, (8, 8, 8),
                                                                   dtype=np.uint8),
              "y_test": np.arange(8) % 4, **over}
    np.savez(path, **arrays)
    return path


def _data_case(tmp_path, kind, name):
    if name == "bomb":
        root = _folder(tmp_path / "bomb", size=80)
        return "folder", root
    if name == "one class":
        return "folder", _folder(tmp_path / "one", classes=("only",))
    if name == "2x2 for cnn28s":
        return "folder", _folder(tmp_path / "tiny", size=2)
    if name == "huge label":
        return "npz", _npz(tmp_path / "d.npz", y_train=np.r_[np.arange(39) % 4, 10 ** 9])
    if name == "2-D labels":
        return "npz", _npz(tmp_path / "d.npz", y_train=(np.arange(80) % 4).reshape(40, 2))
    if name == "empty training set":
        return "npz", _npz(tmp_path / "d.npz", x_train=np.zeros((0, 8, 8), np.uint8),
                           y_train=np.zeros(0, np.int64))
    if name == ".npy named .npz":
        path = tmp_path / "d.npz"
        with open(path, "wb") as f:
            np.save(f, np.zeros((4, 8, 8), np.uint8))
        return "npz", path
    if name == "truncated .npz":
        path = _npz(tmp_path / "full.npz")
        cut = tmp_path / "d.npz"
        cut.write_bytes(path.read_bytes()[:300])
        return "npz", cut
    raise AssertionError(name)


@pytest.mark.parametrize("name, needle", [
    ("bomb", "larger than PIL's image size limit"),
    ("one class", "one class subfolder (only); a classifier needs at least two"),
    ("2x2 for cnn28s", "2x2 images (x1 channels) do not pass through cnn28s"),
    ("huge label", "holds the label 1000000000; labels are class indices 0..K-1"),
    ("2-D labels", "y_train has shape (40, 2); expected one integer label per image"),
    ("empty training set", "no training images"),
    (".npy named .npz", "a single array (.npy), not an .npz archive"),
    ("truncated .npz", "not a readable .npz file"),
])
def test_own_data_that_cannot_train_is_one_line_before_anything_is_written(
        tmp_path, capsys, monkeypatch, name, needle):
    if name == "bomb":  # PIL refuses images over twice its pixel limit: a small limit here
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    kind, path = _data_case(tmp_path, "", name)
    arch = "cnn28s" if name == "2x2 for cnn28s" else "mlp"
    own = "mine-" + "".join(ch for ch in name if ch.isalnum())  # a name per case (registered)
    cfg = _cfg(tmp_path, datasets={own: {"kind": kind, "path": str(path),
                                            "val_fraction": 0.5}},
               architectures=[arch])
    code = cli.main(["grid", cfg, "--results", str(tmp_path / "r")])
    _one_line(capsys, code, needle)
    _nothing_written(tmp_path)


def test_mean_and_std_in_chunks_equal_the_float64_computation():
    x = np.random.default_rng(3).integers(0, 256, (700, 3, 5, 5)).astype(np.uint8)
    pixels = x.astype(np.float64) / 255.0
    mean, std = data.channel_stats(x, chunk=64)
    assert mean == tuple(round(float(v), 4) for v in pixels.mean(axis=(0, 2, 3)))
    assert std == tuple(round(float(v), 4) for v in pixels.std(axis=(0, 2, 3)))


# --- reproduce ---------------------------------------------------------------------------------

def test_reproduce_refuses_an_edition_it_cannot_use_in_one_line(tmp_path, capsys):
    from pathlib import Path

    edition = Path(__file__).resolve().parents[1] / "results" / "published" / "fashion-mnist-power"
    header = (edition / "runs.csv").open().readline()
    empty = tmp_path / "empty.csv"
    empty.write_text(header)
    code = cli.main(["reproduce", str(empty)])
    _one_line(capsys, code, "no finished training run: nothing to reproduce")
    code = cli.main(["reproduce", str(tmp_path / "missing.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "--from" not in err and "missing.csv: no such file" in err
    code = cli.main(["reproduce", str(edition), "--cells", "1000000000"])
    _one_line(capsys, code, "--cells 1000000000: the edition has 450 cells this code rebuilds")
    import pandas as pd

    frame = pd.read_csv(edition / "runs.csv", nrows=400)
    frame["param.hp.alpha"] = 7.0  # no recorded cell rebuilds to its hash
    frame["param.method"] = "lsr"
    stale = tmp_path / "stale.csv"
    frame.to_csv(stale, index=False)
    code = cli.main(["reproduce", str(stale)])
    _one_line(capsys, code, "cells rebuilds with this code")


# --- infinities and NaN -------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["plan", "--from", "RUNS", "--detect", "inf"], "--detect must be a finite number > 0"),
    (["plan", "--from", "RUNS", "--detect", "nan"], "--detect must be a finite number > 0"),
    (["tune", "CFG", "--budget", "inf"], "tune.budget must be finite and > 0, got inf"),
    (["tune", "CFG", "--timeout", "-5"], "--timeout -5.0: expected a finite number of seconds"),
    (["tune", "CFG", "--timeout", "nan"], "--timeout nan: expected a finite number of seconds"),
    (["grid", "LADDER"], "compute.ladder: expected a list of finite positive multiples"),
])
def test_infinities_and_nan_are_refused(tmp_path, capsys, args, needle):
    from pathlib import Path

    runs = Path(__file__).resolve().parents[1] / "results" / "published" / \
        "fashion-mnist-power" / "runs.csv"
    cfg = _cfg(tmp_path, methods=["lsr"])
    ladder = tmp_path / "ladder.yaml"
    ladder.write_text(yaml.safe_dump({**BASE, "datasets": ["digits"]}) +
                      "compute: {ladder: [2, .inf]}\n")
    args = [{"RUNS": str(runs), "CFG": cfg, "LADDER": str(ladder)}.get(a, a) for a in args]
    code = cli.main(args + ["--results", str(tmp_path / "r")])
    _one_line(capsys, code, needle)
    _nothing_written(tmp_path)


@pytest.mark.slow
def test_a_reproduce_stopped_by_sigterm_removes_its_temporary_store(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    edition = Path(__file__).resolve().parents[1] / "results" / "published" / "digits-field"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "reproduce", str(edition),
                             "--cells", "1"], env={**os.environ, "TMPDIR": str(tmp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600  # bounds a hang, not a speed target
    while time.time() < deadline and proc.poll() is None and not list(
            tmp.glob("drkd-reproduce-*/mlflow.db")):
        time.sleep(0.05)
    assert list(tmp.glob("drkd-reproduce-*")), "the reproduce never made its temporary store"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not list(tmp.glob("drkd-reproduce-*"))
