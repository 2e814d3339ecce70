"""Plugins: a user's own methods, teacher sources, batch plans, architectures and datasets, added
without forking the harness.

A plugin is an importable module or a ``.py`` file named by a grid config's ``plugins:`` list or
a ``--plugin`` flag, or an installed package's entry point in the group ``drkd_bench.plugins``
(loaded once at start). Importing it may call the same ``register`` functions the built-ins use
(``methods.register``, ``models.register``, ``data.register``) or add to
``teachers.SOURCES`` / ``plans.PLANS``. The harness compares the registries before and after the
import, so it knows which entries each plugin added: ``drkd-bench list`` shows that origin, and a
run that uses an entry records the plugin's identity (a package's name and version, or a
content hash of the module's source) in its parameters and in its cell hash. Editing a plugin's
file changes the hash of exactly the cells that use what it registered.

A plugin that is missing, fails to import, or registers a name that already exists stops the
command before anything trains, with one line naming the plugin.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import PluginError  # noqa: F401  (raised here; its home is errors)

GROUP = "drkd_bench.plugins"
KINDS = ("method", "teacher source", "batch plan", "architecture", "dataset")


@dataclass(frozen=True)
class Origin:
    """Where a registry entry came from: ``kind`` is ``built-in``, ``module`` (a module or
    ``.py`` file: ``name`` and the hash of its source), ``package`` (an entry point: the
    distribution's name and version) or ``data`` (a dataset read from a folder or an ``.npz``
    file: its content digest)."""

    kind: str
    name: str = ""
    version: str = ""

    def __str__(self) -> str:
        if self.kind == "built-in":
            return "built-in"
        return f"{self.kind} {self.name} {self.version}".rstrip()

    @property
    def identity(self) -> str:
        """What enters a cell's hash and its recorded parameters."""
        return f"{self.kind}:{self.name}@{self.version}"


BUILT_IN = Origin("built-in")
#: (kind, entry name) -> its origin; absent: built-in.
_ORIGINS: dict[tuple[str, str], Origin] = {}
#: The specs loaded in this process, in order (passed on to worker processes), and their origins.
_LOADED: dict[str, Origin] = {}
_ENTRY_POINTS_DONE = False


def _snapshot() -> dict[str, dict[str, object]]:
    import methods
    from benchmark import data, models
    from benchmark.data import plans
    from benchmark.models import teachers

    return {"method": {n: methods.get(n) for n in methods.names()},
            "teacher source": dict(teachers.SOURCES), "batch plan": dict(plans.PLANS),
            "architecture": {n: models.registry._MODELS[n] for n in models.names()},
            "dataset": {n: data.get_spec(n) for n in data.names()}}


def origin(kind: str, name: str) -> Origin:
    return _ORIGINS.get((kind, name), BUILT_IN)


def record(kind: str, name: str, where: Origin) -> None:
    """Note the origin of an entry registered outside a plugin import (a config's dataset)."""
    _ORIGINS[(kind, name)] = where


def loaded() -> tuple[str, ...]:
    return tuple(_LOADED)  # the keys, in loading order


def source_hash(path: Path) -> str:
    """sha256 (16 hex digits) of a module's source: its file, or every ``.py`` file of a
    package folder, in path order."""
    h = hashlib.sha256()
    files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _import(spec: str, base: Path | None):
    """Import ``spec`` (a ``.py`` path, relative to ``base`` first, or a module name); return
    the module and its origin."""
    if spec.endswith(".py"):
        path = Path(_resolve(spec, base))
        name = f"drkd_bench_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module, Origin("module", path.name, source_hash(path))
    module = importlib.import_module(spec)
    file = getattr(module, "__file__", None)
    version = source_hash(Path(file)) if file else str(getattr(module, "__version__", ""))
    return module, Origin("module", spec, version)


def _resolve(spec: str, base: Path | None) -> str:
    """A ``.py`` plugin as an absolute path (relative paths: ``base`` first, then the working
    folder); a module name as given."""
    if not spec.endswith(".py"):
        return spec
    candidates = [base / spec] if base is not None else []
    candidates.append(Path(spec))
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise PluginError(f"plugin {spec!r}: no such file (looked in "
                          + ", ".join(str(p) for p in candidates) + ")")
    return str(path.resolve())


def load_dataset(name: str, kind: str, path: str | Path) -> Origin:
    """Register the user's dataset ``name`` read from ``path`` (a ``folder`` or an ``npz``), once
    per process; its origin carries the content digest (part of the hash of its cells)."""
    from benchmark import data

    path = Path(path).expanduser().resolve()
    key = f"dataset {kind} {name} {path}"
    if key in _LOADED:
        return _LOADED[key]
    if name in data.names():
        raise PluginError(f"dataset {name!r} is already registered ({origin('dataset', name)}); "
                          "give your data another name")
    spec, digest = data.user_dataset(name, kind, path)
    data.register(spec)
    found = Origin("data", f"{kind}:{path.name}", digest)
    _ORIGINS[("dataset", name)] = found
    _LOADED[key] = found
    return found


def load(spec: str, base: Path | str | None = None, where: Origin | None = None) -> Origin:
    """Import one plugin (once per process) and record the origin of everything it registered.
    ``base``: the folder a relative ``.py`` path is looked for in first (a config's folder)."""
    if spec.startswith("dataset "):  # a config's own dataset, passed on to worker processes
        _, kind, name, path = spec.split(" ", 3)
        return load_dataset(name, kind, path)
    key = _resolve(spec, Path(base) if base is not None else None)
    if key in _LOADED:
        return _LOADED[key]
    before = _snapshot()
    try:
        _, found = _import(key, None)
    except PluginError:
        raise
    except ModuleNotFoundError as e:
        raise PluginError(f"plugin {spec!r}: cannot be imported ({e})") from None
    except SystemExit as e:  # sys.exit() at import: the command must not end silently with it
        raise PluginError(f"plugin {spec!r} called sys.exit({e.code!r}) while being imported; a "
                          "plugin defines and registers, it never exits") from None
    except Exception as e:  # noqa: BLE001 - a user's module may raise anything: one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "already registered" in first:  # a register() call refused a taken name
            raise PluginError(f"plugin {spec!r} registers a name that is taken: {first}; "
                              "rename it") from None
        raise PluginError(f"plugin {spec!r} failed to import: {type(e).__name__}: {first}") \
            from None
    found = where or found
    after = _snapshot()
    for kind in KINDS:
        for name, value in after[kind].items():
            if name not in before[kind]:
                _ORIGINS[(kind, name)] = found
            elif before[kind][name] is not value:
                raise PluginError(f"plugin {spec!r} registers the {kind} {name!r}, which "
                                  f"{origin(kind, name)} code already registered; rename it")
    _LOADED[key] = found
    return found


def load_all(specs, base: Path | str | None = None) -> None:
    for spec in specs or ():
        load(str(spec), base)


def load_entry_points() -> None:
    """Every installed package's ``drkd_bench.plugins`` entry point, once per process."""
    global _ENTRY_POINTS_DONE
    if _ENTRY_POINTS_DONE:
        return
    _ENTRY_POINTS_DONE = True
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist else ep.module
        version = ep.dist.version if ep.dist else ""
        load(ep.module, where=Origin("package", dist, version))


def used_by(spec) -> dict[str, str]:
    """The plugin entries a run uses: ``{"<kind>.<name>": origin identity}`` for every entry
    (method, teacher source, batch plan, architecture, dataset) that is not built-in."""
    import methods

    method = methods.get(spec.method)
    entries = {"method": spec.method, "teacher source": method.teacher_source(
        spec.hyperparameters), "batch plan": method.batch_plan, "architecture": spec.arch,
               "dataset": spec.data.name}
    out = {}
    for kind, name in entries.items():
        o = origin(kind, name)
        if o is not BUILT_IN:
            out[f"{kind.replace(' ', '_')}.{name}"] = o.identity
    return out
