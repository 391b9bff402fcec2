"""Choosing the mask post-filter (``ModelConfig.mask_power``) on the valid split, never on test data.

A mask trained with an MSE loss is the conditional mean of the target: where the model is unsure whether a
bin is speech or noise it outputs a middle value, and the noise in such bins is under-suppressed.  Raising the
mask to a power p > 1 attenuates low-gain bins more and leaves gains near 1 (confident speech) almost unchanged,
which trades a little intelligibility (STOI) for quality (PESQ).  The rule here: the largest valid PESQ among
the powers whose valid STOI is at most ``max_stoi_drop`` below that of the raw mask (p = 1).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, data
from .enhancer import raw_masks
from .metrics import mean_pesq_stoi
from .model import MaskNet
from .stft import STFTConfig, istft

log = logging.getLogger(__name__)
POWERS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0)


@dataclass(frozen=True)
class PowerScore:
    power: float
    pesq: float
    stoi: float


@torch.no_grad()
def score_powers(model: MaskNet, stft_cfg: STFTConfig, examples: list[data.Example],
                 powers: tuple[float, ...] = POWERS) -> list[PowerScore]:
    """Mean PESQ / STOI of the enhanced valid examples for each mask power (one forward pass in all)."""
    noisy = torch.from_numpy(np.stack([e.noisy for e in examples]))
    spec, mask = raw_masks(model, noisy, stft_cfg)  # raw mask, whatever the model's current power
    rows = []
    for p in powers:
        y = istft(spec * mask.pow(p), stft_cfg, noisy.shape[-1]).numpy()
        pesq, stoi = mean_pesq_stoi([e.clean for e in examples], y, stft_cfg.sample_rate)
        rows.append(PowerScore(p, pesq, stoi))
        log.debug("mask power %.2f: valid PESQ %.4f STOI %.4f", p, pesq, stoi)
    return rows


def choose(rows: list[PowerScore], max_stoi_drop: float = 0.005) -> PowerScore:
    """Best PESQ among powers within ``max_stoi_drop`` STOI of the raw mask (power 1, which is always allowed)."""
    base = next(r for r in rows if r.power == 1.0)
    allowed = [r for r in rows if r.stoi >= base.stoi - max_stoi_drop]
    return max(allowed, key=lambda r: r.pesq)


def tune(ckpt_path: str | Path, out_path: str | Path, examples: list[data.Example],
         max_stoi_drop: float = 0.005, powers: tuple[float, ...] = POWERS) -> tuple[PowerScore, list[PowerScore]]:
    """Score the powers on ``examples``, write a copy of the checkpoint with the chosen power; the table
    of all powers goes into the checkpoint's provenance so the choice can be checked later."""
    if 1.0 not in powers:
        powers = (1.0, *powers)
    model, stft_cfg, ckpt = checkpoint.load(ckpt_path)
    rows = score_powers(model, stft_cfg, examples, powers)
    best = choose(rows, max_stoi_drop)
    tuned = MaskNet(replace(model.cfg, mask_power=best.power))
    tuned.load_state_dict(model.state_dict())
    prov = dict(ckpt.get("provenance", {}))
    prov["postfilter"] = {"rule": f"best valid PESQ with STOI drop <= {max_stoi_drop}",
                          "files": len(examples), "table": [asdict(r) for r in rows], "chosen": best.power}
    extra = {k: v for k, v in ckpt.items() if k not in checkpoint.make(tuned, stft_cfg)}
    checkpoint.save(out_path, tuned, stft_cfg, provenance=prov, scores=ckpt.get("scores"), extra=extra)
    return best, rows
