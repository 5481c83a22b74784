"""A training run on disk: its directory, its recorded configuration, and `letterbench train`."""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from letterbench import __version__
from letterbench.data.emnist import (
    EmnistData,
    load_emnist,
    resolve_data_dir,
    stratified_split,
    stratified_subset,
)
from letterbench.errors import TrainingError
from letterbench.fsutil import atomic_write_json
from letterbench.models import LetterModel, count_parameters, create_model
from letterbench.training.distributed import DistInfo, barrier, init_distributed, shutdown
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.recipes import Recipe, recipe_from_dict

CONFIG = "config.json"


def package_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import timm

    return {
        "letterbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


@dataclass
class Split:
    """Indices into the official train set: what trains, what validates."""

    train: torch.Tensor
    val: torch.Tensor


def make_split(data: EmnistData, val_fraction: float, seed: int, train_per_class: int | None) -> Split:
    pool = torch.arange(len(data.train_labels))
    if train_per_class:
        pool = stratified_subset(data.train_labels, train_per_class, seed)
    train, val = stratified_split(data.train_labels[pool], val_fraction, seed)
    return Split(pool[train], pool[val])


def read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{run_dir}: not a letterbench run directory (no {CONFIG})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingError(f"{path}: unreadable ({exc}); the run directory is damaged") from None


def run_status(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "progress.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return "not started"


def train(
    recipe: Recipe,
    out: Path,
    data_dir: Path | None = None,
    split: str = "letters",
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    train_per_class: int | None = None,
    progress: bool = True,
    compile: bool = False,
) -> Path:
    """Train ``recipe`` into run directory ``out``; with ``resume`` continue the run already there."""
    dist, dev = init_distributed(device)
    try:
        return _train(
            recipe, out, data_dir, split, seed, dev, dist, resume, train_per_class, progress, compile
        )
    finally:
        shutdown(dist)


def _train(
    recipe, out, data_dir, split, seed, dev, dist: DistInfo, resume, train_per_class, progress, compile
):
    out = Path(out)
    if resume:
        config = read_config(out)
        recipe = recipe_from_dict(config["recipe"], f"{out / CONFIG}")
        seed, split = config["seed"], config["data"]["split"]
        train_per_class = config["data"]["train_per_class"]
        data_dir = data_dir or Path(config["data"]["data_dir"])
        if run_status(out) == "finished":
            if dist.is_main:
                print(f"{out}: already finished; nothing to resume")
            return out
    elif out.exists() and any(out.iterdir()):
        state = run_status(out) if (out / CONFIG).exists() else "not a letterbench run"
        raise TrainingError(
            f"run directory {out} already exists ({state}); continue it with --resume, "
            "or pass another --out (nothing was overwritten)"
        )
    data = load_run_data(config, out, data_dir) if resume else load_emnist(data_dir, split)
    chosen = make_split(data, recipe.val_fraction, seed, train_per_class)
    torch.manual_seed(seed)  # initial weights
    model = create_model(
        recipe.model,
        data.num_classes,
        pretrained=False if resume else recipe.pretrained_arg,
        weights=None if resume else recipe.weights,
        dropout=recipe.dropout,
    )
    if resume:
        model.pretrained, model.notes = config["model"]["pretrained"], config["model"]["notes"]
    tensors = TrainData(
        data.train_images[chosen.train].to(dev),
        data.train_labels[chosen.train].to(dev),
        data.train_images[chosen.val].to(dev),
        data.train_labels[chosen.val].to(dev),
    )
    trainer = Trainer(recipe, model, tensors, out, seed, dev, dist, progress=progress, compile=compile)
    if not resume and dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        total, _ = count_parameters(model)
        substituted = trainer.substituted_phases()
        notes = list(model.notes)
        if substituted:
            notes.append(
                f"base not pretrained: phase(s) {', '.join(substituted)} trained the whole network "
                "instead of a frozen base"
            )
        atomic_write_json(
            out / CONFIG,
            {
                "letterbench": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": sys.argv,
                "seed": seed,
                "recipe": recipe.to_dict(),
                "model": {
                    "name": model.name,
                    "input": model.spec.to_dict(),
                    "parameters": total,
                    "pretrained": model.pretrained,
                    "notes": notes,
                    "substituted_phases": substituted,
                },
                "data": {
                    **data.provenance(),
                    "data_dir": str(resolve_data_dir(data_dir).resolve()),
                    "train_per_class": train_per_class,
                    "train_used": len(chosen.train),
                    "val_used": len(chosen.val),
                    "class_names": data.class_names,
                },
                "device": {"type": dev.type, "name": device_name(dev), "world_size": dist.world},
                "versions": package_versions(),
            },
        )
    barrier(dist)
    if dist.is_main and progress:
        what = "resuming" if resume else "training"
        print(
            f"{what} {recipe.name} on {len(chosen.train):,} images (val {len(chosen.val):,}), "
            f"{device_name(dev)}, world size {dist.world} -> {out}"
        )
    trainer.fit(resume=resume)
    return out


def load_run_data(config: dict[str, Any], run_dir: Path, data_dir: Path | None = None) -> EmnistData:
    """The data a run was trained on (its recorded folder unless ``data_dir`` is given), checked by SHA-256."""
    data_dir = data_dir or Path(config["data"]["data_dir"])
    data = load_emnist(data_dir, config["data"]["split"])
    if data.checksums != config["data"]["sha256"]:
        raise TrainingError(
            f"the data in {resolve_data_dir(data_dir)} differs from the data {run_dir} was trained on "
            "(SHA-256 mismatch); pass the same --data-dir"
        )
    return data


def require_finished(run_dir: Path) -> dict[str, Any]:
    """The config of a run whose training has finished; a clear error otherwise."""
    config = read_config(run_dir)
    status = run_status(run_dir)
    if status != "finished":
        raise TrainingError(
            f"{run_dir}: no finished model: training has not finished ({status}); "
            f"finish it with `letterbench train --resume --out {run_dir}`"
        )
    return config


def model_from_config(config: dict[str, Any], num_classes: int) -> LetterModel:
    """An untrained model of the architecture a run recorded (weights come from its checkpoints)."""
    return create_model(config["model"]["name"], num_classes, dropout=config["recipe"].get("dropout"))


def load_trained_model(run_dir: Path):
    """(model in eval mode, class names) of a finished run: the best checkpoint of its last phase
    (the fine-tuned model, where there is one)."""
    from letterbench.training.checkpoint import load_checkpoint

    config = require_finished(run_dir)
    last_phase = config["recipe"]["phases"][-1]["name"]
    class_names = config["data"]["class_names"]
    model = model_from_config(config, len(class_names))
    model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / f"best-{last_phase}.pt")["model"])
    return model.eval(), class_names
