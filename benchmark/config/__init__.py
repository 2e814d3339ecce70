"""Config: what a run is (``spec``: the hashed run spec; ``settings``: its keys), what a grid
is (``grids``: YAML configs; ``variants``: its methods, controls, budgets and lattices), the
declaration of every key (``schema``), plugins and compute axes. The names below are the
package's public faces.
"""

from .grids import (
    GridConfig,
    load_grid,
    parse_grid,
    parse_tune,
    read_yaml,
    resolve_config_path,
    shipped_configs,
    variant_spec,
    with_sets,
    with_tune,
)
from .settings import RESERVED_SEEDS, DataSettings, TrainSettings
from .spec import (
    MAX_SEED,
    ConfigError,
    RunSpec,
    build,
    check_data,
    make_spec,
)
from .variants import OPTIMISER_PARAMS, Variant, split_optimiser

__all__ = [
    "ConfigError",
    "DataSettings",
    "GridConfig",
    "MAX_SEED",
    "OPTIMISER_PARAMS",
    "RESERVED_SEEDS",
    "RunSpec",
    "TrainSettings",
    "Variant",
    "build",
    "check_data",
    "load_grid",
    "make_spec",
    "parse_grid",
    "parse_tune",
    "read_yaml",
    "resolve_config_path",
    "shipped_configs",
    "split_optimiser",
    "variant_spec",
    "with_sets",
    "with_tune",
]
