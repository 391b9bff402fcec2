"""The dev test set: every test-split speech utterance at every SNR with test-split noise.

Layout (shared with anyone's noisy/clean folder pairs): ``DIR/noisy/NAME.wav`` and ``DIR/clean/NAME.wav``
with the same names; NAME ends in ``_snr{SNR}`` so scores can be grouped by SNR.  ``DIR/pairs.csv`` (optional,
written by the builder) names the speech and noise recordings behind each pair, so scores can be grouped by
noise too.
"""
from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import audio, data

log = logging.getLogger(__name__)
SNR_RE = re.compile(r"_snr(-?\d+(?:\.\d+)?)$")
PAIRS_CSV = "pairs.csv"


def _recording(stem: str) -> str:
    """'humpback-whale__test' -> 'humpback-whale' (the corpus names its split cuts NAME__SPLIT)."""
    return re.sub(r"__(train|valid|test)$", "", stem)


def noise_of(testset: str | Path) -> dict[str, str]:
    """File name -> the (first) noise recording behind it, from DIR/pairs.csv; empty when there is none."""
    path = Path(testset) / PAIRS_CSV
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {r["name"]: r["noise"].split("+")[0] for r in csv.DictReader(f)}


def snr_of(name: str) -> str:
    """The SNR label encoded in a test file name ('-5', '0', ...), or 'all' when there is none."""
    m = SNR_RE.search(Path(name).stem)
    return m.group(1) if m else "all"


def make_testset(out_dir: str | Path, data_root: str | None = None, split: str = "test",
                 snrs=(-5, 0, 5, 10), seed: int = 0, speech_dir: str | None = None,
                 noise_dir: str | None = None, progress: bool = True) -> int:
    """Write the pairs; returns how many.  Mixtures are at -25 dBFS +-5 dB, 16-bit PCM at 16 kHz."""
    corpus = data.load_corpus(data.list_corpus(data_root, split, speech_dir, noise_dir))
    mixer = data.Mixer(corpus, eq=False, level_range=(-30.0, -20.0))
    out = Path(out_dir)
    listing = []
    for i, clip in enumerate(tqdm(corpus["speech"], desc="make-testset", disable=not progress)):
        stem = Path(clip.path).stem
        for snr in snrs:
            rng = np.random.default_rng([seed, i, int(round(snr * 10)) + 1000])
            ex = mixer.mix(rng, snr_db=snr, speech=clip, whole=True)
            name = f"{stem}_snr{snr:g}.wav"
            audio.write(out / "noisy" / name, ex.noisy, data.RATE, subtype="PCM_16", fmt="WAV")
            audio.write(out / "clean" / name, ex.clean, data.RATE, subtype="PCM_16", fmt="WAV")
            listing.append({"name": name, "speech": stem, "noise": "+".join(map(_recording, ex.noise_names)),
                            "snr_db": f"{snr:g}"})
    out.mkdir(parents=True, exist_ok=True)
    with open(out / PAIRS_CSV, "w", newline="") as f:
        w = csv.DictWriter(f, ["name", "speech", "noise", "snr_db"])
        w.writeheader()
        w.writerows(listing)
    count = len(listing)
    log.info("wrote %d noisy/clean pairs to %s", count, out)
    return count


def pairs(testset: str | Path) -> list[tuple[Path, Path]]:
    """(noisy, clean) files with matching names under DIR/noisy and DIR/clean."""
    root = Path(testset)
    noisy_dir, clean_dir = root / "noisy", root / "clean"
    if not noisy_dir.is_dir() or not clean_dir.is_dir():
        raise FileNotFoundError(f"{root}: expected folders noisy/ and clean/ with matching file names")
    out = []
    for f in sorted(noisy_dir.rglob("*")):
        if f.suffix.lower() in audio.AUDIO_EXTENSIONS:
            c = clean_dir / f.relative_to(noisy_dir)
            if c.exists():
                out.append((f, c))
            else:
                log.warning("%s has no clean reference %s; left out", f, c)
    if not out:
        raise ValueError(f"{root}: no noisy/clean pairs found")
    return out
