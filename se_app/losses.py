"""Training batches and losses: spectra and targets of a batch of mixtures, the band-weighted losses, and
knowledge distillation from a teacher model."""
from __future__ import annotations

import numpy as np
import torch

from . import data
from .model import MaskNet
from .stft import STFTConfig, log_power, stft


def to_batch(examples: list[data.Example], stft_cfg: STFTConfig):
    """Examples -> noisy spectrum (B, T, F), IRM target (B, T, F), clean (target) spectrum (B, T, F) complex,
    bin weights (B, 1, F)."""
    noisy = torch.from_numpy(np.stack([e.noisy for e in examples]))
    clean = torch.from_numpy(np.stack([e.clean for e in examples]))
    noise = torch.from_numpy(np.stack([e.noise for e in examples]))
    X, S, N = stft(noisy, stft_cfg), stft(clean, stft_cfg), stft(noise, stft_cfg)
    ps, pn = S.abs().square(), N.abs().square()
    irm = torch.sqrt(ps / (ps + pn + 1e-10))
    bins = torch.arange(stft_cfg.n_bins)
    weight = torch.stack([(bins < e.band_bins).float() for e in examples])[:, None, :]
    return X, irm, S, weight


def aligned(model: MaskNet, X: torch.Tensor, irm: torch.Tensor, clean: torch.Tensor, w: torch.Tensor):
    """Masks for a batch, with targets cut to match: a look-ahead model has no mask for its last L frames
    (their future is not in the example), so those frames drop out of the loss."""
    mask = model.masks(log_power(X))
    T = mask.shape[1]
    return mask, X[:, :T], irm[:, :T], clean[:, :T], w


def _compress(z: torch.Tensor, p: float = 0.3) -> torch.Tensor:
    """|z|^p with z's phase (complex in, complex out); |z|^p alone for a real tensor."""
    mag = z.abs() + 1e-8
    return mag ** p if not z.is_complex() else z * (mag ** (p - 1))


def loss_fn(mask: torch.Tensor, X: torch.Tensor, irm: torch.Tensor, clean: torch.Tensor,
            weight: torch.Tensor, kind: str) -> torch.Tensor:
    """Band-weighted loss (bins above a band-limited example's band get weight 0).  mask, irm (B, T, F) real;
    X, clean (B, T, F) complex spectra of the noisy input and the target.

    - ``irm``: MSE between mask and ideal ratio mask (the paper's).
    - ``irm+mag``: plus MSE of 0.3-power-compressed magnitudes of mask * |X| and |clean|.
    - ``cmag``: a loss on the enhanced signal itself: 0.7 x MSE of compressed magnitudes + 0.3 x MSE of the
      compressed complex spectra (the estimate keeps the noisy phase), as in DeepFilterNet/GTCRN-style losses.
    - ``cmag+irm``: cmag plus half the IRM-MSE (the mask term keeps low-SNR bins from being over-suppressed).
    """
    w = weight.expand_as(mask)

    def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a - b).abs().square() * w).sum() / w.sum()

    if kind == "irm":
        return mse(mask, irm)
    est = mask * X
    if kind == "irm+mag":
        return mse(mask, irm) + mse(_compress(est.abs()), _compress(clean.abs()))
    cmag = 0.7 * mse(_compress(est.abs()), _compress(clean.abs())) + 0.3 * mse(_compress(est), _compress(clean))
    if kind == "cmag":
        return cmag
    if kind == "cmag+irm":
        return cmag + 0.5 * mse(mask, irm)
    raise ValueError(f"unknown loss {kind!r}")


@torch.no_grad()
def teacher_targets(teacher: MaskNet, X: torch.Tensor, irm: torch.Tensor,
                    clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's view of a batch as targets: its mask (B, T, F) in place of the IRM and its enhanced spectrum
    ``mask * X`` (B, T, F, complex) in place of the clean one.  Frames the teacher has no mask for (its own
    look-ahead is longer than the student's) keep the ground-truth targets."""
    tm = teacher.masks(log_power(X))
    T = tm.shape[1]
    t_irm, t_clean = irm.clone(), clean.clone()
    t_irm[:, :T] = tm
    t_clean[:, :T] = tm * X[:, :T]
    return t_irm, t_clean


def distilled_loss(mask: torch.Tensor, X: torch.Tensor, irm: torch.Tensor, clean: torch.Tensor,
                   weight: torch.Tensor, kind: str, teacher: tuple[torch.Tensor, torch.Tensor] | None,
                   kd_weight: float) -> torch.Tensor:
    """(1 - w) x the loss against the ground truth + w x the same loss against the teacher's targets
    (:func:`teacher_targets`, cut to the student's frames), for every loss kind: the IRM loss learns the teacher's
    mask, the signal losses (``cmag``) its enhanced spectrum.  ``teacher`` None: the plain loss."""
    loss = loss_fn(mask, X, irm, clean, weight, kind)
    if teacher is None or kd_weight == 0:
        return loss
    T = mask.shape[1]
    t_irm, t_clean = teacher
    return (1 - kd_weight) * loss + kd_weight * loss_fn(mask, X, t_irm[:, :T], t_clean[:, :T], weight, kind)
