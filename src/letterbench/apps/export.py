"""A trained run as one self-describing file for other programs: ONNX or TorchScript.

The exported graph takes what ``letterbench.images.letters`` makes of a user's image, uint8
(batch, 28, 28), and does the rest inside: /255, the bilinear resize to the model's input size
(as a pair of constant matrices that compute exactly ``Preprocess``'s ``grid_sample``), the
channel repeat and the normalisation; it returns logits (batch, C). The file carries what a user
needs besides (class names, temperature, input contract) in ONNX ``metadata_props`` or a
TorchScript extra file. Nothing is written unless the file, loaded back with its own runtime,
gives the probabilities PyTorch gives on the run's test images (``PARITY_LIMIT``).

onnx, onnxruntime and onnxscript come with ``pip install 'letterbench[export]'``; they are imported
only here, when needed.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from letterbench import __version__
from letterbench.apps.exported import (
    IMAGE_SIZE,
    INPUT,
    META_FILE,
    OUTPUT,
    export_metadata,
    exported_by_us,
    first_line,
    onnx_bytes_scorer,
    require,
    torchscript_scorer,
)
from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import atomic_write_bytes
from letterbench.evaluation.inference import predict_probabilities
from letterbench.models import LetterModel
from letterbench.runs.rundir import RunDir
from letterbench.runs.studydir import find_runs
from letterbench.runs.trained import run_data, trained_model

FORMATS = ("onnx", "torchscript")
PARITY_LIMIT = 1e-4  # max |p_exported - p_torch| the exported file may show
PARITY_IMAGES = 256


@dataclass
class ExportResult:
    path: Path
    format: str
    size_bytes: int
    max_diff: float  # max |p_exported - p_torch| over the check's images (calibrated probabilities)
    images: int


# ---------------------------------------------------------------- the exported module


def resize_matrix(size: int, n_in: int = IMAGE_SIZE) -> torch.Tensor:
    """(size, n_in) weights with ``R @ x @ R.T`` == ``Preprocess``'s identity ``grid_sample``
    (bilinear, align_corners=False, zero padding): the same float32 sample positions, as
    ``affine_grid`` and ``grid_sample`` compute them; bilinear sampling is separable."""
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    grid = F.affine_grid(identity, [1, 1, 1, size], align_corners=False)[0, 0, :, 0]
    source = ((grid + 1) * n_in - 1) / 2
    left = source.floor()
    weights = torch.zeros(size, n_in + 2)  # a column either side for neighbours outside the image
    rows, column = torch.arange(size), left.long() + 1
    weights[rows, column] = (left + 1) - source
    weights[rows, column + 1] = source - left
    return weights[:, 1:-1].contiguous()


class ExportedModel(nn.Module):
    """uint8 (B, 28, 28) -> logits (B, C): ``Preprocess`` without augmentation, then the model."""

    def __init__(self, model: LetterModel):
        super().__init__()
        spec = model.spec
        self.model, self.resize = model, spec.size != IMAGE_SIZE
        self.register_buffer("rows", resize_matrix(spec.size))
        self.register_buffer("cols", resize_matrix(spec.size).t().contiguous())
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        if self.resize:
            x = torch.matmul(torch.matmul(self.rows, x), self.cols)
        return self.model((x.unsqueeze(1) - self.mean) / self.std)  # broadcasting repeats the channel


# ---------------------------------------------------------------- writing


def _onnx_bytes(module: ExportedModel, meta: dict[str, str]) -> bytes:
    require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")
    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes={INPUT: {0: torch.export.Dim("batch")}},
                dynamo=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter's many error types: a model it cannot convert
        raise LetterbenchError(
            f"{meta['model']} could not be exported to ONNX ({type(exc).__name__}: {first_line(exc)}); "
            "try --format torchscript"
        ) from None
    proto = program.model_proto
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (
        f"letterbench {__version__} export of {meta['model']}. {meta['input']}. {meta['output']}."
    )
    return proto.SerializeToString()


def _torchscript_bytes(module: ExportedModel, meta: dict[str, str]) -> bytes:
    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice; the check below runs it
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={META_FILE: json.dumps(meta)})
    return buffer.getvalue()


def _check_target(out: Path) -> None:
    if out.is_dir():
        raise LetterbenchError(f"--out {out} is a folder; name a file, e.g. {out / 'model.onnx'}")
    if out.exists() and not out.is_file():  # a device (/dev/full, /dev/zero), a pipe, a socket
        raise LetterbenchError(
            f"--out {out} is not a regular file (a device or a pipe); name a file, e.g. model.onnx"
        )
    if out.exists() and not exported_by_us(out):
        raise LetterbenchError(
            f"--out {out} exists and is not a model letterbench exported; it was left untouched: "
            "choose another --out, or move that file away"
        )


def parity_images(run: RunDir, data_dir: Path | None) -> np.ndarray:
    """``PARITY_IMAGES`` of the run's test images, spread over the test set."""
    try:
        test = run_data(run, data_dir, run.read_config()).test_images
    except LetterbenchError as exc:
        raise LetterbenchError(
            f"export checks the exported file against PyTorch on the run's test images, which cannot be "
            f"read: {exc}"
        ) from None
    picks = torch.linspace(0, len(test) - 1, min(PARITY_IMAGES, len(test))).long()
    return test[picks].numpy()


def export_run(run: RunDir, out: Path, fmt: str, data_dir: Path | None = None) -> ExportResult:
    """Export the run's final model to ``out``; written only if it passes the parity check, which
    always compares with PyTorch in float32 on the CPU (what ``predict --device cpu`` computes)."""
    from letterbench.core.runtime import Runtime

    if fmt not in FORMATS:
        raise LetterbenchError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    _check_target(out)
    model, class_names = trained_model(run)
    images = parity_images(run, data_dir)  # before the slow part: a missing data folder fails fast
    meta = export_metadata(run, model, class_names)
    module = ExportedModel(model).eval()
    data = _onnx_bytes(module, meta) if fmt == "onnx" else _torchscript_bytes(module, meta)
    scorer = onnx_bytes_scorer(data, str(out)) if fmt == "onnx" else torchscript_scorer(data, str(out))
    full = Runtime.create("cpu", precision="float32")  # the exported file computes in float32
    reference = predict_probabilities(model, torch.from_numpy(images), full, scorer.temperature)
    diff = float(np.abs(scorer.probabilities(images) - reference).max())
    if not diff < PARITY_LIMIT:  # NaN fails too
        raise LetterbenchError(
            f"the {fmt} export of {run} disagrees with PyTorch: max |p_{fmt} - p_torch| = {diff:.1e} on "
            f"{len(images)} test images (limit {PARITY_LIMIT:.0e}); nothing was written. Try the other "
            "--format, and please report this model"
        )
    _check_target(out)  # again: the export takes a while
    atomic_write_bytes(out, data)
    return ExportResult(out, fmt, len(data), diff, len(images))


def export_target(path: Path, model: str | None = None) -> RunDir:
    """The run to export: ``path`` itself, or the run of ``model`` in a study directory."""
    runs = find_runs(path)
    if model is None and len(runs) == 1:
        return next(iter(runs.values()))
    names = {str(key): run for key, run in runs.items()}
    if model is None:
        raise LetterbenchError(f"{path} holds runs of {', '.join(names)}; choose one with --model NAME")
    for key, run in runs.items():  # a model's first seed by its seed: "resnet18 (seed 0)"
        if not key.seeded and model == f"{key.model} (seed {key.seed})":
            return run
    seeds = [name for key, name in zip(runs, names, strict=True) if key.model == model and key.seeded]
    if model not in names:
        raise LetterbenchError(f"{path} has no run of {model!r}; choose one of: {', '.join(names)}")
    if seeds:  # a model trained with several seeds: one file holds one of them, never silently
        first = next(key for key in runs if str(key) == model)
        every = [f"{model} (seed {first.seed})", *seeds]
        raise LetterbenchError(
            f"{path} holds {len(every)} seeds of {model} and an export holds one; choose it with "
            f"--model, quoted: {', '.join(repr(n) for n in every)}"
        )
    return names[model]
