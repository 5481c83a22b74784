"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations

import pytest

from letterbench.core.errors import LetterbenchError
from letterbench.models import create_model, display_name, get_model, model_names
from letterbench.recipes import load_recipe


def test_registry_lists_builds_and_names_every_model():
    assert model_names() == ("resnet18", "densenet121", "xception", "smallcnn")
    for name in model_names():
        entry = get_model(name)
        model = create_model(name)
        assert model.spec == entry.input and model.name == name
        assert load_recipe(entry.recipe).model == name
    assert display_name("densenet121") == "DenseNet-121" and display_name("timm:x") == "timm:x"
    assert get_model("resnet18").pretrained_tag is None
    assert get_model("xception").pretrained_tag == "legacy_xception.tf_in1k"
    timm_entry = get_model("timm:resnet10t")
    assert timm_entry.input.channels == 1 and timm_entry.input.size == 32
    with pytest.raises(LetterbenchError, match="unknown model 'nosuch'.*timm:<name>"):
        get_model("nosuch")
    with pytest.raises(LetterbenchError, match="timm has no model"):
        get_model("timm:nosuchnet")
    with pytest.raises(LetterbenchError, match="resnet18 has no ImageNet weights"):
        create_model("resnet18", pretrained=True)
