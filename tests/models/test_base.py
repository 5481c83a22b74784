"""Models: shapes, parameter counts, safe weight loading, freezing, the `models` command."""

from __future__ import annotations

from letterbench.models import (
    count_parameters,
    flops_per_image,
    layer_units,
    set_trainable,
)


def test_flops_are_counted(models):
    assert 200e6 < flops_per_image(models["resnet18"]) < 300e6
    assert flops_per_image(models["xception"]) > flops_per_image(models["densenet121"])


def test_freeze_base_and_unfreeze_last_units(models):
    model = models["xception"]
    head = sum(p.numel() for p in model.head.parameters())
    set_trainable(model, "head")
    assert count_parameters(model)[1] == head == 1_187_098
    units = layer_units(model.base)
    set_trainable(model, "last:20")
    expected = head + sum(p.numel() for _, u in units[-20:] for p in u.parameters())
    assert count_parameters(model)[1] == expected
    trainable_names = {n for n, p in model.base.named_parameters() if p.requires_grad}
    assert trainable_names == {f"{name}.{p}" for name, u in units[-20:] for p, _ in u.named_parameters()}
    # Keras' base.layers[-20:] (the report's "last 20 layers") are exactly our last 12 units.
    set_trainable(model, "last:12")
    assert [name for name, _ in layer_units(model.base)[-12:]] == [
        "block11.rep.7",
        "block11.rep.8",
        "block12.skip",
        "block12.skipbn",
        "block12.rep.1",
        "block12.rep.2",
        "block12.rep.4",
        "block12.rep.5",
        "conv3",
        "bn3",
        "conv4",
        "bn4",
    ]
    assert count_parameters(model)[1] == head + 7_326_376
    # frozen BatchNorm stays in inference mode while training
    model.train()
    assert not model.base.bn1.training and model.base.bn4.training
    set_trainable(model, "all")
    model.train()
    assert model.base.bn1.training
