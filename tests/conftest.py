import os
import tempfile

import pytest
import torch

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# new stores copy one empty store kept here (benchmark.tracking.template_path) instead of each
# running MLflow's schema migrations: one cache for the session and its subprocesses
os.environ.setdefault("DRKD_CACHE", tempfile.mkdtemp(prefix="drkd-cache-"))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def results(tmp_path):
    """A fresh results folder (MLflow SQLite store, checkpoints, reports)."""
    path = tmp_path / "results"
    path.mkdir()
    return path
