"""A report reads what it needs only: no torch (its import alone is ~650 MB resident on the CUDA
build), no provenance columns, no figure that grows with the number of studies."""
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import load

landscape = importlib.import_module("analysis.plots.landscape")  # the module, not its function

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT / "results" / "published" / "digits-field" / "runs.csv"


def _imports_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted("
                          "m for m in sys.modules if m.split('.')[0] in ('torch', 'methods'))))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.splitlines()[-1].split())


def test_the_command_line_and_the_registries_import_no_torch_until_a_method_is_used():
    loaded = _imports_after("import methods, benchmark.config, benchmark.cli\n"
                            "benchmark.cli.build_parser()")
    assert "torch" not in loaded and "methods.ce" not in loaded
    assert "torch" in _imports_after("import methods\nmethods.names()")


def test_report_from_a_csv_never_imports_torch(tmp_path):
    frame = pd.read_csv(FIELD)
    small = frame[(frame["arch"] == "mlp") & frame["variant"].isin(["ce", "drkd-online"])]
    csv = tmp_path / "runs.csv"
    small.to_csv(csv, index=False)
    code = (f"from benchmark.cli import main\nassert main(['report', '--from', {str(csv)!r}, "
            f"'--out', {str(tmp_path / 'out')!r}]) == 0")
    loaded = _imports_after(code)
    assert "torch" not in loaded and loaded <= {"methods", "methods.registry"}
    assert (tmp_path / "out" / "tables" / "statistics.csv").is_file()


def test_a_report_reads_no_provenance_tags_but_keeps_the_grid_and_the_diagnostics(tmp_path):
    frame = pd.DataFrame({"run_id": ["a"], "status": ["FINISHED"], "kind": ["train"],
                          "cell_hash": ["h"], "dataset": ["digits"], "arch": ["mlp"],
                          "variant": ["ce"], "seed": [0],
                          "epoch": [1], "tag.platform": ["Linux"], "tag.git_commit": ["abc"],
                          "tag.grid": ["quick"], "tag.diag.rectified": ["share"],
                          "param.hp.alpha": [0.5]})
    frame.to_csv(tmp_path / "runs.csv", index=False)
    lean = load.epochs_from_csv(tmp_path / "runs.csv", environment=False)
    assert {"tag.grid", "tag.diag.rectified", "param.hp.alpha"} <= set(lean.columns)
    assert not {"tag.platform", "tag.git_commit"} & set(lean.columns)
    assert "tag.platform" in load.epochs_from_csv(tmp_path / "runs.csv").columns  # reproduce's


def _trials(studies: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"study": s, "trial": t, "state": "COMPLETE", "value": rng.uniform(0.8, 1.0),
             "alpha": rng.uniform(0.1, 0.9), "temperature": rng.uniform(1, 20)}
            for s in studies for t in range(4)]
    return pd.DataFrame(rows)


def test_the_tuning_landscape_is_one_figure_per_task_none_taller_than_3000_px(tmp_path):
    from analysis.plots import style

    studies = [f"digits:clean/mlp/v{i}" for i in range(30)] + ["digits:sym40/mlp/ce"]
    pages = landscape.pages(_trials(studies))
    assert [(name, len(part["study"].unique())) for name, _, part in pages] == [
        ("digits_clean_1", 12), ("digits_clean_2", 12), ("digits_clean_3", 6),
        ("digits_sym40", 1)]
    written = landscape.landscape(_trials(studies[:13]), tmp_path)
    assert sorted(p.name for p in written if p.suffix == ".png") == [
        "tuning_landscape_digits_clean_1.png", "tuning_landscape_digits_clean_2.png"]
    fig = landscape.landscape_figure(pages[0][2])
    assert fig.get_size_inches()[1] * style.DPI <= 3000
