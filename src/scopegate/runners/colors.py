"""The built-in `color-recognition` model: an image's dominant colours, from its pixels.

The image is shrunk to at most 128x128 (densities are shares, so this changes little),
quantized to 16 colours by median cut, and each palette colour is mapped to the nearest
W3C named colour by distance in CIELAB (closer to how people judge colour difference than
RGB). Palette colours with the same name are merged: `value` is the share of pixels, and
`raw_hex` their pixel-weighted mean. Colours under 1% of the image are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from scopegate.runners.base import Color, Prediction
from scopegate.runners.w3c import NAMED_COLORS

PALETTE_SIZE = 16
MIN_DENSITY = 0.01
THUMBNAIL = (128, 128)


def _hex_to_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _rgb_to_hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (…, 3) in 0..255 → CIELAB under D65."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


_NAMES = list(NAMED_COLORS)
_LAB = rgb_to_lab(np.array([_hex_to_rgb(NAMED_COLORS[n]) for n in _NAMES]))


def nearest_named(rgb: Sequence[float]) -> str:
    """The W3C name whose colour is nearest to `rgb` in CIELAB."""
    distances = np.sum((_LAB - rgb_to_lab(np.asarray(rgb, dtype=np.float64))) ** 2, axis=1)
    return _NAMES[int(np.argmin(distances))]


def dominant_colors(image: Image.Image) -> list[Color]:
    small = image.convert("RGB")
    small.thumbnail(THUMBNAIL)
    quantized = small.quantize(colors=PALETTE_SIZE, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    total = small.width * small.height
    groups: dict[str, list] = {}  # name -> [pixel count, weighted rgb sum]
    for count, index in quantized.getcolors(PALETTE_SIZE) or []:
        rgb = np.array(palette[3 * index : 3 * index + 3], dtype=np.float64)
        group = groups.setdefault(nearest_named(rgb), [0, np.zeros(3)])
        group[0] += count
        group[1] += count * rgb
    colors = [
        Color(
            raw_hex=_rgb_to_hex(weighted / count),
            w3c_hex=NAMED_COLORS[name],
            w3c_name=name,
            value=count / total,
        )
        for name, (count, weighted) in groups.items()
        if count / total >= MIN_DENSITY
    ]
    return sorted(colors, key=lambda c: c.value, reverse=True)


class ColorRunner:
    """Stateless: one instance serves every colour model."""

    def predict(self, images: Sequence[Image.Image]) -> list[Prediction]:
        return [Prediction(colors=tuple(dominant_colors(image))) for image in images]
