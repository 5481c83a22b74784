"""Predictions on a user's own images of single handwritten letters.

Preprocessing follows how EMNIST was made from NIST's scans (Cohen et al., 2017): ink made
white on black, a light Gaussian blur, the letter cropped to its bounding box, centred in a
square frame that keeps its aspect ratio, a 2-pixel margin, and a resize to 28x28.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, PngImagePlugin, UnidentifiedImageError

from letterbench.errors import LetterbenchError
from letterbench.fsutil import atomic_save, ensure_folder
from letterbench.rundir import RunDir, find_runs, model_of
from letterbench.runtime import Runtime

INK_THRESHOLD = 0.25  # of the ink's full contrast: what counts as ink for the bounding box
MIN_CONTRAST = 0.08  # below this (on 0..1) the image holds no letter


@dataclass
class Prepared:
    path: Path
    image: np.ndarray | None  # uint8 28x28, ink bright on black, upright
    error: str | None = None


def _full_scale(values: np.ndarray) -> np.ndarray:
    """A single-channel image of any depth on 0..1, by the range its values live in: 0..1 (float),
    0..255, 0..65535 or 0..2**32-1; not by the data's own min and max, so that a faint image stays
    faint and a blank one stays blank."""
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("non-finite pixel values (NaN or infinity)")
    values = values - min(0.0, float(values.min()))
    top = float(values.max())
    for full in (1.0, 255.0, 65535.0, 4294967295.0):
        if top <= full:
            return (values / full).astype(np.float32)
    return (values / top).astype(np.float32)


def _to_gray(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):  # 16/32-bit integer or float pixels
        return _full_scale(np.asarray(img))
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent = paper
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def emnist_like(gray: np.ndarray) -> np.ndarray:
    """A grayscale image (0..1, any size, either polarity) -> uint8 28x28 as EMNIST draws letters."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark ink on light paper: make the ink bright
        gray = 1.0 - gray
        border = 1.0 - border
    background = float(np.median(border))
    ink = np.clip(gray - background, 0, None)
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        raise LetterbenchError("the image is blank (no ink found)")
    ink /= contrast
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    side = max(crop.shape)
    square = np.zeros((side, side), np.float32)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    img = Image.fromarray((square * 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(radius=max(0.5, side / 64)))  # EMNIST's sigma-1 blur at 128 px
    img = img.resize((24, 24), Image.Resampling.LANCZOS)
    out = np.zeros((28, 28), np.float32)
    out[2:26, 2:26] = np.asarray(img, dtype=np.float32)
    peak = out.max()
    return (out * (255.0 / peak)).clip(0, 255).astype(np.uint8) if peak > 0 else out.astype(np.uint8)


def prepare_file(path: Path) -> Prepared:
    try:
        with Image.open(path) as img:
            img.load()
            gray = _to_gray(img)
    except FileNotFoundError:
        return Prepared(path, None, "no such file")
    except UnidentifiedImageError:
        return Prepared(path, None, "not an image PIL can read")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return Prepared(path, None, f"unreadable image ({exc})")
    try:
        return Prepared(path, emnist_like(gray))
    except LetterbenchError as exc:
        return Prepared(path, None, str(exc))


def top_k(probs: torch.Tensor, class_names: list[str], k: int = 3) -> list[tuple[str, float]]:
    values, indices = probs.topk(min(k, len(class_names)))
    return [(class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


def choose_runs(path: Path, model: str | None, ensemble: bool) -> dict[str, RunDir]:
    """The runs to predict with: one run directory, or a study's models chosen by name / all."""
    runs = find_runs(path)
    if ensemble:
        return runs
    if model:  # every seed of it, averaged
        chosen = {k: run for k, run in runs.items() if model_of(k) == model}
        if not chosen:
            raise LetterbenchError(f"{path} has no run of {model}; it has {', '.join(runs)}")
        return chosen
    if len(runs) == 1:
        return runs
    if len({model_of(k) for k in runs}) == 1:  # one model, several seeds
        return runs
    raise LetterbenchError(f"{path} holds {', '.join(runs)}: choose one with --model NAME, or --ensemble")


def predict_files(paths: list[Path], runs: dict[str, RunDir], runtime: Runtime) -> list[dict]:
    """One record per file, in order: ``file``, ``top3`` (letter, probability) of the mean of the
    models' probabilities (a model's seeds averaged first), and the 28x28 ``input`` they saw; or
    ``file`` and ``error``."""
    from letterbench.evaluation import predict_probs

    loaded = [run.load_trained_model() for run in runs.values()]
    class_names = loaded[0][1]
    if any(names != class_names for _, names in loaded):
        raise LetterbenchError(
            "the chosen models were trained on different classes; they cannot be ensembled"
        )
    prepared = [prepare_file(Path(p)) for p in paths]
    good = [p for p in prepared if p.image is not None]
    if good:
        batch = torch.from_numpy(np.stack([p.image for p in good]))
        each = [predict_probs(model, batch, runtime) for model, _ in loaded]
        models: dict[str, list[torch.Tensor]] = {}  # a model's seeds first, so each model weighs the same
        for name, p in zip(runs, each, strict=True):
            models.setdefault(model_of(name), []).append(p)
        probs = torch.stack([torch.stack(seeds).mean(0) for seeds in models.values()]).mean(0)
    records, row = [], 0
    for item in prepared:
        if item.image is None:
            records.append({"file": str(item.path), "error": item.error})
            continue
        top = top_k(probs[row], class_names)
        row += 1
        records.append({"file": str(item.path), "top3": top, "input": item.image})
    return records


def records_json(records: list[dict], models: list[str]) -> dict:
    """What `predict --json` prints: the models, and per file its top 3 or its error."""
    out = [
        {"file": r["file"], "error": r["error"]}
        if "error" in r
        else {"file": r["file"], "top3": [{"letter": c, "probability": p} for c, p in r["top3"]]}
        for r in records
    ]
    return {"models": models, "predictions": out}


INPUT_MARK = "letterbench input"  # PNG text chunk: an input image letterbench saved


def _saved_by_us(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return img.info.get("Software") == INPUT_MARK
    except (OSError, ValueError):
        return False


def input_names(paths: list[Path]) -> list[str]:
    """A distinct name per input: its stem, with as many parent folders as it takes to tell two
    inputs apart (``x/letter.png`` and ``y/letter.jpg`` -> ``x-letter``, ``y-letter``)."""
    names = [p.stem for p in paths]
    for depth in range(1, max((len(p.parts) for p in paths), default=1)):
        clashing = {n for n in names if names.count(n) > 1}
        if not clashing:
            break
        names = [
            "-".join([*p.parent.parts[-depth:], p.stem]).lstrip("/") if n in clashing else n
            for p, n in zip(paths, names, strict=True)
        ]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # the very same file named twice
        seen[n] = seen.get(n, 0) + 1
        names[i] = n if seen[n] == 1 else f"{n}-{seen[n]}"
    return names


def save_inputs(records: list[dict], folder: Path) -> list[Path]:
    """Save the 28x28 image each model saw as ``<folder>/<name>.input.png``. An earlier input image
    of letterbench's is replaced; any other file of that name is kept and the new one gets a
    numbered name beside it."""
    ensure_folder(folder, "--show-input")
    good = [r for r in records if "input" in r]
    saved = []
    for record, name in zip(good, input_names([Path(r["file"]) for r in good]), strict=True):
        target, n = folder / f"{name}.input.png", 2
        while target.exists() and not _saved_by_us(target):
            target, n = folder / f"{name}-{n}.input.png", n + 1
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", INPUT_MARK)
        atomic_save(
            target, lambda f, r=record, i=info: Image.fromarray(r["input"]).save(f, format="PNG", pnginfo=i)
        )
        saved.append(target)
    return saved
