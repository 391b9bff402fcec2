"""Matrix product operators (MPO): factorising a weight matrix into a chain of small local tensors.

A matrix W of shape (J, I) (J outputs, I inputs) is viewed as a tensor with indices
(j1..jn, i1..in), J = prod j_k, I = prod i_k, and written as
``W[(j1..jn), (i1..in)] = sum_{d} C1[1, i1, j1, d1] C2[d1, i2, j2, d2] ... Cn[d(n-1), in, jn, 1]``.
Local tensor k has shape (D(k-1), i_k, j_k, D(k)); the bond dimensions D(k) set the compression.
Sizes that do not factor well (257 bins, say) are zero-padded to the nearest size that does.
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch


@lru_cache(maxsize=None)
def _factorisations(n: int, k: int, smallest: int = 2) -> tuple[tuple[int, ...], ...]:
    """All non-decreasing tuples of k integers >= smallest whose product is n."""
    if k == 1:
        return ((n,),) if n >= smallest else ()
    out = []
    f = smallest
    while f ** k <= n:
        if n % f == 0:
            out.extend((f,) + rest for rest in _factorisations(n // f, k - 1, f))
        f += 1
    return tuple(out)


def mountain(factors: tuple[int, ...]) -> tuple[int, ...]:
    """Order factors small-large-small: the middle bonds then have the most room (higher possible rank)."""
    s = sorted(factors)
    left, right = [], []
    for i, f in enumerate(s):
        (left if i % 2 == 0 else right).append(f)
    return tuple(left + right[::-1])


def factorize(size: int, n: int) -> tuple[int, ...]:
    """Split ``size`` into n factors (n = 1..6), padding it up when it factors badly.

    Rule: the smallest padded size >= size whose most balanced factorisation has its largest factor
    no bigger than ceil(1.5 * size ** (1/n)); among its factorisations, the one with the smallest
    largest factor.  257 with n = 4 becomes 270 = 3 x 3 x 5 x 6 (5 % padding).
    """
    if n < 1 or size < 1:
        raise ValueError(f"cannot factor size {size} into {n} factors")
    if n == 1:
        return (size,)
    cap = max(2, math.ceil(1.5 * size ** (1.0 / n)))
    for padded in itertools.count(max(size, 2 ** n)):
        cands = [f for f in _factorisations(padded, n) if f[-1] <= cap]
        if cands:
            return mountain(min(cands, key=lambda f: (f[-1], f)))
    raise AssertionError("unreachable")


def full_bond_dims(in_f: tuple[int, ...], out_f: tuple[int, ...]) -> list[int]:
    """Bond dimensions at which the MPO is exact: min of the sizes to the left and to the right."""
    sizes = [i * j for i, j in zip(in_f, out_f)]
    return [min(math.prod(sizes[:k]), math.prod(sizes[k:])) for k in range(1, len(sizes))]


def bond_dims(in_f: tuple[int, ...], out_f: tuple[int, ...], d: int | list[int]) -> list[int]:
    """Inner bond dimensions (n - 1 of them), each capped at its exact (full-rank) value."""
    full = full_bond_dims(in_f, out_f)
    ds = [d] * len(full) if isinstance(d, int) else list(d)
    if len(ds) != len(full):
        raise ValueError(f"need {len(full)} bond dimensions, got {len(ds)}")
    return [max(1, min(a, b)) for a, b in zip(ds, full)]


def core_shapes(in_f: tuple[int, ...], out_f: tuple[int, ...], d: int | list[int]) -> list[tuple[int, ...]]:
    """Shapes (D(k-1), i_k, j_k, D(k)) of the local tensors."""
    dims = [1] + bond_dims(in_f, out_f, d) + [1]
    return [(dims[k], in_f[k], out_f[k], dims[k + 1]) for k in range(len(in_f))]


def num_params(in_f: tuple[int, ...], out_f: tuple[int, ...], d: int | list[int]) -> int:
    """Entries in all local tensors: sum_k D(k-1) i_k j_k D(k)."""
    return sum(math.prod(s) for s in core_shapes(in_f, out_f, d))


def reconstruct(cores: list[torch.Tensor], rows: int | None = None, cols: int | None = None) -> torch.Tensor:
    """Contract local tensors into the dense (J, I) matrix, cropped to (rows, cols) to drop padding."""
    n = len(cores)
    t = cores[0]
    for c in cores[1:]:
        t = torch.tensordot(t, c, dims=([-1], [0]))
    # t: (1, i1, j1, i2, j2, ..., in, jn, 1) -> (j1..jn, i1..in)
    t = t.reshape(t.shape[1:-1])
    perm = [2 * k + 1 for k in range(n)] + [2 * k for k in range(n)]
    in_size = math.prod(c.shape[1] for c in cores)
    out_size = math.prod(c.shape[2] for c in cores)
    w = t.permute(perm).reshape(out_size, in_size)
    return w[: rows or out_size, : cols or in_size]


def decompose(w: torch.Tensor, in_f: tuple[int, ...], out_f: tuple[int, ...],
              d: int | list[int]) -> list[torch.Tensor]:
    """Sequential (TT-)SVD of a dense (J, I) matrix into local tensors truncated to bond dimension d.

    The matrix is zero-padded to (prod out_f, prod in_f).  At full bond dimension the result is exact;
    truncation keeps the largest singular values at each bond, left to right.
    """
    n = len(in_f)
    big_i, big_j = math.prod(in_f), math.prod(out_f)
    if w.shape[0] > big_j or w.shape[1] > big_i:
        raise ValueError(f"matrix {tuple(w.shape)} larger than factors {out_f} x {in_f}")
    wp = torch.zeros(big_j, big_i, dtype=torch.float64)
    wp[: w.shape[0], : w.shape[1]] = w.detach().double()
    t = wp.reshape(*out_f, *in_f)
    perm = [p for k in range(n) for p in (n + k, k)]  # -> (i1, j1, i2, j2, ...)
    t = t.permute(perm).contiguous()
    dims = bond_dims(in_f, out_f, d)
    cores, left = [], 1
    rest = t.reshape(-1)
    for k in range(n - 1):
        mat = rest.reshape(left * in_f[k] * out_f[k], -1)
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        r = dims[k]
        u, s, vh = u[:, :r], s[:r], vh[:r]
        if s.numel() < r:  # rank below the bond dimension: pad with zeros so shapes stay fixed
            extra = r - s.numel()
            u = torch.cat([u, u.new_zeros(u.shape[0], extra)], 1)
            vh = torch.cat([vh, vh.new_zeros(extra, vh.shape[1])], 0)
            s = torch.cat([s, s.new_zeros(extra)])
        cores.append(u.reshape(left, in_f[k], out_f[k], r))
        rest = s[:, None] * vh
        left = r
    cores.append(rest.reshape(left, in_f[-1], out_f[-1], 1))
    # Balance the norms of the local tensors so no core starts much larger than the others.
    norms = [c.norm() for c in cores]
    target = math.prod(float(x) for x in norms) ** (1.0 / n) if all(x > 0 for x in norms) else None
    if target:
        cores = [c * (target / nm) for c, nm in zip(cores, norms)]
    return [c.to(w.dtype) for c in cores]


PROFILES = ("uniform", "mountain")


def mountain_bond_dims(shapes: list[tuple[int, int]], n: int, rate: float) -> list[int]:
    """The "mountain" allocation: bonds that keep the shape of the exact ones.  An MPO's exact (full-rank) bond
    dimensions rise towards the middle of the chain and fall again (min of the sizes left and right of the bond),
    e.g. 16-256-32 for a 1024 x 256 matrix in four factors; this profile takes D(k) = round(F(k) ** a) (at least
    1) with F the largest exact bonds over the matrices and one exponent a in [0, 1], or one bond of such a profile
    one step up or down, chosen so the rate is closest to ``rate`` on a log scale.  The middle bonds then get many times the outer ones, where :func:`solve_bond_dims` gives
    every bond about the same D."""
    dense = sum(j * i for j, i in shapes)
    facs = [(factorize(i, n), out_factors(j, n)) for j, i in shapes]
    full = [max(col) for col in zip(*(full_bond_dims(fi, fo) for fi, fo in facs))]
    base = {tuple(max(1, round(f ** a)) for f in full) for a in (k / 2000 for k in range(2001))}
    # one bond one step up or down from each: fills the gaps the rounding leaves at high rates
    cands = base | {c[:k] + (max(1, c[k] + s),) + c[k + 1:] for c in base for k in range(len(c)) for s in (-1, 1)}
    scored = [(dense / sum(num_params(fi, fo, list(ds)) for fi, fo in facs), list(ds)) for ds in cands]
    return min(scored, key=lambda c: (abs(math.log(c[0] / rate)), c[0]))[1]


def solve_bond_dims(shapes: list[tuple[int, int]], n: int, rate: float, profile: str = "uniform") -> list[int]:
    """Bond dimensions (n - 1 of them, shared by all matrices) reaching compression ``rate`` over the
    matrices ``shapes`` (J, I), counted against their unpadded dense size.  ``profile`` "mountain":
    :func:`mountain_bond_dims`; "uniform" (below) gives every bond about the same dimension.

    Start from the largest uniform D whose rate is still >= the target, then grow single bonds, middle
    first, while the rate stays >= the target.  That sits just above the target, which can be 5 % off at high
    rates (100x -> 105x with a 4-factor split), so finally take whichever of it and its one-bond-larger
    neighbours is closest to the target on a log scale (a claimed rate must hold by parameter count).
    """
    if profile == "mountain":
        return mountain_bond_dims(shapes, n, rate)
    if profile != "uniform":
        raise ValueError(f"unknown bond profile {profile!r}; expected one of {PROFILES}")
    dense = sum(j * i for j, i in shapes)
    facs = [(factorize(i, n), out_factors(j, n)) for j, i in shapes]

    def rate_of(ds: list[int]) -> float:
        return dense / sum(num_params(fi, fo, ds) for fi, fo in facs)

    d = 1
    while d < 4096 and rate_of([d + 1] * (n - 1)) >= rate:
        d += 1
    dims = [d] * (n - 1)
    order = sorted(range(n - 1), key=lambda k: abs(k - (n - 2) / 2))
    grown = True
    while grown:
        grown = False
        for k in order:
            trial = dims.copy()
            trial[k] += 1
            if rate_of(trial) >= rate and rate_of(trial) < rate_of(dims):
                dims, grown = trial, True
    candidates = [dims] + [[d + (k == j) for j, d in enumerate(dims)] for k in range(n - 1)]
    return min(candidates, key=lambda ds: abs(math.log(rate_of(ds) / rate)))


def mpo_rate(shapes: list[tuple[int, int]], n: int, dims: list[int]) -> float:
    """Compression rate of MPOs with bond dimensions ``dims`` over the dense matrices ``shapes``."""
    dense = sum(j * i for j, i in shapes)
    return dense / sum(num_params(factorize(i, n), out_factors(j, n), dims) for j, i in shapes)


def out_factors(rows: int, n: int) -> tuple[int, ...]:
    """Factors of the output (row) size.  LSTM weights stack the four gates in 4H rows, gate-major, so
    when rows is divisible by 4 the first factor is the gate index, as in the paper."""
    if n > 1 and rows % 4 == 0:
        return (4,) + factorize(rows // 4, n - 1)
    return factorize(rows, n)



def merge(cores: list[torch.Tensor]) -> torch.Tensor:
    """Neighbouring local tensors contracted into one: (D(a), i_a+1 .. i_b, j_a+1 .. j_b, D(b)) with the i and j
    indices each merged (row-major, as the matrix flattens them).  Grouping the chain (say in two halves at
    the middle bond) trades fewer matmuls for more bytes: the two extremes are the chain and the dense W."""
    t = cores[0]
    for c in cores[1:]:
        t = torch.tensordot(t, c, dims=([-1], [0]))
    n = len(cores)
    perm = [0] + [1 + 2 * k for k in range(n)] + [2 + 2 * k for k in range(n)] + [2 * n + 1]
    ins, outs = math.prod(c.shape[1] for c in cores), math.prod(c.shape[2] for c in cores)
    return t.permute(perm).reshape(cores[0].shape[0], ins, outs, cores[-1].shape[-1])


def chain(cores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Local tensors rearranged for :func:`apply_chain`, last core first: core n as (i_n, D(n-1) * j_n), each
    other core k as (D(k-1) * j_k, i_k * D(k)).  Done once; the matrices are then used with no permutes."""
    last = cores[-1]
    out = [last.permute(1, 0, 2, 3).reshape(last.shape[1], -1).contiguous()]
    for c in reversed(cores[:-1]):
        out.append(c.permute(0, 2, 1, 3).reshape(c.shape[0] * c.shape[2], c.shape[1] * c.shape[3]).contiguous())
    return out


def apply_chain(x: torch.Tensor, mats: list[torch.Tensor], out_f: tuple[int, ...]) -> torch.Tensor:
    """W x contracted through the local tensors, never forming W: x (B, prod in_f) -> (B, prod out_f).

    ``mats`` from :func:`chain`.  Right to left: x viewed as (B, i1..in) meets core n on i_n, leaving
    (B, i1..i(n-1), D(n-1), j_n); then core k takes the adjacent pair (i_k, D(k)) from the left, leaving
    (B, i1..i(k-1), D(k-1), j_k..j_n).  Each step is one reshape (a view) and one matmul, reading
    sum_k D(k-1) i_k j_k D(k) weights instead of J * I: fewer bytes than the dense product, more calls."""
    b = x.shape[0]
    t = x.reshape(-1, mats[0].shape[0]) @ mats[0]
    done = out_f[-1]
    for m, j in zip(mats[1:], reversed(out_f[:-1])):
        t = m @ t.reshape(-1, m.shape[1], done)
        done *= j
    return t.reshape(b, done)
