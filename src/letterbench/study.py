"""`letterbench run`: the whole study from one command, resumable.

A study directory holds ``study.json`` (the preset and models), ``runs/<model>/`` (one
training run each, evaluated in place) and ``report/``. Running the same command again
skips finished models, resumes an interrupted one from its checkpoint, and rebuilds the report.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from letterbench.data.emnist import ARCHIVE_URL, KINDS, PARTS, find_member, member_name, resolve_data_dir
from letterbench.errors import DataError, LetterbenchError
from letterbench.fsutil import atomic_write_json
from letterbench.training.recipes import Recipe, apply_overrides, load_recipe
from letterbench.training.run import run_status, train

MODELS = ("resnet18", "densenet121", "xception")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    train_per_class: int | None = None  # stratified training subset; None = all
    test_per_class: int | None = None  # stratified test subset; None = the whole test set
    epochs: dict[str, int] = field(default_factory=dict)  # per model: epochs of every phase
    overrides: tuple[str, ...] = ()  # --set overrides for every recipe
    pretrained: str = "auto"


PRESETS = {
    "smoke": Preset(
        "smoke",
        "seconds long: 4 images per class, 1 epoch per phase; for tests and trying the tool",
        train_per_class=4,
        test_per_class=3,
        epochs={m: 1 for m in MODELS},
        overrides=("val_fraction=0.25", "batch_size=32"),
    ),
    "quick": Preset(
        "quick",
        "a real study sized for a 2-core CPU (under 20 minutes): stratified training "
        "subsets, fewer epochs, a stratified test subset",
        train_per_class=None,
        test_per_class=60,
        epochs={"resnet18": 8, "densenet121": 6, "xception": 3},
        overrides=(),
    ),
    "paper": Preset(
        "paper", "the study's full recipes on the full data, ImageNet weights where they can be had"
    ),
}
# Per-model training subsets of the quick preset (images per class), chosen from measured CPU
# throughput so that the three models together finish within 20 minutes (see README).
QUICK_TRAIN_PER_CLASS = {"resnet18": 300, "densenet121": 150, "xception": 80}


def recipe_for(model: str, preset: Preset) -> tuple[Recipe, int | None]:
    recipe = load_recipe(model)
    overrides = list(preset.overrides)
    if recipe.pretrained != "false":  # the ResNet-18 variant has no ImageNet weights
        overrides.append(f"pretrained={preset.pretrained}")
    if model in preset.epochs:
        overrides += [f"phases.{i}.epochs={preset.epochs[model]}" for i in range(len(recipe.phases))]
    per_class = QUICK_TRAIN_PER_CLASS.get(model) if preset.name == "quick" else preset.train_per_class
    return apply_overrides(recipe, overrides), per_class


def ensure_data(data_dir: Path | None, split: str = "letters") -> Path:
    """The data dir, fetching the archive if files are missing and the network allows."""
    from letterbench.data.fetch import fetch

    root = resolve_data_dir(data_dir)
    missing = [
        member_name(split, p, k)
        for p in PARTS
        for k in KINDS
        if find_member(root, member_name(split, p, k)) is None
    ]
    if not missing:
        return root
    print(f"EMNIST {split} not found in {root}; downloading {ARCHIVE_URL}")
    try:
        fetch(root, split, ARCHIVE_URL)
    except DataError as exc:
        raise DataError(
            f"EMNIST {split} is not in {root} and could not be downloaded ({exc}). Download {ARCHIVE_URL} on a "
            "machine with internet and run `letterbench data import gzip.zip`, or pass --data-dir / set "
            "LETTERBENCH_DATA to a folder with the IDX files"
        ) from None
    return root


def choose_preset(name: str | None) -> tuple[Preset, str]:
    if name:
        return PRESETS[name], f"preset {name} (as asked)"
    if torch.cuda.is_available():
        return PRESETS["paper"], f"preset paper: a GPU is present ({torch.cuda.get_device_name(0)})"
    return PRESETS["quick"], "preset quick: no GPU found, and the paper preset takes hours on a CPU"


def estimate_minutes(models: list[str], preset: Preset, train_images: int, device: str) -> float:
    """Measured estimate of training time: a few timed steps of each model, times the images to train on."""
    from letterbench.throughput import measure_train_throughput

    total = 0.0
    for model in models:
        recipe, _ = recipe_for(model, preset)
        rate = measure_train_throughput(model, recipe.batch_size, device, steps=3)
        epochs = sum(p.epochs for p in recipe.phases)
        total += epochs * train_images * (1 - recipe.val_fraction) / rate
    return total / 60


def run_study(
    out: Path,
    preset_name: str | None = None,
    models: list[str] | None = None,
    data_dir: Path | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    from letterbench.evaluation import evaluate_run
    from letterbench.reporting.report import build_report

    preset, why = choose_preset(preset_name)
    print(why)
    models = models or list(MODELS)
    unknown = [m for m in models if m not in MODELS and not m.startswith("timm:")]
    if unknown:
        raise LetterbenchError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)} or timm:<name>"
        )
    out = Path(out)
    study_file = out / "study.json"
    if study_file.exists():
        previous = json.loads(study_file.read_text())
        if previous["preset"] != preset.name or previous["seed"] != seed:
            raise LetterbenchError(
                f"{out} holds a study with preset {previous['preset']} and seed {previous['seed']}; "
                "continue it with the same options, or pass another --out"
            )
    root = ensure_data(data_dir)
    if preset.name == "paper" and not torch.cuda.is_available():
        from letterbench.data.emnist import load_emnist

        n = len(load_emnist(root).train_labels)
        minutes = estimate_minutes(models, preset, n, device)
        print(
            f"the paper preset on this CPU: about {minutes / 60:.1f} hours of training (measured estimate); "
            "Ctrl-C stops it, the same command resumes it"
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        study_file,
        {
            "preset": preset.name,
            "preset_settings": asdict(preset),
            "seed": seed,
            "models": models,
            "data_dir": str(root.resolve()),
        },
    )
    run_dirs = []
    for model in models:
        run_dir = out / "runs" / model.replace(":", "-")
        recipe, per_class = recipe_for(model, preset)
        status = run_status(run_dir)
        start = time.perf_counter()
        if status == "finished" and (run_dir / "metrics.json").exists():
            print(f"{model}: finished earlier, skipped")
        else:
            if status != "finished":
                resume = (run_dir / "checkpoints" / "last.pt").exists()
                print(
                    f"{model}: {'resuming' if resume else 'training'} ({recipe.name} recipe, preset {preset.name})"
                )
                if not resume and run_dir.exists():
                    import shutil

                    shutil.rmtree(run_dir)  # started but no epoch finished: nothing worth keeping
                train(
                    recipe,
                    run_dir,
                    root,
                    seed=seed,
                    device=device,
                    resume=resume,
                    train_per_class=per_class,
                    progress=progress,
                )
            evaluate_run(run_dir, root, device, test_per_class=preset.test_per_class)
            print(f"{model}: done in {(time.perf_counter() - start) / 60:.1f} min")
        run_dirs.append(run_dir)
    summary = build_report(run_dirs, out / "report")
    return summary
