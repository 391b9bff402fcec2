"""The on-the-fly noisy-speech mixer: speech plus noise at a random SNR and level, with reverberation,
band-limited (telephone) mixtures, babble and mild clipping for a chosen share of examples.

The training target is ``Example.clean``: the dry speech, the reverberant speech as the microphone hears it,
or the speech with only its early reflections (``MixConfig.target``).  ``Example.noise`` is everything else in
the mixture (noise, late reverberation, clipping), so ``noisy == clean + noise`` always holds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from . import augment, rooms
from .corpus import RATE, Clip, band_bins_of

TARGETS = ("reverb", "early", "dry")


@dataclass(frozen=True)
class MixConfig:
    """Shares of examples that get each augmentation (0 = never), and the training target under reverb."""

    reverb: float = 0.0  # speech convolved with a room impulse response
    noise_reverb: float = 0.5  # of the reverberant examples: noise convolved too (with another RIR)
    real_rir: float = 0.5  # chance of a real RIR of the split when simulated rooms exist too
    target: str = "reverb"  # what the model should output under reverb: "reverb", "early" (first 50 ms), "dry"
    bandlimit: float = 0.0  # the whole mixture low-passed as a resampler leaves it
    telephone: float = 0.5  # of the band-limited 16 kHz examples: telephone band (8 kHz); else 4-8 kHz cutoff
    babble: float = 0.0  # the first noise replaced by babble of 3-6 other talkers
    clipping: float = 0.0  # the mixture hard-clipped on its loudest 0.1-1 % of samples

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; expected one of {TARGETS}")

    @classmethod
    def from_dict(cls, d: dict) -> "MixConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Example:
    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    snr_db: float
    band_bins: int
    noise_names: tuple[str, ...] = ()  # file stems of the noise recordings mixed in (for per-noise analysis)
    tags: tuple[str, ...] = ()  # augmentations applied: "reverb", "band:<Hz>", "babble", "clip"


class Mixer:
    """Draws noisy mixtures from a corpus ({"speech", "noise", "rir"} clips) and optional simulated rooms."""

    def __init__(self, corpus: dict[str, list[Clip]], seconds: float = 4.0, snr_range=(-5.0, 20.0),
                 level_range=(-40.0, -12.0), eq: bool = True, noise_speed: float = 0.0,
                 mix: MixConfig | None = None, simulated_rirs: list[np.ndarray] | None = None):
        self.speech, self.noise = corpus["speech"], corpus["noise"]
        self.real_rirs = [rooms.trim(c.audio) for c in corpus.get("rir", [])]
        self.sim_rirs = list(simulated_rirs or [])
        self.noise_speed = noise_speed
        self.n = int(seconds * RATE)
        self.snr_range, self.level_range, self.eq = snr_range, level_range, eq
        self.cfg = mix or MixConfig()
        if self.cfg.reverb > 0 and not (self.real_rirs or self.sim_rirs):
            raise ValueError("reverberation was asked for but the corpus has no RIRs and no rooms were simulated")
        # Draw speech in proportion to length so long recordings are not under-used.
        lens = np.array([len(c.audio) for c in self.speech], float)
        self.speech_p = lens / lens.sum()

    def _rir(self, rng: np.random.Generator) -> np.ndarray:
        real = self.real_rirs and (not self.sim_rirs or rng.random() < self.cfg.real_rir)
        bank = self.real_rirs if real else self.sim_rirs
        return bank[rng.integers(len(bank))]

    def _noise(self, n: int, rng: np.random.Generator, tags: list[str]) -> tuple[np.ndarray, list[str]]:
        if self.cfg.babble > 0 and rng.random() < self.cfg.babble:
            noise, used = augment.babble(self.speech, self.speech_p, n, rng), ["babble"]
            tags.append("babble")
        else:
            clip = self.noise[rng.integers(len(self.noise))]
            noise, used = augment.noise_segment(clip.audio, n, rng, self.noise_speed), [Path(clip.path).stem]
        if rng.random() < 0.3:
            clip = self.noise[rng.integers(len(self.noise))]
            used.append(Path(clip.path).stem)
            second = augment.noise_segment(clip.audio, n, rng, self.noise_speed)
            noise = noise + second * np.sqrt(augment.power(noise) / augment.power(second)) * 10 ** (rng.uniform(-10, 0) / 20)
        return noise, used

    def mix(self, rng: np.random.Generator, snr_db: float | None = None, speech: Clip | None = None,
            whole: bool = False) -> Example:
        """One mixture; ``whole`` uses the entire speech clip instead of a random segment."""
        cfg, tags = self.cfg, []
        clip = speech or self.speech[rng.choice(len(self.speech), p=self.speech_p)]
        n = len(clip.audio) if whole else self.n
        s = augment.segment(clip.audio, n, rng, loop=False)
        noise, used = self._noise(n, rng, tags)
        if self.eq:
            s, noise = augment.random_eq(s, rng), augment.random_eq(noise, rng)
        target = s
        if cfg.reverb > 0 and rng.random() < cfg.reverb:
            h = self._rir(rng)
            tags.append("reverb")
            dry, s = s, augment.convolve(s, h)
            target = {"reverb": s, "dry": dry, "early": augment.convolve(dry, rooms.early_part(h))}[cfg.target]
            if rng.random() < cfg.noise_reverb:
                noise = augment.convolve(noise, self._rir(rng))
        snr = float(rng.uniform(*self.snr_range)) if snr_db is None else float(snr_db)
        noise = noise * np.sqrt(augment.power(s) / (augment.power(noise) * 10 ** (snr / 10)))
        noisy = s + noise
        band = clip.band_bins
        if cfg.bandlimit > 0 and rng.random() < cfg.bandlimit:
            narrow = clip.band_bins <= band_bins_of(RATE / 4)
            cutoff = 4000.0 if narrow or rng.random() < cfg.telephone else float(rng.uniform(4000, 8000))
            noisy, target = augment.band_limit(noisy, cutoff), augment.band_limit(target, cutoff)
            band = min(band, band_bins_of(cutoff))
            tags.append(f"band:{cutoff:.0f}")
        if cfg.clipping > 0 and rng.random() < cfg.clipping:
            noisy = augment.clip_mildly(noisy, rng)
            tags.append("clip")
        gain = 10 ** (rng.uniform(*self.level_range) / 20) / np.sqrt(augment.power(noisy))
        peak = np.abs(noisy).max() * gain
        if peak > 0.99:
            gain *= 0.99 / peak
        noisy, target = (noisy * gain).astype(np.float32), (target * gain).astype(np.float32)
        return Example(noisy, target, noisy - target, snr, band, tuple(used), tuple(tags))

    def batch(self, rng: np.random.Generator, size: int) -> list[Example]:
        return [self.mix(rng) for _ in range(size)]
