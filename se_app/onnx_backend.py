"""The onnxruntime backend: the exported step and whole graphs (:mod:`se_app.export`) on one thread.

Same interface and numbers as :class:`~se_app.backends.TorchBackend` (within float rounding): single frames go
through the step graph, blocks of frames through the whole graph, state as numpy arrays (L, B, H).  Optional:
``pip install -e '.[onnx]'``; asking for it without the extra raises a one-line ValueError saying so.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from . import backends, export
from .backends import ONNX_INSTALL
from .model import MaskNet
from .ort import session
from .stft import STFTConfig

log = logging.getLogger(__name__)

State = tuple[np.ndarray, np.ndarray]


class OnnxBackend:
    """The model exported to ONNX (in memory, at construction) and run by onnxruntime."""

    name = "onnx"

    def __init__(self, model: MaskNet, cfg: STFTConfig | None = None, threads: int = 1, direct: bool = False):
        if not backends.onnx_available():
            raise ValueError(f"the onnx backend needs the optional packages onnx and onnxruntime: {ONNX_INSTALL}")
        t0 = time.perf_counter()
        cfg = cfg or STFTConfig()
        who = "the onnx backend"
        self.step = session(export.to_bytes(model, cfg, "step", direct), threads, who, ONNX_INSTALL)
        self.whole = session(export.to_bytes(model, cfg, "whole"), threads, who, ONNX_INSTALL)
        self.shape = (model.cfg.layers, model.cfg.hidden)
        log.debug("onnx backend ready in %.2f s", time.perf_counter() - t0)

    def zero_state(self, batch: int) -> State:
        z = np.zeros((self.shape[0], batch, self.shape[1]), np.float32)
        return z, z.copy()

    def run(self, feats: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """feats (B, T, F) float32 -> gain (B, T, F) float32, new state."""
        h, c = state
        if feats.shape[1] == 1:
            gain, h, c = self.step.run(None, {"feats": feats[:, 0], "h": h, "c": c})
            return gain[:, None], (h, c)
        gain, h, c = self.whole.run(None, {"feats": feats, "h": h, "c": c})
        return gain, (h, c)
