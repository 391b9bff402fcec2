"""Signal-level augmentations used by the mixer: segments, noise resampling, EQ, band limits, babble,
clipping and reverberation.  Every function takes its randomness from the generator it is given."""
from __future__ import annotations

import numpy as np
import soxr
from scipy.signal import fftconvolve, lfilter

from .corpus import RATE, Clip


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) + 1e-12


def segment(x: np.ndarray, n: int, rng: np.random.Generator, loop: bool) -> np.ndarray:
    """n samples of x from a random start; a short x is looped (``loop``) or placed at random in silence."""
    if len(x) >= n:
        start = rng.integers(0, len(x) - n + 1)
        return x[start:start + n].copy()
    if loop:
        reps = -(-n // len(x)) + 1
        y = np.tile(x, reps)
        start = rng.integers(0, len(x))
        return y[start:start + n].copy()
    y = np.zeros(n, np.float32)
    start = rng.integers(0, n - len(x) + 1)
    y[start:start + len(x)] = x
    return y


def noise_segment(x: np.ndarray, n: int, rng: np.random.Generator, speed: float) -> np.ndarray:
    """A looped noise segment of n samples; with ``speed`` > 1, half the time it is first resampled by a
    factor drawn log-uniformly from [1/speed, speed] (tempo and pitch together)."""
    if speed <= 1.0 or rng.random() < 0.5:
        return segment(x, n, rng, loop=True)
    r = float(np.exp(rng.uniform(-np.log(speed), np.log(speed))))
    seg = segment(x, int(np.ceil(n * r)) + 16, rng, loop=True)
    y = soxr.resample(seg, RATE * r, RATE, quality="LQ")[:n]
    return np.pad(y, (0, n - len(y))).astype(np.float32)


def random_eq(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random first-order tilt (+-6 dB across the band): microphones and rooms colour speech and noise."""
    a = rng.uniform(-0.5, 0.5)
    y = lfilter([1.0, -a], [1.0], x) / (1.0 + abs(a))
    return y.astype(np.float32)


def band_limit(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """x as a resampler leaves it: down to 2 x cutoff and back up to 16 kHz (same length)."""
    if cutoff_hz >= RATE / 2:
        return x
    low = int(round(2 * cutoff_hz))
    y = soxr.resample(soxr.resample(x, RATE, low), low, RATE)
    out = np.zeros_like(x)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def babble(speech: list[Clip], probs: np.ndarray, n: int, rng: np.random.Generator,
           talkers=(3, 7)) -> np.ndarray:
    """Babble: the sum of 3-6 speech segments of other talkers (train split), each at its own level within
    +-3 dB.  The caller picks the clips' split, so babble never carries valid or test speech into training."""
    out = np.zeros(n, np.float64)
    for _ in range(int(rng.integers(*talkers))):
        clip = speech[rng.choice(len(speech), p=probs)]
        s = segment(clip.audio, n, rng, loop=True)
        out += s / np.sqrt(power(s)) * 10 ** (rng.uniform(-3, 3) / 20)
    return out.astype(np.float32)


def clip_mildly(x: np.ndarray, rng: np.random.Generator, share=(0.001, 0.01)) -> np.ndarray:
    """Hard-clip the loudest 0.1-1 % of samples (a recorder driven slightly too hot)."""
    q = 1.0 - rng.uniform(*share)
    t = float(np.quantile(np.abs(x), q))
    return np.clip(x, -t, t) if t > 0 else x


def convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """x convolved with an RIR, cut to len(x) (the RIR starts at its direct sound, so x stays in place)."""
    return fftconvolve(x, h)[: len(x)].astype(np.float32)
