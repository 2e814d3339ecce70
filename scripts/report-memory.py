"""Peak memory and wall time of ``drkd-bench report`` on the fourth edition's records, for this
checkout and (``--before REV``) an earlier commit side by side, alternated, each in its own
process (its peak resident set from ``wait4``). Appends one row per run to the CSV (default
results/published/report-memory.csv) with the chip it ran on.

Usage: python scripts/report-memory.py [--before REV] [--repeats N] [--csv FILE]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import side_by_side  # scripts/: beside this file

ROOT = Path(__file__).resolve().parents[1]
EDITION = ROOT / "results" / "published" / "paper-question"


def measure(source: Path, out: Path) -> tuple[float, float]:
    """(peak resident MB, wall seconds) of one report built with the code at ``source``."""
    argv = [sys.executable, "-c", "import sys; from benchmark.cli import main; "
            "sys.exit(main(sys.argv[1:]))", "report", "--from",
            str(EDITION / "runs.csv.gz"), "--out", str(out), "--config", "paper-question"]
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=source, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"report failed with the code at {source}")
    return usage.ru_maxrss / 1024, wall  # Linux: ru_maxrss in KiB


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", help="an earlier commit to measure beside this checkout")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--csv", default=str(ROOT / "results" / "published" / "report-memory.csv"))
    args = p.parse_args()

    def one(source: Path, scratch: Path) -> dict:
        mb, seconds = measure(source, scratch)
        return {"peak_rss_mb": round(mb, 1), "wall_s": round(seconds, 1)}

    side_by_side.append_csv(side_by_side.run(one, args.before, args.repeats), args.csv)


if __name__ == "__main__":
    main()
