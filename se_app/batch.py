"""Batch enhancement of files and folders: output paths, skipping, per-file errors and a summary.

One bad file never stops the batch: its name and reason are reported, the others are written, and the
summary says how many were enhanced, failed and skipped.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .audio import AUDIO_EXTENSIONS, AudioError
from .enhancer import Enhancer

log = logging.getLogger(__name__)


@dataclass
class Summary:
    enhanced: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        return f"{len(self.enhanced)} enhanced, {len(self.failed)} failed, {len(self.skipped)} skipped"


def collect(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(file, path relative to its input root) for every file given and every audio file below a folder.

    Files named directly are taken whatever their extension (so a bad file is reported, not ignored);
    folders contribute files with known audio extensions, recursively, in sorted order.
    """
    out: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith("."):
                    out.append((f, f.relative_to(p)))
        elif p.exists():
            out.append((p, Path(p.name)))
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def output_path(rel: Path, out_dir: Path, suffix: str = "") -> Path:
    return out_dir / rel.with_name(rel.stem + suffix + rel.suffix)


def enhance_all(enhancer: Enhancer, inputs: Iterable[str | Path], out_dir: str | Path, suffix: str = "",
                overwrite: bool = False, channels: str = "each", progress: bool = True,
                report: Callable[[str], None] = log.info) -> Summary:
    """Enhance every input into out_dir (same relative paths).  Raises FileNotFoundError for a missing
    input and ValueError when nothing matched; per-file problems go into the summary instead."""
    files = collect(inputs)
    if not files:
        raise ValueError("no audio files matched the inputs")
    out_dir = Path(out_dir)
    sources = {f.resolve() for f, _ in files}
    summary = Summary()
    for src, rel in tqdm(files, desc="enhance", unit="file", disable=not progress):
        dst = output_path(rel, out_dir, suffix)
        if dst.resolve() in sources:
            summary.failed.append((src, f"output {dst} would overwrite an input file"))
            report(f"FAILED {src}: output {dst} would overwrite an input file")
            continue
        if dst.exists() and not overwrite:
            summary.skipped.append(src)
            report(f"skipped {src}: {dst} exists (use --overwrite)")
            continue
        try:
            res = enhancer.enhance_file(src, dst, channels=channels)
        except AudioError as e:
            summary.failed.append((src, e.reason))
            report(f"FAILED {src}: {e.reason}")
            continue
        except Exception as e:  # keep the batch going; the summary and exit code carry the failure
            log.debug("unexpected error on %s", src, exc_info=True)
            summary.failed.append((src, f"{type(e).__name__}: {e}"))
            report(f"FAILED {src}: {type(e).__name__}: {e}")
            continue
        summary.enhanced.append(dst)
        note = f", scaled {res.peak_gain_db:.1f} dB to avoid clipping" if res.peak_gain_db < 0 else ""
        report(f"{src} -> {dst}  {res.seconds:.2f} s audio, {res.sample_rate} Hz x {res.channels} ch, "
               f"RTF {res.rtf:.4f}{note}")
    return summary
