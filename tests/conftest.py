import os

import pytest
import torch

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def results(tmp_path):
    """A fresh results folder (MLflow SQLite store, checkpoints, reports)."""
    path = tmp_path / "results"
    path.mkdir()
    return path
