"""GPU paths: the batch stream across devices, CUDA graphs against eager steps, resume with graphs.
Skipped where PyTorch sees no CUDA GPU (run by bench/gpu_checks.sh on a GPU machine)."""

from __future__ import annotations

import pytest
import torch

from letterbench.core.runtime import Runtime
from letterbench.images.transforms import Preprocess
from letterbench.models import create_model
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.observers import Observer
from letterbench.training.stream import BatchStream

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

AUGMENT = {"rotate": 10.0, "zoom": 0.1, "shift": 0.08}


@pytest.fixture(autouse=True)
def gpu_precision(monkeypatch):
    """The GPU's own policy here (bf16 autocast), not the float32 the rest of the suite runs in."""
    monkeypatch.setenv("LETTERBENCH_PRECISION", "auto")


def letters(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen), torch.arange(n) % 26


@pytest.fixture
def deterministic():
    """cuDNN's deterministic kernels, so that two runs can be compared number for number."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def test_the_stream_gives_the_same_batches_on_the_gpu_as_on_the_cpu():
    images, labels = letters(300)
    spec = create_model("densenet121").spec
    cpu = BatchStream(images, labels, Preprocess(spec, "cpu"), 64, AUGMENT)
    gpu = BatchStream(images.cuda(), labels.cuda(), Preprocess(spec, "cuda"), 64, AUGMENT)
    for a, b in zip(
        cpu.epoch(torch.Generator().manual_seed(5)), gpu.epoch(torch.Generator().manual_seed(5)), strict=True
    ):
        assert torch.equal(a.index, b.index.cpu()) and torch.equal(a.theta, b.theta.cpu())
        torch.testing.assert_close(cpu.inputs(a)[0], gpu.inputs(b)[0].cpu(), atol=1e-4, rtol=1e-4)


def trained(tmp_path, graphs: bool, model: str = "resnet18", epochs: int = 2):
    """A short seeded run (with a shorter last batch every epoch) on one GPU."""
    runtime = Runtime.create("cuda", cuda_graphs=graphs)
    images, labels = letters(26 * 10 + 13)
    recipe = resolve_recipe(model, epochs=epochs, overrides=["batch_size=32", "pretrained=false"])
    torch.manual_seed(0)
    net = create_model(model, 26, dropout=recipe.dropout)
    data = TrainData(images[:250].cuda(), labels[:250].cuda(), images[250:].cuda(), labels[250:].cuda())
    trainer = Trainer(recipe, net, data, runtime, RunDir(tmp_path / f"{model}-{graphs}"), seed=1)
    state = trainer.fit()
    return trainer, state


@pytest.mark.parametrize("model", ["resnet18", "densenet121"])
def test_a_run_with_cuda_graphs_equals_the_same_run_without(tmp_path, deterministic, model):
    graphed, with_graphs = trained(tmp_path, True, model)
    eager, without = trained(tmp_path, False, model)
    assert graphed.step.graphed is not None and eager.step.graphed is None
    for a, b in zip(with_graphs.history, without.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    for (name, a), b in zip(
        graphed.model.state_dict().items(), eager.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3, msg=name)


class StopAfterFirstEpoch(Observer):
    def on_epoch_end(self, trainer, record):
        if record.record.global_epoch == 1:
            raise KeyboardInterrupt


def test_resume_with_cuda_graphs_repeats_the_uninterrupted_run(tmp_path, deterministic):
    from letterbench.training.observers import CheckpointObserver

    runtime = Runtime.create("cuda")
    images, labels = letters(26 * 10 + 13)
    recipe = resolve_recipe("resnet18", epochs=3, overrides=["batch_size=32", "dropout=0.3"])
    data = TrainData(images[:250].cuda(), labels[:250].cuda(), images[250:].cuda(), labels[250:].cuda())

    def run(folder, observers, resume=False):
        torch.manual_seed(0)
        trainer = Trainer(
            recipe, create_model("resnet18", 26, dropout=0.3), data, runtime, RunDir(folder), 2, observers
        )
        trainer.fit(resume=resume)
        return trainer

    whole = run(tmp_path / "whole", [CheckpointObserver(RunDir(tmp_path / "whole"))])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", [CheckpointObserver(RunDir(tmp_path / "cut")), StopAfterFirstEpoch()])
    resumed = run(tmp_path / "cut", [CheckpointObserver(RunDir(tmp_path / "cut"))], resume=True)
    assert resumed.step.graphed is not None
    for a, b in zip(whole.state.history, resumed.state.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


def test_evaluation_with_a_cuda_graph_equals_eager_evaluation(deterministic):
    """predict_logits replays one graph for every full batch and scores the shorter last batch
    eagerly; the logits are those of the eager pass."""
    from letterbench.evaluation.inference import graphed_forward, predict_logits

    torch.manual_seed(0)
    model = create_model("densenet121", 26).eval()
    images, _ = letters(128 * 5 + 50)  # five full batches (a graph) and a shorter one (eager)
    graphs, eager = Runtime.create("cuda", cuda_graphs=True), Runtime.create("cuda", cuda_graphs=False)
    assert graphs.cuda_graphs and not eager.cuda_graphs
    with torch.no_grad():
        graphed = predict_logits(model, images, graphs, batch_size=128)
        plain = predict_logits(model, images, eager, batch_size=128)
        torch.testing.assert_close(graphed, plain, atol=2e-2, rtol=1e-2)  # bf16 autocast in both
        assert (graphed.argmax(1) == plain.argmax(1)).float().mean() > 0.99
        once = graphed_forward(model, Preprocess.on(graphs, model.spec), graphs, images[:256].cuda())
        assert once is not None and once.size == 256
        torch.testing.assert_close(once(images[256:512].cuda()).cpu(), plain[256:512], atol=2e-2, rtol=1e-2)


def test_a_study_on_a_gpu_trains_a_models_seeds_together(tmp_path, capfd):
    """On a GPU, `run --seeds 2` trains the two seeds at once by default, each in its own process
    and run folder, on the GPU, and both finish evaluated."""
    from conftest import synthetic_letters, write_emnist

    from letterbench.cli.main import main

    data = write_emnist(tmp_path / "emnist", synthetic_letters(20, seed=1), synthetic_letters(6, seed=2))
    out = tmp_path / "study"
    args = ["run", "--preset", "smoke", "--models", "smallcnn", "--seeds", "2"]
    assert main([*args, "--data-dir", str(data), "--out", str(out), "--quiet"]) == 0
    assert "Small CNN: 2 seeds at once, 2 processes" in capfd.readouterr().out
    for name, seed in (("smallcnn", 0), ("smallcnn-seed1", 1)):
        run = RunDir(out / "runs" / name)
        assert run.read_config().seed == seed and run.status() == "finished" and run.is_evaluated()
        assert run.read_config().device["type"] == "cuda"
