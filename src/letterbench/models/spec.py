"""What a model expects as input, without importing torch (the command line's parser reads the
registry, and ``--help`` must not wait for torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Pixel statistics of the EMNIST Letters train set (mean 44.06, std 84.53 of 255).
EMNIST_MEAN, EMNIST_STD = 0.1728, 0.3315


@dataclass(frozen=True)
class InputSpec:
    """The input a model expects: channels, square size, per-channel normalisation (on 0..1 pixels)."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def describe(self) -> str:
        return f"{self.channels}x{self.size}x{self.size}"

    def to_dict(self) -> dict:
        return asdict(self)
