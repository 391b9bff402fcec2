"""The STFT front end: one definition of framing, window and features for the whole package.

Framing is causal and exactly invertible: the signal is padded with ``n_fft - hop`` zeros at the start, so
frame ``t`` covers input samples ``[t*hop - (n_fft-hop), t*hop + hop)``.  The analysis and synthesis windows
are both the square root of a periodic Hann window, whose squares sum to exactly one at 50 % overlap, so
overlap-add needs no normalisation and a frame-by-frame (streaming) inverse equals the whole-signal inverse.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import lfilter


@dataclass(frozen=True)
class STFTConfig:
    """STFT settings (the paper's: 16 kHz, 32 ms window, 16 ms hop, 257 bins)."""

    sample_rate: int = 16000
    n_fft: int = 512
    hop: int = 256

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def latency(self) -> int:
        """Algorithmic latency in samples: an output sample is final once the window ending it is read."""
        return self.n_fft

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=8)
def _window(n_fft: int, hop: int) -> torch.Tensor:
    if n_fft != 2 * hop:
        raise ValueError("the window design assumes hop = n_fft / 2")
    return torch.hann_window(n_fft, periodic=True).sqrt()


def window(cfg: STFTConfig, device: torch.device | None = None) -> torch.Tensor:
    """sqrt(periodic Hann): its square sums to 1 at hop = n_fft / 2 (used for analysis and synthesis)."""
    return _window(cfg.n_fft, cfg.hop).to(device) if device is not None else _window(cfg.n_fft, cfg.hop)


def num_frames(n_samples: int, cfg: STFTConfig) -> int:
    """Frames needed so that every one of ``n_samples`` samples is covered by two frames."""
    return -(-n_samples // cfg.hop) + 1


def stft(x: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Causal STFT.

    x: (B, N) float waveform.  Returns complex (B, T, F) with T = num_frames(N), F = n_bins.
    """
    n = x.shape[-1]
    t = num_frames(n, cfg)
    pad_left = cfg.n_fft - cfg.hop
    total = (t - 1) * cfg.hop + cfg.n_fft
    xp = F.pad(x, (pad_left, total - pad_left - n))
    frames = xp.unfold(-1, cfg.n_fft, cfg.hop)  # (B, T, n_fft)
    return torch.fft.rfft(frames * window(cfg, x.device), dim=-1)


def istft_frames(spec: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Windowed time frames of a complex spectrum: (B, T, F) -> (B, T, n_fft), ready for overlap-add."""
    return torch.fft.irfft(spec, n=cfg.n_fft, dim=-1) * window(cfg, spec.device)


def istft(spec: torch.Tensor, cfg: STFTConfig, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: (B, T, F) complex -> (B, length) waveform."""
    frames = istft_frames(spec, cfg)  # (B, T, n_fft)
    b, t, _ = frames.shape
    out_len = (t - 1) * cfg.hop + cfg.n_fft
    y = F.fold(frames.transpose(1, 2), output_size=(1, out_len), kernel_size=(1, cfg.n_fft),
               stride=(1, cfg.hop)).reshape(b, out_len)
    start = cfg.n_fft - cfg.hop
    return y[:, start:start + length]


def log_power(spec: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Log power features (B, T, F) -> (B, T, F); normalisation lives in the model (fixed statistics)."""
    return torch.log(spec.real.square() + spec.imag.square() + eps)


DC_POLE = 0.999  # one-pole DC blocker: corner 2.5 Hz at 16 kHz
SHORT = 1024  # chunks up to this many samples are filtered in closed form (r^-1024 is still small)


@lru_cache(maxsize=4)
def _powers(r: float) -> np.ndarray:
    return r ** np.arange(SHORT, dtype=np.float64)


class DCBlocker:
    """Causal one-pole DC blocker H(z) = (1 - z^-1) / (1 - r z^-1), applied to the input at the model rate
    before the STFT.  r = ``DC_POLE`` keeps the phase shift under 1 degree above 150 Hz.  Why: a recording on a
    DC offset (cheap microphones; one of our noise recordings sits at +0.36) puts a large value into the lowest
    bins' features, which the model never saw in training, and the offset would pass to the output.  State is
    carried across calls, so chunked filtering equals whole-signal filtering (streaming stays exact)."""

    def __init__(self, channels: int, r: float = DC_POLE):
        self.r = r
        self.zi = np.zeros((channels, 1))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, n) -> (B, n) filtered; n may be 0."""
        return torch.from_numpy(self.filter(x.numpy()))

    def filter(self, x: np.ndarray) -> np.ndarray:
        """x (B, n) float32 numpy -> (B, n) float32 filtered (in float64); n may be 0."""
        n = x.shape[-1]
        if n == 0:
            return x
        if n > SHORT:
            y, self.zi = lfilter([1.0, -1.0], [1.0, -self.r], x.astype(np.float64), axis=-1, zi=self.zi)
            return y.astype(np.float32)
        # Short chunks (a streaming hop): the same recursion in closed form, a few numpy calls instead of
        # lfilter's argument handling.  lfilter's state zi (transposed direct form II) gives y[0] = x[0] + zi,
        # then y[k] = r y[k-1] + x[k] - x[k-1], i.e. y = r^k * cumsum(e / r^k) with e = (y[0], diff(x)).
        p = _powers(self.r)[:n]
        xd = x.astype(np.float64)
        e = np.empty_like(xd)
        e[:, 0] = xd[:, 0] + self.zi[:, 0]
        np.subtract(xd[:, 1:], xd[:, :-1], out=e[:, 1:])
        y = np.cumsum(e / p, axis=-1)
        y *= p
        self.zi = self.r * y[:, -1:] - xd[:, -1:]
        return y.astype(np.float32)
