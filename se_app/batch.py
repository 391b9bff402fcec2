"""Batch enhancement of files and folders: output paths, skipping, per-file errors and a summary.

One bad file never stops the batch: its name and reason are reported, the others are written, and the
summary says how many were enhanced, failed and skipped.
"""
from __future__ import annotations

import logging
import errno
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from . import shard as shards
from .audio import AUDIO_EXTENSIONS, AudioError, remove_stale_temps
from .enhancer import Enhancer

log = logging.getLogger(__name__)


@dataclass
class Summary:
    enhanced: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    links: list[tuple[Path, str]] = field(default_factory=list)  # symlinks in input folders not followed
    shard: tuple[int, int] | None = None  # (K, N) of a --shard K/N run
    total: int = 0  # files matched by the inputs, all shards together

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        links = f", {len(self.links)} links ignored ({_kinds(self.links)})" if self.links else ""
        line = f"{len(self.enhanced)} enhanced, {len(self.failed)} failed, {len(self.skipped)} skipped{links}"
        if self.shard:
            mine = len(self.enhanced) + len(self.failed) + len(self.skipped)
            line = f"{shards.label(self.shard)} ({mine} of {self.total} files): {line}"
        return line


def _kinds(links: list[tuple[Path, str]]) -> str:
    kinds = [k for _, k in links]
    return ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) > 1 else ''}" for k in sorted(set(kinds)))


class Stopped(KeyboardInterrupt):
    """Raised by a signal handler (the CLI's, for SIGTERM) to stop a batch like Ctrl-C does."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupted(Exception):
    """A batch stopped by a signal: the file in progress was discarded (no temporary left behind)."""

    def __init__(self, summary: "Summary", total: int, signum: int):
        self.summary, self.total, self.signum = summary, total, signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}: {len(summary.enhanced)} of {total} files "
                         f"enhanced; run the same command again to resume (finished outputs are skipped)")


def _link_problem(p: Path) -> str | None:
    """Why a symlink found in an input folder is not followed, or None for a plain entry."""
    if not p.is_symlink():
        return None
    try:
        p.resolve(strict=True)
    except RuntimeError:
        return "link loop"
    except OSError as e:
        return "link loop" if e.errno == errno.ELOOP else "broken link"
    if p.is_dir():  # not followed: a link to the folder it is in, or above, would be a loop
        return "link loop" if p.parent.resolve().is_relative_to(p.resolve()) else "folder link"
    return None


def _is_output(f: Path, root: Path, out_dir: Path | None, suffix: str) -> bool:
    """True for a file of the output tree found under an input folder: anything below an output folder
    nested inside it, or, when the output folder is the input folder, a file named with the suffix."""
    if out_dir is None or not f.is_relative_to(out_dir):
        return False
    if out_dir != root:
        return root in out_dir.parents
    return bool(suffix) and f.stem.endswith(suffix)


def collect(inputs: Iterable[str | Path], out_dir: str | Path | None = None, suffix: str = "",
            links: list[tuple[Path, str]] | None = None) -> list[tuple[Path, Path]]:
    """(file, path relative to its input root) for every file given and every audio file below a folder.

    Files named directly are taken whatever their extension (so a bad file is reported, not ignored);
    folders contribute files with known audio extensions, recursively, in sorted order.  The output tree
    (``out_dir``, with ``suffix``) is never an input, so re-runs into a folder inside the input folder do
    not enhance earlier outputs.  Broken links, link loops and links to folders below an input folder are
    not followed; they are appended to ``links`` (path, why) when it is given.
    """
    out = Path(out_dir).absolute() if out_dir is not None else None
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            root = p.absolute()
            for f in sorted(p.rglob("*")):
                why = _link_problem(f)
                if why and links is not None and not f.name.startswith("."):
                    links.append((f, why))
                elif (f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith(".")
                      and not _is_output(f.absolute(), root, out, suffix)):
                    found.append((f, f.relative_to(p)))
        elif p.exists():
            found.append((p, Path(p.name)))
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return found


def output_path(rel: Path, out_dir: Path, suffix: str = "") -> Path:
    return out_dir / rel.with_name(rel.stem + suffix + rel.suffix)


def enhance_all(enhancer: Enhancer, inputs: Iterable[str | Path], out_dir: str | Path, suffix: str = "",
                overwrite: bool = False, channels: str = "each", progress: bool = True,
                report: Callable[[str], None] = log.info, shard: tuple[int, int] | None = None) -> Summary:
    """Enhance every input into out_dir (same relative paths).  Raises FileNotFoundError for a missing
    input and ValueError when nothing matched; per-file problems go into the summary instead.  Stale
    temporaries of earlier runs in out_dir are removed first.  A KeyboardInterrupt (Ctrl-C, or
    :class:`Stopped` raised by a signal handler) discards the file in progress and becomes
    :class:`Interrupted`, which carries the summary so far.

    ``shard`` (K, N) enhances only the K-th of N disjoint parts of the inputs (:mod:`se_app.shard`, split by
    output path, so shards never write the same file); it then removes stale temporaries of its own outputs
    only, never another shard's."""
    summary = Summary(shard=shard)
    files = collect(inputs, out_dir, suffix, summary.links)
    if not files:
        raise ValueError("no audio files matched the inputs")
    out_dir = Path(out_dir)
    summary.total = len(files)
    files = shards.select(files, shard, key=lambda f: str(output_path(f[1], out_dir, suffix)))
    mine = {output_path(rel, out_dir, suffix).absolute() for _, rel in files} if shard else None
    for tmp in remove_stale_temps(out_dir, mine):
        report(f"removed {tmp} (a temporary file left by an interrupted run)")
    sources = {f.resolve() for f, _ in files}
    try:
        _enhance_each(enhancer, files, sources, out_dir, suffix, overwrite, channels, progress, report, summary)
    except KeyboardInterrupt as e:  # Ctrl-C, or Stopped from a handler: the current file is discarded
        raise Interrupted(summary, len(files), getattr(e, "signum", signal.SIGINT)) from None
    return summary


def _enhance_each(enhancer: Enhancer, files: list[tuple[Path, Path]], sources: set[Path], out_dir: Path,
                  suffix: str, overwrite: bool, channels: str, progress: bool, report: Callable[[str], None],
                  summary: Summary) -> None:
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
