"""Error types that more than one module raises, kept apart so that the modules raising them
need not import each other (and the command line can catch them without importing MLflow, or the
registries and torch behind them)."""


class TrackingError(ValueError):
    """A tracking URI or store location that cannot be used (one line at the command line)."""


class DataError(RuntimeError):
    """A dataset that cannot be found or read (one line, no traceback at the CLI)."""


class ModelError(ValueError):
    """An unknown architecture, or one that cannot be built for the data."""


class PluginError(ValueError):
    """A plugin that cannot be loaded (one line naming it)."""


class ConfigError(ValueError):
    """A config or argument error: one line naming the file, the key and the valid choices."""
