"""Models: the registry of architectures, the model type, weights, freezing, cost.

Importing this package registers the built-in architectures (``architectures.py``) without
importing torch: the registry and the input specs are torch-free, and the names below that need
torch (the model type, weights, freezing, cost) are imported on first use.
"""

from importlib import import_module

from letterbench.models import architectures  # noqa: F401  (registers the built-in models)
from letterbench.models.registry import (
    ModelEntry,
    choices_text,
    create_model,
    display_name,
    get_model,
    model_names,
    register_model,
    weights_cached,
)
from letterbench.models.spec import EMNIST_MEAN, EMNIST_STD, InputSpec

_LAZY = {
    "LetterModel": "base",
    "count_parameters": "base",
    "flops_per_image": "base",
    "layer_units": "base",
    "set_trainable": "base",
    "PretrainedUnavailable": "weights",
    "WeightsFit": "weights",
    "check_weights": "weights",
    "load_weights": "weights",
    "read_weights_file": "weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"letterbench.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EMNIST_MEAN",
    "EMNIST_STD",
    "InputSpec",
    "ModelEntry",
    "choices_text",
    "create_model",
    "display_name",
    "get_model",
    "model_names",
    "register_model",
    "weights_cached",
    *_LAZY,
]
