"""How quantised weights are stored: groups and scales, and a compact ``.npz`` file format.

Scope "wu" (the default) stores the numbers that define W and U, the ones the compression study counts (MPO
local tensors, a pruned model's non-zeros, dense W and U, low-rank A and B).  Scope "all" also stores the output
layer's weight matrix ``out.weight`` (257 x hidden): in a 20x model it is most of what "wu" leaves float32 (264 of
283 kB).  Biases (LSTM and output layer) and feature statistics stay float32 in both: they are few (a few
thousand numbers), and sensitive, as each one shifts a gate or a bin's mask in every frame by its whole error.
Symmetric quantisation, q = round(x / s) in [-Q, Q], Q = 2^(bits-1) - 1 (127 at 8 bits), s = max|x| / Q of a
group: with no zero point an exact zero stays zero, so a pruned model keeps its pattern.  A group (one float32
scale) is one left-bond slice of an MPO local tensor (D(k-1), i_k, j_k, D(k)) -> D(k-1) groups, as the cores
of a chain differ in range and so do the slices of one core (measured on mpo-10x-v2: one scale per core gave W,U
error 1.43 % and regression-pair PESQ 1.598 -> 1.578; one per slice 1.18 % and 1.597, for 944 more bytes), or an
output row of a matrix (W, U, A, B, and ``out.weight``: a row per frequency bin), as rows belong to gates, units
or bins of different ranges (a pruned row: from its kept values).

The file (:func:`save_compact`) is an ``.npz`` written by ``np.savez``, uncompressed so that its size is the
format's and not zlib's; five arrays and no shapes (``MaskNet(config)`` gives them):

- ``config``  uint8, UTF-8 JSON {format, version, model (ModelConfig.to_dict), stft, bits, values, index, scope};
  version 3 (versions 1 and 2 had one scale per MPO local tensor and are refused rather than misread)
- ``weights`` the stored values of the quantised tensors, row-major, in state order (a pruned matrix: its
  non-zeros only; ``out.weight`` last): int8 at 8 bits, bit-packed uint8 below 8, float32 when ``bits`` is None
- ``scales``  float32, one per group, same order
- ``index``   uint8, pruned models: per matrix a bitmask over the dense matrix (np.packbits) or CSR (uint16
  column per non-zero, then uint32 row pointers), whichever is smaller (config "index": [kind, non-zeros])
- ``rest``    float32, every other state entry flattened, in state_dict order

:func:`storage_bytes` counts the same bytes without the npz headers (about 250 bytes per array).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from .model import MaskNet, ModelConfig
from .stft import STFTConfig

FORMAT, VERSION = "se_app-compact", 3
SCOPES = ("wu", "all")  # what is quantised: W and U only, or W, U and the output layer's weight matrix
Target = tuple[str, torch.Tensor, torch.Tensor | None, bool]  # state name, tensor, mask, one scale per row?


def check_bits(bits: object, none_ok: bool = True) -> None:
    """ValueError unless bits is an integer from 2 to 8 (or None, float32, where that is allowed)."""
    bad = isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8
    if bad and (bits is not None or not none_ok):
        raise ValueError(f"bits must be an integer from 2 to 8, got {bits!r}")


def check_scope(scope: object) -> None:
    """ValueError unless scope is one of :data:`SCOPES`."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")


def stored_tensors(model: MaskNet, scope: str = "wu") -> list[Target]:
    """Every tensor that defines W and U (and with scope "all" then ``out.weight``), in state order (the order
    of the compact file)."""
    check_scope(scope)
    core, kind = model.core, model.cfg.kind
    out = [("out.weight", model.out.weight, None, True)] if scope == "all" else []  # rows are output bins
    if kind in ("mpo", "lowrank"):  # MPO: a scale per left-bond slice of a local tensor; low rank: per row
        return [(f"core.cores.{m}.{k}", p, None, True)
                for m, chain in enumerate(core.cores) for k, p in enumerate(chain)] + out
    masks = core.masks() if kind == "pruned" else [None] * len(core.weights)
    return [(f"core.weights.{m}", w, mk, True) for m, (w, mk) in enumerate(zip(core.weights, masks))] + out


def _rest(model: MaskNet, scope: str = "wu") -> list[tuple[str, torch.Tensor]]:
    """The state entries kept as float32, in state_dict order."""
    quantised = ("core.weights.", "core.cores.", "core.mask") + (("out.weight",) if scope == "all" else ())
    return [(k, v) for k, v in model.state_dict().items() if not k.startswith(quantised)]


def quantize_tensor(x: torch.Tensor, per_row: bool, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (any shape; rows first when per_row) -> q int8 of x's shape, scales float32 (rows,) or (1,)."""
    qmax = 2 ** (bits - 1) - 1
    flat = x.detach().double().reshape(x.shape[0] if per_row else 1, -1)
    scale = (flat.abs().amax(1) / qmax).float()
    s = scale.double()[:, None]  # divide by the float32 scale actually stored, so |s q - x| <= s / 2
    q = torch.where(s > 0, torch.round(flat / torch.where(s > 0, s, torch.ones_like(s))), torch.zeros_like(flat))
    return q.clamp(-qmax, qmax).to(torch.int8).reshape(x.shape), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """q int8 (groups first), scale (groups,) -> float32 s * q; the one place both paths compute it."""
    return (q.reshape(scale.numel(), -1).float() * scale[:, None]).reshape(q.shape)


def _index_kind(mask: torch.Tensor) -> tuple[str, int, int]:
    """(kind, bytes, non-zeros) of the cheaper index of a 0/1 mask (rows, cols): bitmask or CSR."""
    rows, cols = mask.shape
    nnz = int(mask.count_nonzero())
    bitmask = -(-rows * cols // 8)
    csr = 2 * nnz + 4 * (rows + 1) if cols <= 65536 else bitmask + 1  # uint16 columns must fit
    return ("csr", csr, nnz) if csr < bitmask else ("bitmask", bitmask, nnz)


def _layout(model: MaskNet, scope: str = "wu") -> tuple[int, int, int, list[list]]:
    """(stored values, scale groups, index bytes, [index kind, non-zeros] of each pruned matrix)."""
    values = groups = nbytes = 0
    index: list[list] = []
    for _, x, mask, per_row in stored_tensors(model, scope):
        kind, cost, nnz = _index_kind(mask) if mask is not None else ("", 0, x.numel())
        index += [[kind, nnz]] if mask is not None else []
        values, groups, nbytes = values + nnz, groups + (x.shape[0] if per_row else 1), nbytes + cost
    return values, groups, nbytes, index


def _config(model: MaskNet, stft_cfg: STFTConfig, bits: int | None, scope: str = "wu") -> bytes:
    values, _, _, index = _layout(model, scope)
    meta = {"format": FORMAT, "version": VERSION, "model": model.cfg.to_dict(), "stft": stft_cfg.to_dict(),
            "bits": bits, "values": values, "index": index, "scope": scope}
    return json.dumps(meta, separators=(",", ":")).encode()


def storage_bytes(model: MaskNet, bits: int | None = None, stft_cfg: STFTConfig | None = None,
                  scope: str = "wu") -> dict[str, int]:
    """Bytes of the compact serialisation (:func:`save_compact`, arrays without the npz headers):
    {"weights", "scales", "index", "rest", "config", "total"}; ``bits`` None counts float32 weights, ``scope``
    "all" counts ``out.weight`` among the weights instead of the rest."""
    check_bits(bits)
    values, groups, index, _ = _layout(model, scope)
    out = {"weights": 4 * values if bits is None else -(-values * bits // 8),
           "scales": 0 if bits is None else 4 * groups, "index": index,
           "rest": 4 * sum(v.numel() for _, v in _rest(model, scope)),
           "config": len(_config(model, stft_cfg or STFTConfig(), bits, scope))}
    out["total"] = sum(out.values())
    return out


def _pack(q: np.ndarray, bits: int) -> np.ndarray:
    """int8 values in [-Q, Q] -> int8 (8 bits) or their offset binary, ``bits`` each, packed into uint8."""
    if bits == 8:
        return q.astype(np.int8)
    u = (q.astype(np.int16) + 2 ** (bits - 1) - 1).astype(np.uint8)
    return np.packbits(np.unpackbits(u[:, None], axis=1)[:, 8 - bits:].reshape(-1))


def _unpack(a: np.ndarray, bits: int, n: int) -> np.ndarray:
    if bits == 8:
        return a.astype(np.int8)
    b = np.unpackbits(a)[: n * bits].reshape(n, bits).astype(np.int16)
    return (b @ (1 << np.arange(bits - 1, -1, -1)) - (2 ** (bits - 1) - 1)).astype(np.int8)


def _encode_index(m: torch.Tensor) -> list[np.ndarray]:
    """Bool mask (rows, cols) -> uint8 arrays of its cheaper index (bitmask or CSR, little-endian)."""
    if _index_kind(m)[0] == "bitmask":
        return [np.packbits(m.numpy().reshape(-1))]
    ptr = np.concatenate([[0], np.cumsum(m.sum(1).numpy())]).astype("<u4")
    return [m.nonzero()[:, 1].numpy().astype("<u2").view(np.uint8), ptr.view(np.uint8)]


def _decode_index(buf: np.ndarray, pos: int, shape: torch.Size, kind: str, nnz: int) -> tuple[torch.Tensor, int]:
    """The bool mask (rows, cols) stored at byte ``pos`` of ``buf``, and the position after it."""
    rows, cols = shape
    if kind == "bitmask":
        size = -(-rows * cols // 8)
        m = np.unpackbits(buf[pos:pos + size])[: rows * cols].reshape(rows, cols)
    else:
        size = 2 * nnz + 4 * (rows + 1)
        c = np.frombuffer(buf, "<u2", nnz, pos)  # any byte offset: frombuffer reads unaligned data
        ptr = np.frombuffer(buf, "<u4", rows + 1, pos + 2 * nnz)
        m = np.zeros((rows, cols), np.uint8)
        m[np.repeat(np.arange(rows), np.diff(ptr).astype(np.int64)), c] = 1
    return torch.from_numpy(m.astype(bool)), pos + size


def save_compact(model: MaskNet, stft_cfg: STFTConfig, path: str | os.PathLike, bits: int | None = 8,
                 scope: str = "wu") -> None:
    """Write the compact ``.npz`` (module doc) of a model at ``bits`` (None: float32) and ``scope``.  Quantising
    here gives what :func:`se_app.quantize.quantize` gives, so :func:`load_compact` rebuilds exactly that model."""
    check_bits(bits)
    values, scales, index = [], [], []
    for _, x, mask, per_row in stored_tensors(model, scope):
        x = x.detach().float() * mask if mask is not None else x.detach().float()
        if bits is not None:
            x, s = quantize_tensor(x, per_row, bits)
            scales.append(s)
        values.append(x.reshape(-1) if mask is None else x[mask.bool()])  # row-major, as both indexes list them
        index += [] if mask is None else _encode_index(mask.bool())
    flat = torch.cat(values).numpy()
    arrays = {"config": np.frombuffer(_config(model, stft_cfg, bits, scope), np.uint8),
              "weights": flat.astype(np.float32) if bits is None else _pack(flat, bits),
              "scales": torch.cat(scales).numpy() if scales else np.zeros(0, np.float32),
              "index": np.concatenate(index) if index else np.zeros(0, np.uint8),
              "rest": np.concatenate([v.detach().float().reshape(-1).numpy() for _, v in _rest(model, scope)])}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_compact(path: str | os.PathLike) -> tuple[MaskNet, STFTConfig]:
    """(model in eval mode, STFT config) from a :func:`save_compact` file; ValueError when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        meta = json.loads(a["config"].tobytes().decode())
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError
        bits, scope, model = meta["bits"], meta.get("scope", "wu"), MaskNet(ModelConfig.from_dict(meta["model"]))
        check_bits(bits)
        check_scope(scope)
    except (OSError, KeyError, TypeError, ValueError, AttributeError):
        raise ValueError(f"{path}: not a se_app compact model file (version {VERSION})") from None
    state, v, s, pos, kinds = {}, 0, 0, 0, iter(meta["index"])
    try:
        vals = torch.from_numpy(a["weights"] if bits is None else _unpack(a["weights"], bits, meta["values"]))
        scales, rest = torch.from_numpy(a["scales"]), torch.from_numpy(a["rest"])
        for name, x, mask, per_row in stored_tensors(model, scope):
            if mask is None:
                full, v = vals[v:v + x.numel()].reshape(x.shape), v + x.numel()
            else:  # zeros where pruned, the stored values (row-major) where kept
                m, pos = _decode_index(a["index"], pos, x.shape, *next(kinds))
                full, n = torch.zeros(x.shape, dtype=vals.dtype), int(m.sum())
                full[m], v = vals[v:v + n], v + n
                state["core.mask" + name.rsplit(".", 1)[1]] = m.float()
            if bits is not None:
                g = x.shape[0] if per_row else 1
                full, s = dequantize(full, scales[s:s + g]), s + g
            state[name] = full.float()
        off = 0
        for k, t in _rest(model, scope):
            state[k], off = rest[off:off + t.numel()].view(t.shape).clone(), off + t.numel()
        if (v, s, off, pos) != (len(vals), len(scales), len(rest), len(a["index"])):
            raise ValueError
    except (ValueError, RuntimeError, IndexError, StopIteration):
        raise ValueError(f"{path}: compact model file is truncated or corrupt (array sizes do not match)") from None
    model.load_state_dict(state)
    return model.eval(), STFTConfig(**meta["stft"])


