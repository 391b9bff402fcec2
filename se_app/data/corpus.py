"""The corpus: speech, noise and room impulse responses of one split, held in memory at 16 kHz.

The corpus comes from a manifest CSV (path, sample_rate, kind = speech|noise|rir, split = train|valid|test)
or from a speech folder plus a noise folder (split by a stable hash of the file name; no RIRs then).
Speech recorded at a lower rate is upsampled and remembers its band: the examples made from it carry
``band_bins`` so the loss ignores bins above that band.
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

from ..audio import AUDIO_EXTENSIONS

log = logging.getLogger(__name__)
RATE = 16000
BIN_HZ = RATE / 512
KINDS = ("speech", "noise", "rir")


@dataclass
class Clip:
    path: str
    audio: np.ndarray  # float32 mono at 16 kHz
    band_bins: int  # bins [0, band_bins) carry real content


def band_bins_of(cutoff_hz: float) -> int:
    """Bins that carry content below a cutoff: a resampler's roll-off starts about 5 % below it, so only
    bins under 95 % of the cutoff count (all 257 at 8 kHz and above)."""
    return 257 if cutoff_hz >= RATE / 2 else int(0.95 * cutoff_hz / BIN_HZ) + 1


def _bucket(name: str, buckets: int) -> int:
    """A stable pseudo-random bucket in [0, buckets) for a file name (the same on every machine and run)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % buckets


def _split_of(name: str) -> str:
    h = _bucket(name, 100)
    return "train" if h < 90 else ("valid" if h < 95 else "test")


def list_corpus(data: str | Path | None = None, split: str = "train", speech_dir: str | Path | None = None,
                noise_dir: str | Path | None = None) -> dict[str, list[tuple[Path, int]]]:
    """Files of one split: {"speech": [(path, rate)], "noise": [...], "rir": [...]}.  Only that split's files
    are listed, so training never opens valid or test recordings (RIRs included)."""
    out: dict[str, list[tuple[Path, int]]] = {k: [] for k in KINDS}
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
    return Clip(str(path), x, band_bins_of(sr / 2))


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
    """Load every listed file ({kind: [(path, rate)]} -> {kind: [Clip]}); a missing kind loads as empty."""
    return {k: [load_clip(p, r) for p, r in files.get(k, [])] for k in KINDS}
