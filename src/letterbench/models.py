"""The study's three architectures, any timm model, weight loading, and freezing.

Every model is a ``LetterModel``: a timm ``base`` that maps an image batch to pooled
features, a ``head`` that maps features to class logits, and the ``InputSpec`` the
base expects. Training derives its preprocessing from that spec; nothing else
hard-codes input sizes or normalisation.

What counts as a "layer" when freezing (``layer_units``): a module that owns
parameters directly (Conv2d, BatchNorm, Linear), except that a separable
convolution (depthwise + pointwise, timm's ``SeparableConv2d``) counts as one, as
Keras' ``SeparableConv2D`` does. Keras also counts layers without weights
(activations, additions, pooling): its Xception ``base.layers[-20:]``, the
report's "last 20 layers", holds exactly 12 units with weights:
block12_sepconv3 (+bn), block13_sepconv1/2 (+bn), the block13 residual conv (+bn),
block14_sepconv1/2 (+bn). In timm's ``legacy_xception`` those are the last 12
units: block11.rep's last separable conv and BN, block12 (skip, skipbn, two
separable convs, two BNs), conv3, bn3, conv4, bn4. The xception recipe therefore
unfreezes ``last:12``.
"""

from __future__ import annotations

import os
import pickle
import socket
import urllib.parse
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import timm
import torch
from torch import nn

from letterbench.errors import WeightsError

# Pixel statistics of the EMNIST Letters train set (mean 44.06, std 84.53 of 255).
EMNIST_MEAN, EMNIST_STD = 0.1728, 0.3315

# ImageNet weights the study's pretrained models use, as timm names them.
PRETRAINED_TAGS = {"densenet121": "densenet121.tv_in1k", "xception": "legacy_xception.tf_in1k"}

MODEL_NAMES = ("resnet18", "densenet121", "xception")


class PretrainedUnavailable(WeightsError):
    """ImageNet weights were asked for and could not be had (offline, no cache)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # the short cause, for notes: "offline", "not in the hub", ...


@dataclass(frozen=True)
class InputSpec:
    """The input a model expects: channels, square size, per-channel normalisation (on 0..1 pixels)."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def describe(self) -> str:
        return f"{self.channels}x{self.size}x{self.size}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class WeightsFit:
    """How a weights file's tensors line up with a model."""

    target: str  # "model" (a whole letterbench model) or "base" (e.g. ImageNet weights for the base)
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    misshaped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # the file's own classifier, replaced by our head

    @property
    def fits(self) -> bool:
        return bool(self.matched) and not (self.missing or self.unexpected or self.misshaped)

    def summary(self) -> str:
        def few(names: list[str]) -> str:
            return ", ".join(names[:3]) + (f", … (+{len(names) - 3})" if len(names) > 3 else "")

        lines = [
            f"{'fits' if self.fits else 'DOES NOT FIT'} (as weights for the {self.target}): "
            f"{len(self.matched)} tensors matched, {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {len(self.misshaped)} mis-shaped"
        ]
        for label, names in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped", self.misshaped),
            ("ignored (old classifier)", self.ignored),
        ):
            if names:
                lines.append(f"  {label}: {few(names)}")
        return "\n".join(lines)


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


# ---------------------------------------------------------------- architectures


def _resnet18_base() -> nn.Module:
    """timm's ResNet-18 with the report's stem for 28x28 grayscale: 3x3 stride-1 conv, BN, ReLU, 3x3/2 max-pool.

    timm's stock stem (7x7 stride-2 conv) would shrink a 28x28 letter to 7x7 before the
    first residual stage; the 3x3 stride-1 stem keeps 14x14 there.
    """
    base = timm.create_model("resnet18", pretrained=False, num_classes=0, in_chans=1)
    base.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    # Variance-scaled (He) initialisation, as timm's ResNet uses for every other conv.
    nn.init.kaiming_normal_(base.conv1.weight, mode="fan_out", nonlinearity="relu")
    return base


def _weights_host(tag: str) -> str | None:
    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import constants

        return urllib.parse.urlparse(constants.ENDPOINT).hostname
    return urllib.parse.urlparse(cfg.url).hostname if cfg.url else None


def _reachable(host: str, timeout: float = 5.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _timm_base(arch: str, pretrained: bool, **kwargs) -> nn.Module:
    if not pretrained:
        return timm.create_model(arch, pretrained=False, num_classes=0, **kwargs)
    # The hub client retries an unreachable host for about a minute; when the weights are
    # not cached, one quick connection attempt tells whether that wait could help.
    host = _weights_host(arch)
    if not weights_cached_tag(arch) and host and not _reachable(host):
        raise PretrainedUnavailable(
            f"ImageNet weights for {arch} are not cached and {host} cannot be reached (offline?). "
            + _HOW_TO_GET_WEIGHTS.format(arch=arch),
            reason=f"{arch}: not cached, {host} unreachable",
        )
    try:
        return timm.create_model(arch, pretrained=True, num_classes=0, **kwargs)
    except Exception as exc:  # offline, hub errors, corrupt cache: all mean "no weights here"
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise PretrainedUnavailable(
            f"ImageNet weights for {arch} could not be loaded ({reason}). "
            + _HOW_TO_GET_WEIGHTS.format(arch=arch),
            reason=f"{arch}: {reason}",
        ) from None


_HOW_TO_GET_WEIGHTS = (
    'On a machine with internet, run `python -c "import timm, torch; '
    "torch.save(timm.create_model('{arch}', pretrained=True).state_dict(), 'weights.pth')\"` "
    "and pass --weights weights.pth, or use --pretrained auto to train from random initialisation"
)


def xception_head(
    features: int, num_classes: int, widths: tuple[int, ...] = (512, 256), dropout: float = 0.5
):
    """GAP features -> [Dense + ReLU + Dropout] per width -> Dense(num_classes); softmax is in the loss.

    Defaults 512 and 256: the 2048 pooled Xception features are narrowed in two steps of
    4x and 2x, about 1.2 M head parameters, few enough for a head-only phase on
    ~100 k images not to overfit, wide enough not to bottleneck 26 classes. Dropout 0.5
    is the usual Keras choice for such a head.
    """
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(features, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def _build(
    name: str, num_classes: int, pretrained: bool, head_widths: tuple[int, ...], dropout: float | None
):
    if name == "resnet18":
        base = _resnet18_base()
        spec = InputSpec(1, 28, (EMNIST_MEAN,), (EMNIST_STD,))
        return LetterModel(name, base, nn.Linear(base.num_features, num_classes), spec, None)
    if name == "densenet121":
        base = _timm_base(PRETRAINED_TAGS[name], pretrained)
        cfg = base.pretrained_cfg
        head = nn.Sequential(
            nn.Dropout(0.2 if dropout is None else dropout), nn.Linear(base.num_features, num_classes)
        )
        return LetterModel(
            name, base, head, InputSpec(3, 64, tuple(cfg["mean"]), tuple(cfg["std"])), cfg["classifier"]
        )
    if name == "xception":
        base = _timm_base(PRETRAINED_TAGS[name], pretrained)
        cfg = base.pretrained_cfg
        head = xception_head(base.num_features, num_classes, head_widths, 0.5 if dropout is None else dropout)
        return LetterModel(
            name, base, head, InputSpec(3, 71, tuple(cfg["mean"]), tuple(cfg["std"])), cfg["classifier"]
        )
    if name.startswith("timm:"):
        arch = name.removeprefix("timm:")
        if not timm.is_model(arch.split(".")[0]):
            raise WeightsError(
                f"timm has no model {arch!r}; `python -c 'import timm; print(timm.list_models())'`"
            )
        # One input channel: timm sums a pretrained first conv over RGB (adapt_input_conv).
        base = _timm_base(arch, pretrained, in_chans=1)
        cfg = base.pretrained_cfg
        mean = sum(cfg.get("mean", (0.5,))) / len(cfg.get("mean", (0.5,)))
        std = sum(cfg.get("std", (0.5,))) / len(cfg.get("std", (0.5,)))
        min_size = max(32, *(cfg.get("min_input_size") or (0, 0, 0))[1:])
        head = nn.Sequential(nn.Dropout(dropout or 0.0), nn.Linear(base.num_features, num_classes))
        return LetterModel(name, base, head, InputSpec(1, min_size, (mean,), (std,)), cfg.get("classifier"))
    raise WeightsError(f"unknown model {name!r}; choose {', '.join(MODEL_NAMES)} or timm:<name>")


def create_model(
    name: str,
    num_classes: int = 26,
    pretrained: bool | str = False,
    weights: str | os.PathLike | None = None,
    head_widths: tuple[int, ...] = (512, 256),
    dropout: float | None = None,
) -> LetterModel:
    """Build a model. ``pretrained``: True (ImageNet or error), False, or "auto" (ImageNet, else random
    with a warning recorded in ``model.notes``). ``weights``: a local file, loaded safely, instead."""
    if weights is not None:
        model = _build(name, num_classes, False, head_widths, dropout)
        load_weights(model, weights)
        return model
    if pretrained is True and name == "resnet18":
        raise WeightsError(
            "the resnet18 variant has no ImageNet weights (its stem is the report's own); "
            "use --pretrained false"
        )
    want = pretrained is True or (pretrained == "auto" and name != "resnet18")
    try:
        model = _build(name, num_classes, want, head_widths, dropout)
        if want:
            model.pretrained = f"imagenet ({PRETRAINED_TAGS.get(name, name)})"
    except PretrainedUnavailable as exc:
        if pretrained != "auto":
            raise
        note = f"ImageNet weights unavailable ({exc.reason}): trained from random initialisation"
        warnings.warn(note, stacklevel=2)
        model = _build(name, num_classes, False, head_widths, dropout)
        model.notes.append(note)
    return model


# ---------------------------------------------------------------- weights


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a PyTorch file, never executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path}: refused: the file holds pickled objects other than tensors, which could run code "
            f"({str(exc).splitlines()[0][:120]}); save a plain state_dict or safetensors file"
        ) from None
    except Exception as exc:  # truncated zip, bad safetensors header, not a torch file at all
        raise WeightsError(
            f"{path}: not a readable weights file ({type(exc).__name__}: {exc}"[:300] + ")"
        ) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a letterbench checkpoint
    elif isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return state


def _compare(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], target: str, ignore: str | None):
    fit = WeightsFit(target)
    for key, tensor in state.items():
        if ignore and (key == ignore or key.startswith(ignore + ".")):
            fit.ignored.append(key)
        elif key not in own:
            fit.unexpected.append(key)
        elif own[key].shape != tensor.shape:
            fit.misshaped.append(f"{key} {tuple(tensor.shape)} vs {tuple(own[key].shape)}")
        else:
            fit.matched.append(key)
    fit.missing = [key for key in own if key not in state]
    return fit


def check_weights(model: LetterModel, state: dict[str, torch.Tensor]) -> WeightsFit:
    """Compare a state dict with the whole model and with its base; return the better match."""
    whole = _compare(model.state_dict(), state, "model", None)
    base = _compare(model.base.state_dict(), state, "base", model.classifier_key)
    return whole if whole.fits or len(whole.matched) >= len(base.matched) else base


def load_weights(model: LetterModel, path: str | os.PathLike) -> WeightsFit:
    state = read_weights_file(path)
    fit = check_weights(model, state)
    if not fit.fits:
        raise WeightsError(f"{path} does not fit {model.name}: " + fit.summary().replace("\n", ";"))
    target = model if fit.target == "model" else model.base
    target.load_state_dict({k: v for k, v in state.items() if k in fit.matched}, strict=True)
    model.pretrained = f"file {path}" + (" (base only)" if fit.target == "base" else "")
    return fit


def weights_cached(name: str) -> bool | None:
    """Whether the ImageNet weights are in the local cache, found without touching the network
    (None: the model has no pretrained weights)."""
    tag = PRETRAINED_TAGS.get(name) or (name.removeprefix("timm:") if name.startswith("timm:") else None)
    return None if tag is None else weights_cached_tag(tag)


def weights_cached_tag(tag: str) -> bool | None:
    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(cfg.hf_hub_id, filename), str):
                return True
    if cfg.url:
        return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)).is_file()
    return False


# ---------------------------------------------------------------- freezing


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
        for _, unit in layer_units(model.base)[-int(what[5:]) :] if int(what[5:]) else []:
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
