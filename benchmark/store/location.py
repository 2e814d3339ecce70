"""Where a store lives: its URI checked, a SQLite file's path, checked, locked against a second
writer creating its schema, moved with its results folder, started from a cached empty store;
and the retry every store call goes through."""
from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmark.errors import TrackingError

#: The experiment every run of the harness is logged under, and its checkpoint's artifact path.
EXPERIMENT = "drkd-bench"
MODEL_ARTIFACT = "checkpoint/model.pt"


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI; None for any other URI."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def claims_folder(uri: str, results: Path | str) -> Path:
    """Where the cell claims of a store live: they belong to the store they protect, so that
    grids writing to one store exclude each other whatever their results folders. Beside a
    SQLite file (``mlflow.db.claims/``), inside a ``file:`` store; for a database or tracking
    server, the results folder (grids sharing such a store on several machines share one
    results folder, or one ``$DRKD_CLAIMS`` folder)."""
    import os

    if os.environ.get("DRKD_CLAIMS"):
        return Path(os.environ["DRKD_CLAIMS"])
    db = sqlite_file(uri)
    if db is not None:
        return db.with_name(db.name + ".claims")
    if uri.startswith("file:"):
        return Path(uri[len("file:"):].removeprefix("//")) / "claims"
    return Path(results) / "claims"


def default_uri(results: Path | str = "results") -> str:
    return f"sqlite:///{(Path(results) / 'mlflow.db').resolve()}"


def artifact_root(results: Path | str) -> str:
    return (Path(results) / "mlartifacts").resolve().as_uri()


def relocate(uri: str, results: Path | str) -> bool:
    """Make a results folder that was moved or copied work where it now is, on its own.

    MLflow records absolute artifact locations. When the store is the SQLite file of this
    results folder (``results/mlflow.db``), its artifact root is ``results/mlartifacts``, where
    the folder is *now*: every recorded location under another root is rewritten to it (runs,
    experiment), so that teacher lookup, resume, reports and the MLflow UI read the folder's own
    artifacts, and a copy never writes into its original. A store kept elsewhere (its own
    ``--tracking-uri``) is rewritten only when its recorded root is gone and
    ``results/mlartifacts`` exists. Returns whether anything was rewritten.
    """
    import sqlite3
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    db = sqlite_file(uri)
    if db is None:
        return False
    new = artifact_root(results)
    own = db.resolve().parent == Path(results).resolve()  # the folder's own store
    if not db.is_file() or not (own or Path(url2pathname(urlparse(new).path)).is_dir()):
        return False
    with sqlite3.connect(db, timeout=60) as con:
        try:
            rows = con.execute("select artifact_location from experiments where name = ?",
                               (EXPERIMENT,)).fetchall()
        except sqlite3.Error:
            return False  # not an MLflow store yet
        if not rows or not rows[0][0] or rows[0][0] == new:
            return False
        old = rows[0][0]
        if not own and Path(url2pathname(urlparse(old).path)).exists():
            return False  # the recorded root is still there: another, deliberate layout
        con.execute("update experiments set artifact_location = ? || substr(artifact_location, ?)"
                    " where artifact_location like ? || '%'", (new, len(old) + 1, old))
        con.execute("update runs set artifact_uri = ? || substr(artifact_uri, ?)"
                    " where artifact_uri like ? || '%'", (new, len(old) + 1, old))
    return True


#: What a store's driver says when its disk is full (SQLite, PostgreSQL, the OS).
FULL_DISK = ("disk is full", "no space left on device", "could not extend file")


def retry(fn: Callable[[], Any], tries: int = 8) -> Any:
    """Retry a store call on transient errors (SQLite's "database is locked" under several
    writers, a busy tracking server) with jittered back-off. A full disk is no transient error:
    it becomes one :class:`TrackingError` line, wherever in the harness the store is written."""
    for attempt in range(tries):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - MLflow wraps driver errors in its own types
            text = str(e).lower()
            if any(w in text for w in FULL_DISK):
                raise TrackingError("the tracking store cannot be written: its disk is full "
                                    "(no space left on device); free space and run the same "
                                    "command again") from None
            transient = any(w in text for w in ("locked", "busy", "timeout", "connection"))
            if not transient or attempt == tries - 1:
                raise
            time.sleep(0.05 * 2 ** attempt * (1 + random.random()))



SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def check_uri(uri: str) -> None:
    """A tracking URI MLflow can open, or a one-line :class:`TrackingError`. A plain path is a
    file store; ``sqlite:///PATH`` needs PATH's folder to exist or be creatable."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if "://" in uri and scheme not in SCHEMES:
        raise TrackingError(f"tracking URI {uri!r}: unsupported scheme {scheme!r}; use one of: "
                            + ", ".join(SCHEMES))
    if scheme == "sqlite":
        if not uri.startswith("sqlite:///") or len(uri) <= len("sqlite:///"):
            raise TrackingError(f"tracking URI {uri!r}: expected sqlite:///PATH/TO/FILE.db")
        folder = Path(uri[len("sqlite:///"):]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrackingError(f"tracking URI {uri!r}: cannot create {folder}: "
                                f"{e.strerror or e}") from None
        check_sqlite_store(Path(uri[len("sqlite:///"):]))


#: MLflow's tables that any of its SQLite stores holds.
MLFLOW_TABLES = {"experiments", "runs", "metrics", "params", "tags"}


def check_sqlite_store(path: Path) -> None:
    """A file at a SQLite tracking URI must be an MLflow store: an empty (0-byte) file, a file
    that is not SQLite, or a SQLite database with tables none of which are MLflow's is refused
    with one line; it is never taken as a new store and overwritten. No file: a new store."""
    if not path.exists():
        return
    if path.is_dir():
        raise TrackingError(f"{path}: is a folder, not an MLflow SQLite store")
    size = path.stat().st_size
    if size == 0:
        raise TrackingError(f"{path}: empty file (0 bytes), not an MLflow store; move it away "
                            "(a new store is created only where no file exists) or give another "
                            "--tracking-uri")
    with open(path, "rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        raise TrackingError(f"{path}: not a SQLite file, so not an MLflow store; give another "
                            "--tracking-uri")
    import sqlite3

    # Read-write when it can be: a writer killed inside a transaction leaves a *hot* journal
    # (``<file>-journal``) that SQLite rolls back on the next read-write open, and only there
    # (a read-only open fails with "attempt to write a readonly database"). ``mode=rw`` never
    # creates a file; SQLite's own locks make the roll-back safe beside live writers.
    journal = Path(f"{path}-journal")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if journal.exists() and not writable:
        raise TrackingError(f"{path}: a writer was killed inside a transaction ({journal.name} "
                            "is left) and this folder is read-only, so SQLite cannot roll it "
                            "back; open it once where it is writable")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode={'rw' if writable else 'ro'}",
                                                uri=True, timeout=60)) as db:
            tables = {r[0] for r in db.execute("select name from sqlite_master where "
                                               "type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise TrackingError(f"{path}: unreadable SQLite file ({e})") from None
    if tables and not MLFLOW_TABLES & tables:
        raise TrackingError(f"{path}: a SQLite database of something else (tables: "
                            + ", ".join(sorted(tables)[:5]) + "), not an MLflow store")


@contextlib.contextmanager
def store_lock(uri: str):
    """For a SQLite store: an exclusive lock on ``<file>.lock`` while the store is opened (and,
    on a fresh file, its schema created), so that processes started together take turns; two
    that ran the schema migrations at once failed with "duplicate column" or "table already
    exists". Other stores: nothing (their servers serialise it)."""
    db = sqlite_file(uri)
    if db is None:
        yield
        return
    import fcntl

    path = Path(f"{db}.lock")
    try:
        f = open(path, "a")
    except OSError:  # a read-only folder: nobody creates a schema there
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def template_path() -> Path | None:
    """Where a freshly created, empty SQLite store of this MLflow version is kept, so that a new
    store is a copy (milliseconds) instead of MLflow's schema migrations (seconds, in every new
    results folder). ``$DRKD_CACHE`` (default ``~/.cache/drkd-bench``); ``DRKD_CACHE=off``:
    none."""
    root = os.environ.get("DRKD_CACHE", "")
    if root.lower() in ("off", "0", "no"):
        return None
    base = Path(root) if root else Path.home() / ".cache" / "drkd-bench"
    return base / f"mlflow-{metadata.version('mlflow')}-empty.db"


def copy_sqlite(src: Path, dst: Path) -> bool:
    """``src`` into ``dst`` through SQLite's backup (consistent even while ``src`` is open),
    written beside ``dst`` and renamed into place only when whole. False when it cannot be done
    (an unwritable folder, a broken template): the caller goes on without it."""
    import sqlite3

    try:
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(f"file:{src}?mode=ro", uri=True)) as a, \
                    contextlib.closing(sqlite3.connect(tmp)) as b:
                a.backup(b)
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True
    except (OSError, sqlite3.Error):
        return False
