"""Objective scores: PESQ (wide-band at 16 kHz, narrow-band at 8 kHz), STOI, ESTOI and SI-SDR.

Like asteroid's ``get_metrics``: scores of the noisy input, of the enhanced output, and their improvement.
A file PESQ rejects (too short, silent, no utterance found) scores NaN for PESQ, and is counted, not fatal.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import soxr

log = logging.getLogger(__name__)
METRICS = ("pesq", "stoi", "estoi", "si_sdr")


def mean_pesq_stoi(cleans, estimates, rate: int) -> tuple[float, float]:
    """Mean PESQ and STOI over pairs (NaN PESQ of rejected files left out of the mean)."""
    pairs = list(zip(cleans, estimates))
    pesq = np.nanmean([pesq_score(c, y, rate) for c, y in pairs])
    stoi = np.nanmean([stoi_score(c, y, rate) for c, y in pairs])
    return float(pesq), float(stoi)


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), zero-mean signals."""
    ref = ref.astype(np.float64) - ref.mean()
    est = est.astype(np.float64) - est.mean()
    alpha = np.dot(est, ref) / (np.dot(ref, ref) + 1e-12)
    target = alpha * ref
    noise = est - target
    return float(10 * np.log10((np.dot(target, target) + 1e-12) / (np.dot(noise, noise) + 1e-12)))


def pesq_score(ref: np.ndarray, est: np.ndarray, rate: int) -> float:
    """PESQ: wide-band at 16 kHz, narrow-band at 8 kHz; other rates are resampled to 16 kHz first."""
    from pesq import pesq

    if rate not in (8000, 16000):
        ref, est, rate = soxr.resample(ref, rate, 16000), soxr.resample(est, rate, 16000), 16000
    mode = "wb" if rate == 16000 else "nb"
    try:
        return float(pesq(rate, ref.astype(np.float64), est.astype(np.float64), mode))
    except Exception as e:  # pesq raises for silence / too-short input: a NaN, reported by the caller
        log.debug("PESQ rejected a file: %s", e)
        return math.nan


def stoi_score(ref: np.ndarray, est: np.ndarray, rate: int, extended: bool = False) -> float:
    from pystoi import stoi

    try:
        return float(stoi(ref.astype(np.float64), est.astype(np.float64), rate, extended=extended))
    except Exception as e:
        log.debug("STOI failed: %s", e)
        return math.nan


def scores(ref: np.ndarray, est: np.ndarray, rate: int, which=METRICS) -> dict[str, float]:
    """Scores of one mono estimate against its mono reference (same length)."""
    n = min(len(ref), len(est))
    ref, est = ref[:n], est[:n]
    out = {}
    for m in which:
        if m == "pesq":
            out[m] = pesq_score(ref, est, rate)
        elif m == "stoi":
            out[m] = stoi_score(ref, est, rate)
        elif m == "estoi":
            out[m] = stoi_score(ref, est, rate, extended=True)
        elif m == "si_sdr":
            out[m] = si_sdr(ref, est)
        else:
            raise ValueError(f"unknown metric {m!r}")
    return out


def get_metrics(noisy: np.ndarray, clean: np.ndarray, enhanced: np.ndarray, rate: int,
                which=METRICS) -> dict[str, float]:
    """{input_X, X, X_improvement} for each metric X, as asteroid reports them."""
    before, after = scores(clean, noisy, rate, which), scores(clean, enhanced, rate, which)
    out = {}
    for m in which:
        out[f"input_{m}"] = before[m]
        out[m] = after[m]
        out[f"{m}_improvement"] = after[m] - before[m]
    return out
