"""Plain-text tables for the terminal."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from letterbench.runs.records import RunMetrics


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """Columns padded to their widest cell; ``align`` holds 'l' or 'r' per column (default: first left)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    align = align or "l" + "r" * (len(header) - 1)
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


MODEL_COLUMNS = (
    "model",
    "input",
    "normalisation",
    "params",
    "trainable",
    "FLOPs/image",
    "ImageNet weights",
    "recipe",
)
MODEL_ALIGN = "lllrrrll"


def model_row(name: str, num_classes: int = 26) -> list[str]:
    """One row of the models table: the model built, its parameters and FLOPs counted."""
    from letterbench.models import count_parameters, create_model, flops_per_image, get_model, weights_cached

    model = create_model(name, num_classes=num_classes)
    total, trainable = count_parameters(model)
    spec = model.spec
    cached = {None: "n/a", True: "cached", False: "not cached"}[weights_cached(name)]
    norm = (
        "mean " + ",".join(f"{m:.3g}" for m in spec.mean) + " std " + ",".join(f"{s:.3g}" for s in spec.std)
    )
    flops = human(flops_per_image(model))
    return [
        name,
        spec.describe(),
        norm,
        f"{total:,}",
        f"{trainable:,}",
        flops,
        cached,
        get_model(name).recipe,
    ]


def streamed_rows(
    rows: Iterable[Sequence[str]], widths: Sequence[int], align: str = MODEL_ALIGN
) -> Iterator[str]:
    """The header and each row as a line the moment it is ready, in columns of ``widths`` (a
    cell wider than its column pushes the rest of its line along)."""
    for row in itertools.chain([MODEL_COLUMNS], rows):
        cells = (c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True))
        yield "  ".join(cells).rstrip()


def run_summary(result: RunMetrics) -> str:
    """An evaluated run in a few terminal lines: metrics per phase, then its measured cost."""
    rows = []
    for stage in result.stages:
        m = stage.metrics
        rows.append(
            [
                stage.label,
                f"{m.accuracy:.2%}",
                f"{m.top3_accuracy:.2%}",
                f"{m.f1_macro:.2%}",
                f"{m.roc_auc_macro:.4f}" if m.roc_auc_macro is not None else "n/a",
                f"{m.test_images:,}",
            ]
        )
    table = format_table(["model", "accuracy", "top-3", "F1 macro", "AUC macro", "test images"], rows)
    cost = result.cost
    speed = (
        f"inference {cost.inference_images_per_s:,.0f} img/s, latency {cost.latency_ms:.1f} ms"
        + (" (measured under load)" if (cost.inference_load or {}).get("under_load") else "")
        if cost.latency_ms is not None
        else "speed not measured"
    )
    return (
        f"{table}\ncost: {human(cost.parameters)} parameters, {human(cost.flops_per_image)}FLOPs/image, "
        f"training {cost.train_time_s['total'] / 60:.1f} min, {speed}"
    )
