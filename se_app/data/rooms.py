"""Room impulse responses: the real RIRs of a split plus a bank of rooms simulated with pyroomacoustics.

The simulated bank is computed once (image sources up to order 3 plus ray tracing for the tail, so RT60s up to
1 s come out right in a fraction of a second each) and cached as an ``.npz`` file keyed by its seed and size,
so a resumed run and every step of a run reuse the same rooms.  Different splits use different seeds, so no
simulated room is shared between training, validation and the dev test set.

Every RIR is trimmed to start 1 ms before its direct sound (as the real ones in ``shared/data/rir`` are) and
scaled to unit peak, so convolving speech with it keeps the speech in place to within 1 ms.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .corpus import RATE

log = logging.getLogger(__name__)
SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}
EARLY_MS = 50.0  # early reflections: direct sound plus this much (the "early" training target)


def trim(h: np.ndarray) -> np.ndarray:
    """Start 1 ms before the direct sound (the first sample within 20 dB of the peak), unit peak."""
    h = np.asarray(h, np.float64)
    peak = np.abs(h).max()
    first = int(np.argmax(np.abs(h) >= 0.1 * peak))
    h = h[max(0, first - RATE // 1000):]
    return (h / peak).astype(np.float32)


def early_part(h: np.ndarray, ms: float = EARLY_MS) -> np.ndarray:
    """The direct sound and the reflections of the first ``ms`` after it, faded out over 5 ms."""
    direct = int(np.argmax(np.abs(h)))
    end = min(len(h), direct + int(ms * RATE / 1000))
    fade = min(end, int(0.005 * RATE))
    out = h[:end].copy()
    out[end - fade:] *= np.hanning(2 * fade)[fade:].astype(np.float32)
    return out


def simulate(rng: np.random.Generator, rt60_range=(0.1, 1.0)) -> np.ndarray:
    """One shoebox room: random size (3-10 x 3-8 x 2.5-4 m), RT60, source and microphone at least 0.5 m from
    the walls and 0.5 m apart.  Returns the trimmed RIR at 16 kHz."""
    import pyroomacoustics as pra

    while True:  # a large room cannot be as dry as a short RT60 asks (absorption > 1): draw again
        dim = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 4.0)])
        rt60 = float(rng.uniform(*rt60_range))
        try:
            absorption, _ = pra.inverse_sabine(rt60, dim)
            break
        except ValueError:
            continue
    # Ray tracing draws its rays from pyroomacoustics' own generators (numpy and C++), unseeded by default: the same
    # room came out different in each process, so a rebuilt dev test set differed.  Seed both from ``rng``.
    pra.random.seed(numpy=int(rng.integers(2**32)), libroom=int(rng.integers(2**63)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        room = pra.ShoeBox(dim, fs=RATE, materials=pra.Material(float(min(absorption, 0.99))), max_order=3,
                           ray_tracing=True, air_absorption=True)
        room.set_ray_tracing(receiver_radius=0.5, n_rays=2000, energy_thres=1e-5)
        while True:
            src, mic = (rng.uniform(0.5, dim - 0.5) for _ in range(2))
            if np.linalg.norm(src - mic) >= 0.5:
                break
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
    return trim(room.rir[0][0])


# Bumped when the simulation changes, so that a bank cached by an older version is not reused (v2: seeded ray tracing).
BANK_VERSION = 2


def default_cache() -> Path:
    """Where simulated room banks are cached: $SE_APP_CACHE, else ~/.cache/se_app."""
    return Path(os.environ.get("SE_APP_CACHE") or Path.home() / ".cache" / "se_app")


def simulated_bank(count: int, split: str, cache_dir: str | Path | None = None) -> list[np.ndarray]:
    """``count`` simulated RIRs for a split (seeded by the split), from the cache when it holds them."""
    if count <= 0:
        return []
    seed = SPLIT_SEEDS[split]
    path = Path(cache_dir) / f"rooms-{split}-{seed}-{count}-v{BANK_VERSION}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return [z[k] for k in sorted(z.files, key=int)]
    rng = np.random.default_rng([seed, 5150])
    bank = [simulate(rng) for _ in range(count)]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{str(i): h for i, h in enumerate(bank)})
    log.info("simulated %d %s rooms%s", count, split, f" (cached in {path})" if path else "")
    return bank


def rt60(h: np.ndarray) -> float:
    """Reverberation time from the Schroeder decay (T20, extrapolated to 60 dB); NaN if it never decays 25 dB."""
    e = np.cumsum(np.square(h[::-1], dtype=np.float64))[::-1]
    db = 10 * np.log10(e / e[0] + 1e-30)
    i5, i25 = np.argmax(db <= -5), np.argmax(db <= -25)
    if db[-1] > -25 or i25 <= i5:
        return float("nan")
    return 3.0 * (i25 - i5) / RATE
