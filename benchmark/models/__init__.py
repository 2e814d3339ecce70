"""Models: the architecture registry (``registry``), the shipped students (``students``), the
teacher sources (``teachers``) and the metrics of a model's outputs (``metrics``). The names
below are the package's public faces.
"""

from .registry import Builder, ModelError, build, check, describe, names, register
from .students import cnn8, cnn28, cnn28s, mlp, mobilenetv2, resnet18, shufflenetv2

__all__ = [
    "Builder",
    "ModelError",
    "build",
    "check",
    "cnn28",
    "cnn28s",
    "cnn8",
    "describe",
    "mlp",
    "mobilenetv2",
    "names",
    "register",
    "resnet18",
    "shufflenetv2",
]
