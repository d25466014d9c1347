"""Image classifiers served by onnxruntime from weights a user registers.

Preprocessing, the same for every image (so a model must be exported to expect it):

1. convert to RGB and resize to the input size, whole image, bilinear (no crop);
2. scale pixels to float32 in 0..1, then subtract `mean` and divide by `std` per channel
   (defaults 0 and 1: no normalization; ImageNet models want
   mean 0.485,0.456,0.406 and std 0.229,0.224,0.225);
3. lay out as NCHW (or NHWC when the model's input has 3 as its last dimension).

The first output must be (batch, number of labels). Rows that are not already
probabilities (a value outside 0..1, or a row not summing to 1) get a softmax. Concepts
come back sorted by value, highest first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import onnxruntime as ort
from PIL import Image

from scopegate.runners.base import Prediction, RunnerError
from scopegate.store.concepts import ConceptValue

DEFAULT_INPUT_SIZE = 224
MAX_LABELS = 100_000


@dataclass(frozen=True, slots=True)
class Preprocessing:
    height: int = DEFAULT_INPUT_SIZE
    width: int = DEFAULT_INPUT_SIZE
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "NCHW"  # or "NHWC"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        data = json.loads(text or "{}")
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Label:
    id: str
    name: str


def concept_id(name: str) -> str:
    """A label's concept id: lowercase, runs of other characters as '-'."""
    slug = re.sub(r"[^0-9a-z]+", "-", name.strip().lower()).strip("-")
    return slug or "concept"


def parse_labels(text: str) -> list[Label]:
    """One label per line, in output order; blank lines ignored. `id<TAB>name` sets the id."""
    labels: list[Label] = []
    seen: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if "\t" in line:
            given, name = (part.strip() for part in line.split("\t", 1))
            ident = given or concept_id(name)
        else:
            name, ident = line, concept_id(line)
        if ident in seen:  # two names with one slug: keep both, apart
            ident = f"{ident}-{len(labels)}"
        seen.add(ident)
        labels.append(Label(ident, name))
    if not labels:
        raise RunnerError("The labels file has no labels: give one label per line.")
    if len(labels) > MAX_LABELS:
        raise RunnerError(f"The labels file has more than {MAX_LABELS} labels.")
    return labels


def _session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One thread per session: requests already run side by side in worker threads, and
    # the machine is shared with the rest of the server.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RunnerError(f"onnxruntime cannot load the model: {exc}") from None


def _is_probability_rows(scores: np.ndarray) -> bool:
    return bool(
        np.all(scores >= 0) and np.all(scores <= 1) and np.allclose(scores.sum(axis=1), 1, 1e-3)
    )


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@dataclass
class OnnxClassifier:
    """A loaded classifier; `onnxruntime` sessions are safe to run from several threads."""

    labels: list[Label]
    preprocessing: Preprocessing
    session: ort.InferenceSession = field(repr=False)
    input_name: str = ""
    fixed_batch: bool = False

    @classmethod
    def load(cls, onnx_bytes: bytes, labels: list[Label], preprocessing: Preprocessing):
        session = _session(onnx_bytes)
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise RunnerError(f"The model has {len(inputs)} inputs; an image classifier has one.")
        shape = inputs[0].shape
        if len(shape) != 4:
            raise RunnerError(f"The model's input has shape {shape}; expected 4 dimensions.")
        return cls(
            labels=labels,
            preprocessing=preprocessing,
            session=session,
            input_name=inputs[0].name,
            fixed_batch=shape[0] == 1,
        )

    def tensor(self, images: Sequence[Image.Image]) -> np.ndarray:
        p = self.preprocessing
        mean = np.array(p.mean, dtype=np.float32)
        std = np.array(p.std, dtype=np.float32)
        batch = []
        for image in images:
            resized = image.convert("RGB").resize((p.width, p.height), Image.Resampling.BILINEAR)
            pixels = (np.asarray(resized, dtype=np.float32) / 255.0 - mean) / std
            batch.append(pixels if p.layout == "NHWC" else pixels.transpose(2, 0, 1))
        return np.stack(batch).astype(np.float32)

    def scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(images, labels) probabilities."""
        groups = [[image] for image in images] if self.fixed_batch else [list(images)]
        rows = []
        for group in groups:
            try:
                out = self.session.run(None, {self.input_name: self.tensor(group)})[0]
            except Exception as exc:
                raise RunnerError(f"The model failed to run: {exc}") from None
            out = np.asarray(out, dtype=np.float64).reshape(len(group), -1)
            if out.shape[1] != len(self.labels):
                raise RunnerError(
                    f"The model outputs {out.shape[1]} scores per image but has "
                    f"{len(self.labels)} labels."
                )
            rows.append(out if _is_probability_rows(out) else _softmax(out))
        return np.concatenate(rows)

    def predict(self, images: Sequence[Image.Image]) -> list[Prediction]:
        predictions = []
        for row in self.scores(images):
            order = np.argsort(-row, kind="stable")
            predictions.append(
                Prediction(
                    concepts=tuple(
                        ConceptValue(self.labels[i].id, self.labels[i].name, float(row[i]))
                        for i in order
                    )
                )
            )
        return predictions


def layout_of(onnx_bytes: bytes) -> tuple[str, int | None, int | None]:
    """The layout and the static (height, width) the model's input declares, if any."""
    shape = _session(onnx_bytes).get_inputs()[0].shape
    if len(shape) != 4:
        raise RunnerError(f"The model's input has shape {shape}; expected 4 dimensions.")
    layout = "NHWC" if shape[3] == 3 and shape[1] != 3 else "NCHW"
    h, w = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    return layout, h if isinstance(h, int) else None, w if isinstance(w, int) else None


def check(onnx_bytes: bytes, labels: list[Label], preprocessing: Preprocessing) -> None:
    """Load the model and run it once on a grey image: registration fails early, here,
    rather than on a user's first predict."""
    classifier = OnnxClassifier.load(onnx_bytes, labels, preprocessing)
    classifier.scores([Image.new("RGB", (preprocessing.width, preprocessing.height), "gray")])
