"""Weights: ImageNet weights through timm's hub cache (with a fast offline check), and local
weights files loaded safely (safetensors or a PyTorch state dict, never pickled code)."""

from __future__ import annotations

import os
import pickle
import socket
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from letterbench.core.errors import WeightsError
from letterbench.models.base import LetterModel


class PretrainedUnavailable(WeightsError):
    """ImageNet weights were asked for and could not be had (offline, no cache)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # the short cause, for notes: "offline", "not in the hub", ...


@dataclass
class WeightsFit:
    """How a weights file's tensors line up with a model."""

    target: str  # "model" (a whole letterbench model) or "base" (e.g. ImageNet weights for the base)
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    misshaped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # the file's own classifier, replaced by our head

    @property
    def fits(self) -> bool:
        return bool(self.matched) and not (self.missing or self.unexpected or self.misshaped)

    def summary(self) -> str:
        def few(names: list[str]) -> str:
            return ", ".join(names[:3]) + (f", … (+{len(names) - 3})" if len(names) > 3 else "")

        lines = [
            f"{'fits' if self.fits else 'DOES NOT FIT'} (as weights for the {self.target}): "
            f"{len(self.matched)} tensors matched, {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {len(self.misshaped)} mis-shaped"
        ]
        for label, names in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped", self.misshaped),
            ("ignored (old classifier)", self.ignored),
        ):
            if names:
                lines.append(f"  {label}: {few(names)}")
        return "\n".join(lines)


def _weights_host(tag: str) -> str | None:
    import timm

    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import constants

        return urllib.parse.urlparse(constants.ENDPOINT).hostname
    return urllib.parse.urlparse(cfg.url).hostname if cfg.url else None


def _reachable(host: str, timeout: float = 5.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def timm_base(arch: str, pretrained: bool, **kwargs) -> nn.Module:
    import timm

    if not pretrained:
        return timm.create_model(arch, pretrained=False, num_classes=0, **kwargs)
    # The hub client retries an unreachable host for about a minute; when the weights are
    # not cached, one quick connection attempt tells whether that wait could help.
    host = _weights_host(arch)
    if not weights_cached_tag(arch) and host and not _reachable(host):
        raise PretrainedUnavailable(
            f"ImageNet weights for {arch} are not cached and {host} cannot be reached (offline?). "
            + _HOW_TO_GET_WEIGHTS.format(arch=arch),
            reason=f"{arch}: not cached, {host} unreachable",
        )
    try:
        return timm.create_model(arch, pretrained=True, num_classes=0, **kwargs)
    except Exception as exc:  # offline, hub errors, corrupt cache: all mean "no weights here"
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise PretrainedUnavailable(
            f"ImageNet weights for {arch} could not be loaded ({reason}). "
            + _HOW_TO_GET_WEIGHTS.format(arch=arch),
            reason=f"{arch}: {reason}",
        ) from None


_HOW_TO_GET_WEIGHTS = (
    'On a machine with internet, run `python -c "import timm, torch; '
    "torch.save(timm.create_model('{arch}', pretrained=True).state_dict(), 'weights.pth')\"` "
    "and pass --weights weights.pth, or use --pretrained auto to train from random initialisation"
)


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a PyTorch file, never executing pickled code."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path}: a folder, not a weights file; give a safetensors or state-dict file")
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path}: refused: the file holds pickled objects other than tensors, which could run code "
            f"({str(exc).splitlines()[0][:120]}); save a plain state_dict or safetensors file"
        ) from None
    except Exception as exc:  # truncated zip, bad safetensors header, not a torch file at all
        raise WeightsError(
            f"{path}: not a readable weights file ({type(exc).__name__}: {exc}"[:300] + ")"
        ) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a letterbench checkpoint
    elif isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return state


def _compare(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], target: str, ignore: str | None):
    fit = WeightsFit(target)
    for key, tensor in state.items():
        if ignore and (key == ignore or key.startswith(ignore + ".")):
            fit.ignored.append(key)
        elif key not in own:
            fit.unexpected.append(key)
        elif own[key].shape != tensor.shape:
            fit.misshaped.append(f"{key} {tuple(tensor.shape)} vs {tuple(own[key].shape)}")
        else:
            fit.matched.append(key)
    fit.missing = [key for key in own if key not in state]
    return fit


def check_weights(model: LetterModel, state: dict[str, torch.Tensor]) -> WeightsFit:
    """Compare a state dict with the whole model and with its base; return the better match."""
    whole = _compare(model.state_dict(), state, "model", None)
    base = _compare(model.base.state_dict(), state, "base", model.classifier_key)
    return whole if whole.fits or len(whole.matched) >= len(base.matched) else base


def load_weights(model: LetterModel, path: str | os.PathLike) -> WeightsFit:
    state = read_weights_file(path)
    fit = check_weights(model, state)
    if not fit.fits:
        raise WeightsError(f"{path} does not fit {model.name}: " + fit.summary().replace("\n", ";"))
    target = model if fit.target == "model" else model.base
    target.load_state_dict({k: v for k, v in state.items() if k in fit.matched}, strict=True)
    model.pretrained = f"file {path}" + (" (base only)" if fit.target == "base" else "")
    return fit


def weights_cached_tag(tag: str) -> bool | None:
    import timm

    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(cfg.hf_hub_id, filename), str):
                return True
    if cfg.url:
        return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)).is_file()
    return False
