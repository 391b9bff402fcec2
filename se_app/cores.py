"""Recurrent cores: a dense LSTM, an MPO-LSTM and a magnitude-pruned LSTM with one interface.

Every core exposes its per-layer weights ``(W, U, b_ih, b_hh)`` (W: 4H x I input-to-hidden, U: 4H x H
hidden-to-hidden, gates stacked i, f, g, o as in PyTorch).  A low-rank core (W = A B, made from a dense model by
truncated SVD, :mod:`se_app.compress`) has the same interface.  ``forward`` feeds those weights to the fused
LSTM kernel; streaming runs one frame at a time through :class:`se_app.backends.StepCell`, built from the same
weights.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import mpo

State = tuple[torch.Tensor, torch.Tensor]


class RecurrentCore(nn.Module):
    """Base class: subclasses provide ``layer_weights()``; this class runs them."""

    def __init__(self, input_size: int, hidden: int, layers: int):
        super().__init__()
        self.input_size, self.hidden, self.layers = input_size, hidden, layers
        self.biases = nn.ParameterList()
        for _ in range(layers):
            b = torch.zeros(2, 4 * hidden)
            b[:, hidden:2 * hidden] = 0.5  # forget-gate bias: remember by default
            self.biases.append(nn.Parameter(b))

    def shapes(self) -> list[tuple[int, int]]:
        """(rows, cols) of the recurrent weight matrices, in order W0, U0, W1, U1, ..."""
        out = []
        for layer in range(self.layers):
            inp = self.input_size if layer == 0 else self.hidden
            out += [(4 * self.hidden, inp), (4 * self.hidden, self.hidden)]
        return out

    def dense_count(self) -> int:
        return sum(r * c for r, c in self.shapes())

    def matrices(self) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def effective_params(self) -> int:
        """Stored numbers that define W and U (MPO entries or non-zero weights); biases not included."""
        raise NotImplementedError

    def rate(self) -> float:
        return self.dense_count() / self.effective_params()

    def layer_weights(self) -> list[tuple[torch.Tensor, ...]]:
        m = self.matrices()
        return [(m[2 * k], m[2 * k + 1], self.biases[k][0], self.biases[k][1]) for k in range(self.layers)]

    def zero_state(self, batch: int) -> State:
        z = torch.zeros(self.layers, batch, self.hidden, device=self.biases[0].device)
        return z, z.clone()

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (B, T, I) -> (B, T, H), new state ((L, B, H), (L, B, H)); fused kernel over all frames."""
        if state is None:
            state = self.zero_state(x.shape[0])
        flat = [w for layer in self.layer_weights() for w in layer]
        y, h, c = torch.lstm(x, state, flat, True, self.layers, 0.0, self.training, False, True)
        return y, (h, c)


class DenseLSTM(RecurrentCore):
    """Plain LSTM weights, initialised as nn.LSTM does (uniform +-1/sqrt(H))."""

    def __init__(self, input_size: int, hidden: int, layers: int):
        super().__init__(input_size, hidden, layers)
        bound = 1.0 / math.sqrt(hidden)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(r, c).uniform_(-bound, bound)) for r, c in self.shapes())

    def matrices(self) -> list[torch.Tensor]:
        return list(self.weights)

    def effective_params(self) -> int:
        return self.dense_count()


class PrunedLSTM(DenseLSTM):
    """Dense LSTM whose W and U are multiplied by fixed 0/1 masks (magnitude pruning, per matrix)."""

    def __init__(self, input_size: int, hidden: int, layers: int):
        super().__init__(input_size, hidden, layers)
        for k, (r, c) in enumerate(self.shapes()):
            self.register_buffer(f"mask{k}", torch.ones(r, c))

    def masks(self) -> list[torch.Tensor]:
        return [getattr(self, f"mask{k}") for k in range(len(self.weights))]

    def matrices(self) -> list[torch.Tensor]:
        if torch.is_grad_enabled() and self.training:
            return [w * m for w, m in zip(self.weights, self.masks())]
        key = tuple(t._version for t in (*self.weights, *self.masks()))
        if getattr(self, "_mkey", None) != key:  # inference: mask once, reuse until weights change
            with torch.no_grad():
                self._mcache = [w * m for w, m in zip(self.weights, self.masks())]
            self._mkey = key
        return self._mcache

    def effective_params(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks()))

    @torch.no_grad()
    def prune_to(self, sparsity: float) -> None:
        """Keep the largest-magnitude (1 - sparsity) share of each W and U (per matrix, so every layer keeps
        the same share); masks only shrink, so gradual schedules never revive pruned weights."""
        for w, m in zip(self.weights, self.masks()):
            keep = max(1, round((1.0 - sparsity) * w.numel()))
            score = (w.abs() * m).flatten()
            idx = torch.topk(score, keep).indices
            new = torch.zeros_like(score)
            new[idx] = 1.0
            m.copy_(new.view_as(m))
            w.mul_(m)


class MPOLSTM(RecurrentCore):
    """LSTM whose W and U are MPOs: only the local tensors are parameters.

    The dense matrices are rebuilt once per forward pass (cheap next to the recurrence) and handed to the
    fused kernel; in inference (no grad) they are cached until the weights change.
    """

    def __init__(self, input_size: int, hidden: int, layers: int, n_factors: int, bonds: list[int]):
        super().__init__(input_size, hidden, layers)
        self.n_factors, self.bonds = n_factors, list(bonds)
        self.factors = [(mpo.factorize(c, n_factors), mpo.out_factors(r, n_factors)) for r, c in self.shapes()]
        self.cores = nn.ModuleList()
        for (r, c), (fi, fo) in zip(self.shapes(), self.factors):
            shapes = mpo.core_shapes(fi, fo, self.bonds)
            # Scale each core so the rebuilt matrix has the variance of the dense init (1/(3H)).
            n_in = [s[0] for s in shapes]
            target_var = 1.0 / (3 * hidden)
            per_core = target_var ** (1.0 / len(shapes))
            plist = nn.ParameterList()
            for s, d_in in zip(shapes, n_in):
                plist.append(nn.Parameter(torch.randn(s) * math.sqrt(per_core / d_in)))
            self.cores.append(plist)
        self._cache: list[torch.Tensor] | None = None
        self._cache_key: tuple | None = None

    def matrices(self) -> list[torch.Tensor]:
        if torch.is_grad_enabled() and self.training:
            self._cache = None
            return self._rebuild()
        key = tuple(p._version for p in self.parameters())
        if self._cache is None or key != self._cache_key:
            with torch.no_grad():
                self._cache = self._rebuild()
            self._cache_key = key
        return self._cache

    def _rebuild(self) -> list[torch.Tensor]:
        return [mpo.reconstruct(list(cores), r, c) for cores, (r, c) in zip(self.cores, self.shapes())]

    def effective_params(self) -> int:
        return sum(p.numel() for cores in self.cores for p in cores)

    @torch.no_grad()
    def load_dense(self, dense: list[torch.Tensor]) -> None:
        """Initialise the local tensors by SVD-truncating given dense W and U matrices."""
        for cores, w, (fi, fo) in zip(self.cores, dense, self.factors):
            for p, c in zip(cores, mpo.decompose(w, fi, fo, self.bonds)):
                p.copy_(c)
        self._cache = None


class LowRankLSTM(RecurrentCore):
    """LSTM whose W and U are each a product A B of two thin matrices, A (J, r) and B (r, I), r = min(rank, J, I).
    The factors are kept under ``cores`` (as the MPO's local tensors), rebuilt into W and U once and cached
    in inference."""

    def __init__(self, input_size: int, hidden: int, layers: int, rank: int):
        super().__init__(input_size, hidden, layers)
        self.rank = rank
        self.cores = nn.ModuleList()
        for r, c in self.shapes():
            k = min(rank, r, c)
            scale = (1.0 / (3 * hidden * k)) ** 0.25  # the product has the dense init's variance, 1/(3H)
            self.cores.append(nn.ParameterList([nn.Parameter(torch.randn(r, k) * scale),
                                                nn.Parameter(torch.randn(k, c) * scale)]))
        self._cache: list[torch.Tensor] | None = None
        self._cache_key: tuple | None = None

    def matrices(self) -> list[torch.Tensor]:
        if torch.is_grad_enabled() and self.training:
            return [a @ b for a, b in self.cores]
        key = tuple(p._version for p in self.parameters())
        if self._cache is None or key != self._cache_key:
            with torch.no_grad():
                self._cache = [a @ b for a, b in self.cores]
            self._cache_key = key
        return self._cache

    def effective_params(self) -> int:
        return sum(p.numel() for pair in self.cores for p in pair)
