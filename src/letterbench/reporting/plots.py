"""PNG plots of one evaluated run: learning curves, confusion matrix, ROC curves, misclassified images."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, roc_curve  # noqa: E402
from sklearn.preprocessing import label_binarize  # noqa: E402

from letterbench.core import timing  # noqa: E402
from letterbench.core.fsutil import atomic_write_bytes  # noqa: E402
from letterbench.evaluation.evaluate import Evaluation  # noqa: E402
from letterbench.runs.records import EpochRecord, Stage  # noqa: E402
from letterbench.runs.rundir import RunDir  # noqa: E402


def save_figure(fig, path: Path) -> None:
    """Write a figure as PNG atomically and free it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: list[EpochRecord], title: str, path: Path) -> None:
    """Accuracy and loss, train and validation, per epoch; later phases (fine-tuning) shaded and named."""
    epochs = [h.global_epoch for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, name in ((axes[0], "acc", "accuracy"), (axes[1], "loss", "loss")):
        ax.plot(epochs, [getattr(h, f"train_{key}") for h in history], "o-", ms=3, label=f"train {name}")
        ax.plot(epochs, [getattr(h, f"val_{key}") for h in history], "s-", ms=3, label=f"validation {name}")
        phases = list(dict.fromkeys(h.phase for h in history))
        for phase in phases[1:]:
            first = min(h.global_epoch for h in history if h.phase == phase)
            last = max(h.global_epoch for h in history if h.phase == phase)
            ax.axvspan(first - 0.5, last + 0.5, color="orange", alpha=0.12)
            ax.axvline(first - 0.5, color="orange", ls="--", lw=1)
            ax.text(
                first - 0.4,
                0.98,
                phase,
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=9,
                color="darkorange",
            )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_confusion(cm: list[list[int]], class_names: list[str], title: str, path: Path) -> None:
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(0.38 * n + 2, 0.38 * n + 1.5))
    matrix = np.array(cm)
    ConfusionMatrixDisplay(matrix, display_labels=class_names).plot(
        ax=ax, cmap="Blues", colorbar=False, include_values=False
    )
    # Counts written where they are not zero, so that the mistakes stand out (and 676 empty
    # labels are not drawn).
    light = matrix.max() / 2
    for (row, col), value in np.ndenumerate(matrix):
        if value:
            color = "white" if value > light else "black"
            ax.text(col, row, str(value), ha="center", va="center", fontsize=6 if n > 15 else 9, color=color)
    ax.set_title(title)
    save_figure(fig, path)


def plot_roc(probs: np.ndarray, labels: np.ndarray, class_names: list[str], stage: Stage, path: Path) -> None:
    """Per-class ROC curves (thin), the micro average and the macro average (mean TPR over classes)."""
    onehot = label_binarize(labels, classes=np.arange(len(class_names)))
    fig, ax = plt.subplots(figsize=(6.5, 6))
    grid = np.linspace(0, 1, 201)
    tprs = []
    for c in range(len(class_names)):
        if 0 < onehot[:, c].sum() < len(labels):
            fpr, tpr, _ = roc_curve(onehot[:, c], probs[:, c])
            ax.plot(fpr, tpr, lw=0.6, alpha=0.35, color="gray")
            tprs.append(np.interp(grid, fpr, tpr))
    fpr, tpr, _ = roc_curve(onehot.ravel(), probs.ravel())
    m = stage.metrics
    ax.plot(fpr, tpr, lw=2, label=f"micro average (AUC {m.roc_auc_micro:.4f})")
    if tprs:
        ax.plot(grid, np.mean(tprs, 0), lw=2, ls="--", label=f"macro average (AUC {m.roc_auc_macro:.4f})")
    ax.plot([0, 1], [0, 1], ":", color="black", lw=0.8)
    ax.plot([], [], lw=0.6, color="gray", label="each class")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC, {stage.label}")
    ax.legend(loc="lower right")
    if m.roc_auc_micro > 0.95:
        # Good curves hug the top-left corner; an inset in the empty lower right magnifies it.
        inset = ax.inset_axes([0.38, 0.3, 0.57, 0.4])
        inset.plot(fpr, tpr, lw=1.5)
        if tprs:
            inset.plot(grid, np.mean(tprs, 0), lw=1.5, ls="--")
        inset.set_xlim(0, 0.1)
        inset.set_ylim(0.8, 1.0)
        inset.set_title("top-left corner", fontsize=8)
        inset.tick_params(labelsize=7)
        inset.grid(alpha=0.3)
    save_figure(fig, path)


def plot_errors(
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    title: str,
    path: Path,
    rows: int = 5,
    cols: int = 10,
) -> None:
    """The most confident mistakes, upright, captioned true -> predicted (confidence)."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    shown = wrong[np.argsort(-probs[wrong, pred[wrong]])][: rows * cols]
    # One image of tiles, captions written on it: one axes, not one per tile (2.4 s -> 0.3 s here).
    size, pad = images.shape[1], images.shape[1] // 2  # a caption's band above each tile
    used = max(1, -(-len(shown) // cols))  # rows with a mistake in them
    mosaic = np.zeros((used * (size + pad), cols * (size + 4)), np.uint8)
    width = cols * 1.15
    fig = plt.figure(figsize=(width, width * mosaic.shape[0] / mosaic.shape[1] + 0.6))
    ax = fig.add_axes((0, 0, 1, 1 - 0.6 / fig.get_figheight()))  # the tiles fill it; the title above
    for k, i in enumerate(shown):
        top, left = (k // cols) * (size + pad) + pad, (k % cols) * (size + 4) + 2
        mosaic[top : top + size, left : left + size] = images[i]
        caption = f"{class_names[labels[i]]}→{class_names[pred[i]]} {probs[i, pred[i]]:.0%}"
        ax.text(left + size / 2, top - 1.5, caption, ha="center", va="bottom", fontsize=8)
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(f"{title}: most confident mistakes (true→predicted), {len(wrong)} in all")
    save_figure(fig, path)


def plot_run(run: RunDir, evaluation: Evaluation) -> dict[str, Path]:
    """All plots of an evaluated run, for its last (headline) stage; returns their paths by kind."""
    result = evaluation.metrics
    stage = result.stages[-1]
    names = result.class_names
    plot_curves(run.read_progress().history, f"{result.run.label}: learning curves", run.plot_file("curves"))
    plot_confusion(
        stage.confusion_matrix, names, f"Confusion matrix, {stage.label}", run.plot_file("confusion")
    )
    plot_roc(evaluation.probs, evaluation.labels, names, stage, run.plot_file("roc"))
    plot_errors(
        evaluation.test_images,
        evaluation.labels,
        evaluation.probs,
        names,
        stage.label,
        run.plot_file("errors"),
    )
    return run.plots()


def _place_labels(ax, labels: dict[tuple[float, float], list[str]]) -> list:
    """Each label beside its point, at the first of a few offsets where it overlaps no label
    placed before it (close points would otherwise overprint each other's names); their boxes."""
    ax.autoscale_view()
    renderer = ax.figure.canvas.get_renderer()
    placed = []
    offsets = [
        ((6, 4), "left"),
        ((6, -12), "left"),
        ((-6, 4), "right"),
        ((-6, -12), "right"),
        ((6, 14), "left"),
    ]
    for (x, y), names in sorted(labels.items()):
        for offset, align in offsets:
            text = ax.annotate(
                " / ".join(names), (x, y), textcoords="offset points", xytext=offset, fontsize=9, ha=align
            )
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed) or offset == offsets[-1][0]:
                placed.append(box)
                break
            text.remove()
    return placed


def plot_accuracy_against_cost(
    points: list[tuple[str, float, float, bool]], path: Path, chance: float | None = None
) -> None:
    """One point per model: (label, FLOPs per image, test accuracy, is the ensemble); a dashed line
    at ``chance`` (what guessing gets). Points that coincide share one label, names joined."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    labels: dict[tuple[float, float], list[str]] = {}
    for label, flops, accuracy, ensemble in points:
        ax.scatter(flops / 1e9, 100 * accuracy, s=60, marker="*" if ensemble else "o")
        # coincident to the eye: the same FLOPs within 1% and accuracy within 0.3 points
        spot = next(
            (k for k in labels if abs(k[0] / (flops / 1e9) - 1) < 0.01 and abs(k[1] - 100 * accuracy) < 0.3),
            (flops / 1e9, 100 * accuracy),
        )
        labels.setdefault(spot, []).append(label)
    _place_labels(ax, labels)
    if chance is not None:
        ax.axhline(100 * chance, color="0.4", linestyle="--", linewidth=1)
        ax.annotate(
            f"chance ({100 * chance:.1f}%)",
            (0.01, 100 * chance),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(0, 3),
            fontsize=8,
            color="0.35",
        )
    ax.set_xscale("log")
    # Plain numbers, and of the minor ticks only 2x and 5x: all of them overlap on a short log axis.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if round(v / 10 ** np.floor(np.log10(v))) in (2, 5) else "")
    )
    ax.margins(x=0.25, y=0.12)  # room for the labels
    ax.set_xlabel("GFLOPs per image (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against cost")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


TRAINING_PARTS = ("training",)  # the share the bars name: the model learning, nothing around it


def plot_time_budget(bars: dict[str, dict[str, float]], path: Path) -> None:
    """One stacked horizontal bar per model: its wall clock by part (training, validation,
    checkpoint writes, testing, cost measurement, plots, ...), labelled with the training share."""
    parts = sorted({p for bar in bars.values() for p in bar}, key=lambda p: (p not in TRAINING_PARTS, p))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(parts), 2)))
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(bars) + 1.9))
    for row, bar in enumerate(bars.values()):
        left = 0.0
        for k, name in enumerate(parts):
            seconds = bar.get(name, 0.0)
            ax.barh(row, seconds, left=left, color=colours[k], label=name if row == 0 else None)
            left += seconds
        share = sum(bar.get(p, 0.0) for p in TRAINING_PARTS) / max(left, 1e-9)
        ax.annotate(f" {left:.0f} s, training {share:.0%}", (left, row), va="center", fontsize=9)
    ax.set_yticks(range(len(bars)), list(bars))
    ax.invert_yaxis()
    ax.set_xlabel("wall-clock seconds (training, evaluation and plots of each model)")
    ax.set_title("Where each model's time went")
    ax.margins(x=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, fontsize=8, frameon=False)
    save_figure(fig, path)


def plot_timed(run: RunDir, evaluation) -> None:
    """``plot_run``, its time added to the run's evaluation time budget (the metrics file is
    written before the plots are drawn)."""
    with timing.scope(run.path.name), timing.spent_inside() as spent:
        with timing.part("plots"):
            plot_run(run, evaluation)
    if spent:
        run.add_evaluation_time(spent)
