"""Run-time settings: where things are and what runs them. They never change a result (the cell
hash leaves them out), so they travel as one object from the command line to every layer."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Runtime:
    """``results``: the folder for the store, checkpoints and reports; ``tracking_uri``: MLflow
    (default: SQLite under ``results``); ``data_root``: where datasets are looked for; ``device``:
    cpu, cuda, cuda:1 or auto; ``threads``: torch CPU threads of this process (None: torch's)."""

    results: str = "results"
    tracking_uri: str | None = None
    data_root: str | None = None
    device: str | None = None
    threads: int | None = None

    def with_threads(self, threads: int) -> Runtime:
        return replace(self, threads=threads)

    def apply(self) -> None:
        """Set this process's thread count (in a worker, before any work)."""
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    def tracker(self):
        from .tracking import Tracker

        return Tracker(self.tracking_uri, results=Path(self.results))
