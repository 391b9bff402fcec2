"""The causal mask estimator: log-power features -> recurrent core -> linear -> sigmoid mask (257 bins)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from . import mpo
from .cores import DenseLSTM, LowRankLSTM, MPOLSTM, PrunedLSTM, RecurrentCore, State

KINDS = ("dense", "mpo", "pruned", "lowrank")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a mask estimator.  ``bonds`` (MPO bond dimensions) and ``sparsity`` (pruned share of W and U)
    are the compression settings; ``mpo_rate`` is only a request that :func:`resolve` turns into bonds.
    ``rank`` is the shared rank of the ``lowrank`` kind (W = A B, made from a dense model by ``se-app
    compress``)."""

    kind: str = "dense"
    n_bins: int = 257
    hidden: int = 256
    layers: int = 2
    n_factors: int = 4
    bonds: tuple[int, ...] = field(default_factory=tuple)
    mpo_rate: float = 0.0
    sparsity: float = 0.0
    # Inference post-filter: the mask is raised to this power before it is applied (1 = off).  An MSE-trained
    # mask regresses to the mean where it is unsure, so it under-suppresses noise; a power > 1 deepens the
    # attenuation of low-gain bins and leaves gains near 1 alone.  Chosen on the valid split after training
    # (``se-app tune-post``); training itself always sees the raw mask.
    mask_power: float = 1.0
    # Look-ahead in frames (hop 16 ms): the mask of frame t is read from the network's output at frame t + L,
    # so it has seen L future frames.  Adds L hops of latency; 0 keeps the model strictly causal.
    lookahead: int = 0
    rank: int = 0
    # How ``mpo_rate`` is spread over the bonds (mpo.PROFILES): "uniform" (about the same D everywhere) or
    # "mountain" (the shape of the exact bond dimensions, largest in the middle).  Only read by :meth:`resolve`.
    bond_profile: str = "uniform"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bonds"] = list(self.bonds)
        if not self.rank:  # only low-rank models record it: other checkpoints keep their earlier layout
            del d["rank"]
        if self.bond_profile == "uniform":  # likewise
            del d["bond_profile"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["bonds"] = tuple(d.get("bonds", ()))
        return cls(**d)

    def resolve(self) -> "ModelConfig":
        """Fill in bond dimensions from ``mpo_rate`` when they are not given."""
        if self.kind != "mpo" or self.bonds:
            return self
        if self.mpo_rate <= 0:
            raise ValueError("an mpo model needs bonds or mpo_rate")
        h = self.hidden
        shapes = [(4 * h, self.n_bins if k == 0 else h) for k in range(self.layers)]
        shapes = [s for r, c in shapes for s in ((r, c), (4 * h, h))]
        bonds = tuple(mpo.solve_bond_dims(shapes, self.n_factors, self.mpo_rate, self.bond_profile))
        return ModelConfig(**{**asdict(self), "bonds": bonds})


def build_core(cfg: ModelConfig) -> RecurrentCore:
    if cfg.kind == "dense":
        return DenseLSTM(cfg.n_bins, cfg.hidden, cfg.layers)
    if cfg.kind == "pruned":
        return PrunedLSTM(cfg.n_bins, cfg.hidden, cfg.layers)
    if cfg.kind == "lowrank":
        if cfg.rank < 1:
            raise ValueError("a lowrank model needs rank >= 1")
        return LowRankLSTM(cfg.n_bins, cfg.hidden, cfg.layers, cfg.rank)
    if cfg.kind == "mpo":
        cfg = cfg.resolve()
        return MPOLSTM(cfg.n_bins, cfg.hidden, cfg.layers, cfg.n_factors, list(cfg.bonds))
    raise ValueError(f"unknown model kind {cfg.kind!r}; expected one of {KINDS}")


class MaskNet(nn.Module):
    """Causal mask estimator.  Features are normalised with fixed per-bin statistics (set from training
    data) and the recurrence runs forward only, so output frame t depends on input frames <= t.  With
    ``cfg.lookahead = L`` that output is used as the mask of frame t - L (:meth:`masks`), which therefore has
    seen L frames ahead and no more."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.resolve()
        self.register_buffer("feat_mean", torch.zeros(cfg.n_bins))
        self.register_buffer("feat_std", torch.ones(cfg.n_bins))
        self.core = build_core(self.cfg)
        self.out = nn.Linear(cfg.hidden, cfg.n_bins)

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.feat_mean) / self.feat_std

    def forward(self, feats: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """feats: (B, T, F) log power -> mask (B, T, F) in (0, 1), state ((L, B, H), (L, B, H))."""
        y, state = self.core(self.normalise(feats), state)
        return torch.sigmoid(self.out(y)), state

    def masks(self, feats: torch.Tensor) -> torch.Tensor:
        """Whole sequences: feats (B, T + L, F), the last L frames being look-ahead only -> masks (B, T, F)
        of the first T frames (L = cfg.lookahead)."""
        mask, _ = self(feats)
        return mask[:, self.cfg.lookahead:]

    def gain(self, mask: torch.Tensor) -> torch.Tensor:
        """Mask (any shape) -> the gain that is applied to the noisy spectrum (post-filter)."""
        return mask if self.cfg.mask_power == 1.0 else mask.pow(self.cfg.mask_power)

    def effective_params(self) -> int:
        """Numbers the model stores: recurrent core (MPO entries or non-zeros) + biases + output layer."""
        rest = sum(p.numel() for n, p in self.named_parameters() if not n.startswith("core.weights")
                   and not n.startswith("core.cores"))
        return self.core.effective_params() + rest

    def dense_params(self) -> int:
        """Parameters of the dense model of the same shape."""
        rest = sum(p.numel() for n, p in self.named_parameters() if not n.startswith("core.weights")
                   and not n.startswith("core.cores"))
        return self.core.dense_count() + rest

    def rate(self) -> float:
        """Compression rate of the recurrent weights W and U (dense count / stored count)."""
        return self.core.rate()
