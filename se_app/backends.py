"""Mask backends: log-power features in, the gain to apply out (post-filter included), recurrent state carried.

A backend is what :class:`~se_app.stream.Stream` calls once per block of frames: ``run(feats (B, T, F) float32
numpy, state) -> (gain (B, T, F) float32 numpy, state)``, ``zero_state(B)``.  The state is the backend's own
(torch tensors or numpy arrays); callers only pass it back.  Two backends give the same numbers:

- ``torch``: many frames -> the fused LSTM kernel; one frame -> :class:`StepCell`, a per-frame cell with the
  feature normalisation folded into the first layer's weights and bias and the weights laid out once for
  ``addmm`` (about 16 small torch calls per frame).  An MPO core can instead contract its local tensors with
  the input vector directly (``direct=True``): fewer bytes, but more and smaller calls (docs/benchmarks.md).
- ``onnx``: the two graphs of :mod:`se_app.export` (one step, and whole sequences) through onnxruntime on one
  thread; needs the optional extra ``pip install -e '.[onnx]'``.

:func:`make` builds one by name; ``auto`` picks the one measured faster on one thread (:func:`resolve`).
"""
from __future__ import annotations

import importlib.util
import logging
import math

import numpy as np
import torch
from torch import nn

from . import mpo
from .cores import MPOLSTM, State
from .model import MaskNet

log = logging.getLogger(__name__)

NAMES = ("torch", "onnx")
# Chosen by measurement on one thread (benchmarks/compare.py, docs/benchmarks.md): onnxruntime runs a streaming
# step about 1.5-2x faster than torch (fewer, cheaper calls per frame), so streaming uses it when installed.
# Offline (blocks of frames) the two are within ~15 % of each other, and torch needs no export at load.
STREAMING_DEFAULT = "onnx"
ONNX_INSTALL = "pip install -e '.[onnx]'"


def folded_input_layer(model: MaskNet) -> tuple[torch.Tensor, torch.Tensor]:
    """First layer's W (4H, F) and summed bias (4H,) with the feature normalisation folded in:
    W ((x - mean) / std) + b = (W / std) x + (b - W (mean / std))."""
    w, _, b1, b2 = model.core.layer_weights()[0]
    inv = 1.0 / model.feat_std
    return w * inv, b1 + b2 - w @ (model.feat_mean * inv)


class StepCell(nn.Module):
    """One frame of the whole mask network, inference only: feats (B, F) raw log power, state -> gain (B, F)
    (mask ** mask_power), new state.  Weights are laid out once, at construction, as buffers (build a new cell
    after changing the model).  The torch backend calls it per frame and :mod:`se_app.export` exports it as
    the ONNX step graph, so both run the same arithmetic."""

    @torch.no_grad()
    def __init__(self, model: MaskNet, direct: bool = False):
        super().__init__()
        core = model.core
        self.hidden, self.layers, self.power = core.hidden, core.layers, model.cfg.mask_power
        self.direct = direct and isinstance(core, MPOLSTM)
        w0, b0 = folded_input_layer(model)
        for k, (w, u, b1, b2) in enumerate(core.layer_weights()):
            w, b = (w0, b0) if k == 0 else (w, b1 + b2)
            self.register_buffer(f"w{k}", w.t().contiguous())
            self.register_buffer(f"u{k}", u.t().contiguous())
            self.register_buffer(f"b{k}", b.contiguous())
        self.register_buffer("out_w", model.out.weight.t().contiguous())
        self.register_buffer("out_b", model.out.bias.detach().clone())
        if self.direct:  # the same products from the MPO local tensors, never forming W or U
            # Two halves, split at the middle bond: two matmuls per matrix.  (The full chain, one matmul per
            # local tensor, moves even fewer bytes but does ~8x the dense product's arithmetic: measured 8x slower.)
            self.chains, self.factors = [], []
            for cores, (fi, fo) in zip(core.cores, core.factors):
                m = len(fi) // 2
                self.chains.append(mpo.chain([mpo.merge(list(cores[:m])), mpo.merge(list(cores[m:]))]))
                self.factors.append((math.prod(fi), (math.prod(fo[:m]), math.prod(fo[m:]))))
            self.biases = [b1 + b2 for _, _, b1, b2 in core.layer_weights()]  # normalisation is not folded here
            self.shift, self.inv_std = -model.feat_mean / model.feat_std, 1.0 / model.feat_std

    def _gates(self, k: int, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """(B, 4H) gate pre-activations of layer k, gates stacked i, f, g, o."""
        if not self.direct:
            return torch.addmm(getattr(self, f"b{k}"), x, getattr(self, f"w{k}")) + h @ getattr(self, f"u{k}")
        (cw, cu), ((in_w, fo_w), (in_u, fo_u)) = self.chains[2 * k: 2 * k + 2], self.factors[2 * k: 2 * k + 2]
        if k == 0:
            x = torch.addcmul(self.shift, x, self.inv_std)
        pad = nn.functional.pad  # inputs zero-padded to the factorised sizes, outputs cropped to 4H
        rows = 4 * self.hidden
        wx = mpo.apply_chain(pad(x, (0, in_w - x.shape[1])), cw, fo_w)[:, :rows]
        uh = mpo.apply_chain(pad(h, (0, in_u - h.shape[1])), cu, fo_u)[:, :rows]
        return wx + uh + self.biases[k]

    def forward(self, feats: torch.Tensor, h: torch.Tensor, c: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """feats (B, F), h and c (L, B, H) -> gain (B, F), new h and c (L, B, H)."""
        x, hs, cs = feats, [], []
        for k in range(self.layers):
            i, f, g, o = self._gates(k, x, h[k]).chunk(4, 1)
            ck = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(ck)
            hs.append(x)
            cs.append(ck)
        mask = torch.sigmoid(torch.addmm(self.out_b, x, self.out_w))
        return (mask if self.power == 1.0 else mask.pow(self.power)), torch.stack(hs), torch.stack(cs)


class TorchBackend:
    """The model in torch: fused kernel for blocks of frames, :class:`StepCell` for single frames."""

    name = "torch"

    def __init__(self, model: MaskNet, direct: bool = False):
        self.model = model.eval()
        self.cell = StepCell(model, direct)

    def zero_state(self, batch: int) -> State:
        return self.model.core.zero_state(batch)

    def run(self, feats: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """feats (B, T, F) float32 -> gain (B, T, F) float32 (mask ** mask_power), new state."""
        f = torch.from_numpy(feats)
        if f.shape[1] == 1:
            with torch.inference_mode():  # ~25 % less per-call overhead than no_grad (the cell's own tensors)
                gain, h, c = self.cell(f[:, 0], *state)
            return gain[:, None].numpy(), (h, c)
        with torch.no_grad():
            mask, state = self.model(f, state)
            return self.model.gain(mask).numpy(), state


def onnx_available() -> bool:
    """Whether the optional onnx extra (onnx to export, onnxruntime to run) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def resolve(name: str | None, streaming: bool = False) -> str:
    """``auto`` (or None) -> the measured default: onnx for streaming when its extra is installed, else torch."""
    if name in (None, "auto"):
        return STREAMING_DEFAULT if streaming and onnx_available() else "torch"
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)} or auto")
    return name


def make(name: str | None, model: MaskNet, streaming: bool = False) -> "TorchBackend":
    """Backend by name (``torch``, ``onnx``, or ``auto``: :func:`resolve`); ValueError for an unknown name or
    when ``onnx`` is asked for without its optional extra."""
    name = resolve(name, streaming)
    if name == "onnx":
        from .onnx_backend import OnnxBackend

        return OnnxBackend(model)
    return TorchBackend(model)
