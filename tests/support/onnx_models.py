"""Tiny ONNX image classifiers built with the `onnx` helper API, with fixed weights whose
answers are known: mean colour per channel → MatMul → Softmax, so a red image is "red"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = ("red", "green", "blue")


def color_classifier(
    *, batch: int | str = "N", size: int = 8, softmax: bool = True, layout: str = "NCHW"
) -> bytes:
    """Input (batch, 3, size, size) float32 in 0..1 (or NHWC); output (batch, 3) scores for
    LABELS. Without `softmax` the output is raw logits (the server applies one)."""
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    weights = numpy_helper.from_array((np.eye(3) * 10.0).astype(np.float32), "weights")
    nodes = []
    first = "pixels"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]))
        first = "nchw"
    nodes += [
        helper.make_node("GlobalAveragePool", [first], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["means"], axis=1),
        helper.make_node("MatMul", ["means", "weights"], ["logits"]),
    ]
    output = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
        output = "probabilities"
    graph = helper.make_graph(
        nodes,
        "color-classifier",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, 3])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime we allow
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_classifier(directory: Path, **options) -> tuple[Path, Path]:
    """The model and its labels file, written to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / "colors.onnx"
    labels_path = directory / "labels.txt"
    model_path.write_bytes(color_classifier(**options))
    labels_path.write_text("\n".join(LABELS) + "\n")
    return model_path, labels_path
