"""Evaluation of a trained run on the test set: predictions, the study's metrics, measured cost.

``evaluate_run`` scores the best checkpoint of every phase (for Xception: the head-only model and
the fine-tuned one, the study's two columns), saves the test predictions in the run directory so
that every figure can be recomputed without the model, and writes the run's metrics file. It
computes; rendering (plots, reports) is ``letterbench.reporting``'s.

The metrics file is a ``letterbench.runs.records.RunMetrics`` record (schema ``METRICS_SCHEMA``):
its fields, and theirs, say what each figure is.
"""

from __future__ import annotations

import statistics
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn import metrics as skm

from letterbench.core import timing
from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Load, Runtime
from letterbench.data.emnist import stratified_subset
from letterbench.evaluation.calibration import calibrate, calibration_error
from letterbench.evaluation.inference import inference_speed, log_loss, predict_logits, softmax
from letterbench.evaluation.real_world import RealWorldSet, real_world_scores
from letterbench.evaluation.stats import bootstrap_intervals, spread
from letterbench.models import count_parameters, flops_per_image, set_trainable
from letterbench.runs.records import METRICS_SCHEMA, EpochRecord, RunConfig, RunMetrics, RunProgress
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import run_data, untrained_model

# ---------------------------------------------------------------- metrics


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """The study's metrics from probabilities and true labels, computed with scikit-learn."""
    classes = np.arange(len(class_names))
    pred = probs.argmax(1)
    p_mac, r_mac, f_mac, _ = skm.precision_recall_fscore_support(
        labels, pred, labels=classes, average="macro", zero_division=0
    )
    p_w, r_w, f_w, _ = skm.precision_recall_fscore_support(
        labels, pred, labels=classes, average="weighted", zero_division=0
    )
    p_c, r_c, f_c, s_c = skm.precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    onehot = np.eye(len(classes), dtype=int)[labels]  # label_binarize gives one column for two classes
    present = [c for c in classes if 0 < onehot[:, c].sum() < len(labels)]  # AUC needs both kinds of example
    per_class_auc = {c: float(skm.roc_auc_score(onehot[:, c], probs[:, c])) for c in present}
    cm = skm.confusion_matrix(labels, pred, labels=classes)
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
            "log_loss": log_loss(probs, labels),
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
        "most_confused": most_confused(cm, class_names),
    }


def most_confused(cm: np.ndarray, class_names: list[str], top: int = 10) -> list[dict[str, Any]]:
    """The largest off-diagonal cells of a confusion matrix, largest first."""
    n = len(class_names)
    pairs = [(int(cm[i, j]), i, j) for i in range(n) for j in range(n) if i != j and cm[i, j]]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [{"true": class_names[i], "predicted": class_names[j], "count": c} for c, i, j in pairs[:top]]


def overfitting(history: list[EpochRecord], phase: str | None = None) -> dict[str, Any]:
    """Train vs validation accuracy and loss at the best epoch (lowest val loss) and at the end."""
    rows = [h for h in history if phase is None or h.phase == phase]
    if not rows:
        return {}

    def pick(h: EpochRecord) -> dict[str, Any]:
        return {
            "epoch": h.global_epoch,
            "train_acc": h.train_acc,
            "val_acc": h.val_acc,
            "train_loss": h.train_loss,
            "val_loss": h.val_loss,
            "accuracy_gap": h.train_acc - h.val_acc,
            "loss_gap": h.val_loss - h.train_loss,
        }

    return {"at_best": pick(min(rows, key=lambda h: h.val_loss)), "at_end": pick(rows[-1])}


# ---------------------------------------------------------------- cost


def _training_cost(progress: RunProgress, config: RunConfig) -> dict[str, Any]:
    history = progress.history
    loads = [h.other_cpu_cores for h in history if h.other_cpu_cores is not None]
    speeds = spread([h.images_per_s for h in history])
    peak = progress.peak_memory or {}
    return {
        "train_time_s": {**progress.phase_times_s, "total": sum(progress.phase_times_s.values())},
        "train_images_per_s": statistics.median(h.images_per_s for h in history),
        "train_images_per_s_spread": [speeds["q1"], speeds["q3"]],
        "train_device": (config.device or {}).get("name"),
        "peak_memory_bytes": peak.get("bytes"),
        "peak_memory_kind": peak.get("kind"),
        "train_load": Load(statistics.median(loads) if loads else None).to_dict(),
    }


# ---------------------------------------------------------------- a run


@dataclass
class Evaluation:
    """What ``evaluate_run`` computed: the metrics file's contents, and the test images with the
    last stage's probabilities (for plots)."""

    metrics: RunMetrics
    test_images: np.ndarray
    probs: np.ndarray
    labels: np.ndarray


class StagePlan(NamedTuple):
    """A phase to score: its name, its column's label, and what it really trained (all, where a
    frozen base had no pretrained weights)."""

    phase: str
    label: str
    trainable: str


def _stages(run: RunDir, config: RunConfig, history: list[EpochRecord]) -> list[StagePlan]:
    label = config.key.label
    return [
        StagePlan(
            phase,
            label if i == 0 else f"{label} {phase}",
            next(h.trainable for h in history if h.phase == phase),
        )
        for i, phase in enumerate(run.phases(config))
        if run.has_checkpoint(phase)
    ]


def _test_set(data, test_per_class: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if not test_per_class:
        return data.test_images, data.test_labels
    rows = stratified_subset(data.test_labels, test_per_class, seed=0)  # the same for every model
    return data.test_images[rows], data.test_labels[rows]


def _validation_split(run: RunDir, data, config: RunConfig) -> torch.Tensor:
    """The indices of the run's validation images, drawn again as training drew them."""
    val = config.split(data).val
    if len(val) != config.data.val_used:
        raise LetterbenchError(
            f"{run}: the validation split drawn again has {len(val)} images, training used "
            f"{config.data.val_used}; the data changed since: evaluate with the data it trained on"
        )
    return val


def _calibration(model, data, val, runtime: Runtime, test_logits: np.ndarray, labels: np.ndarray) -> dict:
    """The temperature fitted on the validation images, with the test ECE before and after."""
    record = calibrate(
        predict_logits(model, data.train_images[val], runtime).numpy(), data.train_labels[val].numpy()
    )
    before, after = softmax(test_logits), softmax(test_logits, record["temperature"])
    return record | {
        "test_ece_before": calibration_error(before, labels),
        "test_ece_after": calibration_error(after, labels),
    }


def _read_real_world(run: RunDir, phase: str, model, folder: RealWorldSet, runtime: Runtime) -> dict:
    """The phase's reading of a ``--real-world`` folder: saved per image, summed up for the file."""
    probs = softmax(predict_logits(model, folder.images, runtime).numpy())
    run.save_real_world(phase, probs, folder.labels, folder.readable, str(folder.folder), folder.fingerprint)
    scores = real_world_scores(probs, folder.labels, folder.readable)
    return {"folder": str(folder.folder), **scores.record()}


def evaluate_run(
    run: RunDir,
    runtime: Runtime,
    data_dir: str | Path | None = None,
    measure_speed: bool = True,
    test_per_class: int | None = None,
    speed_batch: int = 256,
    real_world: RealWorldSet | None = None,
) -> Evaluation:
    """Evaluate every phase's best checkpoint on the test set (or a stratified subset of
    ``test_per_class`` images per class); write the predictions and the metrics file (with the
    evaluation's time budget). Inference throughput is measured at ``speed_batch`` (recorded as
    ``inference_batch``)."""
    config = run.require_finished()
    if real_world is not None and list(config.data.class_names) != list(string.ascii_lowercase):
        raise LetterbenchError(
            f"--real-world holds letters a..z, and {run} was trained on other classes "
            f"({''.join(config.data.class_names[:12])}...); read it with a run of EMNIST Letters"
        )
    with timing.scope(run.path.name), timing.spent_inside() as spent:
        with timing.part("data loading"):
            data = run_data(run, data_dir, config)
        progress = run.read_progress()
        plans = _stages(run, config, progress.history)
        if not plans:
            raise LetterbenchError(f"{run}: no best checkpoint of any phase; the run holds no trained model")
        if real_world is None:
            run.forget_real_world()  # readings of an earlier evaluation: stale once this one writes
        test_images, test_labels = _test_set(data, test_per_class)
        test = (test_images, test_labels.numpy())
        model = untrained_model(run, config)
        speed = speed_batch if measure_speed else None
        stages, probs, cost = _score_stages(run, plans, model, data, test, runtime, real_world, speed)
        result = {
            "schema": METRICS_SCHEMA,
            "run": _run_record(run, config, progress, test_per_class, len(test[1])),
            "class_names": data.class_names,
            "stages": stages,
            "cost": cost,
        }
    record = RunMetrics.model_validate({**result, "time_budget": spent}, strict=False)
    run.write_metrics(record)
    return Evaluation(record, test_images.numpy(), probs, test[1])


def _score_stages(run, plans, model, data, test, runtime, real_world, speed_batch: int | None) -> tuple:
    """(every phase's stage record, the last phase's test probabilities, the run's cost); the
    final model's test pass runs at ``speed_batch`` and is its throughput measurement."""
    config, progress = run.read_config(), run.read_progress()
    val = _validation_split(run, data, config)
    stages = []
    for plan in plans:
        timed = speed_batch if plan is plans[-1] else None
        stage, probs, measured = _score_stage(run, plan, model, data, val, test, runtime, real_world, timed)
        stages.append({**stage, "overfitting": overfitting(progress.history, plan.phase)})
    with timing.part("cost measurement"):
        speed = (speed_batch, measured) if speed_batch else None
        cost = _cost(model, stages, progress, config, runtime, speed)
    return stages, probs, cost


def _score_stage(
    run, plan: StagePlan, model, data, val, test, runtime, real_world, speed_batch=None
) -> tuple:
    """One phase's best weights on the test images: (its stage record: predictions, metrics,
    intervals, calibration on the validation split, the real-world set; the test probabilities;
    at ``speed_batch``, the seconds of each full batch of the test pass with the load meanwhile)."""
    test_images, labels = test
    ckpt = run.load_weights_into(model, plan.phase)
    timings = [] if speed_batch else None
    with timing.part("testing"), runtime.measure_load() as load:
        logits = predict_logits(model, test_images, runtime, batch_size=speed_batch or 512, timings=timings)
        logits = logits.numpy()
        probs = softmax(logits)
    with timing.part("calibration"):
        calibration = _calibration(model, data, val, runtime, logits, labels)
    with timing.part("testing"):
        saved = run.save_predictions(plan.phase, probs, labels, data.class_names).name
        scored = classification_metrics(probs, labels, data.class_names)
        intervals = bootstrap_intervals(probs, labels)
    reading = {}
    if real_world is not None:
        with timing.part("real-world set"):
            reading = {"real_world": _read_real_world(run, plan.phase, model, real_world, runtime)}
    set_trainable(model, plan.trainable)
    stage = {**plan._asdict(), "calibration": calibration, "predictions": saved, **scored}
    stage |= {"intervals": intervals, **reading, "epoch": ckpt["trainer"]["global_epoch"]}
    return {**stage, "trainable_parameters": count_parameters(model)[1]}, probs, (timings, load)


def _cost(model, stages, progress, config, runtime: Runtime, speed: tuple | None) -> dict[str, Any]:
    trained = {s["phase"]: s["trainable_parameters"] for s in stages}
    cost = {
        "parameters": count_parameters(model)[0],
        "trainable_parameters": trained,
        "flops_per_image": flops_per_image(model),
        **_training_cost(progress, config),
        "device": runtime.name,
    }
    if speed is not None:  # (batch, the final test pass's batch times and load)
        batch, measured = speed
        found = inference_speed(model, runtime, batch=batch, measured=measured)
        cost["inference_load"] = found.pop("load")
        cost.update(found, inference_batch=batch)
    return cost


def _run_record(run: RunDir, config, progress, test_per_class: int | None, tested: int) -> dict[str, Any]:
    return {
        "dir": str(run.path),
        "model": config.model.name,
        "label": config.key.label,
        "recipe": config.recipe.to_dict(),
        "seed": config.seed,
        "epochs_trained": progress.last.global_epoch,
        "pretrained": config.model.pretrained,
        "notes": config.model.notes,
        "data": {**config.data.to_json(), "test_per_class": test_per_class, "test_used": tested},
        "device": config.device,
        "versions": config.versions,
    }
