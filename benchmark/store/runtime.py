"""Run-time settings: where things are and what runs them. They never change a result (the cell
hash leaves them out), so they travel as one object from the command line to every layer."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path


def cores() -> int:
    """The CPU cores this process may run on: its affinity (``taskset``, a container's cpuset),
    not the machine's count. Two jobs pinned to one core each then train one thread each;
    sized from the machine's count, each took every core's thread and, oversubscribed, the
    OpenMP threads of two 2-thread studies on 2 cores trained 30 times slower (2.0 s a trial
    against 60 s; PROVENANCE, fifth edition)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_note(workers: int, device: str | None = None) -> str | None:
    """One line when this job's processes will run several CPU threads each on a machine that
    is already busy (1-minute load of at least one core): their OpenMP threads and the other
    job's then outnumber the cores, and training slows many-fold. None otherwise."""
    if str(device or "").startswith("cuda") or not hasattr(os, "getloadavg"):
        return None
    n = cores()
    threads = n // max(1, workers)
    load = os.getloadavg()[0]
    if threads < 2 or load < 1.0:
        return None
    return (f"note: the machine is busy (1-minute load {load:.1f} on {n} cores) and each "
            f"of this job's {workers} process(es) will run {threads} threads: threads beyond "
            "the cores train many times slower (30x measured); pin each job to its own cores "
            "(taskset -c 0 drkd-bench ...) or give --workers so each process runs one thread")


@dataclass(frozen=True)
class Runtime:
    """``results``: the folder for the store, checkpoints and reports; ``tracking_uri``: MLflow
    (default: SQLite under ``results``); ``data_root``: where datasets are looked for; ``device``:
    cpu, cuda, cuda:1 or auto; ``threads``: torch CPU threads of this process (None: torch's);
    ``checkpoint_seconds``: the least time between two resume checkpoints of a run (and the
    per-epoch metrics sent to the store with each): a crash loses at most that much training;
    ``cells_per_gpu``: how many cells (or trials) share one GPU at a time; ``memory_format``:
    ``auto`` (channels_last on CUDA, on the CPU what this chip's calibration measured faster for
    the architecture), ``contiguous`` or ``channels_last`` (``reproduce``: the recorded one)."""

    results: str = "results"
    tracking_uri: str | None = None
    data_root: str | None = None
    device: str | None = None
    threads: int | None = None
    checkpoint_seconds: float = 10.0
    cells_per_gpu: int = 1
    plugins: tuple[str, ...] = ()  # loaded by every worker process before any work
    memory_format: str = "auto"

    def gpus(self) -> list[str]:
        """The CUDA devices this run may use: every visible one for ``cuda``/``auto``, the one
        named by ``cuda:N``; empty on the CPU."""
        import torch

        if self.device in (None, "auto", "cuda"):
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            return [f"cuda:{i}" for i in range(count)]
        return [self.device] if str(self.device).startswith("cuda") else []

    def worker_devices(self, workers: int) -> list[str | None]:
        """The device of each of ``workers`` local processes: round-robin over :meth:`gpus`
        (``cells_per_gpu`` workers per GPU by default), else every worker on ``device``."""
        return gpu_slots(self.device, self.gpus(), workers)

    def gpu_share(self) -> float:
        """The GPUs one Ray task asks for: ``1 / cells_per_gpu`` when cells run on CUDA (named,
        or found here), else 0."""
        cuda = str(self.device).startswith("cuda") or bool(self.gpus())
        return 1 / self.cells_per_gpu if cuda else 0

    def default_workers(self, cells: int, calibrated: int | None = None) -> int:
        """On the CPU the calibrated split's processes (``calibrated``: speed --calibrate's
        fastest processes x threads for the grid's architecture), else one worker per core
        (one thread each); ``cells_per_gpu`` per GPU."""
        gpus = self.gpus()
        per_device = len(gpus) * self.cells_per_gpu if gpus else \
            (calibrated or cores())
        return max(1, min(per_device, cells))

    def for_workers(self, results: Path | str, tracking_uri: str, workers: int) -> Runtime:
        """What each of ``workers`` processes gets: the resolved store and its share of the
        machine's CPU threads."""
        from benchmark.config.plugins import loaded

        threads = max(1, cores() // workers)
        return replace(self, results=str(results), tracking_uri=tracking_uri, threads=threads,
                       plugins=loaded())

    def apply(self) -> None:
        """Set this process's thread count and load the plugins of the command that started it
        (in a worker, before any work)."""
        if self.plugins:
            from benchmark.config.plugins import load_all, load_entry_points

            load_entry_points()
            load_all(self.plugins)
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    def die_with_parent(self) -> None:
        """In a worker process: be killed when the process that started it dies, so a SIGKILLed
        grid or study leaves no orphan training behind (a Ray task: nothing). A thread waits on
        the pipe that only the command holds open (its sentinel): a worker forked by the fork
        server (:func:`worker_context`) is the server's child, and the server outlives the
        command for as long as any of its workers does, so the kernel's parent-death signal
        (PR_SET_PDEATHSIG, also set, Linux) alone would not reach it. A command that died
        before this call (while the worker was still starting) is caught too."""
        import multiprocessing
        import signal
        import threading
        from multiprocessing.connection import wait

        parent = multiprocessing.parent_process()
        if parent is None:  # not a multiprocessing worker (the main process, a Ray task)
            return
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

        def watch() -> None:
            wait([parent.sentinel])
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()

    def tracker(self):
        from benchmark.store.tracking import Tracker

        return Tracker(self.tracking_uri, results=Path(self.results))


def worker_context():
    """The multiprocessing context of local worker processes (grid cells, tuning workers, the
    speed command's cells): a fork server that imports the training code once and forks every
    worker from there. A spawned worker paid the import of torch and MLflow itself (about 5 s of
    CPU each, two workers on two cores 10 s); a forked one starts in milliseconds, and later
    pools of the same command (a tune of several studies, a test session) reuse the server.
    The server has only imported (no thread pool, no CUDA context, no open store), so forking
    it is safe where forking the command's own process is not. A worker takes the command's
    environment with :func:`adopt_environment`, since it inherits the server's."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():  # Windows: spawned workers, as before
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # torch._dynamo: the first optimiser a process builds imports it (torch.optim wraps its
    # __init__ in torch._disable_dynamo), 2 s of every worker's start-up otherwise
    ctx.set_forkserver_preload(["benchmark.jobs.runner", "torch._dynamo"])
    return ctx


def start_worker_server() -> None:
    """Start the fork server of :func:`worker_context` now, so that its imports run beside the
    rest of the command's start-up (the store, the data check) instead of after it."""
    if worker_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def start_worker(rt: Runtime, env: dict[str, str] | None, devices=None) -> Runtime:
    """In a local worker process, before any work: the command's environment (None: a Ray task
    keeps its own), its device (the next of ``devices``, a queue of round-robin slots, when
    given), its threads and plugins, and death with the command. Returns the worker's runtime."""
    if env is not None:
        adopt_environment(env)
    if devices is not None:
        rt = replace(rt, device=devices.get())
    rt.apply()
    rt.die_with_parent()  # a local process dies with its command (a Ray task: nothing)
    return rt


def adopt_environment(env: dict[str, str]) -> None:
    """In a worker: the environment of the command that started it (a worker forked from the
    fork server holds the server's, as it was when the server started)."""
    if env != os.environ:
        os.environ.clear()
        os.environ.update(env)


def gpu_slots(device: str | None, gpus: list[str], workers: int) -> list[str | None]:
    """Worker ``w`` runs on ``gpus[w % len(gpus)]``: K workers per GPU fill every GPU once
    before any GPU gets a second. Without GPUs every worker gets ``device``."""
    if not gpus:
        return [device] * workers
    return [gpus[w % len(gpus)] for w in range(workers)]
