import os
import tempfile

import pytest
import torch

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# new stores copy one empty store kept here (benchmark.store.location.template_path) instead of each
# running MLflow's schema migrations: one cache for the session and its subprocesses
os.environ.setdefault("DRKD_CACHE", tempfile.mkdtemp(prefix="drkd-cache-"))
# the cores shared out between pytest-xdist's test processes (pyproject's addopts): two processes
# of two threads each on two cores would spin-wait on each other's cores
_processes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _processes)))


@pytest.fixture(autouse=True)
def _idle_machine(monkeypatch):
    """Every test sees an idle machine (1-minute load 0): the tests share a loaded one on purpose
    (pytest-xdist), and the commands' note about a busy machine would add a line to every
    output a test reads. test_gpus sets a load of its own to test the note."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))


@pytest.fixture
def results(tmp_path):
    """A fresh results folder (MLflow SQLite store, checkpoints, reports)."""
    path = tmp_path / "results"
    path.mkdir()
    return path



_KILLED_WRITER = '''
import os, signal, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size = 2")   # two pages of cache: the update spills to the file
con.execute("BEGIN")
con.execute("UPDATE tags SET value = value || 'x'")  # the store's own rows, and 3 MB more
con.execute("CREATE TABLE spill (x)")
con.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
            "INSERT INTO spill SELECT randomblob(1000) FROM n")
os.kill(os.getpid(), signal.SIGKILL)   # killed inside the transaction, before COMMIT
'''


@pytest.fixture
def kill_writer_mid_transaction():
    """A function that runs a SQLite writer on an MLflow store (``tags`` rewritten and 3 MB
    written with a two-page cache, so pages reach the file) and SIGKILLs it inside the
    transaction: the store is left with a hot journal, deterministically. Returns the journal's
    path."""
    import subprocess
    import sys
    from pathlib import Path

    def kill(db) -> Path:
        proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(db)])
        assert proc.returncode == -9
        journal = Path(f"{db}-journal")
        assert journal.is_file() and journal.stat().st_size > 0
        return journal

    return kill
