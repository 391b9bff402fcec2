"""Training data: a corpus of speech and noise recordings and an on-the-fly noisy-speech mixer.

The corpus comes from a manifest CSV (path, sample_rate, kind = speech|noise, split = train|valid|test)
or from a speech folder plus a noise folder (split by a stable hash of the file name).  Everything is held
in memory at 16 kHz.  Speech recorded at a lower rate is upsampled and remembers its band: the examples
made from it carry ``band_bins`` so the loss ignores bins above that band.
"""
from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import lfilter

from .audio import AUDIO_EXTENSIONS

log = logging.getLogger(__name__)
RATE = 16000
BIN_HZ = RATE / 512


@dataclass
class Clip:
    path: str
    audio: np.ndarray  # float32 mono at 16 kHz
    band_bins: int  # bins [0, band_bins) carry real content


def _bucket(name: str, buckets: int) -> int:
    """A stable pseudo-random bucket in [0, buckets) for a file name (the same on every machine and run)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % buckets


def _split_of(name: str) -> str:
    h = _bucket(name, 100)
    return "train" if h < 90 else ("valid" if h < 95 else "test")


def list_corpus(data: str | Path | None = None, split: str = "train", speech_dir: str | Path | None = None,
                noise_dir: str | Path | None = None) -> dict[str, list[tuple[Path, int]]]:
    """Files of one split: {"speech": [(path, rate)], "noise": [...]}.  Only that split's files are listed,
    so training never opens valid or test recordings."""
    out: dict[str, list[tuple[Path, int]]] = {"speech": [], "noise": []}
    if data is not None:
        root = Path(data)
        manifest = root / "manifest.csv" if root.is_dir() else root
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f):
                if row["split"] == split and row["kind"] in out:
                    out[row["kind"]].append((manifest.parent / row["path"], int(row["sample_rate"])))
    for kind, folder in (("speech", speech_dir), ("noise", noise_dir)):
        if folder is None:
            continue
        for p in sorted(Path(folder).rglob("*")):
            if p.suffix.lower() in AUDIO_EXTENSIONS and _split_of(p.relative_to(folder).as_posix()) == split:
                out[kind].append((p, sf.info(str(p)).samplerate))
    if not out["speech"] or not out["noise"]:
        raise ValueError(f"no {split} speech or noise found (data={data}, speech={speech_dir}, noise={noise_dir})")
    return out


def load_clip(path: Path, rate: int) -> Clip:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    # Remove a constant DC offset: some recordings carry one (the humpback-whale noise sits at +0.36, 20-28 dB
    # above its sound), and SNRs set on power that includes DC would leave the audible noise far weaker than
    # the requested SNR (STFT bin 0 and every metric that removes the mean ignore it).
    x = x - x.mean(dtype=np.float64).astype(np.float32)
    if sr != RATE:
        x = soxr.resample(x, sr, RATE).astype(np.float32)
    # Upsampled speech is empty near and above its old Nyquist (the resampler's roll-off starts ~5 %
    # below it), so only bins below 95 % of that band count for it; full-rate speech uses every bin.
    band = 257 if sr >= RATE else int(0.95 * (sr / 2) / BIN_HZ) + 1
    return Clip(str(path), x, band)


def keep_fraction(clips: list[Clip], fraction: float) -> list[Clip]:
    """A fixed subset of about ``fraction`` of the clips (by a stable hash of the file name), for measuring
    how the scores depend on the amount of training data."""
    if fraction >= 1.0:
        return clips
    kept = [c for c in clips if _bucket(Path(c.path).name, 1000) < fraction * 1000]
    if not kept:
        raise ValueError(f"a fraction of {fraction} keeps none of {len(clips)} clips")
    return kept


def load_corpus(files: dict[str, list[tuple[Path, int]]]) -> dict[str, list[Clip]]:
    return {k: [load_clip(p, r) for p, r in v] for k, v in files.items()}


def _segment(x: np.ndarray, n: int, rng: np.random.Generator, loop: bool) -> np.ndarray:
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


def _noise_segment(x: np.ndarray, n: int, rng: np.random.Generator, speed: float) -> np.ndarray:
    """A looped noise segment of n samples; with ``speed`` > 1, half the time it is first resampled by a
    factor drawn log-uniformly from [1/speed, speed] (tempo and pitch together).  The noise corpus is 15 min
    in all, some recordings only seconds long: resampling makes new sounds of the same kind from them."""
    if speed <= 1.0 or rng.random() < 0.5:
        return _segment(x, n, rng, loop=True)
    r = float(np.exp(rng.uniform(-np.log(speed), np.log(speed))))
    seg = _segment(x, int(np.ceil(n * r)) + 16, rng, loop=True)
    y = soxr.resample(seg, RATE * r, RATE, quality="LQ")[:n]
    return np.pad(y, (0, n - len(y))).astype(np.float32)


def _random_eq(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random first-order tilt (+-6 dB across the band): microphones and rooms colour speech and noise."""
    a = rng.uniform(-0.5, 0.5)
    y = lfilter([1.0, -a], [1.0], x) / (1.0 + abs(a))
    return y.astype(np.float32)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) + 1e-12


@dataclass
class Example:
    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    snr_db: float
    band_bins: int
    noise_names: tuple[str, ...] = ()  # file stems of the noise recordings mixed in (for per-noise analysis)


class Mixer:
    """Draws noisy mixtures: a speech segment plus one or two noise segments at a random SNR and level."""

    def __init__(self, corpus: dict[str, list[Clip]], seconds: float = 4.0, snr_range=(-5.0, 20.0),
                 level_range=(-40.0, -12.0), eq: bool = True, noise_speed: float = 0.0):
        self.speech, self.noise = corpus["speech"], corpus["noise"]
        self.noise_speed = noise_speed
        self.n = int(seconds * RATE)
        self.snr_range, self.level_range, self.eq = snr_range, level_range, eq
        # Draw speech in proportion to length so long recordings are not under-used.
        lens = np.array([len(c.audio) for c in self.speech], float)
        self.speech_p = lens / lens.sum()

    def mix(self, rng: np.random.Generator, snr_db: float | None = None, speech: Clip | None = None,
            whole: bool = False) -> Example:
        """One mixture; ``whole`` uses the entire speech clip instead of a random segment."""
        clip = speech or self.speech[rng.choice(len(self.speech), p=self.speech_p)]
        n = len(clip.audio) if whole else self.n
        s = _segment(clip.audio, n, rng, loop=False)
        used = [self.noise[rng.integers(len(self.noise))]]
        noise = _noise_segment(used[0].audio, n, rng, self.noise_speed)
        if rng.random() < 0.3:
            used.append(self.noise[rng.integers(len(self.noise))])
            second = _noise_segment(used[-1].audio, n, rng, self.noise_speed)
            noise = noise + second * np.sqrt(power(noise) / power(second)) * 10 ** (rng.uniform(-10, 0) / 20)
        if self.eq:
            s, noise = _random_eq(s, rng), _random_eq(noise, rng)
        snr = float(rng.uniform(*self.snr_range)) if snr_db is None else float(snr_db)
        noise = noise * np.sqrt(power(s) / (power(noise) * 10 ** (snr / 10)))
        noisy = s + noise
        gain = 10 ** (rng.uniform(*self.level_range) / 20) / np.sqrt(power(noisy))
        peak = np.abs(noisy).max() * gain
        if peak > 0.99:
            gain *= 0.99 / peak
        return Example((noisy * gain).astype(np.float32), (s * gain).astype(np.float32),
                       (noise * gain).astype(np.float32), snr, clip.band_bins,
                       tuple(Path(c.path).stem for c in used))

    def batch(self, rng: np.random.Generator, size: int) -> list[Example]:
        return [self.mix(rng) for _ in range(size)]
