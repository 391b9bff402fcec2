"""Files of the web UI on the server: per-request folders, Gradio's upload cache, and messages that never show
server paths.  Nothing here imports gradio, so :func:`private_gradio_cache` can run before it is imported."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

TEMP_ROOT = Path(tempfile.gettempdir()) / "se_app_ui"  # per-request folders live under here
TEMP_MAX_AGE_S = 1800.0  # request folders older than this are swept (Gradio has copied the files by then)
CACHE_MAX_BYTES = 2 << 30  # Gradio's upload cache is trimmed, oldest files first, to this size
CACHE_KEEP_S = 120.0  # files younger than this are never trimmed (a request may still be reading them)


def cleanup_temp(max_age_s: float | None = None) -> None:
    """Remove request folders under :data:`TEMP_ROOT`: any process's older than ``max_age_s``, or with None
    (at exit) all of this process's."""
    for d in TEMP_ROOT.glob("req-*" if max_age_s is not None else f"req-{os.getpid()}-*"):
        with contextlib.suppress(OSError):
            if max_age_s is None or time.time() - d.stat().st_mtime >= max_age_s:
                shutil.rmtree(d, ignore_errors=True)


def new_request_dir() -> Path:
    """A fresh request folder; old ones are swept and Gradio's cache is trimmed first."""
    TEMP_ROOT.mkdir(parents=True, exist_ok=True)
    cleanup_temp(TEMP_MAX_AGE_S)
    cache = os.environ.get("GRADIO_TEMP_DIR")
    if cache and Path(cache).name.startswith("gradio-"):  # ours (private_gradio_cache), never a user's folder
        cap_cache(Path(cache))
    return Path(tempfile.mkdtemp(prefix=f"req-{os.getpid()}-", dir=TEMP_ROOT))


def private_gradio_cache() -> Path:
    """Point Gradio's upload cache (``GRADIO_TEMP_DIR``) at a folder of this process's own, below the one
    configured (or below :data:`TEMP_ROOT`), so that :func:`remove_gradio_cache` can delete it at exit.
    Call it before gradio is imported."""
    base = Path(os.environ.get("GRADIO_TEMP_DIR") or TEMP_ROOT)
    cache = base / f"gradio-{os.getpid()}"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    return cache


def remove_gradio_cache() -> None:
    """Delete this process's Gradio cache (at exit) if :func:`private_gradio_cache` made it."""
    cache = os.environ.get("GRADIO_TEMP_DIR")
    if cache and Path(cache).name == f"gradio-{os.getpid()}":
        shutil.rmtree(cache, ignore_errors=True)
        log.info("removed the upload cache %s", cache)


def cap_cache(root: Path, max_bytes: int | None = None, keep_s: float | None = None) -> int:
    """Delete the oldest files below root until it holds at most ``max_bytes`` (default
    :data:`CACHE_MAX_BYTES`), sparing files younger than ``keep_s``; returns the bytes freed."""
    max_bytes = CACHE_MAX_BYTES if max_bytes is None else max_bytes
    keep_s = CACHE_KEEP_S if keep_s is None else keep_s
    files = []
    for p in root.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
    total, freed, now = sum(f[1] for f in files), 0, time.time()
    for mtime, size, p in sorted(files):
        if total - freed <= max_bytes:
            break
        if now - mtime < keep_s:
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            freed += size
            with contextlib.suppress(OSError):
                p.parent.rmdir()  # Gradio keeps one upload per folder
    if freed:
        log.info("trimmed the upload cache %s by %.0f MB", root, freed / 1e6)
    return freed


def public(text: str, *paths: str | os.PathLike | None) -> str:
    """text with every server path below the given paths' folders or the temp roots replaced by its file
    name, so that messages shown in the page name the user's own file and nothing of the server."""
    roots = {str(Path(p).parent) for p in paths if p}
    roots |= {str(r) for r in (TEMP_ROOT, os.environ.get("GRADIO_TEMP_DIR"), tempfile.gettempdir()) if r}
    for root in sorted(roots, key=len, reverse=True):
        text = re.sub(re.escape(root.rstrip("/")) + r"/[^\s'\"]*", lambda m: Path(m.group()).name, text)
    return text
