"""Config: what a run is (``spec``: the hashed run spec; ``settings``: its keys), what a grid
is (``grids``: YAML configs; ``variants``: its methods, controls, budgets and lattices), the
declaration of every key (``schema``), plugins and compute axes. The names below are the
package's public faces.
Each name loads its module when first used, so a command that only reads (``report`` with a
config's ``analysis:`` block) never imports the registries, nor torch with them.
"""

import importlib

#: public name -> the module of this package that defines it
_WHERE = {
    "GridConfig": "grids", "load_grid": "grids", "parse_grid": "grids", "parse_tune": "grids",
    "read_yaml": "grids", "resolve_config_path": "grids", "shipped_configs": "grids",
    "variant_spec": "grids", "with_sets": "grids", "with_tune": "grids",
    "with_precisions": "grids",
    "RESERVED_SEEDS": "settings", "DataSettings": "settings", "TrainSettings": "settings",
    "MAX_SEED": "spec", "ConfigError": "spec", "RunSpec": "spec", "build": "spec",
    "check_data": "spec", "make_spec": "spec",
    "OPTIMISER_PARAMS": "variants", "Variant": "variants", "split_optimiser": "variants",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
