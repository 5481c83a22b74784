"""The training engine: learning, resume after a kill, stopping rules, phases, DDP, clear failures."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import time

import pytest
import torch
from helpers import FAST, best_validation_at, cli, cli_process, kill_after_epochs, tiny_train_data

from letterbench.core.runtime import Runtime
from letterbench.models import create_model
from letterbench.recipes import load_recipe, resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.engine import Trainer
from letterbench.training.observers import Observer
from letterbench.training.run import TrainOptions, train

CPU = Runtime(torch.device("cpu"))


@pytest.mark.parametrize(
    "recipe",
    [
        [],  # one phase, one-cycle
        # two phases (head, then last:12 as the whole network: no pretrained base), plateau
        # schedules, dropout 0.5, precise BN: the kill lands in the first phase and the resumed run
        # crosses into the second from the first phase's best checkpoint on disk
        ["--recipe", "xception", "--pretrained", "false", "--set", "precise_bn=64"],
    ],
    ids=["one-phase", "two-phase-plateau-dropout"],
)
def test_killed_run_resumes_to_the_same_weights(tiny_letters, tmp_path, recipe):
    total = 6
    common = [*FAST, *recipe, "--data-dir", tiny_letters, "--epochs", str(total // (2 if recipe else 1))]
    assert cli("train", *common, "--out", tmp_path / "straight") == 0

    run = tmp_path / "killed"
    done = kill_after_epochs(cli_process("train", *common, "--out", run)[0], cli_process()[1], run, 2)
    assert 2 <= done < total  # killed mid-run: there is something left to resume
    assert RunDir(run).status() == "running"  # as a kill -9 leaves it
    # the user's own command with --resume added: options equal to the recorded ones are accepted
    # (and change nothing: the weights below match), a real change is refused with both values
    assert cli("train", *common, "--out", run, "--seed", "3", "--resume") == 1
    assert cli("train", *common, "--out", run, "--resume", "--quiet") == 0

    a = RunDir(tmp_path / "straight").load_checkpoint("last")
    b = RunDir(run).load_checkpoint("last")
    assert a["trainer"]["global_epoch"] == b["trainer"]["global_epoch"] == total
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert [(h["phase"], h["val_loss"], h["lr"]) for h in a["trainer"]["history"]] == [
        (h["phase"], h["val_loss"], h["lr"]) for h in b["trainer"]["history"]
    ]


def test_interrupt_exits_cleanly_with_resume_advice(tiny_letters, tmp_path):
    run = tmp_path / "run"
    # far more epochs than the interrupt lets it train: finishing is never mistaken for stopping
    cmd, env = cli_process("train", *FAST, "--data-dir", tiny_letters, "--epochs", "1000", "--out", run)
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal, however the suite was started: a suite run in the background of
        # a shell inherits SIGINT ignored, and so would this child
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    try:
        while not (run / "progress.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:  # never leave a training process behind, whatever happened
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    progress = (run / "progress.json").read_text() if (run / "progress.json").exists() else "none"
    assert proc.returncode == 130, f"exit {proc.returncode}; stderr:\n{err}\nprogress: {progress[:300]}"
    assert "letterbench train --resume --out" in err and "Traceback" not in err
    assert json.loads((run / "progress.json").read_text())["status"] == "interrupted"


def test_ddp_two_cpu_processes_match_one_process(tiny_letters, tmp_path):
    run = tmp_path / "ddp"
    loud = [a for a in FAST if a != "--quiet"]  # each epoch's line, to count who prints it
    cmd, env = cli_process(
        "train", *loud, "--data-dir", tiny_letters, "--epochs", "2", "--out", run, "--tensorboard", torchrun=2
    )
    result = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((run / "config.json").read_text())
    assert config["device"]["world_size"] == 2
    # Only rank 0 writes and reports: one TensorBoard log, each epoch's line once.
    assert len(list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))) == 1
    assert (result.stdout + result.stderr).count("epoch 2/2") == 1
    ckpt = RunDir(run).load_checkpoint("last")
    # One process, same weights, same validation images: the reduced metrics must agree.
    data = tiny_train_data(tiny_letters, per_class=12)
    model = create_model("timm:resnet10t")
    model.load_state_dict(ckpt["model"])
    recipe = load_recipe("resnet18")
    single = Trainer(recipe, model, data, CPU, RunDir(tmp_path))
    stats = single.evaluate(data.val_images, data.val_labels)
    last = ckpt["trainer"]["history"][-1]
    assert stats.count == len(data.val_labels)
    # float32 kernels give the last digits by batch size (each rank scores half the images at
    # once): 0.7e-5 relative with the recipe's LR 0.05, 2e-5 with 0.1, on this near-chance model
    assert stats.loss == pytest.approx(last["val_loss"], rel=1e-4)
    assert stats.accuracy == pytest.approx(last["val_acc"])


def test_compile_trains_the_same_model_through_torch_compile(tiny_letters, tmp_path):
    """--compile runs the training step through torch.compile (TorchDynamo captures graphs), keeps
    the checkpoints' parameter names plain (evaluate and resume read them), and learns what the
    eager run learns, to float rounding."""
    import torch._dynamo

    common = ["--model", "smallcnn", "--quiet", "--data-dir", tiny_letters, "--epochs", "1"]
    common += ["--set", "val_fraction=0.25"]
    assert cli("train", *common, "--out", tmp_path / "eager") == 0
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    assert cli("train", *common, "--compile", "--out", tmp_path / "compiled") == 0
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    torch._dynamo.reset()
    eager = RunDir(tmp_path / "eager").load_checkpoint("last")
    compiled = RunDir(tmp_path / "compiled").load_checkpoint("last")
    assert list(compiled["model"]) == list(eager["model"])  # no "_orig_mod." prefix
    for key, tensor in eager["model"].items():
        assert torch.allclose(compiled["model"][key].float(), tensor.float(), atol=2e-3), key
    losses = [[h["val_loss"] for h in c["trainer"]["history"]] for c in (eager, compiled)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


class TickingClock(Observer):
    """The trainer's clock, one second per epoch (read once an epoch, when the trainer asks
    whether to checkpoint): checkpoints by time, on a schedule a test can count on."""

    def on_fit_start(self, trainer, resumed):
        ticks = iter(range(1, 10_000))
        trainer.clock, trainer.checkpointed_at = lambda: float(next(ticks)), 0.0


class InterruptAt(Observer):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, end):
        if end.record.global_epoch == self.epoch:
            raise KeyboardInterrupt


def test_checkpoints_by_time_resume_to_the_same_weights_and_keep_the_best_epoch(
    tiny_letters, tmp_path, monkeypatch
):
    """--checkpoint-every: a checkpoint once that many seconds have passed (here every 2 epochs of
    a one-second-per-epoch clock) and at the phase's end, instead of after every epoch. Killed
    after epoch 3 (checkpointed at 2), the run keeps epoch 2 and counts 2; resumed, it trains
    epoch 3 again and ends at the weights of a run checkpointed every epoch. best.pt, written with
    the checkpoints, holds the epoch of the lowest validation loss even when that epoch was not
    itself checkpointed."""
    recipe = resolve_recipe(
        "timm:resnet10t", epochs=6, lr=0.1, overrides=["val_fraction=0.25", "phases.0.schedule.name=constant"]
    )
    # the premise: the best epoch, 3, is not itself checkpointed (2, 4 and 6 are), and the run is
    # killed right after it, so that only the resumed run can write it
    best_validation_at(monkeypatch, 3)
    options = TrainOptions(tiny_letters, train_per_class=12, progress=False)
    train(recipe, RunDir(tmp_path / "every"), CPU, options)
    timed = dataclasses.replace(options, checkpoint_every=2.0)
    writes = []
    run = RunDir(tmp_path / "timed")
    save = RunDir.save_checkpoint

    def counted(self, which, state):  # the real write, counted
        writes.append((which, state["trainer"]["global_epoch"]))
        save(self, which, state)

    with pytest.MonkeyPatch.context() as counting:
        counting.setattr(RunDir, "save_checkpoint", counted)
        with pytest.raises(KeyboardInterrupt):
            train(recipe, run, CPU, dataclasses.replace(timed, observers=(TickingClock(), InterruptAt(3))))
    assert [epoch for which, epoch in writes if "last" in ([which] if isinstance(which, str) else which)] == [
        2
    ]
    assert run.read_progress().to_json()["epochs_done"] == 2  # epoch 3 was trained, never counted
    train(None, run, CPU, dataclasses.replace(timed, observers=(TickingClock(),)), resume=True)
    a, b = RunDir(tmp_path / "every").load_checkpoint("last"), run.load_checkpoint("last")
    assert a["trainer"]["global_epoch"] == b["trainer"]["global_epoch"] == 6
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    losses = [h["val_loss"] for h in run.read_progress().to_json()["history"]]
    best_epoch = losses.index(min(losses)) + 1
    assert best_epoch == 3, f"the premise failed: {losses}"
    assert run.load_checkpoint("best")["trainer"]["global_epoch"] == best_epoch
    assert RunDir(tmp_path / "every").load_checkpoint("best")["trainer"]["global_epoch"] == best_epoch
