"""Classical (non-learned) baselines for the evaluation table, for context only.

A baseline looks like an :class:`~se_app.enhancer.Enhancer` to the evaluation loop (``name``, ``info``,
``enhance(x, sr)``), so it is scored exactly like a model.  It is optional: ``noisereduce`` (spectral gating,
Sainburg et al. 2020) is installed with ``pip install -e '.[baselines]'`` and asked for by name, e.g.
``se-app evaluate --models all,noisereduce``.  The published peers of :mod:`se_app.peers` (RNNoise, NSNet2)
are registered here too, so every non-model name is looked up in one table.
"""
from __future__ import annotations

import numpy as np

from . import audio, peers

class NoiseReduce:
    """Non-stationary spectral gating with the library's defaults (no tuning on our data)."""

    name = "noisereduce"
    info = {"kind": "classical", "method": "noisereduce", "rate": None, "params": 0}

    def __init__(self) -> None:
        try:
            import noisereduce
        except ImportError as e:
            raise ValueError("the noisereduce baseline needs the optional package: "
                             "pip install -e '.[baselines]'") from e
        self._reduce = noisereduce.reduce_noise

    def enhance(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        """(N,) or (N, C) float -> the same shape, each channel gated on its own; clipped to [-1, 1]."""
        x2 = audio.as_2d(x)
        y = np.stack([self._reduce(y=x2[:, c], sr=sample_rate, stationary=False) for c in range(x2.shape[1])],
                     axis=1).astype(np.float32)
        y = np.clip(y[: len(x2)], -1.0, 1.0)
        return y[:, 0] if np.asarray(x).ndim == 1 else y


BASELINES = {NoiseReduce.name: NoiseReduce, **peers.PEERS}
NAMES = tuple(BASELINES)


def load(name: str) -> "NoiseReduce | peers.Peer":
    """Baseline or peer by name; ValueError for an unknown one or a missing optional extra."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(NAMES)}")
    return BASELINES[name]()
