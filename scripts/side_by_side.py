"""What the measuring scripts share: this checkout and (``before``) an earlier commit, checked
out into a temporary worktree, measured alternately ``repeats`` times; each row tagged with the
commit, the repeat, the load, the chip and the date, and appended to a CSV.

    rows = side_by_side.run(measure, before, repeats)   # measure(source, scratch) -> dict
    side_by_side.append_csv(rows, path)
"""
from __future__ import annotations

import csv
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def run(measure: Callable[[Path, Path], dict], before: str | None, repeats: int) -> list[dict]:
    """``measure(source, scratch)`` of this checkout (named by its commit, ``+changes`` when
    tracked files differ from it) and of ``before``, alternated, ``before`` first."""
    from benchmark.store import provenance

    chip = provenance.chip()
    head = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = {f"{head}{'+changes' if dirty else ''}": ROOT}
        if before:
            tree = Path(tmp) / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), before], cwd=ROOT,
                           check=True, capture_output=True)
            sources = {before: tree, **sources}
        try:
            for repeat in range(repeats):
                for commit, source in sources.items():
                    got = measure(source, Path(tmp) / f"scratch-{len(rows)}")
                    row = {"commit": commit, "repeat": repeat, **got,
                           "load_average": round(os.getloadavg()[0], 2),
                           "cpu_vendor": chip["cpu_vendor"], "cpu": chip["cpu"],
                           "cpu_capability": chip["cpu_capability"],
                           "date": time.strftime("%Y-%m-%d")}
                    print(row, flush=True)
                    rows.append(row)
        finally:
            if before:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               capture_output=True)
    return rows


def append_csv(rows: list[dict], path: Path | str) -> None:
    """``rows`` appended to the CSV at ``path`` (its header written when the file is new)."""
    path = Path(path)
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} rows appended to {path}")
