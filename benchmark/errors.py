"""Error types that more than one module raises, kept apart so that the modules raising them
need not import each other (and the command line can catch them without importing MLflow)."""


class TrackingError(ValueError):
    """A tracking URI or store location that cannot be used (one line at the command line)."""
