import pytest
import torch

from benchmark import models

SIZES = {"cnn8": 8, "mlp": 8, "cnn28": 28, "cnn28s": 28}


@pytest.mark.parametrize("name", models.names())
def test_every_registered_architecture_gives_logits(name):
    size = SIZES.get(name, 32)
    model = models.build(name, 3, 7, size)
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", models.names() + ["timm:resnet10t"])
def test_forward_is_exactly_forward_head_of_forward_features(name):
    size = SIZES.get(name, 32)
    torch.manual_seed(0)
    model = models.build(name, 3, 7, size)
    x = torch.randn(3, 3, size, size)
    for mode in (model.eval, model.train):
        mode()
        torch.manual_seed(1)
        direct = model(x)
        torch.manual_seed(1)
        composed = model.forward_head(model.forward_features(x))
        assert torch.equal(direct, composed)
    pooled = model.eval().forward_head(model.forward_features(x), pre_logits=True)
    assert pooled.ndim == 2 and pooled.shape[0] == 3


def test_timm_models_and_unknown_names():
    model = models.build("timm:resnet10t", 1, 10, 28)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(models.ModelError, match="resnet18"):
        models.check("resnet19")
    with pytest.raises(models.ModelError, match="timm"):
        models.check("timm:not-a-model-xyz")
    assert models.names("cnn*") == ["cnn8", "cnn28", "cnn28s"]


def test_cnn28s_is_the_narrow_cnn28():
    wide, narrow = models.build("cnn28", 1, 10, 28), models.build("cnn28s", 1, 10, 28)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # 1->8, 8->16, 16->16, 16->32, 32->32 convs (3x3, no bias) + their BN + a 32x10 head
    convs = 9 * (1 * 8 + 8 * 16 + 16 * 16 + 16 * 32 + 32 * 32)
    assert count(narrow) == convs + 2 * (8 + 16 + 16 + 32 + 32) + 32 * 10 + 10
    assert count(narrow) < count(wide) / 10
