"""The MLflow side (the only module of ``benchmark`` that imports mlflow): start or resume a run
per cell, log per-epoch metrics, store the final checkpoint, find finished cells and teachers.

The default store is a SQLite database under ``results/``; any tracking URI is accepted. Every
call that writes goes through :func:`_retry`, so several local processes can share one SQLite file.
"""
from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import platform
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
logging.getLogger("mlflow").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunStatus, RunTag  # noqa: E402

from benchmark.errors import TrackingError  # noqa: E402

logging.getLogger("mlflow").setLevel(logging.WARNING)  # mlflow sets INFO on import
# its store logs each database error with a traceback before raising it; the harness reports
# the raised error itself, in one line (a full disk: "no space left on device")
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

EXPERIMENT = "drkd-bench"
MODEL_ARTIFACT = "checkpoint/model.pt"


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI; None for any other URI."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def default_uri(results: Path | str = "results") -> str:
    return f"sqlite:///{(Path(results) / 'mlflow.db').resolve()}"


def artifact_root(results: Path | str) -> str:
    return (Path(results) / "mlartifacts").resolve().as_uri()


def relocate(uri: str, results: Path | str) -> bool:
    """Make a results folder that was moved or copied work where it now is, on its own.

    MLflow records absolute artifact locations. When the store is the SQLite file of this
    results folder (``results/mlflow.db``), its artifact root is ``results/mlartifacts``, where
    the folder is *now*: every recorded location under another root is rewritten to it (runs,
    experiment), so that teacher lookup, resume, reports and the MLflow UI read the folder's own
    artifacts, and a copy never writes into its original. A store kept elsewhere (its own
    ``--tracking-uri``) is rewritten only when its recorded root is gone and
    ``results/mlartifacts`` exists. Returns whether anything was rewritten.
    """
    import sqlite3
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    db = sqlite_file(uri)
    if db is None:
        return False
    new = artifact_root(results)
    own = db.resolve().parent == Path(results).resolve()  # the folder's own store
    if not db.is_file() or not (own or Path(url2pathname(urlparse(new).path)).is_dir()):
        return False
    with sqlite3.connect(db, timeout=60) as con:
        try:
            rows = con.execute("select artifact_location from experiments where name = ?",
                               (EXPERIMENT,)).fetchall()
        except sqlite3.Error:
            return False  # not an MLflow store yet
        if not rows or not rows[0][0] or rows[0][0] == new:
            return False
        old = rows[0][0]
        if not own and Path(url2pathname(urlparse(old).path)).exists():
            return False  # the recorded root is still there: another, deliberate layout
        con.execute("update experiments set artifact_location = ? || substr(artifact_location, ?)"
                    " where artifact_location like ? || '%'", (new, len(old) + 1, old))
        con.execute("update runs set artifact_uri = ? || substr(artifact_uri, ?)"
                    " where artifact_uri like ? || '%'", (new, len(old) + 1, old))
    return True


def _retry(fn: Callable[[], Any], tries: int = 8) -> Any:
    """Retry a store call on transient errors (SQLite's "database is locked" under several
    writers, a busy tracking server) with jittered back-off."""
    for attempt in range(tries):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - MLflow wraps driver errors in its own types
            text = str(e).lower()
            transient = any(w in text for w in ("locked", "busy", "timeout", "connection"))
            if not transient or attempt == tries - 1:
                raise
            time.sleep(0.05 * 2 ** attempt * (1 + random.random()))


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's model name (the CPU kernels, and so the last bits of a result, depend on
    it), as Linux reports it; the platform's word elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_capability() -> str:
    """The instruction set whose kernels torch dispatches to here (AVX2, AVX512, ...): it sets
    the rounding of every sum, and a CPU model name does not fix it."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def provenance() -> dict[str, str]:
    """Git commit, package versions and platform, logged as tags with every run."""
    tags = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu_model(), "cpu_capability": cpu_capability()}
    for pkg in ("drkd-bench", "torch", "torchvision", "timm", "numpy", "mlflow", "optuna"):
        try:
            tags[f"version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        if commit:
            tags["git_commit"] = commit + ("-dirty" if dirty else "")
            tags["mlflow.source.git.commit"] = commit  # MLflow's own column and filter
    except (OSError, subprocess.SubprocessError):
        pass
    tags["mlflow.source.name"] = "drkd-bench"
    tags["mlflow.source.type"] = "LOCAL"
    try:
        tags["mlflow.user"] = getpass.getuser()
    except (OSError, KeyError):
        pass
    return tags


def param_text(value: Any) -> str:
    """A parameter as a user writes it: ``none``, ``60,120``, ``true``; numbers as Python prints
    them."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(param_text(v) for v in value) if value else "none"
    return str(value)


def metric_value(value: Any) -> float:
    """Metrics for the store and its UI carry 6 significant digits (the full-precision history
    is the run's ``metrics.json`` artifact, which the report reads)."""
    return float(f"{float(value):.6g}")


SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def check_uri(uri: str) -> None:
    """A tracking URI MLflow can open, or a one-line :class:`TrackingError`. A plain path is a
    file store; ``sqlite:///PATH`` needs PATH's folder to exist or be creatable."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if "://" in uri and scheme not in SCHEMES:
        raise TrackingError(f"tracking URI {uri!r}: unsupported scheme {scheme!r}; use one of: "
                            + ", ".join(SCHEMES))
    if scheme == "sqlite":
        if not uri.startswith("sqlite:///") or len(uri) <= len("sqlite:///"):
            raise TrackingError(f"tracking URI {uri!r}: expected sqlite:///PATH/TO/FILE.db")
        folder = Path(uri[len("sqlite:///"):]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrackingError(f"tracking URI {uri!r}: cannot create {folder}: "
                                f"{e.strerror or e}") from None
        check_sqlite_store(Path(uri[len("sqlite:///"):]))


#: MLflow's tables that any of its SQLite stores holds.
MLFLOW_TABLES = {"experiments", "runs", "metrics", "params", "tags"}


def check_sqlite_store(path: Path) -> None:
    """A file at a SQLite tracking URI must be an MLflow store: an empty (0-byte) file, a file
    that is not SQLite, or a SQLite database with tables none of which are MLflow's is refused
    with one line; it is never taken as a new store and overwritten. No file: a new store."""
    if not path.exists():
        return
    if path.is_dir():
        raise TrackingError(f"{path}: is a folder, not an MLflow SQLite store")
    size = path.stat().st_size
    if size == 0:
        raise TrackingError(f"{path}: empty file (0 bytes), not an MLflow store; move it away "
                            "(a new store is created only where no file exists) or give another "
                            "--tracking-uri")
    with open(path, "rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        raise TrackingError(f"{path}: not a SQLite file, so not an MLflow store; give another "
                            "--tracking-uri")
    import sqlite3

    # Read-write when it can be: a writer killed inside a transaction leaves a *hot* journal
    # (``<file>-journal``) that SQLite rolls back on the next read-write open, and only there
    # (a read-only open fails with "attempt to write a readonly database"). ``mode=rw`` never
    # creates a file; SQLite's own locks make the roll-back safe beside live writers.
    journal = Path(f"{path}-journal")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if journal.exists() and not writable:
        raise TrackingError(f"{path}: a writer was killed inside a transaction ({journal.name} "
                            "is left) and this folder is read-only, so SQLite cannot roll it "
                            "back; open it once where it is writable")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode={'rw' if writable else 'ro'}",
                                                uri=True, timeout=60)) as db:
            tables = {r[0] for r in db.execute("select name from sqlite_master where "
                                               "type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise TrackingError(f"{path}: unreadable SQLite file ({e})") from None
    if tables and not MLFLOW_TABLES & tables:
        raise TrackingError(f"{path}: a SQLite database of something else (tables: "
                            + ", ".join(sorted(tables)[:5]) + "), not an MLflow store")


@contextlib.contextmanager
def store_lock(uri: str):
    """For a SQLite store: an exclusive lock on ``<file>.lock`` while the store is opened (and,
    on a fresh file, its schema created), so that processes started together take turns; two
    that ran the schema migrations at once failed with "duplicate column" or "table already
    exists". Other stores: nothing (their servers serialise it)."""
    db = sqlite_file(uri)
    if db is None:
        yield
        return
    import fcntl

    path = Path(f"{db}.lock")
    try:
        f = open(path, "a")
    except OSError:  # a read-only folder: nobody creates a schema there
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def template_path() -> Path | None:
    """Where a freshly created, empty SQLite store of this MLflow version is kept, so that a new
    store is a copy (milliseconds) instead of MLflow's schema migrations (seconds, in every new
    results folder). ``$DRKD_CACHE`` (default ``~/.cache/drkd-bench``); ``DRKD_CACHE=off``:
    none."""
    root = os.environ.get("DRKD_CACHE", "")
    if root.lower() in ("off", "0", "no"):
        return None
    base = Path(root) if root else Path.home() / ".cache" / "drkd-bench"
    return base / f"mlflow-{metadata.version('mlflow')}-empty.db"


def _copy_sqlite(src: Path, dst: Path) -> bool:
    """``src`` into ``dst`` through SQLite's backup (consistent even while ``src`` is open),
    written beside ``dst`` and renamed into place only when whole. False when it cannot be done
    (an unwritable folder, a broken template): the caller goes on without it."""
    import sqlite3

    try:
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(f"file:{src}?mode=ro", uri=True)) as a, \
                    contextlib.closing(sqlite3.connect(tmp)) as b:
                a.backup(b)
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True
    except (OSError, sqlite3.Error):
        return False


class Tracker:
    def __init__(self, uri: str | None = None, experiment: str = EXPERIMENT,
                 results: Path | str = "results"):
        self.results = Path(results)
        if uri is None:
            try:
                self.results.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise TrackingError(f"cannot create the results folder {self.results}: "
                                    f"{e.strerror or e}") from None
            uri = default_uri(self.results)
        check_uri(uri)
        self.uri = uri
        relocate(uri, self.results)
        try:
            with store_lock(uri):  # two processes never create the schema at once
                fresh = self._from_template(uri)
                self.client = MlflowClient(uri)
                if fresh is not None:  # MLflow just made the schema: keep an empty copy
                    _retry(lambda: self.client.search_experiments(max_results=1))
                    with contextlib.suppress(OSError):
                        template_path().parent.mkdir(parents=True, exist_ok=True)
                        _copy_sqlite(fresh, template_path())
                self.experiment_id = self._experiment(experiment)
        except TrackingError:
            raise
        except Exception as e:  # noqa: BLE001 - MLflow's many error types: one line for the user
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TrackingError(f"tracking URI {uri!r} cannot be used: {first}") from None

    @staticmethod
    def _from_template(uri: str) -> Path | None:
        """A new SQLite store starts as a copy of the cached empty store of this MLflow version
        (:func:`template_path`). Returns the store's path when MLflow has to create the schema
        itself and there is no template yet (the caller keeps a copy), else None."""
        template, path = template_path(), sqlite_file(uri)
        if template is None or path is None or path.exists():
            return None
        if template.is_file() and _copy_sqlite(template, path):
            import sqlite3

            with contextlib.closing(sqlite3.connect(path)) as db, db:  # as MLflow would set it
                db.execute("update experiments set artifact_location = ? where experiment_id = 0",
                           (str(Path.cwd() / "mlruns" / "0"),))
            return None
        return path

    def _experiment(self, name: str) -> str:
        found = _retry(lambda: self.client.get_experiment_by_name(name))
        if found:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:"):
            location = (self.results / "mlartifacts").resolve().as_uri()
        try:
            return _retry(lambda: self.client.create_experiment(name, artifact_location=location))
        except Exception:  # noqa: BLE001 - another process created it first
            found = _retry(lambda: self.client.get_experiment_by_name(name))
            if found:
                return found.experiment_id
            raise

    # --- lookup -------------------------------------------------------------------------------

    def runs(self, filter_string: str = "") -> list:
        out, token = [], None
        while True:
            page = _retry(lambda t=token: self.client.search_runs(
                [self.experiment_id], filter_string, max_results=1000, page_token=t))
            out += list(page)
            token = page.token
            if not token:
                return out

    def finished(self, cell_hash: str):
        runs = self.runs(f"tags.cell_hash = '{cell_hash}' and attributes.status = 'FINISHED'")
        return runs[0] if runs else None

    def unfinished(self, cell_hash: str):
        runs = [r for r in self.runs(f"tags.cell_hash = '{cell_hash}'")
                if r.info.status != "FINISHED" and r.data.tags.get("kind") != "superseded"]
        return runs[0] if runs else None

    def download(self, run_id: str, artifact: str, dst: Path) -> Path:
        dst.mkdir(parents=True, exist_ok=True)
        return Path(_retry(lambda: mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact, dst_path=str(dst), tracking_uri=self.uri)))

    def teacher_checkpoint(self, teacher_hash: str, dst: Path) -> tuple[str, Path] | None:
        """(run id, local path) of the self-teacher's weights, fetched through the artifact store
        (works from any machine that reaches the tracking URI), or None when the CE cell has not
        finished."""
        run = self.finished(teacher_hash)
        if run is None:
            return None
        rid = run.info.run_id
        return rid, self.download(rid, MODEL_ARTIFACT, dst / rid)

    # --- writing ------------------------------------------------------------------------------

    def start(self, cell_hash: str, name: str, tags: dict[str, str], params: dict[str, Any],
              checkpoint_epochs: int = 0, description: str = "",
              dataset: dict[str, str] | None = None) -> tuple[str, int]:
        """Resume the unfinished run of this cell or create one; returns (run id, epochs already
        logged). An unfinished run that logged more epochs than the local checkpoint holds (the
        cell restarts on a machine without its checkpoint) is marked superseded and replaced, so
        no metric is logged twice for one step."""
        old = self.unfinished(cell_hash)
        if old is not None:
            run_id = old.info.run_id
            history = _retry(lambda: self.client.get_metric_history(run_id, "train_loss"))
            logged = max((m.step for m in history), default=0)
            if logged <= checkpoint_epochs:
                _retry(lambda: self.client.update_run(run_id, status="RUNNING"))
                if "failure_reason" in old.data.tags:  # a retried failure: the reason is history
                    _retry(lambda: self.client.delete_tag(run_id, "failure_reason"))
                return run_id, logged
            self.set_tags(run_id, {"kind": "superseded"})
            self.set_status(run_id, "KILLED")
        return self.new_run(name, {"cell_hash": cell_hash, **tags}, params,
                            description=description, dataset=dataset), 0

    def new_run(self, name: str, tags: dict[str, str], params: dict[str, Any] | None = None,
                parent_run_id: str | None = None, description: str = "",
                dataset: dict[str, str] | None = None) -> str:
        """A run with the harness's provenance tags; ``parent_run_id`` nests it, ``description``
        is MLflow's run description, ``dataset`` (name, digest, source, context) its dataset
        input."""
        tags = {**tags, **provenance()}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        if description:
            tags["mlflow.note.content"] = description
        run = _retry(lambda: self.client.create_run(self.experiment_id, tags=tags, run_name=name))
        if params:
            _retry(lambda: self.client.log_batch(
                run.info.run_id, params=[Param(k, param_text(v)) for k, v in params.items()]))
        if dataset:
            self.log_dataset(run.info.run_id, dataset)
        return run.info.run_id

    def log_dataset(self, run_id: str, d: dict[str, str]) -> None:
        """MLflow's dataset input (the UI's Dataset column and filter)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        entity = Dataset(name=d["name"], digest=d["digest"], source_type="local",
                         source=json.dumps({"description": d["source"]}))
        tag = InputTag(key="mlflow.data.context", value=d.get("context", "training"))
        for attempt in range(5):
            try:
                _retry(lambda: self.client.log_inputs(run_id, [DatasetInput(entity, [tag])]))
                return
            except Exception as e:  # noqa: BLE001
                # Two workers that record the same dataset at once: one insert loses the race
                # on MLflow's unique (experiment, name, digest) key; the dataset now exists, so
                # the retry links to it.
                if "unique" not in str(e).lower() or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def log_epoch(self, run_id: str, row: dict) -> None:
        self.log_epochs(run_id, [row])

    def log_epochs(self, run_id: str, rows: list[dict]) -> None:
        """Per-epoch metrics (step = the row's epoch), in as few writes as MLflow allows."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, metric_value(v), now, int(row["epoch"])) for row in rows
                   for k, v in row.items() if k != "epoch"]
        for i in range(0, len(metrics), 1000):  # MLflow's limit per batch
            chunk = metrics[i:i + 1000]
            _retry(lambda chunk=chunk: self.client.log_batch(run_id, metrics=chunk))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        _retry(lambda: self.client.log_batch(
            run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()]))

    def finish(self, run_id: str, config: dict, history: list[dict], model_path: Path,
               logged: int) -> None:
        missing = [row for row in history if row["epoch"] > logged]
        if missing:  # epochs checkpointed but not logged before a crash
            self.log_epochs(run_id, missing)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "metrics.json").write_text(json.dumps(history, indent=1))
            (Path(tmp) / "config.json").write_text(json.dumps(config, indent=1, default=str))
            _retry(lambda: self.client.log_artifact(run_id, str(Path(tmp) / "metrics.json")))
            _retry(lambda: self.client.log_artifact(run_id, str(Path(tmp) / "config.json")))
        _retry(lambda: self.client.log_artifact(run_id, str(model_path), "checkpoint"))
        _retry(lambda: self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED)))

    def publish_report(self, folder: Path, grid: str, view_key: str | None = None) -> str:
        """Log the report written under ``folder`` (README, tables, figures) as the artifacts of
        one run (``kind = report``) for ``grid``, and give every training run of that grid a
        description that links to it and to the results view. Returns the report run's id."""
        for old in self.runs(f"tags.kind = 'report' and tags.grid = '{grid}'"):
            self.set_tags(old.info.run_id, {"kind": "superseded"})  # one current report a grid
        run_id = self.new_run(f"report {grid}", {"kind": "report", "grid": grid},
                              description=f"The report of grid {grid}: open report.html under "
                                          "Artifacts (figures and tables in one page); "
                                          "README.md, tables/ and figures/ are there too.")
        folder = Path(folder)
        _retry(lambda: self.client.log_artifact(run_id, str(folder / "README.md")))
        if (folder / "report.html").is_file():  # the page that reads inside MLflow's viewer
            _retry(lambda: self.client.log_artifact(run_id, str(folder / "report.html")))
        for sub in ("tables", "figures"):
            if (folder / sub).is_dir():
                _retry(lambda sub=sub: self.client.log_artifacts(run_id, str(folder / sub), sub))
        _retry(lambda: self.client.set_terminated(run_id, "FINISHED"))
        links = (f"[The grid's report and figures](#/experiments/{self.experiment_id}/runs/"
                 f"{run_id}/artifacts/report.html?workflowType=machine_learning)")
        if view_key:
            links += (f" · [all results, averaged per variant](#/experiments/"
                      f"{self.experiment_id}/runs?workflowType=machine_learning&"
                      f"viewStateShareKey={view_key})")
        for run in self.runs(f"tags.kind = 'train' and tags.grid = '{grid}'"):
            note = run.data.tags.get("mlflow.note.content", "").split("\n\n[The grid's")[0]
            self.set_tags(run.info.run_id, {"mlflow.note.content": f"{note}\n\n{links}",
                                            "report_run": run_id})
        return run_id

    def set_status(self, run_id: str, status: str) -> None:
        _retry(lambda: self.client.set_terminated(run_id, status))

    def fail(self, run_id: str, reason: str) -> None:
        self.set_tags(run_id, {"failure_reason": reason[:4000]})
        _retry(lambda: self.client.set_terminated(run_id, "FAILED"))

