"""The Enhancer: one core used by the CLI, the web UI and the evaluation alike.

Layers: tensor (:func:`apply_model`, whole signal at the model rate) -> :class:`~se_app.stream.Stream` (chunks
of any size, fixed latency, LSTM state and overlap-add carried across calls; its mask backend, torch or
onnxruntime, is chosen here and nowhere else) -> array (:meth:`Enhancer.enhance`,
any rate and channel count) -> file (:meth:`Enhancer.enhance_file`, read and written in blocks so memory
stays bounded).  Folders are handled in :mod:`se_app.batch`.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from . import audio, backends, checkpoint, fullband, registry
from .model import MaskNet
from .stft import DCBlocker, STFTConfig, istft, log_power, stft
from .stream import Stream  # re-exported: the streaming path lives in se_app.stream

log = logging.getLogger(__name__)


def floor_from_db(limit_db: float | None) -> float:
    """Attenuation limit in dB -> mask floor (None or inf: no limit)."""
    if limit_db is None or not np.isfinite(limit_db):
        return 0.0
    return float(10 ** (-abs(limit_db) / 20))


@torch.no_grad()
def raw_masks(model: MaskNet, x: torch.Tensor, cfg: STFTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, N) -> noisy spectrum (B, T, F) and the model's raw mask (B, T, F), before any post-filter.
    The input is DC-blocked first; a look-ahead model reads L frames past the end from silence, as
    :meth:`Stream.flush` does."""
    L = model.cfg.lookahead
    spec = stft(F.pad(DCBlocker(x.shape[0])(x), (0, L * cfg.hop)), cfg)
    mask = model.masks(log_power(spec))
    return spec[:, : mask.shape[1]], mask


@torch.no_grad()
def apply_model(model: MaskNet, x: torch.Tensor, cfg: STFTConfig, floor: float = 0.0) -> torch.Tensor:
    """Whole-signal enhancement at the model rate: x (B, N) -> (B, N), same length."""
    spec, mask = raw_masks(model, x, cfg)
    mask = model.gain(mask)
    if floor > 0:
        mask = mask.clamp_min(floor)
    return istft(spec * mask, cfg, x.shape[-1])


@dataclass
class Result:
    """What one file's enhancement took."""

    seconds: float  # audio duration
    elapsed: float  # wall-clock processing time
    sample_rate: int
    channels: int
    peak_gain_db: float = 0.0  # < 0 when the output was scaled down to avoid clipping

    @property
    def rtf(self) -> float:
        return self.elapsed / max(self.seconds, 1e-9)


class Enhancer:
    """A loaded model plus the I/O policy; build it with :meth:`load` (a registry name or a path).

    ``backend`` (``auto``, ``torch`` or ``onnx``; :mod:`se_app.backends`) runs the mask network; the weights are
    laid out for it here, once (build a new Enhancer after changing the model's weights).  ``streaming`` sends
    every signal through the frame-by-frame path a live microphone uses, in chunks of ``chunk_ms`` (default one
    hop); the output is the same as without it."""

    def __init__(self, model: MaskNet, cfg: STFTConfig, name: str = "model", info: dict | None = None,
                 atten_limit_db: float | None = None, backend: str = "auto", streaming: bool = False,
                 chunk_ms: float | None = None):
        self.model, self.cfg, self.name, self.info = model.eval(), cfg, name, info or {}
        self.floor = floor_from_db(atten_limit_db)
        if chunk_ms is not None and chunk_ms <= 0:
            raise ValueError(f"chunk length must be positive, got {chunk_ms} ms")
        self.chunk = None
        if streaming or chunk_ms is not None:
            self.chunk = cfg.hop if chunk_ms is None else max(1, round(chunk_ms * cfg.sample_rate / 1000))
        self.backend = backends.make(backend, self.model, streaming=self.chunk is not None)
        log.debug("%s: %s backend, %s", name, self.backend.name,
                  f"streaming in {self.chunk}-sample chunks" if self.chunk else "blocks")

    @classmethod
    def load(cls, name_or_path: str | os.PathLike | None = None, atten_limit_db: float | None = None,
             backend: str = "auto", streaming: bool = False, chunk_ms: float | None = None) -> "Enhancer":
        path, name = registry.resolve(name_or_path)
        model, cfg, ckpt = checkpoint.load(path)
        info = {k: ckpt.get(k) for k in ("params", "rate", "scores", "provenance")}
        info["kind"] = model.cfg.kind
        info["method"] = checkpoint.method_of(ckpt)
        return cls(model, cfg, name, info, atten_limit_db, backend, streaming, chunk_ms)

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    def stream(self, channels: int = 1) -> Stream:
        return Stream(self.model, self.cfg, channels, self.floor, self.backend, self.chunk)

    def live(self, rate: int, channels: int = 1, policy: str = "each") -> "Live":
        """An incremental session at any rate and channel count (a live microphone): see :class:`Live`."""
        return Live(self, rate, channels, policy)

    def _run(self, blocks, in_rate: int, channels: int, policy: str, total: int, sink,
             progress: Callable[[float], None] | None = None) -> None:
        """Blocks (N, C) at in_rate -> sink((N, C) enhanced at in_rate); exactly ``total`` frames out.
        Above the model rate the band above it is kept (:mod:`se_app.fullband`).  ``progress`` (if given)
        is called with the fraction of the input done after each block."""
        live, written, done = self.live(in_rate, channels, policy), 0, 0

        def emit(out: np.ndarray) -> None:
            nonlocal written
            out = out[: max(0, total - written)]
            if len(out):
                sink(out)
                written += len(out)

        for x in blocks:
            done += len(x)
            emit(live.process(x))
            if progress is not None:
                progress(min(1.0, done / max(total, 1)))
        emit(live.finish())
        if written < total:  # resampler rounding: pad the last sample or two
            sink(np.zeros((total - written, channels), np.float32))

    def enhance(self, x: np.ndarray, sample_rate: int, channels: str = "each",
                progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Enhance an in-memory signal (N,) or (N, C) at any rate; returns the same shape, rate and length."""
        if sample_rate <= 0:
            raise ValueError(f"invalid sample rate {sample_rate}")
        x2 = audio.as_2d(x)
        if len(x2) == 0:
            raise ValueError("empty signal")
        if not np.isfinite(x2).all():
            raise ValueError("signal holds non-finite samples (NaN or Inf)")
        block = int(audio.BLOCK_SECONDS * sample_rate)
        parts: list[np.ndarray] = []
        self._run((x2[i:i + block] for i in range(0, len(x2), block)), sample_rate, x2.shape[1], channels,
                  len(x2), parts.append, progress)
        y = np.concatenate(parts, axis=0)
        return y[:, 0] if np.asarray(x).ndim == 1 else y

    def enhance_file(self, src: str | os.PathLike, dst: str | os.PathLike, channels: str = "each",
                     progress: Callable[[float], None] | None = None) -> Result:
        """Enhance one file into dst at the input's rate, channel count, format, subtype and length.

        Written block by block into a temporary of the output's own format beside dst (``atomic_path``),
        renamed onto dst when complete.  An integer output that would clip is not kept: the file is
        enhanced a second time (deterministically) with its gain scaled down, and that is logged.  Raises
        AudioError for unusable input or a failed write (naming dst, not the temporary).
        """
        t0 = time.perf_counter()
        info = audio.probe(src)
        dst = Path(dst)
        if dst.exists() and dst.resolve() == Path(src).resolve():
            raise audio.AudioError(src, "refusing to overwrite the input file")
        fmt = info.format if info.format in sf.available_formats() else "WAV"
        subtype = audio.output_subtype(fmt, info.subtype)
        peak = self._write(info, dst, fmt, subtype, channels, 1.0, progress)
        gain = audio.peak_gain(peak, subtype)
        if gain != 1.0:
            log.warning("%s: enhanced peak %.2f is above full scale; scaled by %.1f dB to avoid clipping",
                        src, peak, 20 * np.log10(gain))
            self._write(info, dst, fmt, subtype, channels, gain, None)
        return Result(info.seconds, time.perf_counter() - t0, info.sample_rate, info.channels,
                      float(20 * np.log10(gain)))

    def _write(self, info: audio.AudioInfo, dst: Path, fmt: str, subtype: str, channels: str, gain: float,
               progress: Callable[[float], None] | None) -> float:
        """One pass of :meth:`enhance_file`: returns the peak before ``gain``; dst is replaced unless an
        integer output would clip at this gain (then the caller runs again with a lower one)."""
        peak = 0.0
        try:
            tmp = audio.atomic_path(dst)
        except audio.AudioError as e:
            raise audio.AudioError(info.path, e.reason) from None
        try:
            with sf.SoundFile(str(tmp), "w", info.sample_rate, info.channels, subtype, format=fmt) as f:
                def sink(y: np.ndarray) -> None:
                    nonlocal peak
                    peak = max(peak, float(np.abs(y).max(initial=0.0)))
                    f.write(y * gain if gain != 1.0 else y)

                self._run(audio.iter_blocks(info), info.sample_rate, info.channels, channels, info.frames, sink,
                          progress)
            if gain != 1.0 or audio.peak_gain(peak, subtype) == 1.0:
                os.replace(tmp, dst)
        except (OSError, sf.SoundFileError) as e:
            raise audio.AudioError(info.path, f"cannot write {dst}: {audio.write_error(e, tmp, dst)}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return peak


class Live:
    """Enhancement of a signal that arrives in chunks, at any rate and channel count: the path of
    :meth:`Enhancer.enhance` (band split and resampling, :class:`Stream` with the enhancer's backend and chunking)
    taken one chunk at a time.  ``process(x (N, C))`` returns what is ready, (M, C) with M near N (the
    first calls return less: the stream's latency and the resamplers' delay are taken out, so output sample
    k lines up with input sample k); ``finish()`` returns the rest.  All outputs concatenated and cut to the
    input's length equal :meth:`Enhancer.enhance` of the whole signal."""

    def __init__(self, enh: Enhancer, rate: int, channels: int = 1, policy: str = "each"):
        if rate <= 0:
            raise ValueError(f"invalid sample rate {rate}")
        self.rate, self.channels, self.policy = rate, channels, policy
        self.c_model = 1 if policy == "mix" else channels
        self.split = fullband.BandSplit(rate, enh.sample_rate, self.c_model, enh.floor)
        self.stream = enh.stream(self.c_model)
        self.skip = self.stream.latency  # the stream's leading latency is not part of the signal

    def _emit(self, y: torch.Tensor, last: bool = False) -> np.ndarray:
        drop = min(self.skip, y.shape[1])
        self.skip -= drop
        out = self.split.synthesis(y[:, drop:].T.numpy(), last=last)
        return audio.from_model_channels(out, self.channels) if len(out) else np.zeros((0, self.channels), np.float32)

    def _model_input(self, x: np.ndarray, last: bool = False) -> torch.Tensor:
        return torch.from_numpy(self.split.analysis(x, last=last).T.copy())

    def process(self, x: np.ndarray) -> np.ndarray:
        """(N, C) float at the session's rate -> (M, C) enhanced samples that are ready."""
        return self._emit(self.stream.process(self._model_input(audio.to_model_channels(audio.as_2d(x), self.policy))))

    def finish(self) -> np.ndarray:
        """The remaining enhanced samples (the input is padded with silence to finish its last frames)."""
        a = self._emit(self.stream.process(self._model_input(np.zeros((0, self.c_model), np.float32), last=True)))
        return np.concatenate([a, self._emit(self.stream.flush(), last=True)])
