"""The training engine: learning, resume after a kill, stopping rules, phases, DDP, clear failures."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import letterbench
from letterbench.cli.main import main
from letterbench.core.errors import TrainingError
from letterbench.core.runtime import Runtime
from letterbench.data.emnist import load_emnist
from letterbench.data.splits import make_split
from letterbench.images.transforms import Preprocess
from letterbench.models import create_model, layer_units, set_trainable
from letterbench.recipes import load_recipe, resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import run_data, untrained_model
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.observers import CheckpointObserver, Observer
from letterbench.training.run import TrainOptions, train

CPU = Runtime(torch.device("cpu"))


FAST = ["--model", "timm:resnet10t", "--quiet", "--train-per-class", "12", "--set", "val_fraction=0.25"]


def tiny_train_data(data_dir: Path, per_class: int = 4, seed: int = 0) -> TrainData:
    data = load_emnist(data_dir)
    split = make_split(data, 0.25, seed, per_class)
    return TrainData(
        data.train_images[split.train],
        data.train_labels[split.train],
        data.train_images[split.val],
        data.train_labels[split.val],
    )


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def cli_process(*args, torchrun: int = 0) -> tuple[list[str], dict[str, str]]:
    """Command line and environment to run `letterbench ARGS` in a child process (under torchrun
    with that many processes if asked)."""
    launcher = (
        ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(torchrun)] if torchrun else []
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(letterbench.__file__).resolve().parents[1]),
    }  # the code imported here
    if torchrun:
        env["OMP_NUM_THREADS"] = "1"
    return [sys.executable, *launcher, "-m", "letterbench", *map(str, args)], env


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "xception", "timm:resnet10t"])
def test_a_few_steps_lower_the_loss(tiny_letters, tmp_path, name):
    data = tiny_train_data(tiny_letters, per_class=4)
    torch.manual_seed(0)
    model = create_model(name)
    recipe = resolve_recipe(
        name,
        "resnet18",
        overrides=[
            "batch_size=26",
            "augment.rotate=0",
            "augment.zoom=0",
            "augment.shift=0",
            "phases.0.optimizer.name=adam",
            "phases.0.optimizer.lr=0.001",
            "phases.0.schedule.name=constant",
        ],
    )
    trainer = Trainer(recipe, model, data, CPU, RunDir(tmp_path), seed=0)
    trainer.start_phase(0)
    x = Preprocess(model.spec, "cpu")(data.train_images)

    def batch_loss() -> float:  # training-mode loss (batch statistics, fixed dropout masks)
        torch.manual_seed(123)
        model.train()
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model(x), data.train_labels).item()

    before = batch_loss()
    for _ in range(3):
        trainer.train_epoch()
    assert batch_loss() < 0.9 * before


def kill_after_epochs(cmd: list[str], env: dict, run: Path, epochs: int) -> int:
    """Start a training process, SIGKILL it as soon as ``epochs`` epochs are checkpointed, and
    return how many epochs its last checkpoint holds."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads((run / "progress.json").read_text())["epochs_done"] >= epochs:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return RunDir(run).load_checkpoint("last")["trainer"]["global_epoch"]


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


class ObserverFault(Exception):
    pass


class FaultAfterFirstEpoch(Observer):
    def on_epoch_end(self, trainer, record):
        raise ObserverFault


def test_an_error_mid_run_leaves_its_folder_written_failed_and_resumable(tiny_letters, tmp_path):
    """Any error, not only Ctrl-C or a non-finite loss, ends the run's queued writes before the run
    lets go of its folder: the progress file says failed and counts the checkpointed epoch."""
    folder = tmp_path / "run"
    recipe = resolve_recipe("timm:resnet10t", epochs=2, overrides=["val_fraction=0.25"])
    options = TrainOptions(
        tiny_letters, train_per_class=12, progress=False, observers=(FaultAfterFirstEpoch(),)
    )
    with pytest.raises(ObserverFault):
        train(recipe, RunDir(folder), CPU, options)
    progress = RunDir(folder).read_progress().to_json()
    assert progress["status"] == "failed" and progress["epochs_done"] == 1
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=False)["trainer"]["global_epoch"] == 1
    train(None, RunDir(folder), CPU, TrainOptions(tiny_letters, progress=False), resume=True)
    assert RunDir(folder).read_progress().to_json()["status"] == "finished"
    assert RunDir(folder).read_progress().to_json()["epochs_done"] == 2


def test_the_error_that_ended_a_run_is_the_one_raised_when_recording_it_fails(
    tiny_letters, tmp_path, monkeypatch, capsys
):
    def disk_full(self, progress):
        raise OSError("No space left on device")

    monkeypatch.setattr(RunDir, "write_progress", disk_full)
    recipe = resolve_recipe("timm:resnet10t", epochs=2, overrides=["val_fraction=0.25"])
    options = TrainOptions(
        tiny_letters, train_per_class=12, progress=False, observers=(FaultAfterFirstEpoch(),)
    )
    with pytest.raises(ObserverFault):
        train(recipe, RunDir(tmp_path / "run"), CPU, options)
    assert "letterbench: warning: ProgressObserver could not record the failed run" in capsys.readouterr().err


def test_a_failed_run_never_counts_an_epoch_whose_checkpoint_was_not_queued(
    tiny_letters, tmp_path, monkeypatch
):
    checkpoint = CheckpointObserver.on_epoch_end

    def fails_at_the_second_epoch(self, trainer, record):
        if record.record.global_epoch == 2:
            raise ObserverFault
        checkpoint(self, trainer, record)

    monkeypatch.setattr(CheckpointObserver, "on_epoch_end", fails_at_the_second_epoch)
    folder = tmp_path / "run"
    recipe = resolve_recipe("timm:resnet10t", epochs=3, overrides=["val_fraction=0.25"])
    with pytest.raises(ObserverFault):
        train(recipe, RunDir(folder), CPU, TrainOptions(tiny_letters, train_per_class=12, progress=False))
    progress = RunDir(folder).read_progress().to_json()
    assert progress["status"] == "failed" and progress["epochs_done"] == 1 and len(progress["history"]) == 1
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=False)["trainer"]["global_epoch"] == 1


def test_a_checkpoint_that_fails_to_write_is_never_counted(tiny_letters, tmp_path, monkeypatch):
    """The write of epoch 2's ``last`` fails on the writer's thread; the error surfaces at the next
    epoch's save. progress.json then counts epoch 1, the last one whose checkpoint is on disk."""
    save = RunDir.save_checkpoint

    def fails_at_the_second_epoch(self, which, snapshot):
        if which == ["last"] and snapshot["trainer"]["global_epoch"] == 2:
            raise OSError("No space left on device")
        save(self, which, snapshot)

    monkeypatch.setattr(RunDir, "save_checkpoint", fails_at_the_second_epoch)
    folder = tmp_path / "run"
    recipe = resolve_recipe("timm:resnet10t", epochs=3, overrides=["val_fraction=0.25"])
    with pytest.raises(OSError, match="No space left"):
        train(recipe, RunDir(folder), CPU, TrainOptions(tiny_letters, train_per_class=12, progress=False))
    progress = RunDir(folder).read_progress().to_json()
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=False)["trainer"]["global_epoch"]
    assert progress["status"] == "failed" and progress["epochs_done"] == last == 1


def test_early_stopping_and_plateau_fire(tiny_letters, tmp_path):
    # threshold/min_delta of 1000%: no epoch after the first counts as an improvement.
    assert (
        cli(
            "train",
            *FAST,
            "--data-dir",
            tiny_letters,
            "--out",
            tmp_path / "r",
            "--epochs",
            "10",
            "--set",
            'phases.0.schedule={"name": "plateau", "factor": 0.5, "patience": 1, "threshold": 10}',
            "--set",
            'phases.0.early_stopping={"patience": 2, "min_delta": 1000}',
        )
        == 0
    )
    history = json.loads((tmp_path / "r" / "progress.json").read_text())["history"]
    assert len(history) == 3 and history[-1]["early_stop"]
    lrs = [h["lr"] for h in history]
    assert lrs[1] == lrs[0] and lrs[2] == pytest.approx(lrs[0] * 0.5)


def train_xception_one_epoch(data_dir, out, per_class: int, val_fraction: float, *weights_args) -> int:
    """`letterbench train --model xception`, one epoch per phase, on a tiny stratified subset."""
    return cli(
        "train",
        "--model",
        "xception",
        *weights_args,
        "--quiet",
        "--data-dir",
        data_dir,
        "--train-per-class",
        per_class,
        "--out",
        out,
        "--epochs",
        1,
        "--batch-size",
        26,
        "--set",
        f"val_fraction={val_fraction}",
    )


def test_xception_phases_train_exactly_the_intended_parameters(tiny_letters, tmp_path):
    torch.manual_seed(0)
    torch.save(create_model("xception").state_dict(), tmp_path / "pretend-pretrained.pth")
    run = tmp_path / "x"
    assert (
        train_xception_one_epoch(tiny_letters, run, 4, 0.25, "--weights", tmp_path / "pretend-pretrained.pth")
        == 0
    )
    start = torch.load(tmp_path / "pretend-pretrained.pth", weights_only=True)
    phase1 = RunDir(run).load_checkpoint("initial")["model"]
    phase2 = RunDir(run).load_checkpoint("fine-tune")["model"]
    model = create_model("xception")
    set_trainable(model, "last:12")
    last12 = {f"base.{n}." for n, _ in layer_units(model.base)[-12:]}
    params = {n for n, _ in model.named_parameters()}

    def changed(a, b):
        return {k for k in a if not torch.equal(a[k], b[k])}

    head = {n for n in params if n.startswith("head.")}
    assert changed(start, phase1) == head  # weights and frozen-BN statistics stay put
    in_last12 = {k for k in phase2 if any(k.startswith(prefix) for prefix in last12)}
    assert changed(phase1, phase2) & params == head | (in_last12 & params)
    assert changed(phase1, phase2) - params <= in_last12  # only trained BNs update running stats
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["substituted_phases"] == []
    history = json.loads((run / "progress.json").read_text())["history"]
    assert [h["phase"] for h in history] == ["initial", "fine-tune"]
    assert [h["trainable"] for h in history] == ["head", "last:12"]


def test_without_pretrained_weights_frozen_phases_train_everything(tiny_letters, tmp_path):
    run = tmp_path / "x"
    assert train_xception_one_epoch(tiny_letters, run, 2, 0.5, "--pretrained", "false") == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["substituted_phases"] == ["initial", "fine-tune"]
    assert "trained the whole network" in config["model"]["notes"][-1]
    history = json.loads((run / "progress.json").read_text())["history"]
    assert [h["trainable"] for h in history] == ["all", "all"]


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


def test_existing_run_dir_is_not_overwritten(tiny_letters, tmp_path, capsys):
    run = tmp_path / "r"
    assert cli("train", *FAST, "--data-dir", tiny_letters, "--out", run, "--epochs", "1") == 0
    before = (run / "checkpoints" / "last.pt").read_bytes()
    assert cli("train", *FAST, "--data-dir", tiny_letters, "--out", run, "--epochs", "1") == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--resume" in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_corrupt_checkpoint_gives_clear_error(tiny_letters, tmp_path, capsys):
    run = tmp_path / "r"
    assert cli("train", *FAST, "--data-dir", tiny_letters, "--out", run, "--epochs", "3") == 0
    (run / "progress.json").write_text(json.dumps({"status": "interrupted"}))
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:5000])
    assert cli("train", "--resume", "--out", run, "--quiet") == 1
    err = capsys.readouterr().err
    assert "corrupt or truncated" in err and err.count("\n") == 1


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_letters, tmp_path):
    data = tiny_train_data(tiny_letters, per_class=8)
    recipe = resolve_recipe("timm:resnet10t", epochs=5, overrides=["phases.0.schedule.name=constant"])

    class Diverge(Observer):  # after the first good epoch, an absurd learning rate
        def on_epoch_end(self, trainer, record):
            for group in trainer.optimizer.param_groups:
                group["lr"] = 1e30

    run = RunDir(tmp_path)
    trainer = Trainer(
        recipe, create_model("timm:resnet10t"), data, CPU, run, observers=[CheckpointObserver(run), Diverge()]
    )
    with pytest.raises(TrainingError, match="non-finite"):
        trainer.fit()
    kept = RunDir(tmp_path).load_checkpoint("last")
    assert kept["trainer"]["global_epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["model"].values() if t.is_floating_point())


def test_bad_options_are_refused(tiny_letters, capsys):
    assert cli("train", "--model", "resnet18", "--set", "phases.0.epochs=0", "--data-dir", tiny_letters) == 1
    assert "phases.0.epochs: input should be greater than or equal to 1" in capsys.readouterr().err
    assert cli("train", "--model", "resnet18", "--set", "nonsense=1") == 1
    assert "unknown key" in capsys.readouterr().err
    assert cli("train", "--model", "nosuchnet") == 1
    assert cli("train", "--resume") == 1


def test_precise_bn_replaces_running_stats_by_exact_averages(tiny_letters, tmp_path):
    data = tiny_train_data(tiny_letters, per_class=8)
    recipe = resolve_recipe("timm:resnet10t", overrides=["batch_size=52", "precise_bn=104"])
    model = create_model("timm:resnet10t")
    trainer = Trainer(recipe, model, data, CPU, RunDir(tmp_path))
    trainer.start_phase(0)
    trainer.train_epoch()
    bn = (
        model.base.bn1
        if hasattr(model.base, "bn1")
        else next(m for m in model.base.modules() if isinstance(m, torch.nn.BatchNorm2d))
    )
    seen = []
    hook = bn.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    trainer.recompute_bn_stats(104)
    hook.remove()
    inputs = torch.cat(seen)  # two batches of 52: the cumulative average is the plain mean
    assert len(seen) == 2
    assert torch.allclose(bn.running_mean, inputs.mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1  # restored


def best_validation_at(patch: pytest.MonkeyPatch, best_epoch: int, rise: float = 5.0) -> None:
    """Make ``best_epoch`` the run's lowest validation loss, on any CPU: the trainer's validation
    is the real one, and every other epoch's loss is raised by ``rise`` (the best epoch keeps its
    real loss, so its weights still score it). Which epoch would be best otherwise depends on the
    CPU's float sums, a premise no test should hope for."""
    real = Trainer.evaluate

    def shaped(self, images, labels, batch_size=512):
        stats = real(self, images, labels, batch_size)
        epoch = self.state.global_epoch + 1  # run_epoch validates before counting the epoch
        if images is self.data.val_images and epoch != best_epoch:
            stats = dataclasses.replace(stats, loss=stats.loss + rise)
        return stats

    patch.setattr(Trainer, "evaluate", shaped)


def test_best_checkpoints_hold_the_epoch_of_the_lowest_validation_loss(tiny_letters, tmp_path, monkeypatch):
    """Validation loss lowest at epoch 2 of 4 (made so: ``best_validation_at``): best.pt and
    best-train.pt keep that epoch's weights (they score its recorded validation loss again), while
    last.pt moves on."""
    import torch.nn.functional as F

    from letterbench.evaluation.inference import predict_logits

    best_validation_at(monkeypatch, 2)
    run = RunDir(tmp_path / "r")
    args = [*FAST, "--data-dir", tiny_letters, "--epochs", "4", "--out", run.path]
    assert cli("train", *args, "--set", "phases.0.schedule.name=constant", "--lr", "0.1") == 0
    history = run.read_progress().to_json()["history"]
    losses = [h["val_loss"] for h in history]
    best_epoch = history[losses.index(min(losses))]["global_epoch"]
    assert best_epoch == 2 < history[-1]["global_epoch"] == 4, f"the premise failed: {losses}"
    config = run.read_config()
    data = run_data(run, None, config)
    val = config.split(data).val
    for name in ("best", "train"):
        model = untrained_model(run, config)
        kept = run.load_weights_into(model, name)
        assert kept["trainer"]["global_epoch"] == best_epoch, name
        logits = predict_logits(model, data.train_images[val], CPU)
        loss = F.cross_entropy(logits, data.train_labels[val]).item()
        assert loss == pytest.approx(min(losses), rel=1e-4), name
    last = run.load_checkpoint("last")
    assert last["trainer"]["global_epoch"] == history[-1]["global_epoch"]


def test_resume_restores_the_random_state_the_checkpoint_holds(tiny_letters, tmp_path):
    """Whatever random state the resuming process starts with, a resumed trainer's next draws are
    the ones the interrupted run would have made (dropout masks and anything else drawn from the
    global generator), for a one-phase recipe as for the two-phase one above."""
    data = tiny_train_data(tiny_letters, per_class=4)
    recipe = resolve_recipe("smallcnn", overrides=["batch_size=26"])
    run = RunDir(tmp_path)
    trainer = Trainer(recipe, create_model("smallcnn"), data, CPU, run, seed=0)
    trainer.start_phase(0)
    trainer.train_epoch()
    state = trainer.checkpoint_state()
    run.save_checkpoint("last", state)
    expected = torch.rand(8)  # the interrupted run's next draws
    torch.manual_seed(12345)  # a different process, a different state
    again = Trainer(recipe, create_model("smallcnn"), data, CPU, run, seed=0)
    again.resume()
    assert torch.equal(torch.rand(8), expected)


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
