"""``drkd-bench ui``: the tools researchers already open, pointed at the results.

Starts the MLflow UI on the tracking store and, when optuna-dashboard is installed and there are
studies, optuna-dashboard on the Optuna storage; prints the URLs and serves until Ctrl-C. The
MLflow URL opens the runs table in training mode (not MLflow 3's GenAI pages) with the results
visible: final test and validation top-1 and ECE columns, grouped by dataset, arch and variant,
tuning trials and study runs filtered out. That view is one of MLflow's shared view states, an
experiment tag ``mlflow.sharedViewState.<key>`` holding plain JSON, opened by
``?viewStateShareKey=<key>``; its format was read from and tested with MLflow 3.x (see
``MLFLOW_TESTED``).

The MLflow UI runs as one viewer needs it: one web worker (MLflow's default is 4) and without
MLflow 3's job runner (huey consumers for GenAI judges and trace roll-ups, which this harness
never schedules). On a 2-core machine that is 2 processes instead of 15, and the UI answers in
about 8 s instead of 25 s (30 s of CPU down to 9 s, measured side by side on the same store).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmark.store.tracking import PERCENT_METRICS, Tracker

VIEW_KEY = "drkd-bench-results"
MLFLOW_TESTED = "3."  # the view-state format below was checked against MLflow 3.x's web app
KIND_TAG = "mlflow.experimentKind"
VIEW_TAG = "mlflow.sharedViewState."
#: The results columns: final top-1 and ECE in per cent (the metrics a finished run logs for
#: reading; MLflow prints values as stored), test top-1 first, then NLL and seconds per epoch.
COLUMNS = list(PERCENT_METRICS.values()) + ["test_nll", "epoch_seconds"]
GROUP = ["variant", "arch", "dataset"]  # the variant first: a group row's label names it


#: MLflow's id of the run-name column (``attributes.`Run Name```), and its width in the results
#: view: MLflow's default cut a group's label to "Group: variant: ..."; at 460 px it reads
#: "Group: variant: drkd-pretrained-tuned, arch: cnn28s, dataset: fashion-mnist:sym40". MLflow
#: applies a view's widths only to the columns its ``columnOrder`` lists, so the view lists them.
NAME_COLUMN = "attributes.`Run Name`"
NAME_WIDTH = 460


def _laid_out(view: dict) -> dict:
    """The view with its column order (run name, then its selected columns, as listed) and the
    run-name column's width."""
    return {**view, "columnOrder": [NAME_COLUMN] + view["selectedColumns"],
            "columnWidths": {NAME_COLUMN: NAME_WIDTH}}


#: The second view: every training run, one row each, failed and unfinished ones included.
ALL_RUNS_KEY = "drkd-bench-all-runs"


def results_view(grid: str | None = None) -> dict:
    """The runs table a researcher wants first: finished training runs (a failed run's partial
    metrics would enter the averages) of one grid (``grid``; every grid when None: grids that
    share a store never pool under one label), the result columns, averaged per (dataset,
    arch, variant) over seeds, in the order the grid created them (CE, listed first, on top),
    with the grid as a column."""
    only = f" and tags.grid = '{grid}'" if grid else ""
    return _laid_out({
        "searchFilter": f"tags.kind = 'train' and attributes.status = 'FINISHED'{only}",
        "orderByKey": "attributes.start_time", "orderByAsc": True,
        "selectedColumns": [f"metrics.`{m}`" for m in COLUMNS] + ["tags.`grid`", "tags.`seed`",
                                                                  "tags.`teacher_source`"],
        "groupBy": {"aggregateFunction": "average",
                    "groupByKeys": [{"mode": "tag", "groupByData": k} for k in GROUP]},
        "groupsExpanded": {}, "runListHidden": False, "viewMaximized": False,
    })


def all_runs_view() -> dict:
    """Every training run as its own row, failed and unfinished ones included, with the reason
    a run failed as a column."""
    return _laid_out({
        "searchFilter": "tags.kind = 'train'", "orderByKey": "attributes.start_time",
        "orderByAsc": True,
        "selectedColumns": [f"metrics.`{m}`" for m in COLUMNS[:2]] + [
            "tags.`grid`", "tags.`seed`", "tags.`teacher_source`", "tags.`failure_reason`"],
        "groupsExpanded": {}, "runListHidden": False, "viewMaximized": False})


def grid_view_key(grid: str) -> str:
    """The results view of one grid: :data:`VIEW_KEY` and the grid's name (URL-safe)."""
    import re

    return f"{VIEW_KEY}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', grid)}"


def newest_grid(tracker: Tracker) -> str | None:
    """The grid of the most recently started training run in the store, or None."""
    runs = tracker.client.search_runs([tracker.experiment_id], "tags.kind = 'train'",
                                      order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].data.tags.get("grid") if runs else None


def install_view(tracker: Tracker, grid: str | None = None) -> str:
    """Mark the experiment as model training and store the results views (every grid's, and
    ``grid``'s own when given); returns the key of the view to open: ``grid``'s, else every
    grid's."""
    import mlflow

    if not mlflow.__version__.startswith(MLFLOW_TESTED):
        print(f"drkd-bench ui: the results view was tested with MLflow {MLFLOW_TESTED}x, this "
              f"is {mlflow.__version__}; it may open unfiltered", file=sys.stderr)
    client = tracker.client
    client.set_experiment_tag(tracker.experiment_id, KIND_TAG, "custom_model_development")
    client.set_experiment_tag(tracker.experiment_id, VIEW_TAG + VIEW_KEY,
                              json.dumps(results_view(), sort_keys=True))
    client.set_experiment_tag(tracker.experiment_id, VIEW_TAG + ALL_RUNS_KEY,
                              json.dumps(all_runs_view(), sort_keys=True))
    if not grid:
        return VIEW_KEY
    client.set_experiment_tag(tracker.experiment_id, VIEW_TAG + grid_view_key(grid),
                              json.dumps(results_view(grid), sort_keys=True))
    return grid_view_key(grid)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(host: str, port: int, flag: str) -> None:
    """One line (``UIError``) when something already listens on ``host:port``: the server
    started there would fail while the URL showed the other server's pages."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise UIError(f"{host}:{port} is already in use (another server?); choose another "
                          f"{flag}, or 0 for a free one") from None


class UIError(RuntimeError):
    """A UI server that cannot start as asked (one line at the command line)."""


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


#: The page of benchmark/store/mlflow_app.py that puts MLflow's UI in its training view, then opens
#: the route in its fragment.
OPEN_PATH = "/drkd-bench/open"


def mlflow_url(host: str, port: int, experiment_id: str, view: str = VIEW_KEY) -> str:
    """The runs tab with the results view, through :data:`OPEN_PATH`: MLflow 3 opens its GenAI
    pages unless its stored view says training (the experiment's ``mlflow.experimentKind`` tag
    does not decide it), and a run opened from the table carries no URL parameter."""
    return (f"http://{host}:{port}{OPEN_PATH}#/experiments/{experiment_id}/runs?"
            f"workflowType=machine_learning&viewStateShareKey={view}")


#: Where ``drkd-bench ui`` serves by default (``--host``, ``--port``, ``--dashboard-port``): the
#: links a study writes for people (a trial's note, the study run's description) point there.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_DASHBOARD_PORT = 8080


def run_link(experiment_id: str, run_id: str, host: str = DEFAULT_HOST,
             port: int = DEFAULT_PORT) -> str:
    """One run's page in the MLflow UI as ``drkd-bench ui`` serves it (training view)."""
    return (f"http://{host}:{port}{OPEN_PATH}#/experiments/{experiment_id}/runs/{run_id}"
            "?workflowType=machine_learning")


def dashboard_link(study_id: int, trial: int | None = None, host: str = DEFAULT_HOST,
                   port: int = DEFAULT_DASHBOARD_PORT) -> str:
    """A study's page (or one trial's) in optuna-dashboard as ``drkd-bench ui`` serves it."""
    page = f"http://{host}:{port}/dashboard/studies/{study_id}"
    return page + (f"/trials?numbers={trial}" if trial is not None else "")


def serve(tracker: Tracker, storage: str | None, host: str = "127.0.0.1", port: int = 0,
          dashboard_port: int = 0, say=print, note=print, view: str = VIEW_KEY) -> None:
    """Start the servers, ``say`` where they are (one URL: the runs table in ``view``; the
    dashboard's on a second line when it runs), serve until interrupted, then stop them.
    Progress and notices go to ``note``. The results view opens on the newest grid's runs."""
    grid = newest_grid(tracker)
    tracker.backfill_percent()  # a store older than the per-cent columns shows them too
    key = install_view(tracker, grid)
    if view == VIEW_KEY:
        view = key
    port = port or free_port(host)
    if dashboard_port:
        check_port_free(host, dashboard_port, "--dashboard-port")
    check_port_free(host, port, "--port")
    procs = [_start([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracker.uri,
                     "--host", host, "--port", str(port), "--workers", "1",
                     "--app-name", "drkd-bench"],  # benchmark/store/mlflow_app.py: training view
                    env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})]
    try:
        note("starting the MLflow UI (20-30 s on a busy 2-core machine) ...")
        wait_until_up(f"http://{host}:{port}/health", procs[0])
        words = "every training run, failed ones included" if view == ALL_RUNS_KEY else \
            f"results of grid {grid} by dataset, arch, variant" if grid else \
            "results by dataset, arch, variant"
        say(f"MLflow UI ({words}): {mlflow_url(host, port, tracker.experiment_id, view)}")
        if not (storage and (("://" in storage) or Path(storage).is_file())):
            note(f"optuna-dashboard not started: no Optuna studies at {storage} (drkd-bench "
                 "tune writes them there)")
        else:
            exe = dashboard_command()
            if exe is None:
                note("optuna-dashboard is not installed (pip install -e '.[ui]'); studies: "
                     "drkd-bench tune CONFIG --show")
            else:
                dport = dashboard_port or free_port(host)
                procs.append(_start([exe, storage, "--host", host, "--port", str(dport)]))
                wait_until_up(f"http://{host}:{dport}/", procs[-1])
                say(f"optuna-dashboard (studies): http://{host}:{dport}/")
        note("serving; Ctrl-C stops")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            _stop(p)


def dashboard_command() -> str | None:
    """The optuna-dashboard console script of this environment (an optional dependency)."""
    beside = Path(sys.executable).parent / "optuna-dashboard"
    return str(beside) if beside.is_file() else shutil.which("optuna-dashboard")


def _start(argv: list[str], env: dict | None = None) -> subprocess.Popen:
    """A server in a session of its own, so that stopping it stops every process it started
    (the MLflow UI runs a web server and its workers)."""
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # children still in the group after the leader exited
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
