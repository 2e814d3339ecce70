"""Label noise on the training and validation labels (never the test labels)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.data.catalog import DataError

NOISE_KINDS = ("none", "symmetric", "pair")

#: What the harness measures on every run with noisy labels (``diag_<name>``, per epoch).
NOISE_DIAGNOSTICS = {
    "memorised": "share of the noisy-labelled training samples of the epoch that the student, "
                 "in its training forward, predicts as their given (wrong) label",
}


@dataclass(frozen=True)
class Noise:
    """Label noise: ``symmetric`` replaces a label by a class drawn uniformly from the K - 1
    others; ``pair`` flips class c to c + 1 (mod K), the pair-flip noise of Han et al.
    (Co-teaching, NeurIPS 2018). Exactly ``round(rate * n_c)`` labels of each class c of each
    split are changed, the samples drawn without replacement from ``seed``."""

    kind: str = "none"
    rate: float = 0.0
    seed: int = 0

    def corrupt(self, labels: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
        out = labels.copy()
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            chosen = np.sort(rng.permutation(idx)[:int(round(self.rate * len(idx)))])
            if self.kind == "pair":
                out[chosen] = (c + 1) % classes
            else:  # symmetric: an offset of 1..K-1 is a uniform draw among the other classes
                out[chosen] = (c + rng.integers(1, classes, size=len(chosen))) % classes
        return out

    def apply(self, train_y: np.ndarray, val_y: np.ndarray, classes: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """The noisy training and validation labels (the training split's drawn first)."""
        if classes < 2:
            raise DataError("label noise needs at least two classes")
        rng = np.random.default_rng([self.seed, 0x6E6F697365])  # "noise": its own stream
        return self.corrupt(train_y, classes, rng), self.corrupt(val_y, classes, rng)
