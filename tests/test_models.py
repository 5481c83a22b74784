"""Models: shapes, parameter counts, safe weight loading, freezing, the `models` command."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from letterbench.cli.main import main
from letterbench.core.errors import WeightsError
from letterbench.models import (
    PretrainedUnavailable,
    count_parameters,
    create_model,
    flops_per_image,
    layer_units,
    set_trainable,
)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name) for name in ("resnet18", "densenet121", "xception", "timm:resnet10t")}


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


def test_flops_are_counted(models):
    assert 200e6 < flops_per_image(models["resnet18"]) < 300e6
    assert flops_per_image(models["xception"]) > flops_per_image(models["densenet121"])


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


def test_models_command_table_and_weights_check(tmp_path, capsys):
    assert main(["models", "resnet18", "timm:resnet10t"]) == 0
    out = capsys.readouterr().out
    assert "11,181,018" in out and "1x28x28" in out and "timm:resnet10t" in out and "FLOPs" in out
    torch.save(create_model("resnet18").state_dict(), tmp_path / "r.pth")
    assert main(["models", "resnet18", "--weights", str(tmp_path / "r.pth")]) == 0
    assert "fits" in capsys.readouterr().out
    assert main(["models", "xception", "--weights", str(tmp_path / "r.pth")]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_imagenet_normalisation_matches_timms_pretrained_configs():
    import timm

    from letterbench.models.architectures import IMAGENET_NORM

    for tag, (mean, std) in IMAGENET_NORM.items():
        cfg = timm.models.get_pretrained_cfg(tag)
        assert (tuple(cfg.mean), tuple(cfg.std)) == (mean, std), tag
