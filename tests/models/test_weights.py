"""Models: shapes, parameter counts, safe weight loading, freezing, the `models` command."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from letterbench.core.errors import WeightsError
from letterbench.models import (
    PretrainedUnavailable,
    create_model,
)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_saved_weights_reproduce_outputs(tmp_path, suffix):
    torch.manual_seed(1)
    source = create_model("densenet121").eval()
    path = tmp_path / f"w{suffix}"
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    torch.manual_seed(2)
    loaded = create_model("densenet121", weights=path).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))
    assert loaded.pretrained == f"file {path}"


def test_imagenet_style_base_file_loads_into_base_only(tmp_path):
    import timm

    imagenet = timm.create_model("densenet121", num_classes=1000)  # what an ImageNet file holds
    torch.save(imagenet.state_dict(), tmp_path / "imagenet.pth")
    model = create_model("densenet121", weights=tmp_path / "imagenet.pth")
    assert model.pretrained.endswith("(base only)")
    assert torch.equal(model.base.features.conv0.weight, imagenet.features.conv0.weight)
    assert model.head[1].out_features == 26


def test_wrong_architecture_truncated_and_malicious_files(tmp_path):
    torch.save(create_model("resnet18").state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(WeightsError, match="does not fit densenet121"):
        create_model("densenet121", weights=tmp_path / "resnet.pth")

    good = (tmp_path / "resnet.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(good[: len(good) // 2])
    with pytest.raises(WeightsError, match="not a readable weights file"):
        create_model("resnet18", weights=tmp_path / "cut.pth")

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "evil.pth", "wb") as handle:
        pickle.dump({"conv.weight": Evil()}, handle)
    with pytest.raises(WeightsError, match="could run code"):
        create_model("resnet18", weights=tmp_path / "evil.pth")
    assert not marker.exists()

    with pytest.raises(WeightsError, match="no such weights file"):
        create_model("resnet18", weights=tmp_path / "absent.pth")


def test_pretrained_offline(monkeypatch, tmp_path):
    """No internet here: asking for ImageNet weights fails fast and says how to provide a file."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # nothing cached
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://127.0.0.1:9")  # nothing listens there
    with pytest.raises(PretrainedUnavailable, match="--weights"):
        create_model("densenet121", pretrained=True)
    with pytest.warns(UserWarning, match="random initialisation"):
        model = create_model("densenet121", pretrained="auto")
    assert model.pretrained == "none" and "random initialisation" in model.notes[0]
