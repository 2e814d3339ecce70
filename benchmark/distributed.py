"""Ray: run grid cells and tuning workers as Ray tasks (the only module that imports ray).

A cell is a task declaring its CPU threads (and one GPU when the device is CUDA); Ray retries a
task whose worker process died (``max_retries``), and a retried cell resumes its MLflow run from
the local epoch checkpoint when there is one, or supersedes it when there is none, so a cell is
never tracked as finished twice. Teachers come through the MLflow artifact store, so a worker on
another machine needs only the tracking URI and the data root.
"""
from __future__ import annotations

import os

import ray


def init(address: str | None, workers: int, threads: int, quiet: bool) -> None:
    """Connect to ``address`` (a running cluster, e.g. ``ray://head:10001`` or ``auto``) or start
    a local one sized for ``workers`` tasks of ``threads`` CPUs."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    if address:
        ray.init(address=address, log_to_driver=not quiet)
    else:
        ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=not quiet,
                 configure_logging=False)


def _cell(spec, uri: str, results: str, data_root, device, threads: int, quiet: bool) -> dict:
    import torch

    from .grid import epoch_line
    from .runner import run_cell
    from .tracking import Tracker

    torch.set_num_threads(threads)
    tracker = Tracker(uri, results=results)
    say = (lambda s, row: None) if quiet else (lambda s, row: print(epoch_line(s, row),
                                                                    flush=True))
    return run_cell(spec, tracker, data_root=data_root, device=device, train_teacher=False,
                    on_epoch=say).final


def submit_cell(spec, uri: str, results: str, data_root, device, threads: int, quiet: bool):
    gpus = 1 if device and str(device).startswith("cuda") else 0
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=3)(_cell)
    return task.remote(spec, uri, results, data_root, device, threads, quiet)


def _tune_worker(study_def, kwargs: dict, worker: int, threads: int) -> None:
    from .tune import _worker

    _worker(study_def, kwargs, worker, threads)


def run_tune_workers(study_def, per_worker: list[dict], threads: int) -> None:
    """One task per worker, each running its own share of the trials."""
    task = ray.remote(num_cpus=threads, max_retries=3)(_tune_worker)
    ray.get([task.remote(study_def, kw, w, threads) for w, kw in enumerate(per_worker)])


def wait(refs: list, timeout: float):
    return ray.wait(refs, num_returns=1, timeout=timeout)


def result(ref):
    """The task's value; the original exception when the task raised."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.as_instanceof_cause()
        raise getattr(e, "cause", None) or cause from None
