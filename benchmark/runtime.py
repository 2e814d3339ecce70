"""Run-time settings: where things are and what runs them. They never change a result (the cell
hash leaves them out), so they travel as one object from the command line to every layer."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Runtime:
    """``results``: the folder for the store, checkpoints and reports; ``tracking_uri``: MLflow
    (default: SQLite under ``results``); ``data_root``: where datasets are looked for; ``device``:
    cpu, cuda, cuda:1 or auto; ``threads``: torch CPU threads of this process (None: torch's);
    ``checkpoint_seconds``: the least time between two resume checkpoints of a run (and the
    per-epoch metrics sent to the store with each): a crash loses at most that much training."""

    results: str = "results"
    tracking_uri: str | None = None
    data_root: str | None = None
    device: str | None = None
    threads: int | None = None
    checkpoint_seconds: float = 10.0

    def for_workers(self, results: Path | str, tracking_uri: str, workers: int) -> Runtime:
        """What each of ``workers`` processes gets: the resolved store and its share of the
        machine's CPU threads."""
        threads = max(1, (os.cpu_count() or 1) // workers)
        return replace(self, results=str(results), tracking_uri=tracking_uri, threads=threads)

    def apply(self) -> None:
        """Set this process's thread count (in a worker, before any work)."""
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    def die_with_parent(self) -> None:
        """In a worker process: be killed when the process that started it dies (Linux), so a
        SIGKILLed grid or study leaves no orphan training behind (elsewhere: nothing). A parent
        that died before this call (while the worker was still importing) is caught too."""
        import multiprocessing
        import signal

        parent = multiprocessing.parent_process()
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if parent is not None and os.getppid() != parent.pid:
            os.kill(os.getpid(), signal.SIGKILL)

    def tracker(self):
        from .tracking import Tracker

        return Tracker(self.tracking_uri, results=Path(self.results))
