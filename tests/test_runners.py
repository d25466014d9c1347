"""Runners without a server: the colour model's arithmetic and ONNX classifiers."""

from __future__ import annotations

import pytest
from PIL import Image

from scopegate.runners.base import RunnerError
from scopegate.runners.colors import ColorRunner, dominant_colors, nearest_named
from scopegate.runners.onnx_classifier import OnnxClassifier, parse_labels
from scopegate.runners.w3c import NAMED_COLORS
from scopegate.services import model_registry
from tests.support.onnx_models import LABELS, color_classifier

LABELS_TEXT = "\n".join(LABELS) + "\n"


def striped(parts: list[tuple[tuple[int, int, int], int]], height: int = 10) -> Image.Image:
    """Vertical bands: (colour, width) each."""
    image = Image.new("RGB", (sum(w for _, w in parts), height))
    x = 0
    for color, width in parts:
        image.paste(color, (x, 0, x + width, height))
        x += width
    return image


def test_named_colours_map_to_themselves():
    for name, value in NAMED_COLORS.items():
        rgb = tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))
        assert nearest_named(rgb) == name


def test_dominant_colours_have_densities_and_names():
    image = striped([((255, 0, 0), 70), ((0, 0, 255), 30)])
    colors = dominant_colors(image)
    assert [(c.w3c_name, c.w3c_hex, c.raw_hex) for c in colors] == [
        ("Red", "#ff0000", "#ff0000"),
        ("Blue", "#0000ff", "#0000ff"),
    ]
    assert colors[0].value == pytest.approx(0.7, abs=0.02)
    assert colors[1].value == pytest.approx(0.3, abs=0.02)


def test_off_palette_colour_keeps_its_raw_hex():
    (color,) = dominant_colors(Image.new("RGB", (20, 20), (200, 30, 30)))
    assert color.raw_hex == "#c81e1e" and color.value == 1.0
    assert color.w3c_name == nearest_named((200, 30, 30))
    assert color.w3c_hex == NAMED_COLORS[color.w3c_name]


def test_tiny_shares_are_left_out_and_runner_answers_per_image():
    image = striped([((0, 128, 0), 995), ((255, 255, 0), 5)])
    predictions = ColorRunner().predict([image, Image.new("L", (3, 3), 255)])
    assert [c.w3c_name for c in predictions[0].colors] == ["Green"]
    assert [c.w3c_name for c in predictions[1].colors] == ["White"]


@pytest.mark.parametrize(
    "options",
    [{}, {"batch": 1}, {"softmax": False}, {"layout": "NHWC"}],
    ids=["dynamic-batch", "fixed-batch", "logits", "nhwc"],
)
def test_onnx_classifier_answers_its_real_outputs(options):
    weights = model_registry.prepare_weights(color_classifier(**options), LABELS_TEXT)
    assert (weights.preprocessing.height, weights.preprocessing.width) == (8, 8)
    classifier = OnnxClassifier.load(weights.onnx, weights.labels, weights.preprocessing)
    images = [
        Image.new("RGB", (40, 30), (250, 10, 10)),
        Image.new("RGB", (5, 5), (0, 0, 200)),
        Image.new("RGB", (9, 9), (20, 220, 20)),
    ]
    predictions = classifier.predict(images)
    assert [p.concepts[0].id for p in predictions] == ["red", "blue", "green"]
    for prediction in predictions:
        values = [c.value for c in prediction.concepts]
        assert values == sorted(values, reverse=True)
        assert sum(values) == pytest.approx(1.0, abs=1e-4)  # a softmax, applied if missing
        assert values[0] > 0.99


def test_labels_parse_with_ids_and_unicode():
    labels = parse_labels("Red Car\n\nid-7\tÉtoile filante\nred car\n")
    assert [(label.id, label.name) for label in labels] == [
        ("red-car", "Red Car"),
        ("id-7", "Étoile filante"),
        ("red-car-2", "red car"),
    ]


@pytest.mark.parametrize(
    ("onnx_bytes", "labels", "kwargs", "message"),
    [
        (b"not a model", LABELS_TEXT, {}, "cannot load"),
        (None, "red\ngreen\n", {}, "3 scores per image but has 2 labels"),
        (None, "", {}, "no labels"),
        (None, LABELS_TEXT, {"input_size": (16, 16)}, "does not match"),
        (None, LABELS_TEXT, {"std": (1.0, 0.0, 1.0)}, "must not be 0"),
    ],
    ids=["garbage", "label-count", "no-labels", "input-size", "zero-std"],
)
def test_bad_weights_fail_at_registration(onnx_bytes, labels, kwargs, message):
    with pytest.raises(RunnerError, match=message):
        model_registry.prepare_weights(onnx_bytes or color_classifier(), labels, **kwargs)
