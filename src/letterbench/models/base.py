"""What every letterbench model is: ``head(base(x))`` with the input its base expects, plus the
operations on it that training and reporting need (freezing, counting, FLOPs).

What counts as a "layer" when freezing (``layer_units``): a module that owns parameters directly
(Conv2d, BatchNorm, Linear), except that a separable convolution (depthwise + pointwise, timm's
``SeparableConv2d``) counts as one, as Keras' ``SeparableConv2D`` does. Keras also counts layers
without weights (activations, additions, pooling): its Xception ``base.layers[-20:]``, the
report's "last 20 layers", holds exactly 12 units with weights: block12_sepconv3 (+bn),
block13_sepconv1/2 (+bn), the block13 residual conv (+bn), block14_sepconv1/2 (+bn). In timm's
``legacy_xception`` those are the last 12 units: block11.rep's last separable conv and BN,
block12 (skip, skipbn, two separable convs, two BNs), conv3, bn3, conv4, bn4. The xception
recipe therefore unfreezes ``last:12``.
"""

from __future__ import annotations

import torch
from torch import nn

from letterbench.core.errors import WeightsError
from letterbench.models.spec import InputSpec


class LetterModel(nn.Module):
    """``head(base(x))`` plus what the training and reporting code needs to know about it."""

    def __init__(
        self, name: str, base: nn.Module, head: nn.Module, spec: InputSpec, classifier_key: str | None
    ):
        super().__init__()
        self.name = name
        self.base = base
        self.head = head
        self.spec = spec
        self.classifier_key = classifier_key  # the timm classifier a pretrained file brings, dropped here
        self.pretrained = "none"  # what the weights are: "none", "imagenet (<tag>)", "file <path>"
        self.notes: list[str] = []  # things a report must say (e.g. a pretrained fallback)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.base(x))

    def train(self, mode: bool = True) -> LetterModel:
        super().train(mode)
        if mode:
            # Frozen BatchNorm keeps its running statistics, as in Keras fine-tuning.
            for module in self.base.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in module.parameters()
                ):
                    module.eval()
        return self


def layer_units(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Parameterised layers in registration order (input to output); a separable conv counts once."""
    units: list[tuple[str, nn.Module]] = []
    inside: str | None = None
    for name, sub in module.named_modules():
        if inside is not None and name.startswith(inside + "."):
            continue
        inside = None
        if type(sub).__name__ == "SeparableConv2d":
            units.append((name, sub))
            inside = name
        elif any(True for _ in sub.parameters(recurse=False)):
            units.append((name, sub))
    return units


def check_trainable(model: LetterModel, what: str) -> list:
    """The base's layer units, once ``last:N`` is known to name no more of them than there are."""
    units = layer_units(model.base)
    if what.startswith("last:") and what[5:].isdigit() and int(what[5:]) > len(units):
        raise WeightsError(
            f"trainable {what!r}: {getattr(model, 'name', 'the model')} has {len(units)} layer units; "
            f"use last:{len(units)} or 'all'"
        )
    return units


def set_trainable(model: LetterModel, what: str) -> None:
    """``all``; ``head`` (base frozen); ``last:N`` (head plus the base's last N layer units)."""
    if what == "all":
        model.requires_grad_(True)
        return
    model.base.requires_grad_(False)
    model.head.requires_grad_(True)
    if what == "head":
        return
    if what.startswith("last:") and what[5:].isdigit():
        units = check_trainable(model, what)
        for _, unit in units[-int(what[5:]) :] if int(what[5:]) else []:
            unit.requires_grad_(True)
        return
    raise WeightsError(f"trainable must be 'all', 'head' or 'last:N', got {what!r}")


def count_parameters(model: nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def flops_per_image(model: LetterModel) -> int:
    """FLOPs of one forward pass on one image, counted by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = model.spec
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, spec.channels, spec.size, spec.size, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())
