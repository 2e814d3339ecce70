import os
import tempfile

import pytest
import torch

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# new stores copy one empty store kept here (benchmark.tracking.template_path) instead of each
# running MLflow's schema migrations: one cache for the session and its subprocesses
os.environ.setdefault("DRKD_CACHE", tempfile.mkdtemp(prefix="drkd-cache-"))
# the cores shared out between pytest-xdist's test processes (pyproject's addopts): two processes
# of two threads each on two cores would spin-wait on each other's cores
_processes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _processes)))


@pytest.fixture
def results(tmp_path):
    """A fresh results folder (MLflow SQLite store, checkpoints, reports)."""
    path = tmp_path / "results"
    path.mkdir()
    return path

