"""`letterbench export` and `predict --onnx`: one trained run, exported and run by ONNX Runtime and
TorchScript, compared with PyTorch on real EMNIST test images; foreign files left alone."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from letterbench.cli.main import main
from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.data import load_emnist
from letterbench.evaluation.evaluate import evaluate_run
from letterbench.evaluation.inference import predict_probabilities, run_temperature
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import trained_model

if os.environ.get("CI"):  # CI installs the export extra: a missing one is a broken set-up, not a skip
    import onnx
    import onnxruntime as ort
else:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

LETTERS = [chr(ord("a") + i) for i in range(26)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> RunDir:
    """A tiny trained and evaluated ResNet-10 (input 32x32: the export resizes inside)."""
    from conftest import synthetic_letters, write_emnist

    root = tmp_path_factory.mktemp("export")
    data = write_emnist(root / "emnist", synthetic_letters(6, seed=1), synthetic_letters(2, seed=2))
    args = ["--quiet", "--data-dir", str(data), "--set", "val_fraction=0.25", "--out", str(root / "run")]
    assert main(["train", "--model", "timm:resnet10t", "--epochs", "1", *args]) == 0
    run = RunDir(root / "run")
    evaluate_run(run, Runtime(torch.device("cpu")), measure_speed=False)  # fits the temperature
    return run


@pytest.fixture(scope="module")
def real_test(real_data_dir) -> np.ndarray:
    """500 real EMNIST letters from across the test set, uint8 (500, 28, 28)."""
    test = load_emnist(real_data_dir, "letters").test_images
    return test[torch.linspace(0, len(test) - 1, 500).long()].numpy()


def _torch_probs(run: RunDir, images: np.ndarray) -> np.ndarray:
    model, _ = trained_model(run)
    return predict_probabilities(model, torch.from_numpy(images), Runtime(torch.device("cpu")))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


def test_onnx_export_carries_its_contract_and_matches_pytorch_on_real_images(trained, real_test, capsys):
    assert main(["export", "--run", str(trained)]) == 0
    out = capsys.readouterr().out
    path = trained.export_file("onnx")
    assert f"wrote {path} (" in out and path.is_file()
    printed = float(re.search(r"max \|p_onnx - p_torch\| = (\S+) on 52 test images", out).group(1))
    assert printed < 1e-4

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["letterbench"] == "letterbench-export-1" and meta["model"] == "timm:resnet10t"
    assert json.loads(meta["class_names"]) == LETTERS
    assert (meta["input_size"], meta["input_channels"]) == ("32", "1")
    assert float(meta["temperature"]) == pytest.approx(run_temperature(trained)) != 1.0
    assert "letterbench.images.letters" in meta["input"] and "uint8 (batch, 28, 28)" in meta["input"]

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert (inp.type, inp.shape[1:]) == ("tensor(uint8)", [28, 28])
    p_onnx = _softmax(session.run(None, {inp.name: real_test})[0])
    p_torch = _torch_probs(trained, real_test)
    assert np.abs(p_onnx - p_torch).max() < 1e-4
    assert (p_onnx.argmax(1) == p_torch.argmax(1)).all()
    assert session.run(None, {inp.name: real_test[:1]})[0].shape == (1, 26)  # any batch size


def test_predict_onnx_answers_as_predict_run(trained, real_test, tmp_path, capsys, monkeypatch):
    """One number per picture: predict answers in full precision by its own default (not the
    suite's), on a CPU with bf16 hardware too, so that it agrees with the ONNX export; the file says
    what its model learned from."""
    monkeypatch.delenv("LETTERBENCH_PRECISION", raising=False)
    if not trained.export_file("onnx").is_file():
        assert main(["export", "--run", str(trained)]) == 0
    files = []
    for i in range(0, 500, 100):
        files.append(tmp_path / f"letter{i}.png")
        Image.fromarray(real_test[i]).save(files[-1])
    capsys.readouterr()
    answers = {}
    for source in (["--onnx", str(trained.export_file("onnx"))], ["--run", str(trained), "--device", "cpu"]):
        assert main(["predict", *source, "--json", *map(str, files)]) == 0
        answers[source[0]] = json.loads(capsys.readouterr().out)
    onnx_answers, run_answers = answers["--onnx"], answers["--run"]
    assert onnx_answers["models"] == run_answers["models"] == ["timm:resnet10t"]
    assert onnx_answers["temperatures"] == pytest.approx(run_answers["temperatures"])
    assert onnx_answers["trained_on"] == run_answers["trained_on"] != {}
    for mine, theirs in zip(onnx_answers["predictions"], run_answers["predictions"], strict=True):
        assert [t["letter"] for t in mine["top3"]] == [t["letter"] for t in theirs["top3"]]
        assert [t["probability"] for t in mine["top3"]] == pytest.approx(
            [t["probability"] for t in theirs["top3"]], abs=1e-4
        )


def test_torchscript_export_loads_and_agrees(trained, real_test, tmp_path, capsys):
    path = tmp_path / "letters.pt"
    assert main(["export", "--run", str(trained), "--format", "torchscript", "--out", str(path)]) == 0
    assert re.search(r"max \|p_torchscript - p_torch\| = \S+ on 52 test images", capsys.readouterr().out)
    extra = {"letterbench.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra["letterbench.json"])
    assert json.loads(meta["class_names"]) == LETTERS and meta["input_size"] == "32"
    with torch.no_grad():
        logits = module(torch.from_numpy(real_test)).numpy()
    p_torch = _torch_probs(trained, real_test)
    assert np.abs(_softmax(logits) - p_torch).max() < 1e-4


def test_export_leaves_files_it_did_not_write_and_fails_closed(trained, tmp_path, capsys, monkeypatch):
    mine = tmp_path / "model.onnx"
    mine.write_bytes(b"my thesis, not a model")
    for fmt in ("onnx", "torchscript"):
        assert main(["export", "--run", str(trained), "--format", fmt, "--out", str(mine)]) == 1
        err = capsys.readouterr().err
        assert err.count("letterbench: error:") == 1 and "not a model letterbench exported" in err
    assert mine.read_bytes() == b"my thesis, not a model"
    assert main(["export", "--run", str(trained), "--model", "xception"]) == 1
    assert "has no run of 'xception'" in capsys.readouterr().err

    # An earlier export of ours may be replaced, but only by one that passes the check.
    import letterbench.apps.export

    ours = trained.export_file("onnx")
    if not ours.is_file():
        assert main(["export", "--run", str(trained)]) == 0
    before = ours.read_bytes()
    monkeypatch.setattr(letterbench.apps.export, "PARITY_LIMIT", 0.0)  # no export can pass now
    assert main(["export", "--run", str(trained), "--format", "torchscript", "--out", str(ours)]) == 1
    assert "disagrees with PyTorch" in capsys.readouterr().err
    assert ours.read_bytes() == before and [p.name for p in ours.parent.iterdir()] == [ours.name]


def test_an_export_that_differs_from_the_pytorch_model_is_refused(trained, tmp_path, capsys, monkeypatch):
    """The parity check compares the exported graph with the run's PyTorch model: a graph written
    from a slightly changed copy of the model (one bias moved by 0.5) is refused, nothing written."""
    import copy

    import letterbench.apps.export as export

    write = export._onnx_bytes

    def perturbed(module, meta):
        changed = copy.deepcopy(module)
        bias = [p for name, p in changed.named_parameters() if name.endswith("bias")][-1]
        with torch.no_grad():
            bias[0] += 0.5
        return write(changed, meta)

    monkeypatch.setattr(export, "_onnx_bytes", perturbed)
    out = tmp_path / "changed.onnx"
    err = _one_error(["export", "--run", str(trained), "--out", str(out)], capsys)
    assert "disagrees with PyTorch" in err and not out.exists()


def _one_error(argv: list[str], capsys) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("letterbench: error:")
    return err


def test_predict_onnx_refuses_what_it_cannot_run(trained, tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n")
    assert "not an ONNX model" in _one_error(["predict", "--onnx", str(text), str(image)], capsys)
    assert "no such file" in _one_error(
        ["predict", "--onnx", str(tmp_path / "nope.onnx"), str(image)], capsys
    )

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "foreign",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(foreign))
    assert "without letterbench's metadata" in _one_error(
        ["predict", "--onnx", str(foreign), str(image)], capsys
    )

    assert "one source of models" in _one_error(["predict", str(image)], capsys)
    both = ["predict", "--run", str(trained), "--onnx", str(foreign), str(image)]
    assert "one source of models" in _one_error(both, capsys)
    assert "--tta: only with --run" in _one_error(
        ["predict", "--onnx", str(foreign), "--tta", str(image)], capsys
    )


def test_the_graphs_resize_is_preprocess(real_test):
    from letterbench.apps.export import resize_matrix
    from letterbench.images.transforms import Preprocess
    from letterbench.models import InputSpec

    images = torch.from_numpy(real_test)
    for size in (32, 64, 71):  # timm's smallest, DenseNet-121's and Xception's inputs
        r = resize_matrix(size)
        ours = (r @ (images.float() / 255) @ r.T).unsqueeze(1)
        theirs = Preprocess(InputSpec(1, size, (0.0,), (1.0,)), "cpu", channels_last=False)(images)
        assert (ours - theirs).abs().max() < 1e-6


def test_predict_onnx_runs_where_device_says():
    from letterbench.apps.exported import onnx_providers

    cpu_only, with_cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu", with_cuda) == cpu_only
    assert onnx_providers("auto", cpu_only) == cpu_only
    assert onnx_providers("auto", with_cuda) == with_cuda
    assert onnx_providers("cuda:1", with_cuda) == [("CUDAExecutionProvider", {"device_id": 1}), with_cuda[1]]
    with pytest.raises(LetterbenchError, match="no CUDA provider.*onnxruntime-gpu, or pass --device cpu"):
        onnx_providers("cuda", cpu_only)
    with pytest.raises(LetterbenchError, match="cpu or cuda"):
        onnx_providers("mps", cpu_only)
