"""Peak memory and wall time of ``drkd-bench report`` on the fourth edition's records, for this
checkout and (``--before REV``) an earlier commit side by side, alternated, each in its own
process (its peak resident set from ``wait4``). Appends one row per run to the CSV (default
results/published/report-memory.csv) with the chip it ran on.

Usage: python scripts/report-memory.py [--before REV] [--repeats N] [--csv FILE]
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    from benchmark.store import provenance

    chip = provenance.chip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        sources = {f"{head}{'+changes' if dirty else ''}": ROOT}
        if args.before:
            tree = Path(tmp) / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.before],
                           cwd=ROOT, check=True, capture_output=True)
            sources = {args.before: tree, **sources}
        rows = []
        try:
            for repeat in range(args.repeats):
                for commit, source in sources.items():
                    mb, seconds = measure(source, Path(tmp) / f"out-{len(rows)}")
                    print(f"{commit}: peak {mb:.0f} MB, {seconds:.1f} s")
                    rows.append({"commit": commit, "repeat": repeat, "peak_rss_mb": round(mb, 1),
                                 "wall_s": round(seconds, 1), "load_average": os.getloadavg()[0],
                                 "cpu_vendor": chip["cpu_vendor"], "cpu": chip["cpu"],
                                 "cpu_capability": chip["cpu_capability"],
                                 "date": time.strftime("%Y-%m-%d")})
        finally:
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               capture_output=True)
    path = Path(args.csv)
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} rows appended to {path}")


if __name__ == "__main__":
    main()
