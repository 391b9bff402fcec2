"""The Enhancer: one core used by the CLI, the web UI and the evaluation alike.

Layers: tensor (:func:`apply_model`, whole signal at the model rate) -> :class:`Stream` (chunks of any
size, fixed latency, LSTM state and overlap-add carried across calls) -> array (:meth:`Enhancer.enhance`,
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

from . import audio, checkpoint, fullband, registry
from .model import MaskNet
from .stft import DCBlocker, STFTConfig, istft, istft_frames, log_power, stft, window

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


class Stream:
    """Streaming enhancement at the model rate for B channels.

    ``process(chunk)`` takes (B, n) samples, any n >= 0, and returns exactly (B, n) samples delayed by
    ``latency`` = n_fft + L * hop samples (32 ms at 16 kHz, plus 16 ms per look-ahead frame L): output
    sample k is enhanced sample k - latency (zeros before that).  ``flush()`` returns the last ``latency``
    samples.  Concatenated output minus its first ``latency`` samples equals :func:`apply_model` on the
    whole signal.
    """

    def __init__(self, model: MaskNet, cfg: STFTConfig, channels: int, floor: float = 0.0):
        self.model, self.cfg, self.floor = model, cfg, floor
        L = model.cfg.lookahead
        self.latency = cfg.latency + L * cfg.hop
        self.state = model.core.zero_state(channels)
        self.dc = DCBlocker(channels)
        self.win = window(cfg)
        self.inbuf = torch.zeros(channels, cfg.n_fft - cfg.hop)  # the causal left padding
        self.tail = torch.zeros(channels, cfg.n_fft - cfg.hop)  # second half of the last frame
        # Spectra of the last L frames, waiting for the mask that look-ahead gives them.  They start as L
        # silent frames "before" the signal, whose output (zeros) is discarded with the left padding.
        self.waiting = torch.zeros(channels, L, cfg.n_bins, dtype=torch.complex64)
        self.ready = torch.zeros(channels, self.latency)  # completed output not yet returned
        # The first hop of overlap-add output belongs to the left padding, not to the signal.
        self.discard = cfg.n_fft - cfg.hop + L * cfg.hop

    @torch.no_grad()
    def _frames(self, buf: torch.Tensor) -> torch.Tensor:
        """Enhance every complete frame in buf; returns (B, k * hop) finished samples."""
        cfg = self.cfg
        k = (buf.shape[1] - (cfg.n_fft - cfg.hop)) // cfg.hop
        if k <= 0:
            return buf.new_zeros(buf.shape[0], 0)
        spec = torch.fft.rfft(buf[:, : (k - 1) * cfg.hop + cfg.n_fft].unfold(-1, cfg.n_fft, cfg.hop) * self.win)
        feats = log_power(spec)
        if k == 1:  # one frame: the hand-written cell is much cheaper than the fused kernel's set-up
            mask, self.state = self.model.step(feats[:, 0], self.state)
            mask = mask[:, None]
        else:
            mask, self.state = self.model(feats, self.state)
        mask = self.model.gain(mask)
        if self.floor > 0:
            mask = mask.clamp_min(self.floor)
        spec = torch.cat([self.waiting, spec], dim=1)  # masks are for frames L behind the newest
        spec, self.waiting = spec[:, :k], spec[:, k:]
        frames = istft_frames(spec * mask, cfg)  # (B, k, n_fft)
        h = cfg.hop
        prev = torch.cat([self.tail[:, None], frames[:, :-1, h:]], dim=1)
        out = (frames[:, :, :h] + prev).reshape(buf.shape[0], k * h)
        self.tail = frames[:, -1, h:]
        return out

    def _push(self, x: torch.Tensor) -> None:
        buf = torch.cat([self.inbuf, x], dim=1)
        done = self._frames(buf)
        used = done.shape[1]
        self.inbuf = buf[:, used:]
        drop = min(self.discard, used)
        self.discard -= drop
        self.ready = torch.cat([self.ready, done[:, drop:]], dim=1)

    def process(self, chunk: torch.Tensor | np.ndarray) -> torch.Tensor:
        """chunk (B, n) -> (B, n) enhanced, delayed by ``latency`` samples."""
        x = torch.as_tensor(chunk, dtype=torch.float32)
        n = x.shape[1]
        self._push(self.dc(x))
        out, self.ready = self.ready[:, :n], self.ready[:, n:]
        return out

    def flush(self) -> torch.Tensor:
        """The final ``latency`` samples (pads the input with silence to finish the last frames)."""
        self._push(torch.zeros(self.inbuf.shape[0], self.latency))
        out, self.ready = self.ready[:, : self.latency], self.ready[:, self.latency:]
        return out


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
    """A loaded model plus the I/O policy; build it with :meth:`load` (a registry name or a path)."""

    def __init__(self, model: MaskNet, cfg: STFTConfig, name: str = "model", info: dict | None = None,
                 atten_limit_db: float | None = None):
        self.model, self.cfg, self.name, self.info = model.eval(), cfg, name, info or {}
        self.floor = floor_from_db(atten_limit_db)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike | None = None, atten_limit_db: float | None = None) -> "Enhancer":
        path, name = registry.resolve(name_or_path)
        model, cfg, ckpt = checkpoint.load(path)
        info = {k: ckpt.get(k) for k in ("params", "rate", "scores", "provenance")}
        info["kind"] = model.cfg.kind
        info["method"] = checkpoint.method_of(ckpt)
        return cls(model, cfg, name, info, atten_limit_db)

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    def stream(self, channels: int = 1) -> Stream:
        return Stream(self.model, self.cfg, channels, self.floor)

    def _run(self, blocks, in_rate: int, channels: int, policy: str, total: int, sink,
             progress: Callable[[float], None] | None = None) -> None:
        """Blocks (N, C) at in_rate -> sink((N, C) enhanced at in_rate); exactly ``total`` frames out.
        Above the model rate the band above it is kept (:mod:`se_app.fullband`).  ``progress`` (if given)
        is called with the fraction of the input done after each block."""
        c_model = 1 if policy == "mix" else channels
        split = fullband.BandSplit(in_rate, self.sample_rate, c_model, self.floor)
        stream = self.stream(c_model)
        skip, written = stream.latency, 0

        def emit(y: torch.Tensor, last: bool = False) -> None:
            nonlocal skip, written
            drop = min(skip, y.shape[1])  # the stream's leading latency is not part of the signal
            skip -= drop
            y = y[:, drop:]
            out = split.synthesis(y.T.numpy(), last=last)
            out = out[: max(0, total - written)]
            if len(out):
                sink(audio.from_model_channels(out, channels))
                written += len(out)

        def model_input(x: np.ndarray, last: bool = False) -> torch.Tensor:
            return torch.from_numpy(split.analysis(x, last=last).T.copy())

        done = 0
        for x in blocks:
            done += len(x)
            emit(stream.process(model_input(audio.to_model_channels(x, policy))))
            if progress is not None:
                progress(min(1.0, done / max(total, 1)))
        emit(stream.process(model_input(np.zeros((0, c_model), np.float32), last=True)))
        emit(stream.flush(), last=True)
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
