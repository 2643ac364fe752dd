"""Detectors on onnxruntime and the model registry."""
