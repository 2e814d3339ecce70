"""Where reports go: one folder per grid under the results folder (so that no grid's report
replaces or deletes another's), which runs are a grid's, and the index of the folder."""
from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd

#: The folder name of runs no grid made (``drkd-bench train``).
NO_GRID = "single-runs"


#: The file that marks a folder as a grid's report (its content: the grid's name), so that the
#: index lists grid reports only (not, say, a committed edition under the same results folder).
MARK = ".grid"


def mark(folder: Path, grid: str) -> None:
    (Path(folder) / MARK).write_text(grid + "\n")


def grid_folder(results: Path, grid: str) -> Path:
    """Where a grid's report lives: its own folder under the results folder, so that no grid's
    report replaces or deletes another's."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in grid).strip(".")
    return Path(results) / (safe or NO_GRID)


def grid_tags(epochs: pd.DataFrame) -> pd.Series:
    """Each row's grid (``NO_GRID`` for a run of no grid, or a frame exported without the tag)."""
    if "tag.grid" not in epochs:
        return pd.Series(NO_GRID, index=epochs.index, dtype=object)
    return epochs["tag.grid"].fillna("").replace("", NO_GRID).astype(str)


def grids_of(epochs: pd.DataFrame) -> list[str]:
    """The grids whose training runs a frame holds."""
    return sorted(set(grid_tags(epochs)[epochs["kind"] == "train"])) if len(epochs) else []


def of_grid(epochs: pd.DataFrame, grid: str) -> pd.DataFrame:
    """The runs of one grid: its training runs, and the studies and trials of no other grid."""
    tag = grid_tags(epochs)
    other = epochs["kind"] != "train"
    return epochs[(tag == grid) | (other & tag.isin([grid, NO_GRID]))]


def write_index(results: Path) -> Path:
    """``RESULTS/README.md``: every grid's report under the results folder, newest first."""
    results = Path(results)
    found = sorted((p for p in results.iterdir() if (p / MARK).is_file()
                    and (p / "README.md").is_file()),
                   key=lambda p: -(p / "README.md").stat().st_mtime)
    lines = ["# Reports", "", "One folder per grid (`drkd-bench grid` writes its own; "
             "`drkd-bench report` rewrites them from the store).", "",
             "| grid | report | page | written |", "|---|---|---|---|"]
    for p in found:
        when = datetime.datetime.fromtimestamp((p / "README.md").stat().st_mtime)
        lines.append(f"| {p.name} | [{p.name}/README.md]({p.name}/README.md) | "
                     f"[report.html]({p.name}/report.html) | {when:%Y-%m-%d %H:%M} |")
    index = results / "README.md"
    index.write_text("\n".join(lines) + "\n")
    return index
