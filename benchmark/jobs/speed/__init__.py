"""``drkd-bench speed``: what the harness costs, measured side by side: one architecture's rows
(``measure``), several cells on one device (``devices``), a grid's projected wall time
(``projection``), and the output (``output``).
"""

from .devices import cells_per_device
from .measure import (
    DATA_NOTE,
    SHAPES,
    STEP_TARGETS,
    TEST_IMAGES,
    TRAIN_IMAGES,
    Bench,
    Row,
    _PILDataset,
    epoch_rows,
    measure,
    peaks,
    pipeline_rows,
    rates,
    reference_loader,
    step_rows,
    synthetic,
    variants,
)
from .output import peak_rss_mb, table, write_csv
from .projection import project, step_label

__all__ = [
    "Bench",
    "DATA_NOTE",
    "Row",
    "SHAPES",
    "STEP_TARGETS",
    "TEST_IMAGES",
    "TRAIN_IMAGES",
    "_PILDataset",
    "cells_per_device",
    "epoch_rows",
    "measure",
    "peak_rss_mb",
    "peaks",
    "pipeline_rows",
    "project",
    "rates",
    "reference_loader",
    "step_label",
    "step_rows",
    "synthetic",
    "table",
    "variants",
    "write_csv",
]
