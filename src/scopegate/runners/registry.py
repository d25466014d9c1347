"""Which runner answers for a model version: by model type, loaded once per process.

Versions are immutable, so a runner loaded for a version is cached by its primary key and
never goes stale; new weights make a new version. At most `capacity` classifiers stay
loaded (least recently used leaves first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Engine

from scopegate.runners.base import Runner, RunnerError
from scopegate.store import models as model_store
from scopegate.store.records import ModelVersionRecord

COLOR_RECOGNIZER = "color-recognizer"
VISUAL_CLASSIFIER = "visual-classifier"


@dataclass(frozen=True, slots=True)
class ModelType:
    id: str
    description: str
    # Built in: PostModels makes a trained version at once. Otherwise weights are
    # registered with `scopegate models register`.
    builtin: bool
    # As Clarifai's ListModelTypes describes the type: the data fields it reads and answers.
    title: str = ""
    input_fields: tuple[str, ...] = ("image",)
    output_fields: tuple[str, ...] = ()
    # What one image's answer is to the clarifai SDK's method signatures: a list of
    # "concept" (data.concepts) or of "json" (one data.parts[k].data.struct_value each).
    output_item: str = "concept"


MODEL_TYPES: dict[str, ModelType] = {
    COLOR_RECOGNIZER: ModelType(
        COLOR_RECOGNIZER,
        "Dominant colours of an image, named after the W3C colours.",
        True,
        title="Color Recognizer",
        output_fields=("colors",),
        output_item="json",
    ),
    VISUAL_CLASSIFIER: ModelType(
        VISUAL_CLASSIFIER,
        "An image classifier served by onnxruntime from registered ONNX weights and labels.",
        False,
        title="Visual Classifier",
        output_fields=("concepts",),
    ),
}


@cache
def _colors() -> Runner:
    # Imported on first use: NumPy and Pillow would add a fifth of a second to every CLI
    # command and server start.
    from scopegate.runners.colors import ColorRunner

    return ColorRunner()


class RunnerPool:
    def __init__(self, engine: Engine, capacity: int = 4) -> None:
        self._engine = engine
        self._capacity = capacity
        self._loaded: OrderedDict[int, Runner] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}

    def runner(self, model_type_id: str, version: ModelVersionRecord) -> Runner:
        if model_type_id == COLOR_RECOGNIZER:
            return _colors()
        if model_type_id != VISUAL_CLASSIFIER:
            raise RunnerError(f"No runner serves models of type '{model_type_id}'.")
        with self._lock:
            cached = self._loaded.get(version.pk)
            if cached is not None:
                self._loaded.move_to_end(version.pk)
                return cached
            loading = self._loading.setdefault(version.pk, threading.Lock())
        with loading:  # one thread loads a version; others wait for it
            with self._lock:
                cached = self._loaded.get(version.pk)
            if cached is None:
                cached = self._load(version)
                with self._lock:
                    self._loaded[version.pk] = cached
                    while len(self._loaded) > self._capacity:
                        self._loaded.popitem(last=False)
            with self._lock:
                self._loading.pop(version.pk, None)
        return cached

    def _load(self, version: ModelVersionRecord) -> Runner:
        from scopegate.runners.onnx_classifier import Label, OnnxClassifier, Preprocessing

        with self._engine.connect() as conn:
            weights = model_store.load_weights(conn, version.pk)
        if weights is None:
            raise RunnerError(f"Model version {version.version_id} has no weights stored.")
        labels = [Label(ident, name) for ident, name in weights.labels]
        return OnnxClassifier.load(
            weights.weights, labels, Preprocessing.from_json(weights.preprocessing)
        )
