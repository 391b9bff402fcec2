"""Streaming enhancement at the model rate: chunks of any size in, the same number of samples out.

The signal path per hop is numpy (DC blocker, framing, FFT, log power, mask application, inverse FFT,
overlap-add, in preallocated or reused buffers) around one backend call (:mod:`se_app.backends`: torch or
onnxruntime) that turns the frame's features into its gain.  Blocks of many frames (offline use) go through
the same code with one FFT, one backend call and one overlap-add per block; a one-hop chunk (live use) costs
one backend step.  Whatever the chunking, the output equals :func:`se_app.enhancer.apply_model` on the whole
signal (tests/test_stream.py), so offline and streaming enhancement agree.
"""
from __future__ import annotations

import numpy as np
import torch

from . import backends
from .model import MaskNet
from .stft import DCBlocker, STFTConfig, window

EPS = 1e-8  # as stft.log_power


class Stream:
    """Streaming enhancement at the model rate for B channels.

    ``process(chunk)`` takes (B, n) samples, any n >= 0, and returns exactly (B, n) samples delayed by
    ``latency`` = n_fft + L * hop samples (32 ms at 16 kHz, plus 16 ms per look-ahead frame L): output
    sample k is enhanced sample k - latency (zeros before that).  ``flush()`` returns the last ``latency``
    samples.  Concatenated output minus its first ``latency`` samples equals :func:`apply_model` on the
    whole signal.  ``chunk`` (samples), if given, splits every input into pieces of at most that many samples,
    so a whole file goes through the frame-by-frame path a live microphone uses (``se-app enhance
    --streaming``); the output does not change, only the work per call.
    """

    def __init__(self, model: MaskNet, cfg: STFTConfig, channels: int, floor: float = 0.0,
                 backend: "backends.TorchBackend | None" = None, chunk: int | None = None):
        self.model, self.cfg, self.floor = model, cfg, floor
        self.backend = backend if backend is not None else backends.TorchBackend(model)
        self.chunk = chunk
        L = model.cfg.lookahead
        self.latency = cfg.latency + L * cfg.hop
        self.state = self.backend.zero_state(channels)
        self.dc = DCBlocker(channels)
        self.win = window(cfg).numpy()
        self.keep = cfg.n_fft - cfg.hop  # samples of the last frame that the next frame reads again
        self.buf = np.zeros((channels, self.keep + 4 * cfg.hop), np.float32)  # starts as the causal padding
        self.fill = self.keep
        self.tail = np.zeros((channels, self.keep), np.float32)  # second half of the last output frame
        # Spectra of the last L frames, waiting for the mask that look-ahead gives them.  They start as L
        # silent frames "before" the signal, whose output (zeros) is discarded with the left padding.
        self.waiting = np.zeros((channels, L, cfg.n_bins), np.complex64)
        self.ready = np.zeros((channels, self.latency), np.float32)  # finished output not yet returned
        # The first hop of overlap-add output belongs to the left padding, not to the signal.
        self.discard = self.keep + L * cfg.hop

    def _frames(self, k: int) -> np.ndarray:
        """Enhance the k complete frames at the start of the input buffer; returns (B, k * hop) samples."""
        n, h = self.cfg.n_fft, self.cfg.hop
        if k == 1:
            frames = self.buf[:, None, :n] * self.win
        else:
            frames = np.lib.stride_tricks.sliding_window_view(self.buf[:, :(k - 1) * h + n], n, axis=1)[:, ::h]
            frames = frames * self.win
        spec = np.fft.rfft(frames, axis=-1)  # (B, k, F) complex64
        feats = spec.real * spec.real
        feats += spec.imag * spec.imag
        feats += EPS
        gain, self.state = self.backend.run(np.log(feats, out=feats), self.state)
        if self.floor > 0:
            np.maximum(gain, self.floor, out=gain)
        if self.waiting.shape[1]:  # masks are for the frames L behind the newest
            spec = np.concatenate([self.waiting, spec], axis=1)
            spec, self.waiting = spec[:, :k], spec[:, k:].copy()
        spec *= gain
        out = np.fft.irfft(spec, n, axis=-1)
        out *= self.win
        if k == 1:
            done = out[:, 0, :h] + self.tail
        else:
            done = out[:, :, :h].copy()
            done[:, 0] += self.tail
            done[:, 1:] += out[:, :-1, h:]
            done = done.reshape(out.shape[0], k * h)
        self.tail = out[:, -1, h:]
        return done

    def _push(self, x: np.ndarray) -> None:
        """Append (B, n) filtered samples; enhance every frame they complete."""
        n, h = x.shape[1], self.cfg.hop
        if self.fill + n > self.buf.shape[1]:
            grown = np.zeros((self.buf.shape[0], self.fill + n), np.float32)
            grown[:, :self.fill] = self.buf[:, :self.fill]
            self.buf = grown
        self.buf[:, self.fill:self.fill + n] = x
        self.fill += n
        k = (self.fill - self.keep) // h
        if k <= 0:
            return
        done = self._frames(k)
        used = k * h
        self.buf[:, :self.fill - used] = self.buf[:, used:self.fill].copy()
        self.fill -= used
        drop = min(self.discard, used)
        self.discard -= drop
        self.ready = np.concatenate([self.ready, done[:, drop:]], axis=1) if drop < used else self.ready

    def _step(self, x: np.ndarray) -> np.ndarray:
        self._push(self.dc.filter(x))
        n = x.shape[1]
        out, self.ready = self.ready[:, :n], self.ready[:, n:]
        return out

    def process(self, chunk: torch.Tensor | np.ndarray) -> torch.Tensor:
        """chunk (B, n) -> (B, n) enhanced, delayed by ``latency`` samples."""
        x = chunk.numpy() if isinstance(chunk, torch.Tensor) else chunk
        x = np.asarray(x, dtype=np.float32)
        c = self.chunk
        if c is None or x.shape[1] <= c:
            return torch.from_numpy(self._step(x))
        return torch.from_numpy(np.concatenate([self._step(x[:, i:i + c]) for i in range(0, x.shape[1], c)], axis=1))

    def flush(self) -> torch.Tensor:
        """The final ``latency`` samples (pads the input with silence to finish the last frames)."""
        self._push(np.zeros((self.buf.shape[0], self.latency), np.float32))
        out, self.ready = self.ready[:, :self.latency], self.ready[:, self.latency:]
        return torch.from_numpy(out)
