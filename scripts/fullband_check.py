"""Full band above 16 kHz (README, "What happens to each rate"): the default model on data/regression resampled
to 22.05/44.1/48 kHz, PESQ/STOI scored at 16 kHz against the clean 16 kHz clip, with the input resampled by
soxr (which empties 7.5-8 kHz, as a user's own resampler may) and by FFT (band kept up to 8 kHz); then the
energy above 8 kHz kept for clean speech given a top band (its 4-8 kHz band moved up), and for white noise
added above 8 kHz.  Run from the repository root: ``OMP_NUM_THREADS=1 python3 scripts/fullband_check.py``
(with PYTHONPATH pointing at an older checkout to compare)."""
import numpy as np
import soundfile as sf
import soxr
import torch
from scipy import signal

torch.set_num_threads(1)
from se_app.enhancer import Enhancer
from se_app.metrics import scores
enh = Enhancer.load(None)
noisy, _ = sf.read("data/regression/noisy.wav", dtype="float32")
clean, _ = sf.read("data/regression/clean.wav", dtype="float32")
S = lambda y: "PESQ %.3f STOI %.3f" % tuple(scores(clean, y, 16000, ("pesq", "stoi")).values())
fft = lambda x, a, b: signal.resample(x, len(x) * b // a).astype(np.float32)
for rate in (16000, 22050, 44100, 48000):
    row = [str(rate)]
    for name, up in (("soxr", lambda x: soxr.resample(x, 16000, rate)), ("fft", lambda x: fft(x, 16000, rate))):
        x = noisy if rate == 16000 else up(noisy)
        y = enh.enhance(x, rate)
        row.append(f"{name}: " + S(y if rate == 16000 else soxr.resample(y, rate, 16000)))
    print(" | ".join(row), flush=True)
R = 48000


def band(x, lo, hi=R / 2):
    """x with only [lo, hi] Hz kept (FFT brick wall)."""
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / R)
    X[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(X, len(x)).astype(np.float32)


def high(x, lo=8500):
    return band(x, lo)


c48 = fft(clean, 16000, R); n48 = fft(noisy, 16000, R)
t = np.arange(len(c48)) / R
top = high(band(c48, 4000, 8000) * np.cos(2 * np.pi * 8000 * t).astype(np.float32))  # speech's 4-8 kHz band moved to 8.5-16 kHz
E = lambda x: float((high(x, 8000) ** 2).sum())
for name, x in (("clean speech + its top band shifted above 8 kHz", c48 + top),
                ("noisy clip + white noise above 8 kHz", n48 + high(0.01 * np.random.default_rng(0).standard_normal(len(n48)).astype(np.float32))),
                ("noisy clip + clean speech's top band above 8 kHz", n48 + top)):
    y = enh.enhance(x, R)
    print(f"{name}: energy above 8 kHz out/in {10 * np.log10(E(y) / E(x)):.1f} dB", flush=True)
