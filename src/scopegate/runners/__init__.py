"""Model runners: what answers PostModelOutputs.

A runner takes decoded images and returns one `Prediction` per image (`base.Runner`).
`registry` maps model types to runners: the built-in colour model (`colors`) and image
classifiers served by onnxruntime from registered weights (`onnx_classifier`). Imports
store/ (registered weights) only.
"""
