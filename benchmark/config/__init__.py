"""Config: what a run is (``spec``: the hashed run spec), what a grid is (``grids``: YAML
configs), the declaration of every key (``schema``), plugins and compute axes. The names below
are the package's public faces.
"""

from .grids import (
    OPTIMISER_PARAMS,
    GridConfig,
    Variant,
    load_grid,
    parse_grid,
    parse_tune,
    read_yaml,
    resolve_config_path,
    shipped_configs,
    split_optimiser,
    variant_spec,
    with_sets,
    with_tune,
)
from .settings import RESERVED_SEEDS, DataSettings, TrainSettings
from .spec import (
    ConfigError,
    RunSpec,
    build,
    check_data,
    make_spec,
)

__all__ = [
    "ConfigError",
    "DataSettings",
    "GridConfig",
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
