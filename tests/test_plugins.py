"""Plugins and the user's own data: a method from a .py file runs in a grid, is tuned, reported and
hashed; editing it re-runs its cells only; folder and .npz datasets; one-line errors; entry points
of installed packages (in a subprocess with a real dist-info folder)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import methods
from benchmark import cli, config, data, models
from benchmark.config import plugins
from benchmark.data import plans
from benchmark.jobs import grid
from benchmark.models import teachers

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def clean_registries():
    """Each test starts from the built-in registries and leaves them so (plugins register
    process-wide)."""
    methods.names()  # the built-in methods load on the registry's first use: before the copy
    saved = (dict(methods.registry._REGISTRY), dict(models.registry._MODELS),
             dict(data.catalog._DATASETS), dict(teachers.SOURCES), dict(plans.PLANS),
             dict(plugins._ORIGINS), dict(plugins._LOADED))
    yield
    for live, old in zip((methods.registry._REGISTRY, models.registry._MODELS,
                          data.catalog._DATASETS, teachers.SOURCES, plans.PLANS,
                          plugins._ORIGINS), saved):
        live.clear()
        live.update(old)
    plugins._LOADED.clear()
    plugins._LOADED.update(saved[-1])


@pytest.fixture
def example(tmp_path):
    """The shipped example, copied (so that a test may edit it), with a short budget."""
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLES, folder)
    raw = yaml.safe_load((folder / "my-method.yaml").read_text())
    raw.update(seeds=[0, 1], train={"epochs": 3, "batch_size": 64}, tune={"trials": 2, "seed": 0})
    (folder / "my-method.yaml").write_text(yaml.safe_dump(raw))
    return folder


@pytest.mark.slow
def test_example_plugin_runs_in_a_grid_is_reported_and_its_hash_recorded(example, tmp_path,
                                                                          capsys):
    from analysis import load

    results = tmp_path / "r"
    assert cli.main(["grid", str(example / "my-method.yaml"), "--results", str(results),
                     "--quiet"]) == 0
    assert "6 trained" in capsys.readouterr().out
    report = (results / "my-method" / "README.md").read_text()
    assert "`confidence-penalty` − `ce`" in report
    runs = load.epochs_from_tracking(f"sqlite:///{results}/mlflow.db")
    mine = runs[runs["variant"] == "confidence-penalty"]
    digest = plugins.source_hash(example / "confidence_penalty.py")
    assert set(mine["param.plugin.method.confidence-penalty"]) == {
        f"module:confidence_penalty.py@{digest}"}
    assert "param.plugin.method.confidence-penalty" not in runs[runs["variant"] == "ce"].dropna(
        axis=1, how="all")


def test_editing_the_plugin_changes_the_hash_of_its_cells_only(example):
    before = {c.key: c.hash for c in grid.expand(config.load_grid(str(example / "my-method.yaml")))}
    # a fresh process would import the edited file; here the registry is reset and reloaded
    methods.registry._REGISTRY.pop("confidence-penalty")
    plugins._LOADED.clear()
    with open(example / "confidence_penalty.py", "a") as f:
        f.write("# an edit\n")
    after = {c.key: c.hash for c in grid.expand(config.load_grid(str(example / "my-method.yaml")))}
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [k for k in sorted(before) if "/confidence-penalty/" in k]
    assert len(changed) == 2


def test_the_plugin_is_tuned_and_listed_with_its_origin(example, tmp_path, capsys):
    results = tmp_path / "r"
    assert cli.main(["tune", str(example / "my-method.yaml"), "--method", "confidence-penalty",
                     "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "digits/cnn8/confidence-penalty: 2 trials (complete" in out and "beta=" in out
    assert cli.main(["list", "--plugin", str(example / "confidence_penalty.py")]) == 0
    listed = capsys.readouterr().out
    digest = plugins.source_hash(example / "confidence_penalty.py")
    assert f"(from module confidence_penalty.py {digest})" in listed
    assert "confidence-penalty teacher=none" in listed


@pytest.mark.parametrize("plugin,message", [
    ("no_such_module_xyz", "plugin 'no_such_module_xyz': cannot be imported"),
    ("missing.py", "plugin 'missing.py': no such file"),
    ("broken.py", "plugin 'broken.py' failed to import: ZeroDivisionError"),
    ("twice.py", "plugin 'twice.py' registers a name that is taken: method 'ce' is already "
                 "registered"),
    ("plan.py", "plugin 'plan.py' registers the batch plan 'shuffle', which built-in code"),
])
def test_bad_plugins_stop_before_training_with_one_line(tmp_path, plugin, message, capsys):
    (tmp_path / "broken.py").write_text("x = 1 / 0\n")
    (tmp_path / "twice.py").write_text(
        "import methods\nfrom methods.ce import ce_terms\n"
        "methods.register(methods.Method(name='ce', terms=ce_terms, params={}))\n")
    (tmp_path / "plan.py").write_text(
        "from benchmark import plans\nplans.PLANS['shuffle'] = plans.Overlap\n")
    cfg = {"name": "p", "plugins": [plugin], "seeds": [0], "datasets": ["digits"],
           "architectures": ["mlp"], "methods": ["ce"]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(cfg))
    results = tmp_path / "r"
    assert cli.main(["grid", str(path), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not results.exists()
    plans.PLANS["shuffle"] = plans.Shuffle  # the failed plugin's write, undone for this process


# --- the user's own data ------------------------------------------------------------------------

def _pngs(folder: Path, per_class: int = 100, size: int = 8) -> None:
    """Three classes of grey images with a bright row at a class-dependent height, and noise."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(["circle", "square", "triangle"]):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (size, size), dtype=np.uint8)
            img[2 * c + 1] = 250
            Image.fromarray(img, mode="L").save(folder / name / f"{i:03d}.png")


def test_a_folder_of_a_few_hundred_pngs_trains_and_reports(tmp_path, capsys):
    _pngs(tmp_path / "shapes")
    cfg = {"name": "mine", "seeds": [0],
           "datasets": {"shapes": {"kind": "folder", "path": "shapes", "val_fraction": 0.2}},
           "architectures": ["cnn8"], "train": {"epochs": 4, "batch_size": 32},
           "methods": ["ce", "lsr"]}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    results = tmp_path / "r"
    assert cli.main(["grid", str(path), "--results", str(results), "--workers", "1",
                     "--quiet"]) == 0
    assert "2 trained" in capsys.readouterr().out
    main = (results / "mine" / "tables" / "main_shapes.md").read_text()
    assert "lsr" in main and "ce" in main
    spec = data.get_spec("shapes")
    assert spec.num_classes == 3
    d = data.load("shapes", val_fraction=0.2)
    assert d.train_x.shape[1:] == (1, 8, 8) and len(d.train_y) + len(d.val_y) == 225
    assert sorted(np.bincount(d.val_y.numpy()).tolist()) == [15, 15, 15]  # stratified
    # normalisation from the training set (the 225 training images of the fixed 75% split) only
    train_x, _, test_x, _ = data.load_folder(tmp_path / "shapes")
    assert spec.mean[0] == round(float((train_x / 255.0).mean()), 4)
    assert spec.mean[0] != round(float((test_x / 255.0).mean()), 4)
    # its content digest is the MLflow dataset input's name part and part of the cell hash
    cell = grid.expand(config.load_grid(str(path)))[0]
    assert cell.identity()["plugins"]["dataset.shapes"].startswith("data:folder:shapes@")


def test_npz_arrays_load_as_the_same_uint8_tensors(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (40, 6, 6, 3), dtype=np.uint8)  # N x H x W x C
    y = np.arange(40) % 4
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    spec, digest = data.user_dataset("mine", "npz", tmp_path / "mine.npz")
    tx, ty, sx, sy = spec.load(None)
    assert tx.shape == (40, 3, 6, 6) and tx.dtype == np.uint8 and np.array_equal(
        tx[5], x[5].transpose(2, 0, 1))
    assert spec.num_classes == 4 and len(spec.mean) == 3 and len(digest) == 16


def test_bad_user_data_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="empty: no class subfolders"):
        data.load_folder(tmp_path / "empty")
    _pngs(tmp_path / "bad", per_class=3)
    (tmp_path / "bad" / "square" / "999.png").write_bytes(b"not a png")
    with pytest.raises(data.DataError, match=r"999\.png: not a readable image"):
        data.load_folder(tmp_path / "bad")
    _pngs(tmp_path / "sizes", per_class=3)
    Image.new("L", (9, 9)).save(tmp_path / "sizes" / "circle" / "big.png")
    with pytest.raises(data.DataError, match=r"big\.png: 9x9 pixels, but .* is 8x8"):
        data.load_folder(tmp_path / "sizes")
    np.savez(tmp_path / "short.npz", x_train=np.zeros((5, 4, 4), np.uint8),
             y_train=np.zeros(4, int), x_test=np.zeros((2, 4, 4), np.uint8),
             y_test=np.zeros(2, int))
    with pytest.raises(data.DataError, match="short.npz: x_train has 5 images but y_train has 4"):
        data.load_npz(tmp_path / "short.npz")
    cfg = {"name": "x", "seeds": [0], "datasets": {"digits": {"kind": "folder", "path": "bad"}},
           "architectures": ["mlp"], "methods": ["ce"]}
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(config.ConfigError, match="dataset 'digits' is already registered"):
        config.load_grid(str(tmp_path / "x.yaml"))


def test_an_installed_packages_entry_point_loads_by_itself(tmp_path):
    site = tmp_path / "site"
    (site / "fakeplugin-1.2.dist-info").mkdir(parents=True)
    (site / "fakeplugin-1.2.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakeplugin\nVersion: 1.2\n")
    (site / "fakeplugin-1.2.dist-info" / "entry_points.txt").write_text(
        "[drkd_bench.plugins]\nfake = fakeplugin\n")
    shutil.copy(EXAMPLES / "confidence_penalty.py", site / "fakeplugin.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "list"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "confidence-penalty" in out.stdout and "(from package fakeplugin 1.2)" in out.stdout
