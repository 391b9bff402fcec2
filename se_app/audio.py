"""The one I/O boundary for audio: reading, validation, channel policy, resampling and safe writing.

Everything inside the package works on float32 at the model rate; this module converts in and back out.
Errors are :class:`AudioError` and always name the file and the reason.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au",
                    ".snd", ".caf", ".w64", ".rf64", ".wv"}
CHANNEL_POLICIES = ("each", "mix")
BLOCK_SECONDS = 10.0
# Temporary outputs: ".NAME.PID-TOKEN.part.EXT" beside NAME (and the older ".NAME.XXXXXXXX.part.EXT" of mkstemp)
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-[0-9a-f]{8}|[a-z0-9_]{8})\.part\.[^.]+$")
LOW_SPACE = 1 << 20  # a write that fails with less free space than this is reported as a full disk


class AudioError(ValueError):
    """A file that cannot be enhanced; the message names the file and the reason."""

    def __init__(self, path: "str | os.PathLike", reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | os.PathLike) -> AudioInfo:
    """Header of an audio file; raises AudioError when it is not readable audio or holds no samples."""
    p = Path(path)
    if not p.is_file():
        raise AudioError(path, "no such file")
    try:
        info = sf.info(str(p))
    except Exception as e:  # libsndfile raises several types; all mean "not audio we can read"
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    if info.frames <= 0:
        raise AudioError(path, "the file holds zero audio frames")
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(path, "invalid header (sample rate or channel count is zero)")
    _warn_if_truncated(p, info)
    return AudioInfo(str(p), info.samplerate, info.channels, info.frames, info.format, info.subtype)


def _warn_if_truncated(path: Path, info) -> None:
    """libsndfile reads a truncated WAV/AIFF up to its end and notes "data : N (should be M)"; say so."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", info.extra_info, re.M)
    if m and int(m.group(2)) < int(m.group(1)):
        promised = int(m.group(1)) * info.frames // max(int(m.group(2)), 1)
        log.warning("%s: truncated file: the header promises %d frames, %d frames were read and are enhanced",
                    path, promised, info.frames)


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def check_finite(x: np.ndarray, path: str | os.PathLike) -> None:
    if not np.isfinite(x).all():
        raise AudioError(path, "the audio holds non-finite samples (NaN or Inf)")


def iter_blocks(info: AudioInfo, seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Blocks (N, C) float32 of a file, so that long recordings never sit in memory whole."""
    block = max(1, int(seconds * info.sample_rate))
    try:
        with sf.SoundFile(info.path) as f:
            for x in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                check_finite(x, info.path)
                yield x
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(info.path, f"reading failed ({_short(e)})") from None


def read(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Whole file as float32 (N, C) and its sample rate (for short clips; files use :func:`iter_blocks`)."""
    info = probe(path)
    return np.concatenate(list(iter_blocks(info)), axis=0), info.sample_rate


def as_2d(x: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) -> float32 (N, C)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x[:, None]
    if x.ndim != 2:
        raise ValueError(f"audio must be (N,) or (N, C), got shape {x.shape}")
    return x


def to_model_channels(x: np.ndarray, policy: str) -> np.ndarray:
    """(N, C) -> (N, C') by the channel policy: ``each`` keeps channels, ``mix`` averages them to one."""
    if policy not in CHANNEL_POLICIES:
        raise ValueError(f"channel policy must be one of {CHANNEL_POLICIES}, got {policy!r}")
    return x if policy == "each" else x.mean(axis=1, keepdims=True)


def from_model_channels(y: np.ndarray, channels: int) -> np.ndarray:
    """(N, C') -> (N, channels): a mixed (mono) result is written to every output channel."""
    return y if y.shape[1] == channels else np.repeat(y, channels, axis=1)


class Resampler:
    """Streaming soxr resampler for (N, C) blocks; identity when the rates match."""

    def __init__(self, in_rate: int, out_rate: int, channels: int):
        self.same = in_rate == out_rate
        self.stream = None if self.same else soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self.same:
            return x
        return self.stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad (N, C) to exactly n frames (resamplers may be off by a sample)."""
    if len(y) >= n:
        return y[:n]
    return np.concatenate([y, np.zeros((n - len(y), y.shape[1]), y.dtype)], axis=0)


def output_subtype(fmt: str, subtype: str) -> str:
    """The input's subtype when the format can write it, else the format's default."""
    return subtype if sf.check_format(fmt, subtype) else sf.default_subtype(fmt)


def is_integer_subtype(subtype: str) -> bool:
    return subtype.startswith("PCM") or subtype in ("ULAW", "ALAW")


def peak_gain(peak: float, subtype: str) -> float:
    """Gain that keeps an integer-PCM output from clipping: peaks above full scale are scaled to 0.999
    (and logged) rather than wrapped or silently clipped.  Float outputs keep their values."""
    if is_integer_subtype(subtype) and peak > 1.0:
        return 0.999 / peak
    return 1.0


def atomic_path(dst: Path) -> Path:
    """A new, empty temporary file beside dst (same folder, so the final rename is atomic), named
    ``.NAME.PID-TOKEN.part.EXT`` so that a later run can tell a stale one (its process is gone) and remove
    it.  Created like a plain ``open()`` would create dst: mode 0666 less the umask."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = dst.parent / f".{dst.name}.{os.getpid()}-{secrets.token_hex(4)}.part{dst.suffix}"
            try:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return tmp
            except FileExistsError:
                continue
    except OSError as e:  # a read-only or full folder, a file where a folder should be
        raise AudioError(dst, f"cannot write {dst}: {write_error(e, dst, dst)}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, only: set[Path] | None = None) -> list[Path]:
    """Remove temporaries of :func:`atomic_path`'s naming below folder whose process is gone (left by a
    kill or a power loss); returns what was removed.  Temporaries of running processes are kept.  With
    ``only`` (absolute output paths), just the temporaries of those outputs: a shard on a shared file system
    never touches another machine's files, whose process ids mean nothing here."""
    removed = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for p in root.rglob(".*.part.*"):
        m = TEMP_RE.match(p.name)
        if m and only is not None and (p.parent / m["name"]).absolute() not in only:
            continue
        if m and p.is_file() and not p.is_symlink() and not (m["pid"] and _alive(int(m["pid"]))):
            p.unlink(missing_ok=True)
            removed.append(p)
            log.info("removed a stale temporary file %s", p)
    return removed


def write_error(e: BaseException, tmp: Path, dst: Path) -> str:
    """A short reason for a failed write that names the real output, not its temporary, and says when the
    disk is full (libsndfile reports that as a bare "System error.")."""
    text = (e.strerror if isinstance(e, OSError) and e.strerror else _short(e)).replace(str(tmp), str(dst))
    full = isinstance(e, OSError) and e.errno == errno.ENOSPC
    try:
        full = full or shutil.disk_usage(dst.parent).free < LOW_SPACE
    except OSError:
        pass
    return "no space left on device" if full else text


def write(path: str | os.PathLike, y: np.ndarray, sample_rate: int, subtype: str | None = None,
          fmt: str | None = None) -> None:
    """Write (N,) or (N, C) atomically; integer subtypes are protected from clipping by :func:`peak_gain`."""
    dst = Path(path)
    y = as_2d(y)
    if fmt is None:  # from the extension (".flac" -> FLAC), WAV when libsndfile has no such format
        fmt = dst.suffix[1:].upper()
    if fmt not in sf.available_formats():
        fmt = "WAV"
    subtype = output_subtype(fmt, subtype or sf.default_subtype(fmt))
    gain = peak_gain(float(np.abs(y).max(initial=0.0)), subtype)
    if gain != 1.0:
        log.warning("%s: output peak above full scale, scaled by %.1f dB to avoid clipping", dst, 20 * np.log10(gain))
    tmp = atomic_path(dst)
    try:
        sf.write(str(tmp), y * gain, sample_rate, subtype=subtype, format=fmt)
        os.replace(tmp, dst)
    except (OSError, sf.SoundFileError) as e:
        raise AudioError(dst, f"cannot write {dst}: {write_error(e, tmp, dst)}") from None
    finally:
        tmp.unlink(missing_ok=True)
