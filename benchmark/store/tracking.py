"""The MLflow side (the only module of ``benchmark`` that imports mlflow): start or resume a run
per cell, log per-epoch metrics, store the final checkpoint, find finished cells and teachers.

The default store is a SQLite database under ``results/``; any tracking URI is accepted. Every
call that writes goes through :func:`retry`, so several local processes can share one SQLite file.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmark.store.location import (  # noqa: F401  (EXPERIMENT, MODEL_ARTIFACT: the store's names)
    EXPERIMENT,
    MODEL_ARTIFACT,
    check_uri,
    copy_sqlite,
    default_uri,
    relocate,
    retry,
    sqlite_file,
    store_lock,
    template_path,
)
from benchmark.store.provenance import provenance

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

#: Fractions a finished run also logs in per cent with one decimal, for reading, under names
#: that MLflow's runs table (which sorts metric columns by name) puts first, test top-1 leading.
PERCENT_METRICS = {"test_top1": "acc_test_pct", "val_top1": "acc_val_pct",
                   "test_ece": "ece_test_pct", "val_ece": "ece_val_pct"}



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



class Tracker:
    def __init__(self, uri: str | None = None, experiment: str = EXPERIMENT,
                 results: Path | str = "results"):
        self.results = Path(results)
        self.uri = uri if uri is not None else self._default_store()
        check_uri(self.uri)
        relocate(self.uri, self.results)
        self._connect(experiment)

    def _default_store(self) -> str:
        """The SQLite store under the results folder (made here when it is missing)."""
        try:
            self.results.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrackingError(f"cannot create the results folder {self.results}: "
                                f"{e.strerror or e}") from None
        return default_uri(self.results)

    def _connect(self, experiment: str) -> None:
        """The client and the experiment's id; a new SQLite store starts from the cached empty
        store (or leaves a copy for the next one); any failure is one line."""
        uri = self.uri
        try:
            with store_lock(uri):  # two processes never create the schema at once
                fresh = self._from_template(uri)
                self.client = MlflowClient(uri)
                if fresh is not None:  # MLflow just made the schema: keep an empty copy
                    retry(lambda: self.client.search_experiments(max_results=1))
                    with contextlib.suppress(OSError):
                        template_path().parent.mkdir(parents=True, exist_ok=True)
                        copy_sqlite(fresh, template_path())
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
        if template.is_file() and copy_sqlite(template, path):
            import sqlite3

            with contextlib.closing(sqlite3.connect(path)) as db, db:  # as MLflow would set it
                db.execute("update experiments set artifact_location = ? where experiment_id = 0",
                           (str(Path.cwd() / "mlruns" / "0"),))
            return None
        return path

    def _experiment(self, name: str) -> str:
        found = retry(lambda: self.client.get_experiment_by_name(name))
        if found:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:"):
            location = (self.results / "mlartifacts").resolve().as_uri()
        try:
            return retry(lambda: self.client.create_experiment(name, artifact_location=location))
        except Exception:  # noqa: BLE001 - another process created it first
            found = retry(lambda: self.client.get_experiment_by_name(name))
            if found:
                return found.experiment_id
            raise

    # --- lookup -------------------------------------------------------------------------------

    def runs(self, filter_string: str = "") -> list:
        out, token = [], None
        while True:
            page = retry(lambda t=token: self.client.search_runs(
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
        return Path(retry(lambda: mlflow.artifacts.download_artifacts(
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
            history = retry(lambda: self.client.get_metric_history(run_id, "train_loss"))
            logged = max((m.step for m in history), default=0)
            if logged <= checkpoint_epochs:
                retry(lambda: self.client.update_run(run_id, status="RUNNING"))
                if "failure_reason" in old.data.tags:  # a retried failure: the reason is history
                    retry(lambda: self.client.delete_tag(run_id, "failure_reason"))
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
        run = retry(lambda: self.client.create_run(self.experiment_id, tags=tags, run_name=name))
        if params:
            retry(lambda: self.client.log_batch(
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
                retry(lambda: self.client.log_inputs(run_id, [DatasetInput(entity, [tag])]))
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
            retry(lambda chunk=chunk: self.client.log_batch(run_id, metrics=chunk))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        retry(lambda: self.client.log_batch(
            run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()]))

    def finish(self, run_id: str, config: dict, history: list[dict], model_path: Path,
               logged: int) -> None:
        missing = [row for row in history if row["epoch"] > logged]
        if missing:  # epochs checkpointed but not logged before a crash
            self.log_epochs(run_id, missing)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "metrics.json").write_text(json.dumps(history, indent=1))
            (Path(tmp) / "config.json").write_text(json.dumps(config, indent=1, default=str))
            retry(lambda: self.client.log_artifact(run_id, str(Path(tmp) / "metrics.json")))
            retry(lambda: self.client.log_artifact(run_id, str(Path(tmp) / "config.json")))
        retry(lambda: self.client.log_artifact(run_id, str(model_path), "checkpoint"))
        if history:
            self.log_percent(run_id, history[-1])
        retry(lambda: self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED)))

    def backfill_percent(self) -> int:
        """Finished training runs from before the per-cent metrics existed get them from their
        final fractions (the results view shows those columns); returns how many."""
        done = 0
        for r in self.runs("tags.kind = 'train' and attributes.status = 'FINISHED'"):
            metrics = r.data.metrics
            if "test_top1" in metrics and PERCENT_METRICS["test_top1"] not in metrics:
                try:  # the step: the run's last epoch, as a new run logs it
                    epoch = int(float(r.data.params.get("train.epochs", 0)))
                except ValueError:
                    epoch = 0
                self.log_percent(r.info.run_id, {**metrics, "epoch": epoch})
                done += 1
        return done

    def log_percent(self, run_id: str, final: dict) -> None:
        """The final epoch's fractions again in per cent, one decimal, named by
        :data:`PERCENT_METRICS` (the results view's columns: MLflow prints a metric as stored,
        and the CLI and report speak per cent). The fractions stay the record; these are for
        reading."""
        now = int(time.time() * 1000)
        metrics = [Metric(name, round(100 * float(final[k]), 1), now, int(final["epoch"]))
                   for k, name in PERCENT_METRICS.items() if final.get(k) is not None]
        if metrics:
            retry(lambda: self.client.log_batch(run_id, metrics=metrics))

    def publish_report(self, folder: Path, grid: str, view_key: str | None = None) -> str:
        """Log the report written under ``folder`` (README, tables, figures) as the artifacts of
        one run (``kind = report``) for ``grid``, and give every training run of that grid a
        description that links to it and to the results view. Returns the report run's id."""
        for old in self.runs(f"tags.kind = 'report' and tags.grid = '{grid}'"):
            self.set_tags(old.info.run_id, {"kind": "superseded"})  # one current report a grid
        run_id = self.new_run(f"report {grid}", {"kind": "report", "grid": grid},
                              description=f"The report of grid {grid}: open report.html under "
                                          "Artifacts (figures and tables in one page); "
                                          "tables/ (CSV, Markdown, LaTeX) and figures/ (PNG, "
                                          "PDF) are there too.")
        self._log_report(run_id, Path(folder))
        self._link_report(run_id, grid, view_key)
        self._describe_experiment()
        return run_id

    def _describe_experiment(self) -> None:
        """The experiment's description (its page's first words) links to each grid's current
        report: report and study runs are filtered out of the results views, so this is the
        way in from the experiment."""
        reports = sorted(self.runs("tags.kind = 'report'"),
                         key=lambda r: r.data.tags.get("grid", ""))
        # one line: MLflow shows a description's first line and folds the rest away
        links = " · ".join(f"[{r.data.tags.get('grid', '?')}](#/experiments/{self.experiment_id}"
                           f"/runs/{r.info.run_id}/artifacts/report.html?"
                           "workflowType=machine_learning)" for r in reports)
        text = f"drkd-bench results. Each grid's report (tables and figures in one page): {links}"
        retry(lambda: self.client.set_experiment_tag(self.experiment_id, "mlflow.note.content",
                                                     text))

    def _log_report(self, run_id: str, folder: Path) -> None:
        """The report's files as the run's artifacts (report.html, tables, figures; not its
        README.md, whose image and table links MLflow's viewer shows as text and 404s: the page
        is the README rendered whole); the run finished."""
        if (folder / "report.html").is_file():  # the page that reads inside MLflow's viewer
            retry(lambda: self.client.log_artifact(run_id, str(folder / "report.html")))
        for sub in ("tables", "figures"):
            if (folder / sub).is_dir():
                retry(lambda sub=sub: self.client.log_artifacts(run_id, str(folder / sub), sub))
        retry(lambda: self.client.set_terminated(run_id, "FINISHED"))

    def _link_report(self, run_id: str, grid: str, view_key: str | None) -> None:
        """Every training run of ``grid`` gets links to the report (and the results view) at
        the end of its description, replacing the links an earlier report left."""
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

    def set_status(self, run_id: str, status: str) -> None:
        retry(lambda: self.client.set_terminated(run_id, status))

    def fail(self, run_id: str, reason: str) -> None:
        self.set_tags(run_id, {"failure_reason": reason[:4000]})
        retry(lambda: self.client.set_terminated(run_id, "FAILED"))
