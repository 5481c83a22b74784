"""Models: shapes, parameter counts, safe weight loading, freezing, the `models` command."""

from __future__ import annotations

import pytest
import torch

from letterbench.models import (
    count_parameters,
)


@pytest.mark.parametrize(
    ("name", "shape", "params"),
    [
        ("resnet18", (1, 28, 28), 11_181_018),
        ("densenet121", (3, 64, 64), 6_980_506),
        ("xception", (3, 71, 71), 21_994_050),
        ("timm:resnet10t", (1, 32, 32), 4_935_394),
    ],
)
def test_shapes_params_and_backward(models, name, shape, params):
    model = models[name]
    assert (model.spec.channels, model.spec.size, model.spec.size) == shape
    assert count_parameters(model) == (params, params)
    x = torch.randn(2, *shape)
    out = model.train()(x)
    assert out.shape == (2, 26)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)


def test_resnet18_is_the_reports_variant(models):
    base = models["resnet18"].base
    assert (base.conv1.kernel_size, base.conv1.stride, base.conv1.in_channels) == ((3, 3), (1, 1), 1)
    assert [len(getattr(base, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    assert [getattr(base, f"layer{i}")[0].conv1.out_channels for i in range(1, 5)] == [64, 128, 256, 512]
    # BN follows every conv
    convs = [m for m in base.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in base.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == len(bns)


def test_imagenet_normalisation_matches_timms_pretrained_configs():
    import timm

    from letterbench.models.architectures import IMAGENET_NORM

    for tag, (mean, std) in IMAGENET_NORM.items():
        cfg = timm.models.get_pretrained_cfg(tag)
        assert (tuple(cfg.mean), tuple(cfg.std)) == (mean, std), tag
