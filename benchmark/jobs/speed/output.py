"""The rows as a table, as CSV, and the process's peak memory."""
from __future__ import annotations

import resource
from pathlib import Path

import numpy as np

from benchmark.jobs.speed.measure import Row


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(rows: list[Row]) -> str:
    def num(x: float, fmt: str) -> str:
        return "" if np.isnan(x) else format(x, fmt)

    lines = [f"{'measurement':<66} {'images/s':>10} {'ratio':>7} {'seconds':>9} {'GPU MB':>7}  "
             f"{'target':<8} ok  {'fwd':<5} against"]
    for r in rows:
        lines.append(f"{r.name:<66} {num(r.images_per_s, '.0f'):>10} {num(r.ratio, '.3f'):>7} "
                     f"{num(r.seconds, '.1f'):>9} {num(r.peak_mb, '.0f'):>7}  {r.target:<8} "
                     f"{r.ok:<3} {r.forwards:<5} {r.against}")
    return "\n".join(lines)


def write_csv(rows: list[Row], path: Path, meta: dict) -> None:
    import csv

    def num(x: float, fmt: str) -> str:
        return "" if np.isnan(x) else format(x, fmt)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["measurement", "images_per_s", "ratio", "against", "target", "ok",
                    "forwards", "seconds", "peak_gpu_mb", *meta.keys()])
        for r in rows:
            w.writerow([r.name, num(r.images_per_s, ".1f"), num(r.ratio, ".4f"), r.against,
                        r.target, r.ok, r.forwards, num(r.seconds, ".2f"), num(r.peak_mb, ".0f"),
                        *meta.values()])
    tmp.replace(path)
