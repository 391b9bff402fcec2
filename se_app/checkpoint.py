"""Checkpoint files: format version, config dicts, weights, provenance and scores; no pickled code.

A checkpoint is a plain dict of tensors, strings and numbers saved with ``torch.save`` and read with
``torch.load(weights_only=True)``.  MPO models store only their local tensors.  Pruned models store each
masked matrix sparsely (flat int32 indices + values), so the file size reflects the compression.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from .model import MaskNet, ModelConfig
from .stft import STFTConfig

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def _sparse_state(model: MaskNet) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if model.cfg.kind != "pruned":
        return state
    out = {}
    for k, v in state.items():
        if k.startswith("core.mask"):
            continue
        if k.startswith("core.weights."):
            idx = k.rsplit(".", 1)[1]
            mask = state[f"core.mask{idx}"].flatten()
            nz = mask.nonzero().flatten()
            out[f"{k}.indices"] = nz.to(torch.int32)
            out[f"{k}.values"] = v.flatten()[nz]
            out[f"{k}.shape"] = torch.tensor(v.shape, dtype=torch.int64)
        else:
            out[k] = v
    return out


def _dense_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if k.endswith(".indices"):
            base = k[: -len(".indices")]
            shape = tuple(int(s) for s in state[f"{base}.shape"])
            w = torch.zeros(shape).flatten()
            m = torch.zeros_like(w)
            w[v.long()] = state[f"{base}.values"]
            m[v.long()] = 1.0
            out[base] = w.view(shape)
            out[f"core.mask{base.rsplit('.', 1)[1]}"] = m.view(shape)
        elif not (k.endswith(".values") or k.endswith(".shape")):
            out[k] = v
    return out


def make(model: MaskNet, stft_cfg: STFTConfig, provenance: dict | None = None,
         scores: dict | None = None) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "stft": stft_cfg.to_dict(),
        "model": model.cfg.to_dict(),
        "state": _sparse_state(model),
        "params": model.effective_params(),
        "rate": model.rate(),
        # W and U only: the numbers the compression rate is defined over (stored / dense of the same shape)
        "wu_params": model.core.effective_params(),
        "wu_dense": model.core.dense_count(),
        "provenance": provenance or {},
        "scores": scores or {},
    }


def save(path: str | os.PathLike, model: MaskNet, stft_cfg: STFTConfig, provenance: dict | None = None,
         scores: dict | None = None, extra: dict | None = None) -> None:
    """Write atomically (temporary file, then rename)."""
    ckpt = make(model, stft_cfg, provenance, scores)
    if extra:
        ckpt.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict; ValueError naming the file when it is not a se_app checkpoint (an empty file,
    text, any other pickle), FileNotFoundError when it is missing."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise ValueError(f"{path}: not a se_app checkpoint (the file is empty)")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # torch's own messages (pickle opcodes, zip records) mean nothing to a user
        log.debug("torch.load(%s) failed: %r", path, e)
        raise ValueError(f"{path}: not a se_app checkpoint (not a file written by torch.save)") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise ValueError(f"{path}: not a se_app checkpoint (no format_version)")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {ckpt['format_version']} is newer than this se_app "
                         f"({FORMAT_VERSION}); upgrade se_app")
    return ckpt


def model_from(ckpt: dict[str, Any]) -> tuple[MaskNet, STFTConfig]:
    model = MaskNet(ModelConfig.from_dict(ckpt["model"]))
    model.load_state_dict(_dense_state(ckpt["state"]))
    model.eval()
    return model, STFTConfig(**ckpt["stft"])


def load(path: str | os.PathLike) -> tuple[MaskNet, STFTConfig, dict[str, Any]]:
    """(model in eval mode, STFT config, the whole checkpoint dict)."""
    ckpt = read(path)
    model, stft_cfg = model_from(ckpt)
    return model, stft_cfg, ckpt


def method_of(ckpt: dict[str, Any]) -> str:
    """How a model was made, for tables and plots: dense | pruned | mpo-svd | mpo-scratch (| mpo when not
    recorded), with "+kd" when it was trained with a teacher (distillation) and "+pf" when it ships a mask
    post-filter (mask power != 1); a quantised model (``se-app quantize``) is its source's method with "+int8"
    (its bits; "+int8all" when the output layer was quantised too, ``--scope all``) before any "+pf"."""
    kind = ckpt["model"]["kind"]
    prov = ckpt.get("provenance") or {}
    quant = prov.get("quantize")
    if quant:  # how the source was trained is in the source's provenance
        prov = prov.get("parent") or {}
    init = prov.get("init")
    method = f"{kind}-{init}" if kind == "mpo" and init in ("svd", "scratch") else kind
    method += "+kd" if (prov.get("train") or {}).get("teacher") else ""
    if quant:
        method += f"+int{quant['bits']}" + ("all" if quant.get("scope") == "all" else "")
    return method + ("+pf" if float(ckpt["model"].get("mask_power", 1.0)) != 1.0 else "")


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
