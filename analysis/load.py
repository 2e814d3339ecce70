"""Tracked runs into tidy pandas frames (the only module of ``analysis`` that imports mlflow).

``epochs`` frame: one row per (run, epoch) with the run's identity columns repeated (also the
format of ``drkd-bench export``). ``runs`` frame: one row per run with its final-epoch metrics,
its best-validation-epoch test accuracy and the paper-style best-test-epoch accuracy.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

IDENTITY = ["run_id", "status", "kind", "cell_key", "cell_hash", "dataset", "arch", "method",
            "variant", "seed", "teacher_source", "fidelity", "study", "trial", "state",
            "failure_reason", "reference", "condition"]

#: Provenance tags exported beside ``version.*`` (what ``drkd-bench reproduce`` compares).
ENVIRONMENT_TAGS = ("device", "threads", "python", "platform", "cpu", "cpu_vendor",
                    "cpu_capability", "cpu_flags", "git_commit", "hash_scheme", "grid",
                    "grid_config", "memory_format")

#: Metric names written before the diagnostics were named by their methods (``diag_<name>``).
LEGACY_COLUMNS = {"rectification_rate": "diag_rectified", "teacher_train_acc": "diag_teacher_top1"}


def _local_artifact(artifact_uri: str | None, name: str) -> Path | None:
    """The artifact ``name`` read in place where the run's artifacts lie in a local folder that
    holds it (a ``file:`` URI or a plain path), else None (then MLflow downloads it: a copy per
    run cost 24 ms, a 5,000-run edition two minutes)."""
    from urllib.parse import unquote, urlparse

    if not artifact_uri:
        return None
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        folder = Path(unquote(parsed.path))
    elif not parsed.scheme or len(parsed.scheme) == 1:  # a bare path (or a Windows drive)
        folder = Path(artifact_uri)
    else:
        return None
    path = folder / name
    return path if path.is_file() else None


def epochs_from_tracking(uri: str, experiment: str = "drkd-bench") -> pd.DataFrame:
    """Every run of ``experiment`` in the store at ``uri``; finished runs with their per-epoch
    history (from the run's ``metrics.json`` artifact), other runs as one row without epochs."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame(columns=IDENTITY + ["epoch"])
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            break
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            tags, params = run.data.tags, run.data.params
            base = {"run_id": run.info.run_id, "status": run.info.status,
                    "kind": tags.get("kind", "train")}
            base.update({key: tags.get(key, "") for key in IDENTITY[3:]})
            base["seed"] = int(tags["seed"]) if tags.get("seed", "").lstrip("-").isdigit() else -1
            base.update({f"param.{k}": v for k, v in sorted(params.items())})
            base.update({f"tag.{k}": v for k, v in sorted(tags.items())
                         if k.startswith(("diag.", "version.")) or k in ENVIRONMENT_TAGS})
            history = []
            if run.info.status == "FINISHED" and base["kind"] == "train":
                try:
                    path = _local_artifact(run.info.artifact_uri, "metrics.json") or \
                        mlflow.artifacts.download_artifacts(
                            run_id=run.info.run_id, artifact_path="metrics.json",
                            dst_path=tmp, tracking_uri=uri)
                    history = json.loads(Path(path).read_text())
                except Exception:  # noqa: BLE001 - a run without its history is still listed
                    history = []
            if not history and run.data.metrics:
                history = [{"epoch": np.nan, **run.data.metrics}]
            if history and tags.get("test_correct"):  # the finished model's, on its last row
                history[-1] = {**history[-1], "test_correct": tags["test_correct"],
                               "test_images": int(tags.get("test_images", 0)) or np.nan}
            for row in history or [{"epoch": np.nan}]:
                rows.append({**base, **row})
            # a cell that also stands for tuned variants (their study chose its settings):
            # its rows again under each label, as a run of its own
            for alias in filter(None, tags.get("aliases", "").split(",")):
                key = base["cell_key"].replace(f"/{base['variant']}/", f"/{alias}/", 1)
                for row in history or [{"epoch": np.nan}]:
                    rows.append({**base, "run_id": f"{base['run_id']}:{alias}",
                                 "variant": alias, "cell_key": key, **row})
    frame = pd.DataFrame(rows)
    return sort_epochs(frame)


def thin_epochs(frame: pd.DataFrame, every: int) -> pd.DataFrame:
    """Every ``every``-th epoch row of each run, its last epoch row (where its final metrics
    and per-image correctness are) and its rows without an epoch; the rest dropped."""
    epoch = frame["epoch"]
    last = epoch.eq(epoch.groupby(frame["run_id"]).transform("max"))
    keep = epoch.isna() | last | (epoch % every == 0)
    return frame[keep].reset_index(drop=True)


def sort_epochs(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    frame = frame.rename(columns={k: v for k, v in LEGACY_COLUMNS.items() if v not in frame})
    lead = [c for c in IDENTITY if c in frame.columns] + ["epoch"]
    rest = sorted(c for c in frame.columns if c not in lead)
    frame = frame[lead + rest]
    return frame.sort_values(["dataset", "arch", "variant", "seed", "cell_hash", "run_id",
                              "epoch"], kind="stable").reset_index(drop=True)


def edition_csv(folder: Path | str) -> Path:
    """An edition's raw records: ``runs.csv``, or ``runs.csv.gz`` where the records are too
    large to commit as text (the fourth edition's epoch rows)."""
    folder = Path(folder)
    gz = folder / "runs.csv.gz"
    return gz if gz.is_file() and not (folder / "runs.csv").is_file() else folder / "runs.csv"


def analysed(column: str) -> bool:
    """Whether the analysis reads ``column`` (every one but the provenance tags, which only
    ``reproduce`` compares; a grid's tags stay: the report is written per grid)."""
    return not column.startswith("tag.") or column.startswith(("tag.diag.", "tag.grid"))


def epochs_from_csv(path: Path | str, environment: bool = True) -> pd.DataFrame:
    """The epoch rows of an exported runs CSV (plain or gzipped), sorted; without the
    provenance tags unless ``environment`` (they repeat on every epoch row: a report never reads
    them). The whole file is read before each column's type is inferred (``low_memory=False``):
    read in chunks, a column whose first values are booleans and later ones strings came out
    with mixed types."""
    frame = pd.read_csv(path, dtype={c: str for c in IDENTITY if c != "seed"},
                        keep_default_na=False, na_values=[""], low_memory=False,
                        usecols=None if environment else analysed)
    for c in IDENTITY:
        if c in frame.columns and c != "seed":
            frame[c] = frame[c].fillna("")
    return sort_epochs(frame)


def finished_runs_from_csv(path: Path | str) -> pd.DataFrame:
    """The finished training runs of one exported runs CSV, a row each
    (:func:`runs_from_epochs`), without the provenance tags."""
    epochs = epochs_from_csv(path, environment=False)
    return runs_from_epochs(epochs[(epochs["kind"] == "train")
                                   & (epochs["status"] == "FINISHED")])


def runs_from_epochs(epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: identity, final-epoch metrics (``final_*``), ``best_val_test_top1`` (the
    test accuracy at the epoch of best validation accuracy, first such epoch, among the epochs
    evaluated on the test split) and
    ``best_test_top1`` (max over epochs of test accuracy: the papers' optimistic protocol).
    Whole-frame operations, not a loop over runs (an edition's 1,460 runs took 20 s that way)."""
    if epochs.empty:
        return pd.DataFrame(columns=IDENTITY)
    order = pd.unique(epochs["run_id"])
    ordered = epochs.sort_values("epoch", kind="stable", na_position="last")
    by_run = lambda frame: frame.set_index("run_id", drop=False).reindex(order)  # noqa: E731
    first = by_run(ordered.drop_duplicates("run_id", keep="first"))
    out = first[[c for c in IDENTITY if c in epochs.columns]].reset_index(drop=True)
    timed = ordered[ordered["epoch"].notna()]
    last = by_run(timed.drop_duplicates("run_id", keep="last"))
    out["epochs"] = _ints(last["epoch"].to_numpy())
    finals = [c for c in epochs.columns
              if c not in IDENTITY and c != "epoch" and not c.startswith("param.")]
    final = last[finals].reset_index(drop=True)
    final.columns = [f"final_{c}" for c in finals]
    out = pd.concat([out, final], axis=1)
    if "val_top1" in timed:
        scored = timed
        if "test_top1" in timed:  # among the epochs that have a test value, where a run has any
            tested = timed["test_top1"].notna()
            scored = timed[tested | ~tested.groupby(timed["run_id"]).transform("any")]
        scored = scored[scored["val_top1"].notna()]
        best = scored.loc[scored.groupby("run_id", sort=False)["val_top1"].idxmax()]
        best = by_run(best).reset_index(drop=True)
        out["best_val_epoch"] = _ints(best["epoch"].to_numpy())
        out["best_val_test_top1"] = best["test_top1"] if "test_top1" in best else np.nan
    if "test_top1" in timed:
        out["best_test_top1"] = timed.groupby("run_id", sort=False)["test_top1"].max() \
            .reindex(order).to_numpy()
    return out


def _ints(values: np.ndarray) -> np.ndarray:
    """Whole numbers as int64 where none is missing, else floats with NaN (as a frame built from
    rows of Python ints, some absent, holds them)."""
    values = values.astype(float)
    return values.astype(np.int64) if not np.isnan(values).any() else values
