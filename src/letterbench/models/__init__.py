"""Models: the registry of architectures, the model type, weights, freezing, cost.

Importing this package registers the built-in architectures (``architectures.py``).
"""

from letterbench.models import architectures  # noqa: F401  (registers the built-in models)
from letterbench.models.base import (
    EMNIST_MEAN,
    EMNIST_STD,
    InputSpec,
    LetterModel,
    count_parameters,
    flops_per_image,
    layer_units,
    set_trainable,
)
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
from letterbench.models.weights import (
    PretrainedUnavailable,
    WeightsFit,
    check_weights,
    load_weights,
    read_weights_file,
)

__all__ = [
    "EMNIST_MEAN",
    "EMNIST_STD",
    "InputSpec",
    "LetterModel",
    "ModelEntry",
    "PretrainedUnavailable",
    "WeightsFit",
    "check_weights",
    "choices_text",
    "count_parameters",
    "create_model",
    "display_name",
    "flops_per_image",
    "get_model",
    "layer_units",
    "load_weights",
    "model_names",
    "read_weights_file",
    "register_model",
    "set_trainable",
    "weights_cached",
]
