"""Figures drawn in forked children: their paths come back in order, a child's error is raised
here with its traceback, and a report drawn that way is the report drawn in one process."""
import os
from pathlib import Path

import pytest

from analysis.plots.drawing import Drawing


def write(folder: Path, name: str) -> list[Path]:
    path = folder / name
    path.write_text(str(os.getpid()))
    return [path]


def fail(folder: Path) -> list[Path]:
    raise ValueError("no such column: final_test_top1")


def test_children_draw_and_send_back_their_paths(tmp_path):
    with Drawing(2) as draw:
        drawn = [draw(write, tmp_path, f"f{i}.png") for i in range(5)]
        assert len(draw.running) <= 2
    assert [d.paths() for d in drawn] == [[tmp_path / f"f{i}.png"] for i in range(5)]
    assert all(d.done() for d in drawn)
    pids = {p.read_text() for p in tmp_path.iterdir()}
    assert str(os.getpid()) not in pids  # drawn elsewhere


def test_one_worker_draws_here_and_now(tmp_path):
    drawn = Drawing(1)(write, tmp_path, "here.png")
    assert drawn.done() and (tmp_path / "here.png").read_text() == str(os.getpid())


def test_a_childs_error_is_raised_with_its_traceback(tmp_path):
    with pytest.raises(RuntimeError, match="no such column: final_test_top1"):
        with Drawing(2) as draw:
            draw(write, tmp_path, "ok.png")
            draw(fail, tmp_path)
    assert (tmp_path / "ok.png").exists()


def test_a_report_drawn_in_children_is_the_report_drawn_here(tmp_path, monkeypatch):
    from analysis import report
    from analysis.plots import drawing
    from benchmark.store import tracking
    from tests.test_report import FINAL, add_run

    tracker = tracking.Tracker(results=tmp_path / "store")
    for variant, finals in FINAL.items():
        for seed, value in enumerate(finals):
            add_run(tracker.client, tracker.experiment_id, variant, seed, value)
    report.from_tracking(tracker.uri, tmp_path / "forked")
    monkeypatch.setattr(drawing, "cores", lambda: 1)
    report.from_tracking(tracker.uri, tmp_path / "here")
    forked = sorted(p.relative_to(tmp_path / "forked") for p in (tmp_path / "forked").rglob("*"))
    assert forked == sorted(p.relative_to(tmp_path / "here")
                            for p in (tmp_path / "here").rglob("*"))
    assert any(p.suffix == ".png" for p in forked)
    for rel in forked:
        a, b = tmp_path / "forked" / rel, tmp_path / "here" / rel
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), rel
