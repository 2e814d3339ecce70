"""An example plugin: the confidence penalty (Pereyra et al., ICLR 2017 workshop, "Regularizing
Neural Networks by Penalizing Confident Output Distributions") as a drkd-bench method.

    L = CE(z, y) - beta * H(softmax(z))       (H: the entropy of the prediction, batch mean)

Load it with a config's ``plugins: [confidence_penalty.py]`` or ``--plugin`` on any command.
"""
import torch.nn.functional as F

from methods import Method, Param, register


def confidence_penalty_terms(student_logits, targets, teacher_logits=None, *, beta=0.1):
    ce = F.cross_entropy(student_logits, targets)
    log_p = F.log_softmax(student_logits, dim=1)
    entropy = -(log_p.exp() * log_p).sum(dim=1).mean()
    return {"loss": ce - beta * entropy, "ce": ce, "entropy": entropy}


register(Method(
    name="confidence-penalty", terms=confidence_penalty_terms,
    params={"beta": Param(0.1, "weight of the entropy bonus", valid="[0, inf)",
                          low=0.01, high=1.0, log=True)},
    paper="Pereyra et al., 2017", summary="CE minus beta times the prediction's entropy"))
