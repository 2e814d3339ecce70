"""Evaluation metrics as pure functions of logits and labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int = 1) -> float:
    """Fraction of samples whose label is among the ``k`` largest logits."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == targets.unsqueeze(1)).any(dim=1).float().mean().item()


def packed_correct(logits: torch.Tensor, targets: torch.Tensor) -> str:
    """Which samples the top-1 prediction gets right, packed for a run tag: base64 of
    ``numpy.packbits`` (big-endian bits, the last byte padded with zeros), one bit per sample
    in the split's order (10,000 test images: 1,668 characters). The same top-1 as
    :func:`topk_accuracy`, so the bits' mean is the run's test top-1."""
    import base64

    import numpy as np

    right = (logits.topk(1, dim=1).indices[:, 0] == targets).cpu().numpy()
    return base64.b64encode(np.packbits(right)).decode("ascii")


def nll(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return F.cross_entropy(logits.float(), targets).item()


def expected_calibration_error(logits: torch.Tensor, targets: torch.Tensor,
                               bins: int = 15) -> float:
    """ECE (Guo et al. 2017): sum over equal-width confidence bins of |accuracy - confidence|
    weighted by the fraction of samples in the bin; bins are (lo, hi], the first includes 0."""
    probs = F.softmax(logits.float(), dim=1)
    conf, pred = probs.max(dim=1)
    correct = (pred == targets).float()
    index = (conf * bins).ceil().long().clamp(1, bins) - 1
    acc_sum = torch.zeros(bins, device=logits.device).index_add_(0, index, correct)
    conf_sum = torch.zeros(bins, device=logits.device).index_add_(0, index, conf)
    return ((acc_sum - conf_sum).abs().sum() / len(targets)).item()


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor, prefix: str) -> dict:
    """top-1, top-5 (when there are at least 10 classes), NLL and ECE, keyed ``prefix_name``."""
    out = {f"{prefix}_top1": topk_accuracy(logits, targets, 1)}
    if logits.shape[1] >= 10:
        out[f"{prefix}_top5"] = topk_accuracy(logits, targets, 5)
    out[f"{prefix}_nll"] = nll(logits, targets)
    out[f"{prefix}_ece"] = expected_calibration_error(logits, targets)
    return out
