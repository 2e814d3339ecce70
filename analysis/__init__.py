"""Reports from tracked results: tidy pandas frames, honest statistics, tables and figures.

``analysis`` imports neither ``benchmark`` nor ``methods``: it reads a tracking store (or an
exported CSV) and nothing else.

>>> from analysis import load
>>> epochs = load.epochs_from_tracking("sqlite:///results/mlflow.db")  # one row per run-epoch
>>> runs = load.runs_from_epochs(epochs)                               # one row per run
"""
