"""What a model runner is: images in, one prediction per image out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from scopegate.store.concepts import ConceptValue


@dataclass(frozen=True, slots=True)
class Color:
    raw_hex: str  # the colour found in the pixels, "#rrggbb"
    w3c_hex: str  # the nearest named W3C/CSS colour
    w3c_name: str
    value: float  # share of the image's pixels (density), 0..1


@dataclass(frozen=True, slots=True)
class Prediction:
    """One image's answer; a runner fills the field its model type produces."""

    concepts: tuple[ConceptValue, ...] = ()
    colors: tuple[Color, ...] = ()


class Runner(Protocol):
    """A loaded model. `predict` is blocking CPU work: call it from a worker thread."""

    def predict(self, images: Sequence[Image.Image]) -> list[Prediction]: ...


class RunnerError(Exception):
    """The model cannot answer (bad weights, wrong shapes): a message a person can act on."""
