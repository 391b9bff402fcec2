"""No-reference speech quality: DNSMOS P.835 (Reddy et al., ICASSP 2022) -> SIG, BAK and OVRL on a 1-5 scale.

Runs the ONNX model that the pip package ``speechmos`` ships (``dnsmos_models/sig_bak_ovr.onnx``; offline, no
download) through onnxruntime on one thread, with the same numbers as ``speechmos.dnsmos.run`` (tested): the
clip is repeated until it is at least 9.01 s long, cut into 9.01 s windows one second apart, each window scored,
the raw scores mapped through DNSMOS's published polynomials and averaged over the windows.  The P.808 model
that speechmos also runs is not needed for P.835 and is skipped (half the work).  ``speechmos`` itself is not
imported (it pulls ``requests`` and keeps global state); only its model file is loaded.

Input policy (DNSMOS is defined at 16 kHz, mono, samples in [-1, 1]):

- other rates are resampled to 16 kHz with soxr (its default HQ filter, as ``librosa.load`` does);
- several channels are averaged to mono first;
- samples beyond [-1, 1] (an enhanced float signal can overshoot) are clipped, where speechmos would refuse.

Optional: ``pip install -e '.[dnsmos]'``.  Without it, :func:`score` raises :class:`MissingExtra`, one line
that names the command.
"""
from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
import soxr

from .ort import session

log = logging.getLogger(__name__)

INSTALL = "pip install -e '.[dnsmos]'"
RATE = 16000
WINDOW = int(9.01 * RATE)  # samples per scored window (144160)
HOP = RATE  # windows start one second apart
BATCH = 16  # windows per onnxruntime call (bounded memory on long clips)
KEYS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
MODES = ("auto", "on", "off")  # se-app evaluate --dnsmos
# DNSMOS P.835 calibration polynomials (highest power first), as in the DNS challenge's dnsmos_local.py
_POLY = {"dnsmos_sig": (-0.08397278, 1.22083953, 0.0052439), "dnsmos_bak": (-0.13166888, 1.60915514, -0.39604546),
         "dnsmos_ovrl": (-0.06766283, 1.11546468, 0.04602535)}

_SESSION = None
_LOCK = threading.Lock()


class MissingExtra(ValueError):
    """The optional ``speechmos`` package (which ships the model) is not installed."""


def available() -> bool:
    """Whether the ``dnsmos`` extra (speechmos, onnxruntime) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("speechmos", "onnxruntime"))


def model_path() -> Path:
    """The P.835 ONNX file inside the installed speechmos package, found without importing it."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(f"DNSMOS needs the optional package 'speechmos': {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models" / "sig_bak_ovr.onnx"
    if not path.is_file():
        raise MissingExtra(f"{path} is missing from the installed speechmos; reinstall it: {INSTALL}")
    return path


def _session():
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = session(str(model_path()), 1, "DNSMOS", INSTALL)
        return _SESSION


def wanted(mode: str, has_clean: bool) -> bool:
    """Whether an evaluation scores DNSMOS: mode 'on' always, 'off' never, 'auto' when the extra is installed;
    without a clean reference it is the only score, so the extra is then required.  Raises (before any work)
    :class:`MissingExtra` when it is needed and missing, ValueError for a bad mode or 'off' without reference."""
    if mode not in MODES:
        raise ValueError(f"unknown DNSMOS mode {mode!r}; expected one of {', '.join(MODES)}")
    if not has_clean and mode == "off":
        raise ValueError("a test set without clean/ can only be scored with DNSMOS; drop --dnsmos off")
    want = mode == "on" or not has_clean or (mode == "auto" and available())
    if want:
        model_path()
    return want


def prepare(x: np.ndarray, rate: int) -> np.ndarray:
    """(N,) or (N, C) audio at any rate -> (M,) float32 mono at 16 kHz in [-1, 1] (the input policy above)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != RATE:
        x = soxr.resample(x, rate, RATE)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def windows(x: np.ndarray) -> np.ndarray:
    """(M,) at 16 kHz -> (K, WINDOW) the scored windows: the clip repeated to >= 9.01 s, hops of 1 s."""
    if len(x) == 0:
        raise ValueError("DNSMOS of an empty signal")
    while len(x) < WINDOW:
        x = np.append(x, x)
    count = int(np.floor(len(x) / RATE) - WINDOW / RATE) + 1
    starts = [k * HOP for k in range(count) if k * HOP + WINDOW <= len(x)]
    return np.stack([x[s:s + WINDOW] for s in starts])


def score(x: np.ndarray, rate: int) -> dict[str, float]:
    """DNSMOS P.835 of one signal (N,) or (N, C) at any rate -> {dnsmos_sig, dnsmos_bak, dnsmos_ovrl}.
    Raises :class:`MissingExtra` (one line, with the pip command) when the extra is not installed."""
    segs = windows(prepare(x, rate))
    sess = _session()
    name = sess.get_inputs()[0].name
    raw = np.concatenate([sess.run(None, {name: segs[i:i + BATCH]})[0] for i in range(0, len(segs), BATCH)])
    out = {}
    for k, key in enumerate(KEYS):  # raw columns: SIG, BAK, OVRL; polynomial per window, then the mean
        out[key] = float(np.mean(np.poly1d(_POLY[key])(raw[:, k].astype(np.float64))))
    return out


def score_file(path: str | Path) -> dict[str, float]:
    """DNSMOS of an audio file (any rate and channel count libsndfile reads)."""
    from . import audio

    x, rate = audio.read(path)
    return score(x, rate)
