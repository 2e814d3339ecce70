"""CS-KD: Class-wise Self-Knowledge Distillation (Yun et al., CVPR 2020).

Followed: alinlab/cs-kd at b447f250405932501cb28db0dc09eadeab526b80, ``train.py`` (``KDLoss``,
the ``-cls`` branch of ``train``) and ``datasets.py`` (``PairBatchSampler``).

Every anchor of a batch has a partner drawn uniformly among the training samples of its class
(possibly itself). The partner batch goes through the student without gradient, in training mode
(the harness's ``partner`` teacher under the ``class-paired`` batch plan). The loss is
``CE(z_a, y) + lam T^2 KL(softmax(z_p / T) || softmax(z_a / T))`` with the KL summed over classes
and averaged over the anchors. See ``docs/methods.md``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .functional import kl_divergence
from .registry import Method, Param, register


def cskd_terms(student_logits: torch.Tensor, targets: torch.Tensor,
               teacher_logits: torch.Tensor | None = None, *, temperature: float = 4.0,
               lam: float = 1.0) -> dict[str, torch.Tensor]:
    """CE on the anchors plus ``lam T^2 KL`` from the partners' detached, softened prediction."""
    if teacher_logits is None:
        raise ValueError("cs-kd needs the partners' logits")
    ce = F.cross_entropy(student_logits, targets)
    kd = kl_divergence(F.softmax(teacher_logits.detach() / temperature, dim=1),
                       F.log_softmax(student_logits / temperature, dim=1)) * temperature ** 2
    return {"loss": ce + lam * kd, "ce": ce, "kd": kd}


CSKD = register(Method(
    name="cs-kd", terms=cskd_terms, teacher="partner", batch_plan="class-paired",
    params={"temperature": Param(4.0, "T (ref: cs-kd train.py, --temp default 4)",
                                 valid="(0, inf)", low=1.0, high=20.0, log=True),
            "lam": Param(1.0, "weight of the class-wise term (ref: cs-kd README, CIFAR-100 "
                              "command --lamda 1)", valid="[0, inf)", low=0.1, high=10.0,
                         log=True)},
    paper="Yun et al., CVPR 2020 (CS-KD)",
    source="alinlab/cs-kd@b447f25 train.py, datasets.py",
    control={"lam": 0.0},
    control_summary="lam = 0: CE on the anchors, partners still forwarded (the class-paired plan "
                    "alone)",
    summary="KD from a same-class partner's prediction"))
