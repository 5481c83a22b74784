"""What several tests share: the CLI in this process and in a child process, a child killed after
some epochs, the quickest training options, random letters and their batch stream, a tiny train
and validation set, a letter drawn as the page draws it, and a --real-world folder."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import letterbench
from letterbench.cli.main import main
from letterbench.data.emnist import load_emnist
from letterbench.data.splits import make_split
from letterbench.images.transforms import Preprocess
from letterbench.models import create_model
from letterbench.runs.rundir import RunDir
from letterbench.training.bookkeeping import TrainData
from letterbench.training.engine import Trainer
from letterbench.training.stream import BatchStream

FAST = ["--model", "timm:resnet10t", "--quiet", "--train-per-class", "12", "--set", "val_fraction=0.25"]


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


def killed_by_sigkill(*args) -> None:
    """A seed's work that the kernel kills (as the out-of-memory killer would)."""
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_long(*args) -> None:
    """A child's work that outlives any test: only a signal ends it."""
    time.sleep(120)


AUGMENT = {"rotate": 10.0, "zoom": 0.1, "shift": 0.08, "flip": False}


def letters(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen), torch.arange(n) % 26


def stream(n: int, batch: int, augment=AUGMENT, size: int = 28, dist=None) -> BatchStream:
    images, labels = letters(n)
    spec = create_model("resnet18" if size == 28 else "densenet121").spec
    return BatchStream(images, labels, Preprocess(spec, "cpu"), batch, augment, dist)


def tiny_train_data(data_dir: Path, per_class: int = 4, seed: int = 0) -> TrainData:
    data = load_emnist(data_dir)
    split = make_split(data, 0.25, seed, per_class)
    return TrainData(
        data.train_images[split.train],
        data.train_labels[split.train],
        data.train_images[split.val],
        data.train_labels[split.val],
    )


PAGE_PEN = 280 / 16  # the page's pen on its 280-pixel pad


def page_drawing(strokes: list[list[tuple[float, float]]], dots=(), side: int = 280) -> Image.Image:
    img = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        draw.line(stroke, fill=0, width=int(PAGE_PEN), joint="curve")
    for x, y in dots:
        r = PAGE_PEN / 2
        draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return img


def letters_folder(folder: Path, per_letter: int = 2) -> Path:
    """A --real-world folder: dark letters on white paper, one sub-folder per letter."""
    from letterbench.images.synthetic import synthetic_letters

    images, labels = synthetic_letters(26 * per_letter, seed=9)
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        sub = folder / "abcdefghijklmnopqrstuvwxyz"[label]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - np.kron(image, np.ones((4, 4), np.uint8))).save(sub / f"{k}.png")
    return folder


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
