"""The test set as a sample: the variance a paired difference of test accuracies would show on
another test set of the same size, added to the seeds' variance in every verdict.

A paired comparison averages, over n seeds, the difference of two models' accuracies on one
fixed test set of N images. Over seeds the mean difference varies with SD/sqrt(n) (the seed-only
interval); over test sets drawn from the same distribution it varies too. With image i's
per-seed difference averaged over the seeds, c_i = mean_s(a_si - b_si) (a, b: 1 when the model
classifies image i correctly), the mean difference is mean_i(c_i) and its test-set variance is
var_i(c_i) / N. Two bounds, the row says which (``test_bound``):

- ``paired images``: every run of both sides kept its per-image correctness (new runs do, as the
  run tag ``test_correct``): var_i(c_i) is computed from the images themselves (McNemar's
  discordant images, averaged over seeds).
- ``independent errors``: runs that kept none (editions before round five): var_i(c_i) is
  bounded by pa(1 - pa) + pb(1 - pb), the variance if the two models' errors were independent
  (pa, pb: the two sides' mean accuracies). Their errors correlate positively (the same images
  are hard for both), so this overstates the variance: a conservative bound.
- ``identical``: the two sides' runs are the same runs (every difference 0): no variance.
- ``none``: the metric is not a final test accuracy (validation, or a test accuracy read at an
  epoch other than the last, whose correctness no run kept under ``paired images``: those use
  ``independent errors`` if their test set size is known), or the test set's size is unknown.

Adding the two variances double-counts the seed x image interaction (the seeds' SD already holds
part of it), so the total errs wide. The verdict's interval and tests use the total, with the
seeds' n - 1 degrees of freedom (fewer than the total's: wide again); the seed-only interval
stays beside it.
"""
from __future__ import annotations

import base64

import numpy as np
import pandas as pd

#: Test split sizes of the shipped datasets (their loaders' fact: the whole official test split;
#: Tiny ImageNet's is its labelled validation split), for runs that did not record theirs.
TEST_IMAGES = {"digits": 450, "fashion-mnist": 10_000, "cifar10": 10_000, "cifar100": 10_000,
               "tiny-imagenet": 10_000}

#: Metrics that are the final epoch's test accuracy (the correctness the runs keep).
FINAL_TEST = ("final_test_top1", "test_top1")
#: Metrics that are a test accuracy at some epoch (the independence bound applies).
TEST_METRICS = FINAL_TEST + ("best_val_test_top1", "best_test_top1")

BOUNDS = ("paired images", "independent errors", "identical", "none")


def unpack_correct(text: str, n: int) -> np.ndarray:
    """The per-image correctness a run kept: ``n`` booleans from base64 of ``numpy.packbits``
    (big-endian bit order, padded with zeros to a whole byte)."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8))
    if len(bits) < n or bits[n:].any():
        raise ValueError(f"a correctness vector of {len(bits)} bits cannot hold {n} images")
    return bits[:n].astype(bool)


def test_images(g: pd.DataFrame) -> float:
    """The test split's size of the runs ``g`` (one dataset): the runs' own record
    (``final_test_images``), else the shipped dataset's fact, else NaN."""
    if "final_test_images" in g and g["final_test_images"].notna().any():
        return float(g["final_test_images"].dropna().iloc[0])
    name = str(g["dataset"].iloc[0]).split(":")[0] if len(g) else ""
    return float(TEST_IMAGES.get(name, np.nan))


def image_variance(g: pd.DataFrame, seeds, variant: str, baseline: str, metric: str,
                   x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """(the test-set variance of the mean paired difference over ``seeds``, in the metric's own
    unit squared; the bound used). ``x``, ``y``: the two sides' values over those seeds."""
    if metric not in TEST_METRICS or len(x) == 0:
        return 0.0, "none"
    if np.all(x == y) and _same_runs(g, seeds, variant, baseline):
        return 0.0, "identical"
    n = test_images(g)
    if not n > 0:
        return 0.0, "none"
    if metric in FINAL_TEST:
        c = _image_means(g, seeds, variant, baseline, int(n))
        if c is not None:
            return float(c.var(ddof=1) / n), "paired images"
    pa, pb = float(np.mean(x)), float(np.mean(y))
    return float((pa * (1 - pa) + pb * (1 - pb)) / n), "independent errors"


def _same_runs(g: pd.DataFrame, seeds, variant: str, baseline: str) -> bool:
    """Whether both sides are the very same runs (a cell that stands for two labels)."""
    if "run_id" not in g:
        return True
    ids = {v: g[g["variant"] == v].set_index("seed")["run_id"].astype(str).str.split(":").str[0]
           for v in (variant, baseline)}
    return all(ids[variant].get(s) == ids[baseline].get(s) for s in seeds)


def _image_means(g: pd.DataFrame, seeds, variant: str, baseline: str,
                 n: int) -> np.ndarray | None:
    """c_i = mean over ``seeds`` of (variant correct - baseline correct) on image i, or None
    when a run of either side kept no correctness."""
    if "final_test_correct" not in g:
        return None
    total = np.zeros(n)
    for side, sign in ((variant, 1.0), (baseline, -1.0)):
        kept = g[g["variant"] == side].drop_duplicates("seed").set_index("seed")
        for s in seeds:
            text = kept["final_test_correct"].get(s) if s in kept.index else None
            if not isinstance(text, str) or not text:
                return None
            total += sign * unpack_correct(text, n)
    return total / len(seeds)
