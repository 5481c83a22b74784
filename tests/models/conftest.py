"""The models every model test builds (once per test module)."""

import pytest
import torch

from letterbench.models import create_model


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name) for name in ("resnet18", "densenet121", "xception", "timm:resnet10t")}
