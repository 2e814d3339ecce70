"""Several cells on one device: how many a GPU (or the CPU) trains at once before the total
rate stops growing."""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

from benchmark import config
from benchmark.jobs import train
from benchmark.jobs.speed.measure import Row, harness_steps, sync, synthetic
from benchmark.store.runtime import adopt_environment, worker_context


def _cell_worker(dataset: str, arch: str, batch: int, steps: int, device: str, threads: int,
                 inbox, outbox, env: dict) -> None:
    """One CE cell's training steps in a process of its own (as a grid worker runs a cell): warm
    up, report ready with its resident GPU memory, then time ``steps`` steps from each start
    time it is sent until it is sent None."""
    adopt_environment(env)
    torch.set_num_threads(threads)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    d = synthetic(dataset, batch * steps).to(dev)
    spec = config.make_spec(dataset, arch, "ce", 0, {}, {"batch_size": batch, "epochs": 1})
    run = train.build(spec, d, dev, None, amp=cuda, channels_last=cuda)

    def go() -> None:
        harness_steps(run, d, steps)
        sync(dev)

    go()
    outbox.put(("ready", torch.cuda.max_memory_allocated(dev) / 2 ** 20 if cuda
                else float("nan")))
    while (start_at := inbox.get()) is not None:
        while time.time() < start_at:
            time.sleep(0.0005)
        began = time.time()
        go()
        outbox.put((began, time.time()))


def cells_per_device(dataset: str, arch: str, batch: int, steps: int, repeats: int,
                     ks: list[int], device: str | None = None,
                     say: Callable[[str], None] = lambda s: None) -> list[Row]:
    """Aggregate images/s of K CE cells training at once on one device (K processes, started
    together), for each K in ``ks``, against one cell alone (median of ``repeats``)."""
    dev = train.resolve_device(device)
    where = f"cuda:{dev.index or 0}" if dev.type == "cuda" else "cpu"
    ctx = worker_context()  # as the grid starts its workers
    most = max(ks)
    threads = max(1, torch.get_num_threads() // most) if dev.type == "cpu" else 1
    outbox = ctx.Queue()
    inboxes = [ctx.Queue() for _ in range(most)]
    procs = [ctx.Process(target=_cell_worker, daemon=True,
                         args=(dataset, arch, batch, steps, where, threads, q, outbox,
                               dict(os.environ)))
             for q in inboxes]
    say(f"{most} cell processes of {arch}: starting")
    for proc in procs:
        proc.start()
    try:
        ready = [outbox.get(timeout=600) for _ in procs]
        cell_mb = max(mb for _, mb in ready)
        aggregate: dict[int, float] = {}
        for k in sorted(set(ks)):
            say(f"{k} cell(s) at once")
            samples = []
            for _ in range(repeats):
                start_at = time.time() + 0.2
                for q in inboxes[:k]:
                    q.put(start_at)
                spans = [outbox.get(timeout=600) for _ in range(k)]
                wall = max(e for _, e in spans) - min(b for b, _ in spans)
                samples.append(k * steps * batch / wall)
            aggregate[k] = statistics.median(samples)
    finally:
        for q in inboxes:
            q.put(None)
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    one = aggregate[min(aggregate)]
    rows = [Row(f"{k} cell(s) per device: aggregate ce images/s", rate, "1 cell",
                rate / one, ">= 1.5" if k > 1 and dev.type == "cuda" else "",
                peak_mb=cell_mb if k == min(aggregate) else float("nan"))
            for k, rate in aggregate.items()]
    return rows
