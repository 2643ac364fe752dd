"""Make a YOLOX ONNX export take any batch size: the graph edit the trainer's export does.

Megvii's ``yolox_nano.onnx`` is exported with a fixed batch of 1: its input is
1x3x416x416 and the tail reshapes each head level to ``(1, 85, -1)``. The shared inference
engine batches requests across cameras only when the model's batch dimension is symbolic
(``Detector.dynamic_batch``), so a fixed export makes it call the model once per camera.

The edit changes no weight: each tail ``Reshape`` target gets ``0`` (copy the input's
batch dimension) where it had ``1``, and the graph's inputs and outputs get a symbolic
``batch`` first dimension. ``scripts/train_yolo.py`` applies the same edit after writing
trained weights back (it calls :func:`batch_agnostic`); this module is what it shares with
``scripts/export_dynamic_batch.py``, which applies it to a detector as published
(:func:`export`). ``yolox_nano_batch`` is not kept in the repository: it is made from the
mirror's ``yolox_nano.onnx`` by :func:`export`, byte for byte the file whose sha256 the
manifest holds.

Needs the ``onnx`` package (the ``train`` extra); the runtime never imports this module.
"""

from __future__ import annotations

from typing import Any


def batch_agnostic(model: Any, num_outputs: int | None = None) -> Any:
    """Edit ``model`` (an ``onnx.ModelProto``) in place to take any batch; return it.

    ``num_outputs`` is the per-anchor width (5 + classes) for a head with a different class
    count than the graph was exported with (the trainer's resized class convolutions).
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    edited = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits:
            continue
        init = inits[node.input[1]]
        shape = numpy_helper.to_array(init).copy()
        if shape.ndim != 1 or len(shape) != 3:
            continue  # only the (N, 5 + C, -1) head reshapes
        shape[0] = 0  # copy the batch dimension
        if num_outputs is not None:
            shape[1] = num_outputs
        init.CopyFrom(numpy_helper.from_array(shape, init.name))
        edited += 1
    if edited == 0:
        raise ValueError("no (N, 5 + C, -1) Reshape found: not a YOLOX raw-head export")
    for value in list(graph.input) + list(graph.output):
        dim0 = value.type.tensor_type.shape.dim[0]
        dim0.ClearField("dim_value")
        dim0.dim_param = "batch"
    if num_outputs is not None:
        graph.output[0].type.tensor_type.shape.dim[2].dim_value = num_outputs
    del graph.value_info[:]  # shapes inferred for batch 1 would contradict the edit
    onnx.checker.check_model(model)
    return model


def export(src: Any, dst: Any) -> None:
    """Write ``src`` (a YOLOX ONNX file) to ``dst`` with a dynamic batch, nothing else
    changed; the same input gives the same bytes (the manifest's sha256)."""
    from pathlib import Path

    import onnx

    model = batch_agnostic(onnx.load(str(src)))
    model.doc_string = f"{Path(src).name} with a dynamic batch (edgewatch.onnx_batch)"
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
