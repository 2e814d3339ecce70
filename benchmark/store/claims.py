"""Cell claims: several grid processes on one results folder share the work instead of each
training every cell.

Before a process trains a cell it claims it: ``RESULTS/claims/<cell hash>`` is created
atomically (``O_CREAT | O_EXCL``) holding the host and process id. A background thread touches
every claim the process holds every ``HEARTBEAT`` seconds; the claim is removed when the cell
ends (finished or failed). Another process skips a claimed cell and looks again later: it counts
the cell as done once the store holds its finished run, and takes it over when the claim has not
been touched for ``GRACE`` seconds (its holder died; the cell resumes from its checkpoint). A
takeover renames the stale claim first, so that of two processes racing for it one wins.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

HEARTBEAT = 10.0
GRACE = 60.0


def holder_gone(holder: str) -> bool:
    """``holder`` (``"host pid"``, as a claim or a trial records its process) ran on this host
    and that process no longer exists. Another host's process, or this one: False."""
    try:
        host, pid = holder.split()
        pid_number = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname() or pid_number == os.getpid():
        return False
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class Claims:
    def __init__(self, folder: Path | str, heartbeat: float = HEARTBEAT, grace: float = GRACE):
        self.folder = Path(folder)
        self.heartbeat, self.grace = heartbeat, grace
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.me = f"{socket.gethostname()} {os.getpid()}"

    def _path(self, key: str) -> Path:
        return self.folder / key

    def acquire(self, key: str) -> bool:
        """Claim ``key``: True when this process now holds it (fresh, or taken over from a
        holder silent for ``grace`` seconds), False when another live process holds it."""
        if key in self.held:
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self.stale(key):
                    return False
                try:  # one of several racing processes wins the rename
                    os.rename(path, path.with_name(f"{key}.stale-{os.getpid()}"))
                    os.unlink(path.with_name(f"{key}.stale-{os.getpid()}"))
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self.me + "\n")
            with self._lock:
                self.held.add(key)
            self._start()
            return True
        return False

    def stale(self, key: str) -> bool:
        """Untouched for ``grace`` seconds, or held by a process of this host that is gone."""
        path = self._path(key)
        try:
            if time.time() - path.stat().st_mtime > self.grace:
                return True
            holder = path.read_text().strip()
        except FileNotFoundError:
            return True  # released meanwhile: look again
        return holder_gone(holder)

    def claimed_elsewhere(self, key: str) -> bool:
        return key not in self.held and self._path(key).exists() and not self.stale(key)

    def release(self, key: str) -> None:
        with self._lock:
            if key not in self.held:
                return
            self.held.discard(key)
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, daemon=True, name="claims")
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with self._lock:
                keys = list(self.held)
            for key in keys:
                try:
                    os.utime(self._path(key))
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        """Release every claim still held (the process ends)."""
        for key in list(self.held):
            self.release(key)
        self._stop.set()
