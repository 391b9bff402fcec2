"""Full-band enhancement of inputs above the model rate: a band split at the model's Nyquist frequency.

An input at ``rate`` > 16 kHz is split into the model band and the rest:

- the model band is resampled to 16 kHz by :class:`WideDown`, whose pass band reaches 7.8 kHz (-6 dB at
  8 kHz), so the model's top STFT bins hold the signal as they do at 16 kHz (soxr's anti-alias roll-off
  empties 7.5-8 kHz, and the model, never trained on such input, then lost 0.16 PESQ and 0.05 STOI);
- the residual ``x - up(down(x))`` at the input rate (everything above ~7.5 kHz) is kept and, frame by
  frame (32 ms, 16 ms hop, square-root Hann overlap-add), multiplied by the gain the model gave its own
  top band: sqrt(enhanced / noisy energy in 4-7.4 kHz), limited to [floor, 1].  Noise above 8 kHz is
  lowered where the model lowers its top band, speech there is kept where the model keeps it, and a mask
  of 1 gives back the input exactly.

Inputs at or below the model rate go through soxr both ways, as before (nothing above the model band).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft
from scipy import signal

from .audio import Resampler

TOP_BAND_HZ = (4000.0, 7400.0)  # the model's top band whose gain the residual above it follows
HOP_S = 0.016  # frames of the high-band gain: 2 hops long, like the model's STFT
WIDE_CUTOFF_HZ, WIDE_WIDTH_HZ = 8000.0, 400.0  # WideDown's -6 dB point and transition width


@functools.lru_cache(maxsize=8)
def _wide_filter(in_rate: int, out_rate: int) -> tuple[int, int, np.ndarray]:
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    cutoff, width = out_rate / 2 * WIDE_CUTOFF_HZ / 8000, out_rate / 2 * WIDE_WIDTH_HZ / 8000
    taps, beta = signal.kaiserord(60.0, width / (in_rate * up / 2))
    h = signal.firwin(taps | 1, cutoff, window=("kaiser", beta), fs=in_rate * up)
    return up, down, h.astype(np.float32)


class WideDown:
    """Streaming polyphase resampler ``in_rate`` -> ``out_rate`` (< in_rate) for (N, C) blocks, with its
    pass band up to 0.975 of the output Nyquist and 60 dB stop band from 1.025 of it.  Output sample k is
    input time k / out_rate (no delay), as with soxr; the output lags the input by a few ms until ``last``."""

    def __init__(self, in_rate: int, out_rate: int, channels: int):
        self.up, self.down, self.h = _wide_filter(in_rate, out_rate)
        half = (len(self.h) - 1) // 2 // self.up + 1  # filter half-length in input samples
        self.pad = -(-half // self.down) * self.down  # context each side, a whole number of `down`
        self.buf = np.zeros((self.pad, channels), np.float32)  # input from index pos - pad on
        self.seen, self.made = 0, 0  # input frames received, output frames returned

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        self.buf = np.concatenate([self.buf, x.astype(np.float32, copy=False)])
        self.seen += len(x)
        n = len(self.buf) - 2 * self.pad  # input frames whose output can be made now
        if last:
            n = -(-(len(self.buf) - self.pad) // self.down) * self.down
            self.buf = np.concatenate([self.buf, np.zeros((n + 2 * self.pad - len(self.buf), self.buf.shape[1]),
                                                          np.float32)])
        n = max(0, n // self.down * self.down)
        if n == 0:
            return np.zeros((0, self.buf.shape[1]), np.float32)
        y = signal.resample_poly(self.buf[: n + 2 * self.pad], self.up, self.down, axis=0, window=self.h)
        k0 = self.pad * self.up // self.down
        y = y[k0: k0 + n * self.up // self.down]
        if last:  # exactly ceil(seen * up / down) frames in all
            y = y[: -(-self.seen * self.up // self.down) - self.made]
        self.buf = self.buf[n:]
        self.made += len(y)
        return y.astype(np.float32)


class HighBand:
    """Output at the input rate: low_out + g * (x - low_in), g per frame from the top band of the model.

    Feed the three aligned signals (any block sizes) with :meth:`push`; it returns the output finished so
    far (it lags one hop behind the shortest of them); :meth:`push` with ``last`` returns the rest."""

    def __init__(self, rate: int, channels: int, floor: float = 0.0):
        self.hop = max(1, round(rate * HOP_S))
        n = 2 * self.hop
        self.win = np.sqrt(np.hanning(n + 1)[:n]).astype(np.float32)[None, :, None]  # periodic: w^2 sums to 1
        self.n_fft = scipy.fft.next_fast_len(n, real=True)  # 2 x 706 at 44.1 kHz holds a prime factor 353
        f = np.fft.rfftfreq(self.n_fft, 1 / rate)
        self.band = (f >= TOP_BAND_HZ[0]) & (f <= TOP_BAND_HZ[1])
        self.floor = floor
        z = np.zeros((self.hop, channels), np.float32)  # frames start one hop early: every sample gets two
        self.bufs = {"x": z, "low_in": z.copy(), "low_out": z.copy()}
        self.acc = np.zeros((self.hop, channels), np.float32)
        self.skip = self.hop  # the first hop of output lies before the signal

    def _energy(self, frames: np.ndarray) -> np.ndarray:
        spec = scipy.fft.rfft(frames * self.win, n=self.n_fft, axis=1)[:, self.band]
        return (spec.real ** 2 + spec.imag ** 2).sum(axis=1)

    def push(self, last: bool = False, **signals: np.ndarray) -> np.ndarray:
        """signals: some of x, low_in, low_out, each (N, C) float32 continuing what was pushed before."""
        for k, v in signals.items():
            self.bufs[k] = np.concatenate([self.bufs[k], v.astype(np.float32, copy=False)])
        h, b = self.hop, self.bufs
        if last:  # pad all to a whole number of hops plus one frame
            end = -(-max(len(v) for v in b.values()) // h) * h + h
            b = self.bufs = {k: np.pad(v, ((0, end - len(v)), (0, 0))) for k, v in b.items()}
        k = (min(len(v) for v in b.values()) - h) // h  # complete frames
        if k <= 0:
            return np.zeros((0, self.acc.shape[1]), np.float32)

        def frames(v: np.ndarray) -> np.ndarray:  # (k, 2h, C)
            return v[: (k + 1) * h].reshape(k + 1, h, -1)[np.arange(k)[:, None] + [0, 1]].reshape(k, 2 * h, -1)

        fx, fi, fo = frames(b["x"]), frames(b["low_in"]), frames(b["low_out"])
        eps = 1e-12 * h
        g = np.clip(np.sqrt((self._energy(fo) + eps) / (self._energy(fi) + eps)), self.floor, 1.0)
        out = self.win ** 2 * (fo + g[:, None, :].astype(np.float32) * (fx - fi))  # analysis x synthesis window
        y = out[:, :h] + np.concatenate([self.acc[None], out[:-1, h:]])
        self.acc = out[-1, h:]
        self.bufs = {key: v[k * h:] for key, v in b.items()}
        y = y.reshape(k * h, -1)
        drop, self.skip = min(self.skip, len(y)), self.skip - min(self.skip, len(y))
        return y[drop:]


class BandSplit:
    """The resampling around the model: :meth:`analysis` turns input blocks (N, C) at ``in_rate`` into the
    model's input at ``model_rate``; :meth:`synthesis` turns the model's output (aligned with that input)
    back into output at ``in_rate``, full band above the model rate (see the module docstring)."""

    def __init__(self, in_rate: int, model_rate: int, channels: int, floor: float = 0.0):
        self.wide = in_rate > model_rate
        self.to_model = WideDown(in_rate, model_rate, channels) if self.wide else Resampler(in_rate, model_rate,
                                                                                            channels)
        self.from_model = Resampler(model_rate, in_rate, channels)
        if self.wide:
            self.ref = Resampler(model_rate, in_rate, channels)  # the model band of the input, at in_rate
            self.high = HighBand(in_rate, channels, floor)

    def analysis(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        """(N, C) at in_rate -> (M, C) at the model rate, to enhance."""
        xm = self.to_model(x, last=last)
        if self.wide:
            self.high.push(x=x, low_in=self.ref(xm, last=last))
        return xm

    def synthesis(self, y: np.ndarray, last: bool = False) -> np.ndarray:
        """(M, C) enhanced at the model rate -> (N', C) at in_rate; with ``last`` after analysis's ``last``,
        the whole output has been returned."""
        out = self.from_model(y, last=last)
        return self.high.push(last=last, low_out=out) if self.wide else out
