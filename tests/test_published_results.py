"""The committed results are exactly what the harness rebuilds from the committed raw records."""
from pathlib import Path

import pandas as pd

from analysis import report

RESULTS = Path(__file__).resolve().parents[1] / "results" / "published"


def test_committed_tables_are_what_report_from_the_committed_csv_builds(tmp_path):
    csv = RESULTS / "runs.csv"
    assert csv.is_file(), "results/published/runs.csv (drkd-bench export) must be committed"
    report.from_csv(csv, tmp_path)
    committed = sorted(p.name for p in (RESULTS / "tables").iterdir())
    rebuilt = sorted(p.name for p in (tmp_path / "tables").iterdir())
    assert committed == rebuilt
    for name in committed:
        assert (RESULTS / "tables" / name).read_bytes() == \
            (tmp_path / "tables" / name).read_bytes(), name
    assert (RESULTS / "README.md").read_text() == (tmp_path / "README.md").read_text()
    figures = {p.name for p in (RESULTS / "figures").glob("*.png")}
    assert figures == {p.name for p in (tmp_path / "figures").glob("*.png")}


def test_committed_records_cover_both_published_grids():
    frame = pd.read_csv(RESULTS / "runs.csv")
    finished = frame[(frame["status"] == "FINISHED") & (frame["kind"] == "train")]
    per_dataset = finished.groupby("dataset")["run_id"].nunique().to_dict()
    assert per_dataset == {"digits": 36, "fashion-mnist": 36}
    assert finished.groupby("dataset")["seed"].nunique().min() >= 3
