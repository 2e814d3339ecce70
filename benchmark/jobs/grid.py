"""Grids: expand a config into cells (dataset x arch x method variant x seed), order them so every
self-teacher (the ``ce`` cell of the same dataset, arch and seed) finishes before the cells that
distil from it, and run them in one process or in N local worker processes.

A finished cell (same cell hash) is skipped, so rerunning a grid resumes it; an interrupted cell
resumes from its last epoch checkpoint; a failing cell is recorded and the rest go on.
"""
from __future__ import annotations

import os
import queue
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace

from tqdm import tqdm

from benchmark.config import (
    ConfigError,
    GridConfig,
    RunSpec,
    Variant,
    split_optimiser,
    variant_spec,
)
from benchmark.jobs.runner import CellFailed, cell_task
from benchmark.store.claims import Claims
from benchmark.store.location import claims_folder
from benchmark.store.runtime import Runtime, start_worker, worker_context
from benchmark.store.tracking import Tracker


def expand(grid: GridConfig, storage: str | None = None) -> list[RunSpec]:
    """Every cell of the grid in run order: per (dataset, arch, seed) the CE cell first. A method
    that needs a pretrained teacher gets its CE cell added even when ``ce`` is not listed."""
    cells: list[RunSpec] = []
    seen: set[str] = set()
    for dataset, ds, arch in grid.tasks():
        settings = grid.train_for(dataset, arch)
        for seed in grid.seeds:
            group = [_spec(grid, ds, arch, seed, v, settings, storage) for v in grid.variants]
            teachers = [s.teacher_spec() for s in group if s.teacher_spec() is not None]
            ordered = teachers + [s for s in group if s.method == "ce"] + [
                s for s in group if s.method != "ce"]
            for spec in ordered:
                if spec.hash not in seen:
                    seen.add(spec.hash)
                    cells.append(spec)
    return cells


def coincident(grid: GridConfig, storage: str | None = None) -> dict[str, list[str]]:
    """Tuned variants whose study chose exactly another cell's settings (its reference values,
    trial 0): cell hash -> the tuned labels that cell also stands for. The cell is trained
    once; its run carries the labels (tag ``aliases``) and the report reads it under each."""
    out: dict[str, list[str]] = {}
    for dataset, ds, arch in grid.tasks():
        settings = grid.train_for(dataset, arch)
        for seed in grid.seeds:
            first: dict[str, str] = {}
            for v in grid.variants:
                spec = _spec(grid, ds, arch, seed, v, settings, storage)
                if spec.hash in first and v.tuned and v.label != first[spec.hash]:
                    out.setdefault(spec.hash, []).append(v.label)
                first.setdefault(spec.hash, v.label)
    return out


def tag_aliases(tracker: Tracker, aliases: dict[str, list[str]]) -> int:
    """Record on each finished cell the tuned labels it also stands for; returns how many."""
    n = 0
    for h, labels in aliases.items():
        run = tracker.finished(h)
        if run is not None:
            tracker.set_tags(run.info.run_id, {"aliases": ",".join(sorted(set(labels)))})
            n += 1
    return n


def _spec(grid: GridConfig, ds, arch: str, seed: int, variant: Variant, settings,
          storage: str | None = None) -> RunSpec:
    hp = variant.hyperparameters_for(arch)
    if variant.tuned:
        from benchmark.jobs.tune import tuned_hyperparameters

        searched, optimiser = split_optimiser(
            tuned_hyperparameters(grid, ds.task, arch, variant, storage))
        hp = {**hp, **searched}
        grid_settings, settings = settings, replace(settings, **optimiser)
        spec = variant_spec(ds, arch, variant, hp, seed, variant.settings_for(settings))
        if settings != grid_settings and spec.teacher_spec() is not None:
            # its teacher is the grid's CE cell, as in its study, not a CE at its tuned lr/wd
            spec = replace(spec, teacher_train=variant.settings_for(grid_settings))
        return spec
    return variant_spec(ds, arch, variant, hp, seed, variant.settings_for(settings))


def describe_variants(grid: GridConfig) -> list[str]:
    """What the dry run says beside the cells: each baseline budget (its epochs per dataset and
    architecture, the ladder step it is and the variants whose images it matches), each
    mechanism control and the lattice's size."""
    import methods
    from benchmark.config.compute import cost_factor

    lines = []
    budgets = [v for v in grid.variants if v.role == "budget"]
    if budgets:
        base = next(v for v in grid.variants if v.label == grid.compute["baseline"])
        lines.append(f"compute: {base.label} at other epoch budgets")
        for b in budgets:
            epochs = sorted({b.settings_for(grid.train_for(d, a)).epochs
                             for d, _, a in grid.tasks()})
            why = [f"ladder {b.epochs_factor:g}x"] if b.epochs_factor in grid.compute["ladder"] \
                else []
            if grid.compute.get("match") == "images":
                matched = sorted(v.label for v in grid.variants
                                 if v.role in ("", "control") and v is not base
                                 and cost_factor(v.method, v.hyperparameters, base.method,
                                                 base.hyperparameters) == b.epochs_factor)
                if matched:
                    why.append("matches the images of " + ", ".join(matched))
            lines.append(f"  {b.label}: {'/'.join(map(str, epochs))} epochs ({'; '.join(why)})")
    controls = [v for v in grid.variants if v.role == "control"]
    if controls:
        lines.append("controls:")
        for v in controls:
            m = methods.get(v.method)
            fixed = ", ".join(f"{k}={v.hyperparameters[k]}" for k in m.control)
            lines.append(f"  {v.label}: {v.method} with {fixed} ({m.control_summary})")
    lattice = [v for v in grid.variants if v.role == "lattice"]
    if lattice:
        lines.append(f"lattice: {len(lattice)} variants ("
                     + ", ".join(sorted({v.method for v in lattice})) + " at identical "
                     "teacher, alpha, temperature)")
    return lines


def dependencies(cells: list[RunSpec]) -> dict[str, str]:
    """cell hash -> hash of the CE cell it waits for."""
    return {c.hash: c.teacher_spec().hash for c in cells if c.teacher_spec() is not None}


@dataclass
class GridOutcome:
    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # cell key -> reason
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


# --- workers ------------------------------------------------------------------------------------

_worker: dict = {}


def _init_worker(rt: Runtime, lines, devices, env: dict) -> None:
    # this worker's GPU (round-robin), or rt's device
    _worker.update(rt=start_worker(rt, env, devices), lines=lines)


def _run_in_worker(spec: RunSpec, verbose: bool, tags: dict) -> dict:
    return cell_task(spec, _worker["rt"], _worker["lines"].put if verbose else None, tags=tags)


# --- scheduling ---------------------------------------------------------------------------------

class _Progress:
    """Grid state and its progress bar: which cells are done, failed, waiting for a teacher."""

    def __init__(self, cells: list[RunSpec], tracker: Tracker, quiet: bool, verbose: bool,
                 done_elsewhere: frozenset[str] | set[str] = frozenset()):
        self.deps = dependencies(cells)
        self.outcome = GridOutcome()
        self.done: set[str] = set()
        self.failed: dict[str, str] = {}  # hash -> reason
        self.disk_full: str | None = None  # the first "no space left" reason: start nothing more
        self.todo: list[RunSpec] = []
        here = {c.hash for c in cells if tracker.finished(c.hash) is not None}
        done_any = here | set(done_elsewhere)
        # a cell finished elsewhere (an exported part) is done, unless a cell that trains here
        # needs its weights as a self-teacher: those are not in a part
        needed = {self.deps[c.hash] for c in cells
                  if c.hash in self.deps and c.hash not in done_any}
        for c in cells:
            if c.hash in here or (c.hash in done_elsewhere and c.hash not in needed):
                self.outcome.skipped.append(c.key)
                self.done.add(c.hash)
            else:
                self.todo.append(c)
        self.total = len(cells)
        self.bar = tqdm(total=len(cells), initial=len(self.outcome.skipped), unit="cell",
                        disable=quiet, dynamic_ncols=True, desc="grid", mininterval=1.0)
        self.say = (lambda line: None) if quiet else tqdm.write
        self.epoch_say = self.say if verbose else None  # per-epoch lines only when asked

    def status(self, running: int) -> None:
        done = len(self.outcome.finished) + len(self.outcome.skipped)
        self.bar.set_postfix_str(refresh=False, s=f"done {done}, running {running}, failed "
                                 f"{len(self.outcome.failed)}, left {self.total - self.bar.n}")

    def blocked(self, c: RunSpec) -> str | None:
        """Why ``c`` can never run (its self-teacher failed), or None."""
        t = self.deps.get(c.hash)
        return f"its self-teacher failed ({self.failed[t]})" if t in self.failed else None

    def ready(self, c: RunSpec) -> bool:
        return c.hash not in self.deps or self.deps[c.hash] in self.done

    def succeeded(self, c: RunSpec, done: dict) -> None:
        self.outcome.finished.append(c.key)
        self.done.add(c.hash)
        self.bar.update(1)
        self.say(cell_line(c, done))

    def elsewhere(self, c: RunSpec) -> None:
        """Another process on the same store finished ``c``."""
        self.outcome.skipped.append(c.key)
        self.done.add(c.hash)
        self.bar.update(1)
        self.say(f"{c.key}: finished by another process")

    def fail(self, c: RunSpec, reason: str, loud: bool = True) -> None:
        if reason.startswith("no space left on device") and self.disk_full is None:
            self.disk_full = reason
        self.failed[c.hash] = reason
        self.outcome.failed[c.key] = reason
        self.bar.update(1)
        if loud:
            self.say(f"FAILED {c.key}: {reason}")


def cell_line(spec: RunSpec, done: dict) -> str:
    """One line per finished cell: final validation and test top-1, wall time."""
    final = done["final"]
    test = f", test {100 * final['test_top1']:.2f}%" if "test_top1" in final else ""
    return (f"{spec.key}: val {100 * final.get('val_top1', float('nan')):.2f}%{test} "
            f"({done['seconds']:.1f}s)")


def run(cells: list[RunSpec], tracker: Tracker, rt: Runtime = Runtime(), *, workers: int = 1,
        quiet: bool = False, verbose: bool = False, executor: str = "local",
        ray_address: str | None = None, tags: dict[str, str] | None = None,
        done_elsewhere: frozenset[str] | set[str] = frozenset()) -> GridOutcome:
    """Run the unfinished cells: in this process (``workers=1``), in local worker processes, or
    as Ray tasks (``executor="ray"``), each cell submitted once its self-teacher finished.
    ``tags`` go on every run (the grid's name); cells in ``done_elsewhere`` (hashes finished in
    an exported part) count as done."""
    tags = dict(tags or {})
    started = time.perf_counter()
    claims = Claims(claims_folder(tracker.uri, tracker.results))  # grids on one store share

    try:
        reap_interrupted(tracker, cells, claims)  # before the progress bar: a failure is a line
        p = _Progress(cells, tracker, quiet, verbose, done_elsewhere)
        _run(p, rt, tracker, workers, verbose, executor, ray_address, tags, claims)
    finally:
        claims.close()
    p.status(0)
    p.bar.close()
    p.outcome.seconds = time.perf_counter() - started
    return p.outcome


INTERRUPTED = ("interrupted: the process running it ended before the run did (killed, or its "
               "last write failed for lack of space); the grid resumes it from its checkpoint")


def reap_interrupted(tracker: Tracker, cells: list[RunSpec], claims: Claims) -> list[str]:
    """Mark FAILED (with the reason) every RUNNING training run of these cells that no live
    process holds: its process was killed, or the store could not take its failure (a full
    disk). Returns their run ids; the grid then resumes them like any unfinished cell."""
    hashes = {c.hash for c in cells}
    reaped = []
    for r in tracker.runs("attributes.status = 'RUNNING'"):
        h = r.data.tags.get("cell_hash")
        if h in hashes and r.data.tags.get("kind", "train") == "train" \
                and not claims.claimed_elsewhere(h):
            tracker.fail(r.info.run_id, INTERRUPTED)
            reaped.append(r.info.run_id)
    return reaped


def _run(p: _Progress, rt: Runtime, tracker: Tracker, workers: int, verbose: bool,
         executor: str, ray_address: str | None, tags: dict, claims: Claims) -> None:
    if executor == "ray":
        _run_ray(p, _worker_runtime(rt, tracker, workers), workers, ray_address, p.epoch_say,
                 tags, claims, tracker)
    elif workers <= 1:
        def run_here(c: RunSpec):
            return cell_task(c, rt, p.epoch_say, tracker, tags)

        _dispatch(p, run_here, None, None, 1, claims=claims, tracker=tracker)
    else:
        _run_parallel(p, _worker_runtime(rt, tracker, workers), workers, verbose, tags, claims,
                      tracker)


#: Seconds between two looks at cells another process holds.
POLL_SECONDS = 2.0


def _dispatch(p: _Progress, submit, wait_some, result, capacity: int,
              after_wait=lambda: None, claims: Claims | None = None,
              tracker: Tracker | None = None) -> None:
    """The scheduling loop shared by this process, the local process pool and Ray: submit every
    cell whose self-teacher is done and that no other process holds (at most ``capacity``
    running), collect the finished ones, record. ``wait_some`` None: ``submit`` runs the cell
    here and returns its result. A cell claimed by another grid on the same store is left to it
    and counted done once the store holds its finished run (or taken over if its holder died)."""
    waiting = list(p.todo)
    running: dict = {}
    looked: dict[str, float] = {}  # cell hash -> when the store was last asked about it

    def finished_elsewhere(c: RunSpec) -> bool:  # at most one store query per cell per poll
        now = time.monotonic()
        if tracker is None or now - looked.get(c.hash, -POLL_SECONDS) < POLL_SECONDS:
            return False
        looked[c.hash] = now
        return tracker.finished(c.hash) is not None

    while waiting or running:
        if p.disk_full and waiting:  # every further write would fail too: stop starting cells
            p.say(f"stopping: {p.disk_full}; {len(waiting)} cells not started. Free some space "
                  "and run the same command again: finished cells are kept")
            for c in waiting:
                p.fail(c, f"not started: {p.disk_full}", loud=False)
            waiting.clear()
            if not running:
                break
        held_elsewhere = False
        for c in list(waiting):
            why = p.blocked(c)
            if why:
                waiting.remove(c)
                p.fail(c, why, loud=False)
                continue
            if claims is not None and claims.claimed_elsewhere(c.hash):
                if finished_elsewhere(c):
                    waiting.remove(c)
                    p.elsewhere(c)
                else:
                    held_elsewhere = True
                continue
            if len(running) >= capacity or not p.ready(c):
                continue
            if claims is not None and not claims.acquire(c.hash):
                held_elsewhere = True
                continue
            if tracker is not None and tracker.finished(c.hash) is not None:  # done meanwhile
                claims.release(c.hash)
                waiting.remove(c)
                p.elsewhere(c)
                continue
            waiting.remove(c)
            if wait_some is None:  # in this process, now
                p.status(1)
                try:
                    p.succeeded(c, submit(c))
                except CellFailed as e:
                    p.fail(c, str(e).split(": ", 1)[-1])
                finally:
                    if claims is not None:
                        claims.release(c.hash)
                break  # look at every waiting cell again: its teacher may be done now
            running[submit(c)] = c
        p.status(len(running))
        if not running:
            if waiting and not held_elsewhere and not any(p.ready(c) for c in waiting):
                raise ConfigError("grid: cells wait for teachers that are not in the grid")
            if waiting and held_elsewhere and not any(
                    p.ready(c) and not claims.claimed_elsewhere(c.hash) for c in waiting):
                time.sleep(POLL_SECONDS)  # another grid holds what is left: look again soon
            if not waiting:
                break
            continue
        finished = wait_some(list(running))
        after_wait()
        for handle in finished:
            c = running.pop(handle)
            try:
                p.succeeded(c, result(handle))
            except CellFailed as e:
                p.fail(c, str(e).split(": ", 1)[-1])
            except Exception as e:  # noqa: BLE001 - a worker or task died: record, go on
                p.fail(c, f"{type(e).__name__}: {e}")
            finally:
                if claims is not None:
                    claims.release(c.hash)


def _worker_runtime(rt: Runtime, tracker: Tracker, workers: int) -> Runtime:
    return rt.for_workers(tracker.results, tracker.uri, workers)


def _run_parallel(p: _Progress, rt: Runtime, workers: int, verbose: bool, tags: dict,
                  claims: Claims | None = None, tracker: Tracker | None = None) -> None:
    ctx = worker_context()
    lines, devices = ctx.Queue(), ctx.Queue()
    for device in rt.worker_devices(workers):
        devices.put(device)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(rt, lines, devices, dict(os.environ))) as pool:
        _dispatch(p, lambda c: pool.submit(_run_in_worker, c, verbose, tags),
                  lambda fs: wait(fs, timeout=0.3, return_when=FIRST_COMPLETED)[0],
                  lambda f: f.result(), workers, lambda: _drain(lines, p.say), claims, tracker)
        _drain(lines, p.say)


def _run_ray(p: _Progress, rt: Runtime, workers: int, address: str | None, epoch_say,
             tags: dict, claims: Claims | None = None, tracker: Tracker | None = None) -> None:
    from benchmark.store import distributed

    distributed.init(address, workers, rt.threads, quiet=epoch_say is None)
    gpus = rt.gpu_share()  # K cells share one GPU
    say = None if epoch_say is None else distributed.say
    # every ready cell is submitted at once: Ray queues what the cluster cannot start yet
    _dispatch(p, lambda c: distributed.submit(cell_task, (c, rt, say, None, tags), rt.threads,
                                              gpus),
              lambda refs: distributed.wait(refs, timeout=0.5)[0], distributed.result,
              len(p.todo), claims=claims, tracker=tracker)


def _drain(lines, say) -> None:
    while True:
        try:
            say(lines.get_nowait())
        except queue.Empty:
            return
