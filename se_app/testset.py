"""The dev test set (v2): every test-split utterance in three conditions (studio, reverberant room, telephone
band) at several SNRs, with test-split noise, RIRs and simulated rooms.

Layout (shared with anyone's noisy/clean folder pairs): ``DIR/noisy/NAME.wav`` and ``DIR/clean/NAME.wav``
with the same names; NAME ends in ``_snr{SNR}`` so scores can be grouped by SNR.  ``DIR/pairs.csv`` (optional,
written by the builder) names the speech and noise recordings and the condition behind each pair, so scores can
be grouped by noise and by condition too.
"""
from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from . import audio, data

log = logging.getLogger(__name__)
SNR_RE = re.compile(r"_snr(-?\d+(?:\.\d+)?)$")
PAIRS_CSV = "pairs.csv"


def _recording(stem: str) -> str:
    """'humpback-whale__test' -> 'humpback-whale' (the corpus names its split cuts NAME__SPLIT)."""
    return re.sub(r"__(train|valid|test)$", "", stem)


def _listing(testset: str | Path) -> list[dict]:
    """The rows of DIR/pairs.csv; none when there is no such file."""
    path = Path(testset) / PAIRS_CSV
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def noise_of(testset: str | Path) -> dict[str, str]:
    """File name -> the (first) noise recording behind it, from DIR/pairs.csv; empty when there is none."""
    return {r["name"]: r["noise"].split("+")[0] for r in _listing(testset)}


def snr_of(name: str) -> str:
    """The SNR label encoded in a test file name ('-5', '0', ...), or 'all' when there is none."""
    m = SNR_RE.search(Path(name).stem)
    return m.group(1) if m else "all"


CONDITIONS = ("clean", "reverb", "tel")  # studio speech + noise; in a room (test RIRs); 8 kHz telephone band
TEL_RATE = 8000


def speech_of(testset: str | Path) -> dict[str, str]:
    """File name -> the speech recording it was made from, from DIR/pairs.csv; empty when there is none."""
    return {r["name"]: r["speech"] for r in _listing(testset) if r.get("speech")}


def condition_of(testset: str | Path) -> dict[str, str]:
    """File name -> its condition, from DIR/pairs.csv; empty when there is none (or it has no such column)."""
    return {r["name"]: r["condition"] for r in _listing(testset) if r.get("condition")}


def excerpt(clip: data.Clip, seconds: float, rng: np.random.Generator) -> tuple[data.Clip, float]:
    """At most ``seconds`` of a long recording, cut at its quietest 20 ms frames near both ends of a randomly
    placed window, so the excerpt starts and ends in a pause rather than inside a word."""
    n, x = int(seconds * data.RATE), clip.audio
    if len(x) <= n:
        return clip, 0.0
    hop, edge = data.RATE // 50, data.RATE  # 20 ms frames; search the first and last second of the window
    start = int(rng.integers(0, len(x) - n + 1))
    w = x[start:start + n]
    energy = np.array([float(np.sum(w[i:i + hop] ** 2)) for i in range(0, n - hop + 1, hop)])
    k = edge // hop
    a = int(np.argmin(energy[:k])) * hop
    b = (len(energy) - k + int(np.argmin(energy[-k:]))) * hop + hop
    return data.Clip(clip.path, w[a:b].copy(), clip.band_bins), (start + a) / data.RATE


def _mixers(corpus: dict, split: str, rooms_cache: str | Path | None, sim_rooms: int) -> dict[str, data.Mixer]:
    """One mixer per condition, all on the same split's speech and noise, no EQ, mixtures at -25 dBFS +-5 dB."""
    common = dict(eq=False, level_range=(-30.0, -20.0))
    sim = data.rooms.simulated_bank(sim_rooms, split, rooms_cache or data.rooms.default_cache()) if sim_rooms else []
    if not corpus.get("rir") and not sim:
        raise ValueError(f"the reverb condition needs {split}-split RIRs or simulated rooms")
    return {
        "clean": data.Mixer(corpus, **common),
        # speech and noise both in a room (another position for the noise); the reference keeps the room, as a
        # recording made in one does
        "reverb": data.Mixer(corpus, **common, simulated_rirs=sim,
                             mix=data.MixConfig(reverb=1.0, noise_reverb=1.0, real_rir=0.5, target="reverb")),
        "tel": data.Mixer(corpus, **common, mix=data.MixConfig(bandlimit=1.0, telephone=1.0)),
    }


def make_testset(out_dir: str | Path, data_root: str | None = None, split: str = "test",
                 snrs=(-5, 0, 5, 10), seed: int = 0, speech_dir: str | None = None,
                 noise_dir: str | None = None, progress: bool = True, conditions=CONDITIONS,
                 snrs_per_utterance: int | None = 2, max_seconds: float = 10.0, sim_rooms: int = 20,
                 rooms_cache: str | Path | None = None) -> int:
    """Write the pairs (dev test set v2); returns how many.

    Every test-split utterance (long recordings cut to one excerpt of at most ``max_seconds``) appears in every
    condition; each utterance takes ``snrs_per_utterance`` of the SNRs in rotation (None: all of them), so each
    SNR gets the same number of utterances.  Conditions: ``clean`` (speech + noise), ``reverb`` (speech and noise
    convolved with the split's real RIRs or its simulated rooms; reference = reverberant speech), ``tel`` (the
    whole mixture in the telephone band, written at 8 kHz, scored with narrow-band PESQ).  16-bit PCM WAV."""
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown conditions {sorted(unknown)}; expected some of {CONDITIONS}")
    corpus = data.load_corpus(data.list_corpus(data_root, split, speech_dir, noise_dir))
    mixers = _mixers(corpus, split, rooms_cache, sim_rooms if "reverb" in conditions else 0)
    out = Path(out_dir)
    listing = []
    k = len(snrs) if snrs_per_utterance is None else min(snrs_per_utterance, len(snrs))
    step = max(1, len(snrs) // k)
    for i, whole in enumerate(tqdm(corpus["speech"], desc="make-testset", disable=not progress)):
        clip, start_s = excerpt(whole, max_seconds, np.random.default_rng([seed, i, 77]))
        stem = Path(whole.path).stem
        mine = [snrs[(i + j * step) % len(snrs)] for j in range(k)]
        for cond in conditions:
            for snr in mine:
                rng = np.random.default_rng([seed, i, int(round(snr * 10)) + 1000, CONDITIONS.index(cond)])
                ex = mixers[cond].mix(rng, snr_db=snr, speech=clip, whole=True)
                noisy, clean, rate = ex.noisy, ex.clean, data.RATE
                if cond == "tel":  # as a telephone line delivers it: 8 kHz samples
                    noisy, clean = (soxr.resample(x, data.RATE, TEL_RATE) for x in (noisy, clean))
                    rate = TEL_RATE
                name = f"{stem}_{cond}_snr{snr:g}.wav"
                audio.write(out / "noisy" / name, noisy, rate, subtype="PCM_16", fmt="WAV")
                audio.write(out / "clean" / name, clean, rate, subtype="PCM_16", fmt="WAV")
                listing.append({"name": name, "speech": stem, "start_s": f"{start_s:.2f}", "noise": "+".join(map(_recording, ex.noise_names)),
                                "snr_db": f"{snr:g}", "condition": cond, "rate": rate,
                                "seconds": f"{len(clip.audio) / data.RATE:.2f}"})
    out.mkdir(parents=True, exist_ok=True)
    with open(out / PAIRS_CSV, "w", newline="") as f:
        w = csv.DictWriter(f, ["name", "speech", "start_s", "seconds", "noise", "snr_db", "condition", "rate"])
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
