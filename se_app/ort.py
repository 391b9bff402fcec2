"""onnxruntime sessions as the package runs them: CPU, a fixed number of threads (one by default), sequential.

Kept free of torch so that the ONNX peers (:mod:`se_app.peers`) load without it.
"""
from __future__ import annotations


def session(model: bytes | str, threads: int, who: str, install: str):
    """An onnxruntime CPU session for a serialised model or a path; ValueError naming ``who`` needs it and the
    ``install`` command when onnxruntime is missing."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ValueError(f"{who} needs the optional package 'onnxruntime': {install}") from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
