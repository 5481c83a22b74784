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

import importlib
import io
import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from letterbench import __version__
from letterbench.apps.predict import Scorer
from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import atomic_write_bytes
from letterbench.evaluation.calibration import checked_temperature, run_temperature, softmax
from letterbench.models import LetterModel
from letterbench.runs.rundir import RunDir
from letterbench.runs.studydir import find_runs

FORMATS = ("onnx", "torchscript")
MARK, FORMAT = "letterbench", "letterbench-export-1"  # the metadata entry that says "ours"
META_FILE = "letterbench.json"  # TorchScript's extra file holding the metadata
INPUT, OUTPUT = "images", "logits"
IMAGE_SIZE = 28  # what letterbench.images.letters prepares, and EMNIST's size
PARITY_LIMIT = 1e-4  # max |p_exported - p_torch| the exported file may show
PARITY_IMAGES = 256
BATCH = 256
INSTALL = "pip install 'letterbench[export]'"


@dataclass
class ExportResult:
    path: Path
    format: str
    size_bytes: int
    max_diff: float  # max |p_exported - p_torch| over the check's images (calibrated probabilities)
    images: int


def _require(module: str, what: str):
    """An optional dependency, or an error that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise LetterbenchError(
            f"{what} needs the Python package {module}, not installed here; {INSTALL}"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


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


def export_metadata(run: RunDir, model: LetterModel, class_names: list[str]) -> dict[str, str]:
    """What the file says about itself (strings, as ONNX ``metadata_props`` hold them)."""
    spec, config = model.spec, run.read_config()
    return {
        MARK: FORMAT,
        "letterbench_version": __version__,
        "model": model.name,
        "seed": str(config["seed"]),
        "split": config["data"]["split"],
        "class_names": json.dumps(class_names),
        "temperature": repr(run_temperature(run) or 1.0),
        "input_size": str(spec.size),
        "input_channels": str(spec.channels),
        "mean": json.dumps(list(spec.mean)),
        "std": json.dumps(list(spec.std)),
        "input": f"{INPUT}: uint8 (batch, 28, 28), one letter per image, light ink on black, upright: "
        "EMNIST's format, as letterbench.images.letters.prepare_file makes it from a photo or scan. The graph "
        f"itself divides by 255, resizes bilinearly to {spec.size}x{spec.size} (pixel centres aligned, "
        f"zero outside the image: letterbench's Preprocess), repeats to {spec.channels} channel(s) and "
        "normalises (x - mean) / std with the mean and std given here",
        "output": f"{OUTPUT}: float32 (batch, {len(class_names)}) in the order of class_names; calibrated "
        "probabilities are softmax(logits / temperature)",
    }


# ---------------------------------------------------------------- writing


def _onnx_bytes(module: ExportedModel, meta: dict[str, str]) -> bytes:
    _require("onnx", "ONNX export")
    _require("onnxscript", "ONNX export")
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
            f"{meta['model']} could not be exported to ONNX ({type(exc).__name__}: {_first_line(exc)}); "
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


def exported_by_us(path: Path) -> bool:
    """Whether ``path`` is a file `letterbench export` wrote (either format)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(f"/extra/{META_FILE}")]
                return any(json.loads(archive.read(n)).get(MARK) == FORMAT for n in names)
        try:
            import onnx
        except ImportError:  # without onnx nothing of ours in this format can be told apart: not ours
            return False
        proto = onnx.load(str(path), load_external_data=False)
        return any(p.key == MARK and p.value == FORMAT for p in proto.metadata_props)
    except LetterbenchError:
        raise
    except Exception:  # unreadable, or not a model at all (protobuf's own errors): not ours
        return False


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
        test = run.load_data(data_dir, run.read_config()).test_images
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
    from letterbench.evaluation.evaluate import predict_logits
    from letterbench.runs.runtime import Runtime

    if fmt not in FORMATS:
        raise LetterbenchError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    _check_target(out)
    model, class_names = run.load_trained_model()
    images = parity_images(run, data_dir)  # before the slow part: a missing data folder fails fast
    meta = export_metadata(run, model, class_names)
    module = ExportedModel(model).eval()
    data = _onnx_bytes(module, meta) if fmt == "onnx" else _torchscript_bytes(module, meta)
    scorer = _onnx_scorer(data, str(out)) if fmt == "onnx" else _torchscript_scorer(data, str(out))
    reference = predict_logits(model, torch.from_numpy(images), Runtime.create("cpu")).numpy()
    diff = float(np.abs(scorer.probabilities(images) - softmax(reference, scorer.temperature)).max())
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
    if model is None:
        raise LetterbenchError(f"{path} holds runs of {', '.join(runs)}; choose one with --model NAME")
    if model not in runs:
        raise LetterbenchError(f"{path} has no run of {model!r}; choose one of: {', '.join(runs)}")
    return runs[model]


# ---------------------------------------------------------------- reading


def _scorer(meta: dict[str, str], run_batch, where: str) -> Scorer:
    """A Scorer over ``run_batch`` (uint8 (n, 28, 28) -> logits) from the file's metadata."""
    if meta.get(MARK) != FORMAT:
        raise LetterbenchError(
            f"{where}: a model without letterbench's metadata (not written by `letterbench export`); "
            "export a trained run with `letterbench export --run DIR`"
        )
    try:
        class_names = json.loads(meta["class_names"])
        temperature = checked_temperature(meta["temperature"], where, "export it again")
        name = meta["model"]
        if not (isinstance(class_names, list) and len(class_names) >= 2):
            raise ValueError("class_names is not a list of two or more names")
        if not all(isinstance(c, str) and c for c in class_names):
            raise ValueError("class_names holds something other than names")
        if len(set(class_names)) != len(class_names) or not all(
            c.isprintable() and "<" not in c for c in class_names
        ):
            raise ValueError("class_names are not distinct plain names")
    except (KeyError, ValueError) as exc:
        raise LetterbenchError(f"{where}: damaged letterbench metadata ({exc}); export it again") from None

    def logits(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or not len(images):
            raise LetterbenchError(f"expected uint8 images (N, 28, 28), got shape {images.shape}")
        images = np.ascontiguousarray(images, dtype=np.uint8)
        try:
            batches = [run_batch(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
        except Exception as exc:  # the runtime's own errors: a graph that does not fit its metadata
            raise LetterbenchError(
                f"{where}: the model failed to run ({_first_line(exc)}); export it again"
            ) from None
        out = np.concatenate(batches).astype(np.float32)
        if out.shape != (len(images), len(class_names)):
            raise LetterbenchError(
                f"{where}: the model gives {out.shape[1:]} outputs per image for {len(class_names)} "
                "class names; export it again"
            )
        return out

    return Scorer(name, class_names, temperature, logits)


def onnx_providers(device: str, available: list[str]) -> list:
    """ONNX Runtime's execution providers for ``--device``: CUDA first where asked for (or, with
    "auto", where this ONNX Runtime has it), the CPU otherwise."""
    cuda = "CUDAExecutionProvider"
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda") and cuda not in available:
        raise LetterbenchError(
            f"--device {device}: this ONNX Runtime has no CUDA provider (it has {', '.join(available)}); "
            "install onnxruntime-gpu, or pass --device cpu"
        )
    if device.startswith("cuda:") and device[5:].isdigit():
        return [(cuda, {"device_id": int(device[5:])}), "CPUExecutionProvider"]
    if device == "cuda" or (device == "auto" and cuda in available):
        return [cuda, "CPUExecutionProvider"]
    if device != "auto":
        raise LetterbenchError(f"--device {device}: an ONNX file runs on cpu or cuda; pass --device cpu")
    return ["CPUExecutionProvider"]


def _onnx_scorer(source: str | bytes, where: str, device: str = "cpu") -> Scorer:
    ort = _require("onnxruntime", "running an ONNX model")
    providers = onnx_providers(device, ort.get_available_providers())
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # ONNX Runtime's own error types for unreadable files
        raise LetterbenchError(
            f"{where}: not an ONNX model ONNX Runtime can load ({_first_line(exc)}); "
            "pass a file written by `letterbench export --format onnx`"
        ) from None
    name = session.get_inputs()[0].name
    return _scorer(
        dict(session.get_modelmeta().custom_metadata_map),
        lambda batch: session.run(None, {name: batch})[0],
        where,
    )


def onnx_scorer(path: Path, device: str = "cpu") -> Scorer:
    """A Scorer running an exported ONNX file with ONNX Runtime on ``device`` (``onnx_providers``)."""
    path = Path(path)
    if not path.is_file():
        raise LetterbenchError(
            f"{path}: no such file; pass an ONNX file written by `letterbench export --format onnx`"
        )
    if zipfile.is_zipfile(path):  # TorchScript and PyTorch files are zip archives; ONNX files are not
        raise LetterbenchError(
            f"{path}: a PyTorch or TorchScript file, not ONNX; --onnx takes the file "
            "`letterbench export --format onnx` writes (load a TorchScript export with torch.jit.load)"
        )
    return _onnx_scorer(str(path), str(path), device)


def _torchscript_scorer(data: bytes, where: str) -> Scorer:
    extra = {META_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    meta = json.loads(extra[META_FILE] or "{}")

    def run_batch(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).numpy()

    return _scorer(meta, run_batch, where)
