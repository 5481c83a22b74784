"""What a recipe's augmentation may ask for, with ranges and defaults (its ``[augment]`` table):
the affine changes (rotation, zoom, shift, flip, slant) and the changes of the strokes' look
(thickness, blur, contrast, elastic distortion) that ``transforms`` draws per image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(ge=0, lt=1)]

AFFINE_KEYS = ("rotate", "zoom", "shift", "flip", "shear")
# What a pen and a camera change: stroke thickness (pixels of dilation or erosion, +/-), blur
# (share of a sigma-1 blur, 0..), contrast (gamma in 1/(1+c)..1+c) and elastic distortion
# (random displacements at 4x4 control points, as a share of the image's half-width).
STYLE_KEYS = ("thickness", "blur", "contrast", "elastic")


class Augment(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    rotate: Annotated[float, Field(ge=0, le=180)] = 0.0  # degrees, +/-
    zoom: Fraction = 0.0
    shift: Annotated[float, Field(ge=0, le=0.5)] = 0.0  # share of the width, +/-
    flip: bool = False
    shear: Annotated[float, Field(ge=0, le=1)] = 0.0  # horizontal shear (slant), tan of the lean, +/-
    thickness: Annotated[float, Field(ge=0, le=2)] = 0.0  # pixels of dilation/erosion, +/-
    blur: Annotated[float, Field(ge=0, le=1)] = 0.0  # share of a sigma-1 blur, 0..blur
    contrast: Annotated[float, Field(ge=0, le=3)] = 0.0  # gamma in 1/(1+c) .. 1+c
    elastic: Annotated[float, Field(ge=0, le=0.3)] = 0.0  # control-point displacement, share of half-width

    @classmethod
    def of(cls, value: Augment | Mapping[str, Any] | None) -> Augment:
        """``value`` as an Augment (a recipe's table, or None: no augmentation)."""
        return value if isinstance(value, Augment) else cls.model_validate(dict(value or {}))

    @property
    def changes(self) -> bool:
        """Whether it asks for any change at all."""
        return any(float(getattr(self, k)) for k in AFFINE_KEYS + STYLE_KEYS)

    @property
    def restyles(self) -> bool:
        """Whether it asks for a change of the strokes' look (``STYLE_KEYS``)."""
        return any(float(getattr(self, k)) for k in STYLE_KEYS)
