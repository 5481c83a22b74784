"""Evaluation of a trained run on the test set: predictions, the study's metrics, measured cost.

``letterbench evaluate RUN_DIR`` evaluates the best checkpoint of every phase (for Xception:
the head-only model and the fine-tuned one, the study's two columns), saves the test
predictions beside the run so that every figure can be recomputed without the model, and
writes ``metrics.json`` plus PNG plots.

``metrics.json`` (schema ``letterbench-metrics-1``)::

    run:     model, label, recipe, seed, pretrained, notes, data (counts, checksums, partial), device
    stages:  one per phase, in order, each with
             phase, label, checkpoint, epoch (global epoch of the best checkpoint), predictions (.npz file),
             metrics: accuracy, top3_accuracy, precision/recall/f1 _macro and _weighted,
                      roc_auc_micro, roc_auc_macro, log_loss, test_images
             per_class: {class: precision, recall, f1, support, roc_auc (null where undefined)}
             confusion_matrix: rows = true class, columns = predicted, in class_names order
             most_confused: [{true, predicted, count}], largest first
             overfitting: at_best and at_end: epoch, train/val accuracy and loss, accuracy_gap, loss_gap
    cost:    parameters, trainable_parameters (per phase), flops_per_image, train_time_s (per phase and total),
             train_images_per_s, inference_images_per_s (batch 256), latency_ms (one image, median),
             peak_memory_bytes + peak_memory_kind (training), device
    class_names, plots: {curves, confusion, roc, errors}
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from letterbench.data.emnist import stratified_subset
from letterbench.errors import LetterbenchError
from letterbench.fsutil import atomic_save, atomic_write_json
from letterbench.models import LetterModel, count_parameters, flops_per_image, set_trainable
from letterbench.training.checkpoint import load_checkpoint
from letterbench.training.distributed import choose_device
from letterbench.training.recipes import recipe_from_dict
from letterbench.training.run import device_name, load_run_data, model_from_config, require_finished
from letterbench.transforms import prepare_batch, to_channels_last

SCHEMA = "letterbench-metrics-1"
DISPLAY = {"resnet18": "ResNet-18", "densenet121": "DenseNet-121", "xception": "Xception"}


def display_name(model: str) -> str:
    return DISPLAY.get(model, model)


@torch.no_grad()
def predict_probs(
    model: LetterModel, images: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 512
) -> torch.Tensor:
    """Class probabilities (N, C), float32 on the CPU, for uint8 images (N, 28, 28)."""
    if len(images) == 0:
        raise LetterbenchError("no images to predict")
    device = torch.device(device)
    to_channels_last(model.to(device)).eval()
    cuda = device.type == "cuda"
    out = []
    for start in range(0, len(images), batch_size):
        x = prepare_batch(images[start : start + batch_size].to(device), model.spec)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(x)
        out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out)


# ---------------------------------------------------------------- metrics


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """The study's metrics from probabilities and true labels, computed with scikit-learn."""
    n_classes = len(class_names)
    classes = np.arange(n_classes)
    pred = probs.argmax(1)
    p_mac, r_mac, f_mac, _ = skm.precision_recall_fscore_support(
        labels, pred, labels=classes, average="macro", zero_division=0
    )
    p_w, r_w, f_w, _ = skm.precision_recall_fscore_support(
        labels, pred, labels=classes, average="weighted", zero_division=0
    )
    p_c, r_c, f_c, s_c = skm.precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    onehot = label_binarize(labels, classes=classes)
    present = [c for c in classes if 0 < onehot[:, c].sum() < len(labels)]  # AUC needs both kinds of example
    per_class_auc = {c: float(skm.roc_auc_score(onehot[:, c], probs[:, c])) for c in present}
    cm = skm.confusion_matrix(labels, pred, labels=classes)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    pairs = [(int(off[i, j]), i, j) for i in range(n_classes) for j in range(n_classes) if off[i, j]]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return {
        "metrics": {
            "test_images": int(len(labels)),
            "accuracy": float(skm.accuracy_score(labels, pred)),
            "top3_accuracy": float(skm.top_k_accuracy_score(labels, probs, k=3, labels=classes)),
            "precision_macro": float(p_mac),
            "recall_macro": float(r_mac),
            "f1_macro": float(f_mac),
            "precision_weighted": float(p_w),
            "recall_weighted": float(r_w),
            "f1_weighted": float(f_w),
            "roc_auc_micro": float(skm.roc_auc_score(onehot, probs, average="micro")),
            "roc_auc_macro": float(np.mean(list(per_class_auc.values()))) if per_class_auc else None,
            "log_loss": float(skm.log_loss(labels, np.clip(probs, 1e-12, 1), labels=classes)),
        },
        "per_class": {
            name: {
                "precision": float(p_c[c]),
                "recall": float(r_c[c]),
                "f1": float(f_c[c]),
                "support": int(s_c[c]),
                "roc_auc": per_class_auc.get(c),
            }
            for c, name in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
        "most_confused": [
            {"true": class_names[i], "predicted": class_names[j], "count": n} for n, i, j in pairs[:10]
        ],
    }


def overfitting(history: list[dict[str, Any]], phase: str | None = None) -> dict[str, Any]:
    """Train vs validation accuracy and loss at the best epoch (lowest val loss) and at the end."""
    rows = [h for h in history if phase is None or h["phase"] == phase]
    if not rows:
        return {}

    def pick(h):
        return {
            "epoch": h["global_epoch"],
            "train_acc": h["train_acc"],
            "val_acc": h["val_acc"],
            "train_loss": h["train_loss"],
            "val_loss": h["val_loss"],
            "accuracy_gap": h["train_acc"] - h["val_acc"],
            "loss_gap": h["val_loss"] - h["train_loss"],
        }

    return {"at_best": pick(min(rows, key=lambda h: h["val_loss"])), "at_end": pick(rows[-1])}


# ---------------------------------------------------------------- cost


@torch.no_grad()
def inference_speed(
    model: LetterModel, device: torch.device, batch: int = 256, min_seconds: float = 2.0
) -> dict[str, float]:
    """Throughput (images/s) at ``batch`` and median single-image latency (ms), measured."""
    to_channels_last(model.to(device)).eval()
    cuda = device.type == "cuda"
    images = torch.randint(0, 256, (batch, 28, 28), dtype=torch.uint8, device=device)

    def run(x):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            model(prepare_batch(x, model.spec))
        if cuda:
            torch.cuda.synchronize(device)

    run(images)  # warm-up
    count, start = 0, time.perf_counter()
    while True:
        run(images)
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or count >= batch * 50:
            break
    throughput = count / elapsed
    run(images[:1])
    latencies = []
    for _ in range(15):
        t = time.perf_counter()
        run(images[:1])
        latencies.append((time.perf_counter() - t) * 1000)
    return {"inference_images_per_s": throughput, "latency_ms": statistics.median(latencies)}


# ---------------------------------------------------------------- a run


def _stages(config: dict[str, Any], run_dir: Path, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    recipe = recipe_from_dict(config["recipe"], str(run_dir / "config.json"))
    label = display_name(config["model"]["name"])
    stages = []
    for i, phase in enumerate(recipe.phases):
        path = run_dir / "checkpoints" / f"best-{phase.name}.pt"
        if path.exists():
            stages.append(
                {
                    "phase": phase.name,
                    "label": label if i == 0 else f"{label} {phase.name}",
                    "checkpoint": str(path.relative_to(run_dir)),
                    # what the phase really trained (all, where a frozen base had no pretrained weights)
                    "trainable": next(h["trainable"] for h in history if h["phase"] == phase.name),
                }
            )
    return stages


def evaluate_run(
    run_dir: Path,
    data_dir: Path | None = None,
    device: str = "auto",
    plots: bool = True,
    measure_speed: bool = True,
    test_per_class: int | None = None,
) -> dict[str, Any]:
    """Evaluate every phase's best checkpoint on the test set; write predictions, metrics.json and plots."""
    run_dir = Path(run_dir)
    config = require_finished(run_dir)
    data = load_run_data(config, run_dir, data_dir)
    dev = choose_device(device)
    progress = json.loads((run_dir / "progress.json").read_text())
    history = progress["history"]
    model = model_from_config(config, data.num_classes)
    stages = _stages(config, run_dir, history)
    if not stages:
        raise LetterbenchError(f"{run_dir}: no best-<phase>.pt checkpoints; the run holds no trained model")
    test_images, test_labels = data.test_images, data.test_labels
    if test_per_class:  # a stratified test subset, said so in metrics.json and on the report
        rows = stratified_subset(data.test_labels, test_per_class, seed=0)
        test_images, test_labels = test_images[rows], test_labels[rows]
    labels = test_labels.numpy()
    for stage in stages:
        ckpt = load_checkpoint(run_dir / stage["checkpoint"])
        model.load_state_dict(ckpt["model"])
        probs = predict_probs(model, test_images, dev).numpy()
        pred_file = f"predictions-{stage['phase']}.npz"
        atomic_save(
            run_dir / pred_file,
            lambda f, p=probs: np.savez_compressed(
                f, probs=p.astype(np.float32), labels=labels, class_names=np.array(data.class_names)
            ),
        )
        stage.update(classification_metrics(probs, labels, data.class_names))
        stage["predictions"] = pred_file
        stage["epoch"] = ckpt["trainer"]["global_epoch"]
        stage["overfitting"] = overfitting(history, stage["phase"])
        set_trainable(model, stage["trainable"])
        stage["trainable_parameters"] = count_parameters(model)[1]
    total, _ = count_parameters(model)
    cost = {
        "parameters": total,
        "trainable_parameters": {s["phase"]: s["trainable_parameters"] for s in stages},
        "flops_per_image": flops_per_image(model),
        "train_time_s": {**progress["phase_times_s"], "total": sum(progress["phase_times_s"].values())},
        "train_images_per_s": statistics.median(h["images_per_s"] for h in history),
        "train_device": config["device"]["name"],
        "peak_memory_bytes": progress.get("peak_memory", {}).get("bytes"),
        "peak_memory_kind": progress.get("peak_memory", {}).get("kind"),
        "device": device_name(dev),
    }
    if measure_speed:
        cost.update(inference_speed(model, dev))
    result = {
        "schema": SCHEMA,
        "run": {
            "dir": str(run_dir),
            "model": config["model"]["name"],
            "label": display_name(config["model"]["name"]),
            "recipe": config["recipe"],
            "seed": config["seed"],
            "pretrained": config["model"]["pretrained"],
            "notes": config["model"]["notes"],
            "data": {**config["data"], "test_per_class": test_per_class, "test_used": len(labels)},
            "device": config["device"],
            "versions": config["versions"],
        },
        "class_names": data.class_names,
        "stages": stages,
        "cost": cost,
    }
    if plots:
        from letterbench.reporting.plots import plot_run

        result["plots"] = plot_run(run_dir, result, history, test_images.numpy(), probs, labels)
    atomic_write_json(run_dir / "metrics.json", result)
    return result


def load_predictions(run_dir: Path, stage: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    path = Path(run_dir) / stage["predictions"]
    try:
        with np.load(path) as npz:
            return npz["probs"], npz["labels"]
    except (OSError, KeyError, ValueError) as exc:
        raise LetterbenchError(
            f"{path}: predictions missing or unreadable ({exc}); run `letterbench evaluate {run_dir}` again"
        ) from None
