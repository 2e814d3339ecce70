"""Zipf's label smoothing (Liang et al., ECCV 2022, "Efficient One Pass Self-distillation with
Zipf's Label Smoothing").

Followed: megvii-research/zipfls at 108e27aaf81aee0dc6dcd965ed6389f2ea06ba10,
``pytorch_zipfls/losses.py`` (``zipf_loss``, ``gen_pdf`` with ``rank='hard'``,
``get_masked_distribution`` with ``rank_zipf``, ``kl_loss``) and ``pytorch_zipfls/train.py``
(``total_loss = loss_lambda * kd_loss + xent_loss``).

The classes are ranked by the model's own detached logits (rank 1 = largest, ties share the
smallest rank, as ``scipy.stats.rankdata(method='min')``). The non-target classes get the target
``q_k = r_k^-p / sum_{j != y} r_j^-p`` and the loss is
``CE(z, y) + lam KL(q || softmax over the non-target logits)``, the KL summed over the K - 1
non-target classes and averaged over the batch. One forward pass, no teacher.

Two recipes, selected by ``fidelity``:

- ``paper`` (the published CIFAR and Tiny ImageNet numbers: the README's commands pass
  ``--dense --upsample bilinear``): the last feature map is upsampled 2x (bilinear,
  ``F.upsample(scale_factor=2.)`` in ``cifar_models/resnet.py``, ``get_dense_info``), the
  classifier is applied at every position, each position votes for its arg-max class, and the
  classes are ranked by their vote counts (``gen_pdf``, ``dense=True``: ``scatter_add`` of ones,
  then ``rankdata(-votes, method='min')``): classes without a vote share one rank.
- ``code`` (``train.py``'s default, no ``--dense``): ranked by the output logits.

The votes need the feature map: the method declares it (``needs_features``) and the training step
hands it ``features`` (``forward_features``, detached) and ``head`` (``forward_head``) only then.
A perceptron has no spatial map: its hidden layer is one position (one vote).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import Method, Param, register


def zipf_targets(scores: torch.Tensor, targets: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """(N, K) Zipf distribution over the non-target classes by rank of ``scores`` (logits or
    vote counts; rank 1 = largest, ties share the smallest rank); 0 at ``y``."""
    z = scores.detach().float()
    rank = 1 + (z.unsqueeze(1) > z.unsqueeze(2)).sum(dim=2)  # rank_i = 1 + #{j: z_j > z_i}
    dist = rank.to(z.dtype).pow(-power)
    dist = dist.scatter(1, targets.unsqueeze(1), 0.0)
    return dist / dist.sum(dim=1, keepdim=True)


UPSAMPLE = ("bilinear", "nearest", "none")


def dense_votes(features: torch.Tensor, head, num_classes: int,
                upsample: str = "bilinear") -> torch.Tensor:
    """(N, K) vote counts: ``head`` (a ``forward_head``) applied at every position of the feature
    map (upsampled 2x unless ``upsample`` is ``none``), each position voting for its arg-max."""
    with torch.no_grad():
        f = features.detach()
        if f.dim() == 2:  # no spatial map: one position
            f = f[:, :, None, None]
        if upsample != "none":
            kw = {"align_corners": False} if upsample == "bilinear" else {}
            f = F.interpolate(f, scale_factor=2.0, mode=upsample, **kw)
        n, c, h, w = f.shape
        positions = head(f.permute(0, 2, 3, 1).reshape(n * h * w, c, 1, 1))
        winners = positions.reshape(n, h * w, -1).argmax(dim=2)
        return F.one_hot(winners, num_classes).sum(dim=1)


def needs_features(hp) -> bool:
    return bool(hp.get("dense"))


def zipf_ls_terms(student_logits: torch.Tensor, targets: torch.Tensor,
                  teacher_logits: torch.Tensor | None = None, *, lam: float = 0.1,
                  power: float = 1.0, dense: bool = False, upsample: str = "bilinear",
                  features: torch.Tensor | None = None, head=None) -> dict[str, torch.Tensor]:
    """``CE(z, y) + lam KL(q_zipf || softmax(z without y))``, batch mean; with ``dense`` the
    ranking comes from the votes of ``head`` over ``features`` (:func:`dense_votes`)."""
    ce = F.cross_entropy(student_logits, targets)
    if dense:
        if features is None or head is None:
            raise ValueError("zipf-ls with dense=True needs the feature map and the head")
        scores = dense_votes(features, head, student_logits.shape[1], upsample)
    else:
        scores = student_logits
    q = zipf_targets(scores, targets, power)
    is_target = F.one_hot(targets, student_logits.shape[1]).bool()
    log_p = F.log_softmax(student_logits.masked_fill(is_target, float("-inf")), dim=1)
    pointwise = torch.where(is_target, torch.zeros_like(q), torch.xlogy(q, q) - q * log_p)
    kd = pointwise.sum(dim=1).mean()
    return {"loss": ce + lam * kd, "ce": ce, "kd": kd}


ZIPF_LS = register(Method(
    name="zipf-ls", terms=zipf_ls_terms, teacher="none",
    params={"lam": Param(0.1, "weight of the Zipf term (ref: zipfls@108e27a pytorch_zipfls/"
                              "README.md, CIFAR-100 ResNet18 ZLS command: --loss_lambda 0.1)",
                         valid="[0, inf)", low=0.01, high=2.0,
                         log=True),
            "power": Param(1.0, "Zipf exponent p (ref: zipfls@108e27a pytorch_zipfls/train.py l. "
                                   "367, --power default 1.0)",
                           valid="(0, inf)", low=0.5, high=2.0),
            "fidelity": Param("paper", "preset: 'paper' (dense votes over the upsampled last "
                                       "feature map: the README's published commands) or "
                                       "'code' (output logits: train.py's default)",
                              choices=("paper", "code"), role="preset"),
            "dense": Param(None, "rank by the votes of the classifier at every feature-map "
                                 "position (ref: zipfls README, --dense) instead of the logits",
                           choices=(True, False)),
            "upsample": Param(None, "feature map upsampling before the votes (ref: zipfls "
                                    "README, --upsample bilinear; train.py default None)",
                              choices=UPSAMPLE)},
    presets={"paper": {"dense": True, "upsample": "bilinear"},
             "code": {"dense": False, "upsample": "none"}},
    needs_features=needs_features,
    paper="Liang et al., ECCV 2022 (Zipf's LS)",
    source="megvii-research/zipfls@108e27a pytorch_zipfls/losses.py, train.py",
    summary="label smoothing shaped by the model's own class ranking (Zipf's law)"))
