"""What the web UI shows about a result: scores against the clean reference (or DNSMOS without one) and
spectrograms.  Plain functions of arrays (no request state), drawn on fresh Figures so that concurrent requests
share nothing."""
from __future__ import annotations

import math
from pathlib import Path

import gradio as gr
import numpy as np
import soxr
from matplotlib.figure import Figure

from . import dnsmos, metrics

DNSMOS_HEADERS = ["signal", "DNSMOS SIG", "DNSMOS BAK", "DNSMOS OVRL"]


def _spectrogram_db(x: np.ndarray, rate: int) -> np.ndarray:
    """Power spectrogram in dB (freq, frames) of (N, C) audio's channel mean; the hop grows with the length so
    long clips stay cheap to draw."""
    n_fft = 2 ** max(8, round(math.log2(rate * 0.032)))
    x = np.pad(x.mean(axis=1), (0, max(0, n_fft - len(x))))
    hop = max(n_fft // 4, len(x) // 2000)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    return 10 * np.log10(np.abs(np.fft.rfft(frames, axis=-1)).T ** 2 + 1e-10)


def spectrogram_png(signals: list[tuple[str, np.ndarray]], rate: int, path: Path) -> Path:
    """Spectrograms side by side on one dB scale and shared axes, drawn into ``path`` on a fresh Figure (no
    pyplot state: savefig renders with Agg), so requests never share a mutable figure."""
    specs = [(title, _spectrogram_db(x, rate)) for title, x in signals]
    vmax, seconds = max(float(s.max()) for _, s in specs), len(signals[0][1]) / rate
    fig = Figure(figsize=(4.6 * len(specs) + 1, 3.4), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(specs), sharex=True, sharey=True))
    for ax, (title, s) in zip(axes, specs):
        im = ax.imshow(s, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 80, vmax=vmax,
                       extent=(0, seconds, 0, rate / 2000))
        ax.set(title=title, xlabel="time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=list(axes), label="power (dB)")
    fig.savefig(path)
    fig.clear()  # a fresh figure per request, released right away: nothing is shared between requests
    return path


def score_rows(clean: tuple[np.ndarray, int] | None, rate: int,
               signals: list[tuple[str, np.ndarray]]) -> list[list[str]]:
    """PESQ, STOI and SI-SDR of each (label, (N, C) signal at ``rate``) against the clean reference, on channel
    means; no reference, no rows.  A reference at another rate is resampled and one of another length is
    cut to the common start (both said in a gr.Warning); a silent reference gives "n/a (silent reference)"."""
    if clean is None:
        return []
    ref = clean[0].mean(axis=1)
    if clean[1] != rate:
        gr.Warning(f"The clean reference is {clean[1]} Hz; it was resampled to {rate} Hz (the input's rate) "
                   "for scoring.")
        ref = soxr.resample(ref, clean[1], rate)
    n = len(signals[0][1])
    if abs(len(ref) - n) > 1:  # a sample of resampler rounding is not worth a warning
        gr.Warning(f"The clean reference is {len(ref) / rate:.2f} s long and the input {n / rate:.2f} s; the scores "
                   f"compare their first {min(len(ref), n) / rate:.2f} s.")
    if not np.abs(ref).max(initial=0.0) > 1e-5:  # below -100 dBFS: nothing to score against
        return [[label] + ["n/a (silent reference)"] * 3 for label, _ in signals]
    rows = []
    for label, x in signals:
        s = metrics.scores(ref, x.mean(axis=1), rate, which=("pesq", "stoi", "si_sdr"))
        rows.append([label] + [f"{s[k]:.{d}f}" if np.isfinite(s[k]) else "n/a"
                               for k, d in (("pesq", 2), ("stoi", 3), ("si_sdr", 2))])
    return rows


def dnsmos_rows(signals: list[tuple[str, np.ndarray]], rate: int) -> list[list[str]]:
    """DNSMOS P.835 SIG, BAK and OVRL (1-5, no reference needed) of each (label, (N, C) signal at ``rate``):
    channels averaged, resampled to 16 kHz (:mod:`se_app.dnsmos`).  Without the ``dnsmos`` extra: no rows and a
    gr.Warning with the pip command."""
    if not dnsmos.available():
        gr.Warning(f"No clean reference, and DNSMOS (no-reference scores) is not installed: {dnsmos.INSTALL}")
        return []
    rows = []
    for label, x in signals:
        s = dnsmos.score(x, rate)
        rows.append([label] + [f"{s[k]:.2f}" for k in dnsmos.KEYS])
    return rows
