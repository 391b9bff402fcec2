"""Post-training quantisation of a model's recurrent weights (int8 by default), a step after compression.

:func:`quantize` returns a fake-quant model: its W and U are defined by float32 values that are exactly s * q
(q an integer in [-Q, Q], s the float32 scale of its group; :mod:`se_app.compact` says which numbers, which
groups and why), everything else is the source's.  So every inference path (Enhancer, streaming, ONNX export,
checkpoints) runs it as is, and what it scores is what the quantised model scores; the bytes it would take are
:func:`~se_app.compact.storage_bytes` and the file that holds them :func:`~se_app.compact.save_compact`.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass

import torch

from .compact import (check_bits, dequantize, load_compact, quantize_tensor, save_compact, storage_bytes,
                      stored_tensors)
from .model import MaskNet

__all__ = ["QuantInfo", "quantize", "quantize_file", "describe", "storage_bytes", "save_compact", "load_compact"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantInfo:
    """What a quantisation did: bits, the largest error of a stored value, the relative Frobenius error of all W
    and U together, and :func:`storage_bytes` totals of the model at float32 and at ``bits``."""

    bits: int
    max_abs_error: float
    relative_error: float
    bytes_fp32: int
    bytes_quant: int


def quantize(model: MaskNet, bits: int = 8) -> tuple[MaskNet, QuantInfo]:
    """A new model (eval mode) whose W and U are defined by ``bits``-bit values (fake-quant, see module doc);
    everything else is the model's.  The input is left untouched."""
    check_bits(bits, none_ok=False)
    new = MaskNet(model.cfg)
    new.load_state_dict(model.state_dict())
    worst = 0.0
    with torch.no_grad():
        for (_, x, mask, per_row), (_, dst, _, _) in zip(stored_tensors(model), stored_tensors(new)):
            x = x.detach() * mask if mask is not None else x.detach()  # a pruned model's zeros stay zero
            deq = dequantize(*quantize_tensor(x, per_row, bits))
            worst = max(worst, float((deq.double() - x.double()).abs().max()))
            dst.copy_(deq)
        new.eval()
        old = [w.detach().double() for w in model.core.matrices()]
        err = sum(float(((a.detach().double() - b) ** 2).sum()) for a, b in zip(new.core.matrices(), old))
        norm = sum(float((b ** 2).sum()) for b in old)
    info = QuantInfo(bits, worst, math.sqrt(err / max(norm, 1e-30)), storage_bytes(model, None)["total"],
                     storage_bytes(new, bits)["total"])
    return new, info


def quantize_file(name_or_path: str | None, out: str | os.PathLike, compact: str | os.PathLike | None = None,
                  bits: int = 8) -> QuantInfo:
    """Load a model (registry name or checkpoint path), quantise it and save a normal checkpoint of the
    fake-quant model (and, with ``compact``, the compact file).  Its provenance records the source, its
    provenance and the :class:`QuantInfo`; scores of the source are not carried over."""
    from . import checkpoint, registry

    check_bits(bits, none_ok=False)
    path, name = registry.resolve(name_or_path)
    model, stft_cfg, ckpt = checkpoint.load(path)
    new, info = quantize(model, bits)
    prov = {"quantized_from": name, "source_sha256": checkpoint.sha256(path), "parent": ckpt.get("provenance") or {},
            "quantize": asdict(info)}
    checkpoint.save(out, new, stft_cfg, provenance=prov)
    if compact is not None:
        save_compact(model, stft_cfg, compact, bits)
    log.debug("quantised %s to %d bits: %s", name, bits, info)
    return info


def describe(info: QuantInfo) -> str:
    """One line: bits, compact bytes at float32 and quantised, errors of W and U."""
    return (f"{info.bits}-bit W,U: {info.bytes_fp32:,} -> {info.bytes_quant:,} bytes compact "
            f"({info.bytes_fp32 / info.bytes_quant:.2f}x smaller), W,U error {100 * info.relative_error:.2f}% "
            f"(Frobenius), largest value error {info.max_abs_error:.1e}")
