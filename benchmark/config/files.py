"""Config files as YAML: the shipped configs by name, a file read with duplicate keys refused,
``--set`` keys applied, and the ``analysis:`` block alone. Nothing here imports the registries
(nor torch): ``report --config`` reads its statistics settings through this module only."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import ConfigError


def shipped_configs() -> dict[str, Path]:
    folder = resources.files("benchmark") / "configs"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def resolve_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such config file")
        return path
    shipped = shipped_configs()
    if name_or_path not in shipped:
        raise ConfigError(f"unknown config {name_or_path!r}; shipped: {', '.join(sorted(shipped))}"
                          ", or a path to a YAML file")
    return shipped[name_or_path]


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that rejects a key given twice in one mapping (at any depth): YAML
    itself keeps the last value silently, so a config would run something other than written."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"{self.name}: line {key_node.start_mark.line + 1}: key "
                                  f"{key!r} given twice (first on line {seen[key]}); keep one")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """A config file's YAML, safe-loaded with duplicate keys rejected."""
    loader = _UniqueKeyLoader(path.read_text())
    loader.name = str(path)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def with_sets(raw: Any, sets: Mapping[str, Any]) -> Any:
    """The config's YAML with each dotted key (``train.epochs``, ``seeds``,
    ``datasets.digits.val_fraction``) set to its value; what the keys and values mean is the
    schema's to check, as for the file's own keys."""
    raw = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    for key, value in sets.items():
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"--set {key}: expected a dotted key such as train.epochs")
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a mapping "
                                  "in this config")
            node = child
        node[parts[-1]] = value
    return raw


def load_raw(name_or_path: str, sets: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """(a config's YAML with the ``--set`` keys applied, the words that name it in errors)."""
    path = resolve_config_path(name_or_path)
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML") from None
    if sets:
        raw = with_sets(raw, sets)
    return raw, str(path) + (" with --set" if sets else "")


def read_analysis(name_or_path: str, sets: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config's ``analysis:`` block, its settings checked (not the rest of the config: what
    a report reads, without the registries a grid's validation needs)."""
    raw, where = load_raw(name_or_path, sets)
    block = raw.get("analysis") if isinstance(raw, dict) else None
    return parse_analysis(block, where)


def parse_analysis(raw: Any, path: str) -> dict[str, Any]:
    """The optional ``analysis:`` section: the report's statistics settings (family, margin,
    alpha, power, bootstrap, bootstrap_seed, baseline; see docs/statistics.md)."""
    from analysis.stats import Analysis

    if raw is None:
        return {}
    try:
        Analysis.from_mapping(raw, f"{path}: analysis")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return dict(raw)
