"""The model registry: every architecture registers once, and everything that lists, validates,
names, describes or builds a model reads this table (timm's ``_registry.py`` works the same way).

An entry holds the builder, the display name, the input spec, the ImageNet tag (or none) and the
built-in recipe that trains it by default. ``timm:<name>`` is one kind of entry, made on demand
for any architecture timm knows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from letterbench.core.errors import WeightsError
from letterbench.models.spec import InputSpec

if TYPE_CHECKING:
    from torch import nn

    from letterbench.models.base import LetterModel

# Building imports torch (``base``, ``weights``); listing, naming and validating entries does not,
# so that the command line's parser is ready in a fraction of a second.

TIMM_PREFIX = "timm:"

# builder(entry, num_classes, pretrained, dropout) -> (base, head, classifier key of a pretrained file)
Builder = Callable[["ModelEntry", int, bool, float], "tuple[nn.Module, nn.Module, str | None]"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    display: str
    summary: str  # one line for tables and help
    input: InputSpec
    builder: Builder
    pretrained_tag: str | None  # timm's name of the ImageNet weights; None: the model has none
    recipe: str  # the built-in recipe that trains it by default
    dropout: float = 0.0  # before the classifier, unless a recipe says otherwise

    def build(self, num_classes: int, pretrained: bool, dropout: float | None) -> LetterModel:
        from letterbench.models.base import LetterModel

        base, head, classifier = self.builder(
            self, num_classes, pretrained, self.dropout if dropout is None else dropout
        )
        return LetterModel(self.name, base, head, self.input, classifier)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(**fields) -> Callable[[Builder], Builder]:
    """Decorator: register the decorated builder under ``fields['name']`` (once)."""

    def wrap(builder: Builder) -> Builder:
        entry = ModelEntry(builder=builder, **fields)
        if entry.name in _REGISTRY:
            raise ValueError(f"model {entry.name!r} registered twice")
        _REGISTRY[entry.name] = entry
        return builder

    return wrap


def model_names() -> tuple[str, ...]:
    """The registered (built-in) models, in registration order."""
    return tuple(_REGISTRY)


def choices_text() -> str:
    return ", ".join(model_names()) + f" or {TIMM_PREFIX}<name>"


def get_model(name: str) -> ModelEntry:
    """The entry for ``name``: a registered model or ``timm:<architecture>``; a clear error otherwise."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith(TIMM_PREFIX):
        return _timm_entry(name)
    raise WeightsError(f"unknown model {name!r}; choose {choices_text()}")


def display_name(name: str) -> str:
    """The name a report shows (``ResNet-18``); unknown names are shown as they are."""
    entry = _REGISTRY.get(name)
    return entry.display if entry else name


def _timm_entry(name: str) -> ModelEntry:
    import timm

    arch = name.removeprefix(TIMM_PREFIX)
    if not arch or not timm.is_model(arch.split(".")[0]):
        raise WeightsError(
            f"timm has no model {arch!r}; `python -c 'import timm; print(timm.list_models())'` lists them"
        )
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except RuntimeError as exc:  # an unknown pretrained tag (arch.tag)
        raise WeightsError(
            f"timm:{arch}: {exc}; `letterbench models timm:{arch.split('.')[0]}` works untagged"
        ) from None
    mean = tuple(cfg.mean) if cfg else (0.5,)
    std = tuple(cfg.std) if cfg else (0.5,)
    min_size = max(32, *((cfg.min_input_size if cfg else None) or (0, 0, 0))[1:])
    # One input channel: timm sums a pretrained first conv over RGB (adapt_input_conv).
    spec = InputSpec(1, min_size, (sum(mean) / len(mean),), (sum(std) / len(std),))
    has_weights = bool(cfg and (cfg.hf_hub_id or cfg.url))
    return ModelEntry(
        name=name,
        display=name,
        summary=f"timm {arch}, one input channel, new head",
        input=spec,
        builder=timm_builder,
        pretrained_tag=arch if has_weights else None,
        recipe="resnet18",
    )


def weights_cached(name: str) -> bool | None:
    """Whether the model's ImageNet weights are in the local cache, found without touching the
    network (None: the model has no ImageNet weights)."""
    from letterbench.models.weights import weights_cached_tag

    tag = get_model(name).pretrained_tag
    return None if tag is None else weights_cached_tag(tag)


def create_model(
    name: str,
    num_classes: int = 26,
    pretrained: bool | str = False,
    weights: str | None = None,
    dropout: float | None = None,
) -> LetterModel:
    """Build a model. ``pretrained``: True (ImageNet or error), False, or "auto" (ImageNet where the
    model has such weights and they can be had, else random with a note in ``model.notes``).
    ``weights``: a local file, loaded safely, instead."""
    from letterbench.models.weights import PretrainedUnavailable, load_weights

    entry = get_model(name)
    if weights is not None:
        model = entry.build(num_classes, False, dropout)
        load_weights(model, weights)
        return model
    if pretrained is True and entry.pretrained_tag is None:
        raise WeightsError(f"{name} has no ImageNet weights; use --pretrained false")
    want = entry.pretrained_tag is not None and (pretrained is True or pretrained == "auto")
    try:
        model = entry.build(num_classes, want, dropout)
        if want:
            model.pretrained = f"imagenet ({entry.pretrained_tag})"
    except PretrainedUnavailable as exc:
        if pretrained != "auto":
            raise
        note = f"ImageNet weights unavailable ({exc.reason}): trained from random initialisation"
        warnings.warn(note, stacklevel=2)
        model = entry.build(num_classes, False, dropout)
        model.notes.append(note)
    return model


def timm_builder(entry, num_classes, pretrained, dropout):
    """Any timm architecture (the ``timm:<name>`` entries), with one input channel."""
    from torch import nn

    from letterbench.models.weights import timm_base

    base = timm_base(entry.name.split(":", 1)[1], pretrained, in_chans=1)
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(base.num_features, num_classes))
    return base, head, base.pretrained_cfg.get("classifier")
