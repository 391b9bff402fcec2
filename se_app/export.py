"""ONNX export of a mask network: one streaming step and the whole-sequence model.

Both graphs take log-power features (``stft.log_power``: the STFT stays outside the graph) and return the
gain to apply (the mask after the ``mask_power`` post-filter), with the recurrent state in and out:

- step: ``feats`` (B, F), ``h``/``c`` (L, B, H) -> ``gain`` (B, F), ``h_out``/``c_out``: :class:`StepCell`,
  normalisation folded into the first layer.
- whole: ``feats`` (B, T, F), ``h``/``c`` -> ``gain`` (B, T, F), ``h_out``/``c_out``: the fused LSTM (ONNX
  ``LSTM``); a look-ahead model's output frame t is the gain of frame t - L, as in streaming.

The graphs' metadata hold what a runtime needs: the state shapes (``state_shape`` = L,B,H with B free), the
STFT (sample rate, n_fft, hop), the look-ahead and the feature definition.  Needs the optional extra
``pip install -e '.[onnx]'`` (``onnx``; ``onnxruntime`` to run them).
"""
from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from .backends import ONNX_INSTALL, StepCell
from .model import MaskNet
from .stft import STFTConfig

log = logging.getLogger(__name__)

OPSET = 17
INPUTS, OUTPUTS = ["feats", "h", "c"], ["gain", "h_out", "c_out"]


class WholeGraph(nn.Module):
    """The whole-sequence model with state in and out, for export: feats (B, T, F), h, c -> gain, h, c."""

    def __init__(self, model: MaskNet):
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        mask, (h, c) = self.model(feats, (h, c))
        return self.model.gain(mask), h, c


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ValueError(f"ONNX export needs the optional package 'onnx': {ONNX_INSTALL}") from e
    return onnx


def metadata(model: MaskNet, cfg: STFTConfig, graph: str) -> dict[str, str]:
    m = model.cfg
    return {"se_app.graph": graph, "state_shape": json.dumps([m.layers, "B", m.hidden]),
            "state_names": "h,c", "sample_rate": str(cfg.sample_rate), "n_fft": str(cfg.n_fft),
            "hop": str(cfg.hop), "n_bins": str(m.n_bins), "lookahead": str(m.lookahead),
            "features": "log(|STFT|^2 + 1e-8), sqrt-Hann window, causal framing (se_app.stft)",
            "output": "gain = sigmoid mask ** mask_power; multiply the noisy spectrum by it",
            "model": json.dumps(m.to_dict())}


@torch.no_grad()
def to_bytes(model: MaskNet, cfg: STFTConfig, graph: str, direct: bool = False) -> bytes:
    """The ``step`` or ``whole`` graph of ``model`` as a serialised ONNX model with :func:`metadata`.
    ``direct``: an MPO model's step contracts its local tensors in two halves instead of the dense W, U."""
    onnx = _onnx()
    model = model.eval()
    L, H, F = model.cfg.layers, model.cfg.hidden, model.cfg.n_bins
    h = torch.zeros(L, 1, H)
    if graph == "step":
        module, feats = StepCell(model, direct), torch.zeros(1, F)
        axes = {"feats": {0: "B"}, "gain": {0: "B"}}
    elif graph == "whole":
        module, feats = WholeGraph(model), torch.zeros(1, 3, F)
        axes = {"feats": {0: "B", 1: "T"}, "gain": {0: "B", 1: "T"}}
    else:
        raise ValueError(f"unknown graph {graph!r}; expected step or whole")
    for name in ("h", "c", "h_out", "c_out"):
        axes[name] = {1: "B"}
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the LSTM batch-size warning (h and c are inputs here, as it advises)
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")  # and the exporter's own
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # notices about its future
        torch.onnx.export(module, (feats, h, h.clone()), buf, input_names=INPUTS, output_names=OUTPUTS,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in metadata(model, cfg, graph).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    return proto.SerializeToString()


def export(model: MaskNet, cfg: STFTConfig, out: str | Path) -> list[Path]:
    """Write ``<stem>.step.onnx`` and ``<stem>.whole.onnx`` beside ``out`` (e.g. model.onnx); returns the paths."""
    out = Path(out)
    stem = out.name[: -len(".onnx")] if out.name.endswith(".onnx") else out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for graph in ("step", "whole"):
        path = out.parent / f"{stem}.{graph}.onnx"
        path.write_bytes(to_bytes(model, cfg, graph))
        log.info("wrote %s", path)
        paths.append(path)
    return paths
