"""Figures drawn side by side: each in a forked child process, at most one per available core.

A report's figures are independent of one another and of its tables, and drawing them
(constrained layout, PNG and PDF) was most of the report's time. A forked child inherits the
frames it draws from without copying them (pickling an edition's per-epoch frame would cost more
than drawing it) and sends back only the paths it wrote. Where fork is missing (Windows, macOS
defaults aside) or one core is available, figures are drawn here, in order, as before.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Drawn:
    """A figure's written paths, now or once its child is done."""

    def __init__(self, paths: list[Path] | None = None, process=None, conn=None):
        self._paths, self._process, self._conn = paths, process, conn

    def done(self) -> bool:
        return self._process is None

    def paths(self) -> list[Path]:
        if self._process is not None:
            try:
                status, value = self._conn.recv()
            except EOFError:  # the child died without a word (killed, out of memory)
                status, value = "error", f"exit code {self._process.exitcode}"
            self._process.join()
            self._conn.close()
            self._process = self._conn = None
            if status != "ok":
                raise RuntimeError(f"drawing a figure failed in its process:\n{value}")
            self._paths = value
        return self._paths


def _child(conn, fn: Callable, args: tuple, kwargs: dict) -> None:
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class Drawing:
    """``drawing(fn, *args)`` draws ``fn(*args)`` (a function returning the paths it wrote) in a
    forked child once fewer than ``workers`` are drawing, and returns a :class:`Drawn`; with one
    worker (or no fork) it draws here and now. Use as a context manager: leaving it waits for
    every child."""

    def __init__(self, workers: int | None = None):
        workers = cores() if workers is None else workers
        self.fork = (multiprocessing.get_context("fork")
                     if workers > 1 and "fork" in multiprocessing.get_all_start_methods()
                     else None)
        self.workers = min(workers, 4) if self.fork is not None else 1
        self.running: list[Drawn] = []

    def __call__(self, fn: Callable, *args, **kwargs) -> Drawn:
        if self.fork is None:
            return Drawn(fn(*args, **kwargs))
        while len(self.running) >= self.workers:
            self.running.pop(0).paths()
        sys.stdout.flush()  # a child must not write out the parent's buffered lines again
        sys.stderr.flush()
        receive, send = self.fork.Pipe(duplex=False)
        process = self.fork.Process(target=_child, args=(send, fn, args, kwargs), daemon=True)
        process.start()
        send.close()
        drawn = Drawn(process=process, conn=receive)
        self.running.append(drawn)
        return drawn

    def wait(self) -> None:
        errors = []
        while self.running:
            try:
                self.running.pop(0).paths()
            except RuntimeError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self) -> Drawing:
        return self

    def __exit__(self, *exc) -> None:
        self.wait()
