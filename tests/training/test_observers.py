"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations

import pytest

from letterbench.cli.main import main
from letterbench.runs.rundir import RunDir


def test_tensorboard_observer_writes_what_tensorboard_reads_back(tiny_letters, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = RunDir(tmp_path / "r")
    args = ["train", "--model", "timm:resnet10t", "--quiet", "--train-per-class", "8", "--epochs", "2"]
    args += [
        "--set",
        "val_fraction=0.25",
        "--data-dir",
        str(tiny_letters),
        "--out",
        str(run.path),
        "--tensorboard",
    ]
    assert main(args) == 0
    history = run.read_progress().to_json()["history"]
    events = EventAccumulator(str(run.tensorboard_dir / "train"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {
        "loss/train",
        "loss/validation",
        "accuracy/train",
        "accuracy/validation",
        "learning_rate",
        "images_per_s",
    }
    for tag, key in (
        ("loss/train", "train_loss"),
        ("accuracy/validation", "val_acc"),
        ("learning_rate", "lr"),
    ):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx([h[key] for h in history], rel=1e-5)


def test_after_its_first_epoch_a_run_says_how_long_it_has_left(tiny_letters, tmp_path, capsys):
    """One line, once, after the first epoch: the epochs left at the speed just measured."""
    from letterbench.training.observers import time_left

    args = ["train", "--model", "timm:resnet10t", "--train-per-class", "8", "--epochs", "3"]
    assert (
        main(
            [
                *args,
                "--set",
                "val_fraction=0.25",
                "--data-dir",
                str(tiny_letters),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    said = [line for line in capsys.readouterr().out.splitlines() if line.endswith(" left")]
    assert len(said) == 1 and said[0].startswith("2 more epochs at about ") and " s each: about " in said[0]
    assert time_left(20, 50) == "20 more epochs at about 50 s each: about 17 min left"
    assert time_left(1, 4.2) == "1 more epoch at about 4 s each: about 4 s left"


@pytest.mark.slow  # a training in a child process
def test_ctrl_c_between_checkpoints_says_which_finished_epochs_were_not_saved(tiny_letters, tmp_path):
    """With checkpoints by time, Ctrl-C (here SIGTERM) after two finished epochs and no checkpoint
    says that those two epochs were not saved and will train again, not that no epoch ended."""
    import signal
    import subprocess

    from helpers import FAST, cli_process

    more = [
        "--epochs",
        "6",
        "--checkpoint-every",
        "3600",
        "--data-dir",
        tiny_letters,
        "--out",
        tmp_path / "r",
    ]
    cmd, env = cli_process("train", *[a for a in FAST if a != "--quiet"], *more)
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if " epoch 2/6:" in line:
            child.send_signal(signal.SIGTERM)
            break
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "2 finished epochs before the first checkpoint were not saved" in err
    assert "resuming trains them again" in err and "before any epoch was saved" in err
