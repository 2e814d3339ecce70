"""Ray: run functions of the harness as Ray tasks (the only module that imports ray; it imports
nothing of the harness, the callers hand it their task functions).

A task declares its CPU threads (and a GPU when the device is CUDA); Ray retries a task whose
worker process died (``max_retries``), and a retried grid cell resumes its MLflow run from the
local epoch checkpoint when there is one, or supersedes it when there is none, so a cell is never
tracked as finished twice. Teachers come through the MLflow artifact store, so a worker on another
machine needs only the tracking URI and the data root.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import ray


def init(address: str | None, workers: int, threads: int | None, quiet: bool) -> None:
    """Connect to ``address`` (a running cluster, e.g. ``ray://head:10001`` or ``auto``) or start
    a local one sized for ``workers`` tasks of ``threads`` CPUs."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    if address:
        ray.init(address=address, log_to_driver=not quiet)
    else:
        ray.init(num_cpus=workers * (threads or 1), include_dashboard=False,
                 log_to_driver=not quiet, configure_logging=False)


def say(line: str) -> None:
    """Print from inside a task (Ray forwards a task's stdout to the driver)."""
    print(line, flush=True)


def submit(fn: Callable, args: tuple, cpus: int | None, gpus: float = 0):
    """``fn(*args)`` as a Ray task; returns its reference."""
    return ray.remote(num_cpus=cpus or 1, num_gpus=gpus, max_retries=3)(fn).remote(*args)


def run_all(fn: Callable, arg_tuples: list[tuple], cpus: int | None, gpus: float = 0) -> list:
    """``fn(*args)`` for each tuple as parallel tasks; waits for all of them."""
    return ray.get([submit(fn, args, cpus, gpus) for args in arg_tuples])


def wait(refs: list, timeout: float):
    return ray.wait(refs, num_returns=1, timeout=timeout)


def result(ref):
    """The task's value; the original exception when the task raised."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.as_instanceof_cause()
        raise getattr(e, "cause", None) or cause from None
