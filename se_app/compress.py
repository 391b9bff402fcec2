"""Compress a trained model further, without training: lower its bond dimensions (MPO) or its rank (dense).

- **MPO**: each W and U is a chain of local tensors; truncating a bond keeps the largest singular values of
  the neighbouring cores.  The chain is first brought to canonical form (cores right of the bond
  right-orthonormal by QR, cores left of it left-orthonormal from the sweep), so each bond's singular values
  are those of the whole matrix split at that bond, and the sweep truncates bond 1, 2, ... in turn
  (TT-rounding).  The errors of the successive truncations are orthogonal, so the Frobenius error of the
  whole matrix is exactly sqrt(sum of every dropped singular value squared) (:func:`truncate_chain`).  The
  prediction holds for the matrix the chain represents, padding included; W itself (the padding cropped
  off) is off by at most that much.
- **dense** (and low-rank): W ~ A B by truncated SVD (Eckart-Young), error sqrt(sum of the dropped singular
  values squared) exactly; the result is a ``lowrank`` model (:class:`~se_app.cores.LowRankLSTM`).

Rates are those ``se-app models`` reports: stored W and U entries against the dense W and U of the same shape.
Everything else of the model (biases, output layer, feature statistics, post-filter, look-ahead) is kept.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from . import mpo
from .model import MaskNet


@dataclass(frozen=True)
class Truncation:
    """What a compression did: the new settings, its size, and the predicted reconstruction error of W and U
    (Frobenius norm of the dropped singular values), absolute and relative to the matrices' norm."""

    kind: str
    setting: tuple[int, ...]  # MPO bonds, or (rank,)
    rate_before: float
    rate: float
    params_before: int
    params: int
    error: float
    relative_error: float


def truncate_chain(cores: list[torch.Tensor], dims: list[int]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Local tensors (D(k-1), i_k, j_k, D(k)) -> the same chain with inner bonds ``dims`` (n - 1 of them, each
    at most the current one), and the singular values dropped at each bond.  Float64 throughout; the chain's
    Frobenius error is exactly the norm of all dropped values together."""
    cores = [c.detach().double().clone() for c in cores]
    n = len(cores)
    for k in range(n - 1, 0, -1):  # right-orthonormalise cores n-1 .. 1 (QR), pushing the rest leftwards
        c = cores[k]
        q, r = torch.linalg.qr(c.reshape(c.shape[0], -1).T)  # (i j D, a'), (a', a)
        if q.shape[1] < c.shape[0]:  # fewer rows than the bond: zero-pad, shapes stay fixed, product exact
            extra = c.shape[0] - q.shape[1]
            q = torch.cat([q, q.new_zeros(q.shape[0], extra)], 1)
            r = torch.cat([r, r.new_zeros(extra, r.shape[1])], 0)
        cores[k] = q.T.reshape(c.shape)
        cores[k - 1] = torch.tensordot(cores[k - 1], r.T, dims=([3], [0]))
    dropped = []
    for k in range(n - 1):  # left to right: truncate bond k by SVD of the core that holds the norm
        c = cores[k]
        u, s, vh = torch.linalg.svd(c.reshape(-1, c.shape[3]), full_matrices=False)
        keep = dims[k]
        dropped.append(s[keep:])
        u, s, vh = u[:, :keep], s[:keep], vh[:keep]
        if s.numel() < keep:  # rank below the bond: zero-pad as mpo.decompose does
            extra = keep - s.numel()
            u = torch.cat([u, u.new_zeros(u.shape[0], extra)], 1)
            vh = torch.cat([vh, vh.new_zeros(extra, vh.shape[1])], 0)
            s = torch.cat([s, s.new_zeros(extra)])
        cores[k] = u.reshape(*c.shape[:3], keep)
        cores[k + 1] = torch.tensordot(s[:, None] * vh, cores[k + 1], dims=([1], [0]))
    norms = [float(c.norm()) for c in cores]  # balance the norms (the product is unchanged)
    if all(x > 0 for x in norms):
        target = math.exp(sum(math.log(x) for x in norms) / n)
        cores = [c * (target / x) for c, x in zip(cores, norms)]
    return cores, dropped


def truncate_matrix(w: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(J, I) -> A (J, r), B (r, I) with A B the best rank-r approximation, and the dropped singular values."""
    u, s, vh = torch.linalg.svd(w.detach().double(), full_matrices=False)
    r = min(rank, s.numel())
    root = s[:r].sqrt()
    return u[:, :r] * root, root[:, None] * vh[:r], s[r:]


def _closest(candidates: list[tuple[float, tuple[int, ...]]], rate: float) -> tuple[int, ...]:
    return min(candidates, key=lambda c: (abs(math.log(c[0] / rate)), c[0]))[1]


def mpo_bonds_for(model: MaskNet, rate: float) -> tuple[int, ...]:
    """Bond dimensions, each at most the model's own, whose rate of W and U is closest to ``rate`` on a log
    scale.  Candidates: the model's bond profile scaled by one factor, and the path that lowers the largest
    bond by one at a time (middle bonds last among equals), which fills the steps in between."""
    core, bonds = model.core, list(model.cfg.bonds)
    shapes, n = core.shapes(), core.n_factors
    cands = {tuple(max(1, int(math.floor(s * d + 1e-9))) for d in bonds) for s in np.linspace(1.0, 0.0, 501)}
    dims, mid = list(bonds), (len(bonds) - 1) / 2
    while max(dims) > 1:
        k = max(range(len(dims)), key=lambda i: (dims[i], abs(i - mid)))
        dims[k] -= 1
        cands.add(tuple(dims))
    return _closest([(mpo.mpo_rate(shapes, n, list(d)), d) for d in cands], rate)


def rank_for(model: MaskNet, rate: float) -> int:
    """The shared rank whose low-rank W and U reach the rate closest to ``rate`` (log scale)."""
    shapes = model.core.shapes()
    dense = sum(j * i for j, i in shapes)
    top = max(min(j, i) for j, i in shapes)
    cands = [(dense / sum(min(r, j, i) * (j + i) for j, i in shapes), (r,)) for r in range(1, top + 1)]
    return _closest(cands, rate)[0]


def max_rate(model: MaskNet) -> float:
    """The highest rate a truncation of this model reaches (every bond, or the rank, at 1); the model's own rate
    for kinds that cannot be truncated."""
    shapes = model.core.shapes()
    if model.cfg.kind == "mpo":
        return mpo.mpo_rate(shapes, model.core.n_factors, [1] * len(model.cfg.bonds))
    if model.cfg.kind in ("dense", "lowrank"):
        return sum(j * i for j, i in shapes) / sum(j + i for j, i in shapes)
    return model.rate()


def compress(model: MaskNet, rate: float) -> tuple[MaskNet, Truncation]:
    """A new model whose W and U are truncated to about ``rate`` (the model's own rate or more); the input is
    left untouched.  ValueError for a pruned model or a rate below the model's."""
    kind, before = model.cfg.kind, model.rate()
    if kind not in ("mpo", "dense", "lowrank"):
        raise ValueError(f"a {kind} model cannot be truncated: compress works on MPO, dense and low-rank models")
    if not math.isfinite(rate) or rate < before * (1 - 1e-6):
        raise ValueError(f"rate {rate:g}x is below the model's own {before:.2f}x: truncation only compresses further")
    if rate <= before * (1 + 1e-6):  # nothing to drop: the model as it is
        new = MaskNet(model.cfg)
        new.load_state_dict(model.state_dict())
        setting = tuple(model.cfg.bonds) if kind == "mpo" else (model.cfg.rank,) if kind == "lowrank" else ()
        params = model.effective_params()
        return new.eval(), Truncation(kind, setting, before, before, params, params, 0.0, 0.0)
    old = [w.detach().double() for w in model.core.matrices()]
    if kind == "mpo":
        bonds = mpo_bonds_for(model, rate)
        cfg = dataclasses.replace(model.cfg, bonds=bonds)
    else:
        rank = rank_for(model, rate)
        cfg = dataclasses.replace(model.cfg, kind="lowrank", rank=rank)
    new = MaskNet(cfg)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("core.weights", "core.cores",
                                                                                "core.mask"))}
    dropped: list[torch.Tensor] = []
    with torch.no_grad():
        for k, (src, dst) in enumerate(zip(model.core.cores if kind == "mpo" else old, new.core.cores)):
            if kind == "mpo":
                fi, fo = model.core.factors[k]
                cores, parts = truncate_chain(list(src), mpo.bond_dims(fi, fo, list(bonds)))
                gone = torch.cat(parts)
            else:
                a, b, gone = truncate_matrix(src, cfg.rank)
                cores = [a, b]
            for p, c in zip(dst, cores):
                p.copy_(c.to(p.dtype))
            dropped.append(gone)
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("core.cores") for k in missing):  # pragma: no cover - a layout change
        raise RuntimeError(f"compress: state does not carry over (missing {missing}, unexpected {unexpected})")
    new.eval()
    error = float(torch.sqrt(sum((d ** 2).sum() for d in dropped)))
    norm = float(torch.sqrt(sum((w ** 2).sum() for w in old)))
    info = Truncation(cfg.kind, tuple(cfg.bonds) if kind == "mpo" else (cfg.rank,), before, new.rate(),
                      model.effective_params(), new.effective_params(), error, error / max(norm, 1e-30))
    return new, info


def describe(t: Truncation) -> str:
    """One line: setting, rate and parameters before and after, predicted relative error of W and U."""
    what = (f"bonds {'-'.join(map(str, t.setting))}" if t.kind == "mpo" else
            f"rank {t.setting[0]}" if t.kind == "lowrank" else "unchanged")
    return (f"{t.kind}, {what}: W,U compression {t.rate_before:.1f}x -> {t.rate:.1f}x, parameters "
            f"{t.params_before:,} -> {t.params:,}, predicted W,U error {100 * t.relative_error:.1f}% (Frobenius)")


def compress_file(name_or_path: str | None, rate: float, out: str | os.PathLike) -> Truncation:
    """Load a model (registry name or checkpoint path), compress it to ``rate`` and save a normal checkpoint
    (config + weights; ``se-app enhance --model OUT`` and ``se-app register`` take it).  Its provenance records
    the source, the request and the predicted error; scores of the source are not carried over."""
    from . import checkpoint, registry

    path, name = registry.resolve(name_or_path)
    model, stft_cfg, ckpt = checkpoint.load(path)
    new, info = compress(model, rate)
    prov = {"compressed_from": name, "source_sha256": checkpoint.sha256(path), "parent": ckpt.get("provenance") or {},
            "compress": {**dataclasses.asdict(info), "setting": list(info.setting), "requested_rate": rate}}
    checkpoint.save(out, new, stft_cfg, provenance=prov)
    return info
