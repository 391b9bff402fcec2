"""Post-training quantisation of a model's weights (int8 by default), a step after compression.

:func:`quantize` returns a fake-quant model: its W and U (scope "wu", the default), or W, U and the output
layer's weight matrix (scope "all"), are defined by float32 values that are exactly s * q (q an integer in
[-Q, Q], s the float32 scale of its group; :mod:`se_app.compact` says which numbers, which groups and why),
everything else is the source's.  So every inference path (Enhancer, streaming, ONNX export,
checkpoints) runs it as is, and what it scores is what the quantised model scores; the bytes it would take are
:func:`~se_app.compact.storage_bytes` and the file that holds them :func:`~se_app.compact.save_compact`.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass

import torch

from .compact import (check_bits, check_scope, dequantize, load_compact, quantize_tensor, save_compact,
                      storage_bytes, stored_tensors)
from .model import MaskNet

__all__ = ["QuantInfo", "quantize", "quantize_file", "describe", "storage_bytes", "save_compact", "load_compact"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantInfo:
    """What a quantisation did: bits, the largest error of a stored value of W and U, the relative Frobenius
    error of all W and U together, :func:`storage_bytes` totals of the model at float32 (scope "wu", the
    reference of both scopes) and at ``bits`` in ``scope``, and with scope "all" the same two errors of the
    output layer's weight matrix (0.0 with scope "wu", where it is the source's)."""

    bits: int
    max_abs_error: float
    relative_error: float
    bytes_fp32: int
    bytes_quant: int
    scope: str = "wu"
    out_max_abs_error: float = 0.0
    out_relative_error: float = 0.0


def _rel(new: list[torch.Tensor], old: list[torch.Tensor]) -> float:
    """Relative Frobenius error of the tensors ``new`` against ``old``, all together."""
    err = sum(float(((a.detach().double() - b.detach().double()) ** 2).sum()) for a, b in zip(new, old))
    return math.sqrt(err / max(sum(float((b.detach().double() ** 2).sum()) for b in old), 1e-30))


def quantize(model: MaskNet, bits: int = 8, scope: str = "wu") -> tuple[MaskNet, QuantInfo]:
    """A new model (eval mode) whose W and U (scope "wu") or W, U and ``out.weight`` (scope "all") are defined
    by ``bits``-bit values (fake-quant, see module doc); everything else is the model's.  The input is left
    untouched."""
    check_bits(bits, none_ok=False)
    check_scope(scope)
    new = MaskNet(model.cfg)
    new.load_state_dict(model.state_dict())
    worst = {"wu": 0.0, "out": 0.0}
    with torch.no_grad():
        for (name, x, mask, per_row), (_, dst, _, _) in zip(stored_tensors(model, scope), stored_tensors(new, scope)):
            x = x.detach() * mask if mask is not None else x.detach()  # a pruned model's zeros stay zero
            deq = dequantize(*quantize_tensor(x, per_row, bits))
            part = "out" if name == "out.weight" else "wu"
            worst[part] = max(worst[part], float((deq.double() - x.double()).abs().max()))
            dst.copy_(deq)
        new.eval()
        wu_error = _rel(new.core.matrices(), model.core.matrices())
        out_error = _rel([new.out.weight], [model.out.weight]) if scope == "all" else 0.0
    info = QuantInfo(bits, worst["wu"], wu_error, storage_bytes(model, None)["total"],
                     storage_bytes(new, bits, scope=scope)["total"], scope, worst["out"], out_error)
    return new, info


def quantize_file(name_or_path: str | None, out: str | os.PathLike, compact: str | os.PathLike | None = None,
                  bits: int = 8, scope: str = "wu") -> QuantInfo:
    """Load a model (registry name or checkpoint path), quantise it and save a normal checkpoint of the
    fake-quant model (and, with ``compact``, the compact file).  Its provenance records the source, its
    provenance and the :class:`QuantInfo` (bits and scope included: sizes and labels are read from there);
    scores of the source are not carried over."""
    from . import checkpoint, registry

    check_bits(bits, none_ok=False)
    check_scope(scope)  # before anything is loaded or written
    path, name = registry.resolve(name_or_path)
    model, stft_cfg, ckpt = checkpoint.load(path)
    new, info = quantize(model, bits, scope)
    prov = {"quantized_from": name, "source_sha256": checkpoint.sha256(path), "parent": ckpt.get("provenance") or {},
            "quantize": asdict(info)}
    checkpoint.save(out, new, stft_cfg, provenance=prov)
    if compact is not None:
        save_compact(model, stft_cfg, compact, bits, scope)
    log.debug("quantised %s to %d bits (scope %s): %s", name, bits, scope, info)
    return info


def describe(info: QuantInfo) -> str:
    """One line: bits, compact bytes at float32 and quantised, errors of W and U (and of the output layer)."""
    what = "W,U" if info.scope == "wu" else "W,U,out"
    out = f", output layer error {100 * info.out_relative_error:.2f}%" if info.scope == "all" else ""
    return (f"{info.bits}-bit {what}: {info.bytes_fp32:,} -> {info.bytes_quant:,} bytes compact "
            f"({info.bytes_fp32 / info.bytes_quant:.2f}x smaller), W,U error {100 * info.relative_error:.2f}% "
            f"(Frobenius), largest value error {info.max_abs_error:.1e}{out}")
