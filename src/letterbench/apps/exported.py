"""The file `letterbench export` writes, as one format shared by the writer and the readers.

An exported model takes uint8 letters (batch, 28, 28), as ``letterbench.images.letters`` prepares
them, and returns logits (batch, C). What a user needs besides travels in the file: in ONNX
``metadata_props``, or in a TorchScript extra file (``META_FILE``), the same string entries
(``export_metadata``), marked as letterbench's by ``MARK`` = ``FORMAT``. The writer is
``letterbench.apps.export``; the readers here give a ``Scorer`` for ``predict --onnx``, ``serve``
and export's own parity check, refusing files that are not ours or whose metadata is damaged.

onnx and onnxruntime come with ``pip install 'letterbench[export]'``; they are imported only when
a file of that format is read.
"""

from __future__ import annotations

import importlib
import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from letterbench import __version__
from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import parse_device
from letterbench.evaluation.inference import (
    Scorer,
    answering_temperature,
    checked_temperature,
    softmax,
)
from letterbench.models import LetterModel
from letterbench.recipes import trained_on
from letterbench.runs.rundir import RunDir

MARK, FORMAT = "letterbench", "letterbench-export-1"  # the metadata entry that says "ours"
META_FILE = "letterbench.json"  # TorchScript's extra file holding the metadata
INPUT, OUTPUT = "images", "logits"
IMAGE_SIZE = 28  # what letterbench.images.letters prepares, and EMNIST's size
BATCH = 256
INSTALL = "pip install 'letterbench[export]'"


def require(module: str, what: str):
    """An optional dependency, or an error that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise LetterbenchError(
            f"{what} needs the Python package {module}, not installed here; {INSTALL}"
        ) from None


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# ---------------------------------------------------------------- what the file says about itself


def export_metadata(run: RunDir, model: LetterModel, class_names: list[str]) -> dict[str, str]:
    """What the file says about itself (strings, as ONNX ``metadata_props`` hold them)."""
    spec, config = model.spec, run.read_config()
    return {
        MARK: FORMAT,
        "letterbench_version": __version__,
        "model": model.name,
        "seed": str(config.seed),
        "split": config.data.split,
        "class_names": json.dumps(class_names),
        "temperature": repr(answering_temperature(run)),
        "trained_on": trained_on(config.recipe),
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


# ---------------------------------------------------------------- reading


def _scorer(meta: dict[str, str], run_batch, where: str) -> Scorer:
    """A Scorer over ``run_batch`` (uint8 (n, 28, 28) -> logits) from the file's metadata: its
    probabilities are softmax(logits / the file's temperature)."""
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

    def probabilities(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or not len(images):
            raise LetterbenchError(f"expected uint8 images (N, 28, 28), got shape {images.shape}")
        images = np.ascontiguousarray(images, dtype=np.uint8)
        try:
            batches = [run_batch(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
        except Exception as exc:  # the runtime's own errors: a graph that does not fit its metadata
            raise LetterbenchError(
                f"{where}: the model failed to run ({first_line(exc)}); export it again"
            ) from None
        out = np.concatenate(batches).astype(np.float32)
        if out.shape != (len(images), len(class_names)):
            raise LetterbenchError(
                f"{where}: the model gives {out.shape[1:]} outputs per image for {len(class_names)} "
                "class names; export it again"
            )
        return softmax(out, temperature)

    learned = meta.get("trained_on") or None  # files exported before it was recorded have none
    return Scorer(name, name, class_names, temperature, probabilities, learned)


def onnx_providers(device: str, available: list[str]) -> list:
    """ONNX Runtime's execution providers for ``--device``: CUDA first where asked for (or, with
    "auto", where this ONNX Runtime has it), the CPU otherwise."""
    cuda, cpu = "CUDAExecutionProvider", "CPUExecutionProvider"
    wanted = parse_device(device)
    if wanted is None:
        return [cuda, cpu] if cuda in available else [cpu]
    if wanted.type == "cpu":
        return [cpu]
    if wanted.type != "cuda":
        raise LetterbenchError(f"--device {device}: an ONNX file runs on cpu or cuda; pass --device cpu")
    if cuda not in available:
        raise LetterbenchError(
            f"--device {device}: this ONNX Runtime has no CUDA provider (it has {', '.join(available)}); "
            "install onnxruntime-gpu, or pass --device cpu"
        )
    return [cuda if wanted.index is None else (cuda, {"device_id": wanted.index}), cpu]


def onnx_bytes_scorer(source: str | bytes, where: str, device: str = "cpu") -> Scorer:
    ort = require("onnxruntime", "running an ONNX model")
    providers = onnx_providers(device, ort.get_available_providers())
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # ONNX Runtime's own error types for unreadable files
        raise LetterbenchError(
            f"{where}: not an ONNX model ONNX Runtime can load ({first_line(exc)}); "
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
    return onnx_bytes_scorer(str(path), str(path), device)


def torchscript_scorer(data: bytes, where: str) -> Scorer:
    extra = {META_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    meta = json.loads(extra[META_FILE] or "{}")

    def run_batch(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).numpy()

    return _scorer(meta, run_batch, where)
