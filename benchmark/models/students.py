"""The shipped student architectures (small CNNs and an MLP for the embedded data, ResNet-18,
MobileNetV2 and ShuffleNetV2 at CIFAR scale), each speaking timm's feature interface:
``forward_features(x)`` is the last feature map and ``forward_head(f, pre_logits)`` pools it
and classifies, so teachers and feature-level methods reach the same layer in every model."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark.models.registry import register


def _pooled_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
    """timm's ``forward_head``: global average pool of the (N, C, H, W) feature map, then the
    linear classifier ``self.head`` (skipped with ``pre_logits``: the pooled features)."""
    pooled = F.adaptive_avg_pool2d(features, 1).flatten(1)
    return pooled if pre_logits else self.head(pooled)


def _conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


# --- small nets for the embedded datasets ------------------------------------------------------

class SmallCNN(nn.Module):
    """Conv-BN-ReLU stages with max-pooling between them, global average pool, linear head."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            layers += [_conv_bn(cin, w), _conv_bn(w, w)] if i else [_conv_bn(cin, w)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    forward_head = _pooled_head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register("cnn8", "small CNN for 8x8 inputs (digits): 32-64 channels, one pooling")
def cnn8(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return SmallCNN(in_channels, num_classes, (32, 64))


@register("cnn28", "small CNN for 28x28 inputs (Fashion-MNIST): 32-64-128 channels")
def cnn28(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return SmallCNN(in_channels, num_classes, (32, 64, 128))


@register("cnn28s", "narrow CNN for 28x28 inputs: 8-16-32 channels, 18k parameters, ~7x cheaper "
                    "than cnn28 (the 2-core CPU budget of the published Fashion-MNIST edition)")
def cnn28s(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return SmallCNN(in_channels, num_classes, (8, 16, 32))


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden),
                                 nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden layer's activations, (N, hidden): a perceptron has no spatial map."""
        return self.net[:4](x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if features.dim() == 4:  # a map of positions (N, C, H, W): average it, as pooling does
            features = features.mean(dim=(2, 3))
        return features if pre_logits else self.net[4](features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register("mlp", "two-layer perceptron (256 hidden units, batch norm) for small images")
def mlp(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return MLP(in_channels * image_size * image_size, num_classes)


# --- CIFAR-style ResNet18 (He et al. 2016; the Tf-KD code's version) -------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks: tuple[int, ...], in_channels: int, num_classes: int):
        super().__init__()
        self.stem = _conv_bn(in_channels, 64)
        layers, cin = [], 64
        for i, n in enumerate(blocks):
            cout = 64 * 2 ** i
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if i and not j else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    forward_head = _pooled_head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register("resnet18", "CIFAR-style ResNet18 (3x3 stem, no max-pool), 11.2M parameters")
def resnet18(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return ResNet((2, 2, 2, 2), in_channels, num_classes)


# --- CIFAR-style MobileNetV2 (Sandler et al. 2018; stride 1 in the stem and first stages) -----

class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            _conv_bn(cin, hidden, k=1), _conv_bn(hidden, hidden, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_res else out


class MobileNetV2(nn.Module):
    # (expansion, out channels, blocks, stride); strides of the ImageNet net's 2nd stage and stem
    # set to 1 for 32x32 inputs, as in the Tf-KD code's CIFAR version.
    CFG = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(in_channels, 32)]
        cin = 32
        for t, c, n, s in self.CFG:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, t, s if i == 0 else 1))
                cin = c
        layers.append(_conv_bn(cin, 1280, k=1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(1280, num_classes)

    forward_head = _pooled_head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register("mobilenetv2", "CIFAR-style MobileNetV2 (stride-1 stem)")
def mobilenetv2(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return MobileNetV2(in_channels, num_classes)


# --- CIFAR-style ShuffleNetV2 (Ma et al. 2018, 1x width) --------------------------------------

def _channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        branch = cout // 2
        right_in = cin if stride == 2 else branch
        self.right = nn.Sequential(
            _conv_bn(right_in, branch, k=1),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch), _conv_bn(branch, branch, k=1))
        self.left = nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
            _conv_bn(cin, branch, k=1)) if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left is None:
            left, right = x.chunk(2, dim=1)
            out = torch.cat([left, self.right(right)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        return _channel_shuffle(out)


class ShuffleNetV2(nn.Module):
    def __init__(self, in_channels: int, num_classes: int,
                 widths: tuple[int, ...] = (116, 232, 464), repeats: tuple[int, ...] = (4, 8, 4)):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(in_channels, 24)]
        cin = 24
        for width, n in zip(widths, repeats):
            for i in range(n):
                layers.append(ShuffleUnit(cin, width, 2 if i == 0 else 1))
                cin = width
        layers.append(_conv_bn(cin, 1024, k=1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(1024, num_classes)

    forward_head = _pooled_head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register("shufflenetv2", "CIFAR-style ShuffleNetV2 1x (stride-1 stem, no max-pool)")
def shufflenetv2(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return ShuffleNetV2(in_channels, num_classes)
