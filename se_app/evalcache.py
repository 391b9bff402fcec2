"""Resumable evaluation: each system's per-file scores are kept in ``OUT/cache/<system>.json`` as soon as all of
them are in, so a stopped ``se-app evaluate`` (a session's end, a crash) run again with the same command scores only
the systems it had not finished.

A cached system is reused only when everything its scores depend on is unchanged: the checkpoint's bytes, the
test files' bytes (the files of this run, after ``--limit`` and ``--shard``), whether DNSMOS was scored, and the
source of the package (any change to a ``se_app`` module other than the report and plot writers invalidates every
entry: enhancement or metric code may have changed).  ``--fresh`` ignores the cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from . import __version__

log = logging.getLogger(__name__)

# Modules that only format results: editing them keeps the scores valid.
_FORMAT_ONLY = {"report.py", "plots.py", "evalcache.py"}


def _file_hash(path: Path, h) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def code_hash() -> str:
    """sha256 over the package's Python sources (less the formatting-only modules and the UI)."""
    root = Path(__file__).parent
    h = hashlib.sha256(__version__.encode())
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root)
        if p.name in _FORMAT_ONLY or rel.parts[0] == "ui":
            continue
        h.update(str(rel).encode())
        _file_hash(p, h)
    return h.hexdigest()


def files_hash(files: list[tuple[Path, Path | None]]) -> str:
    """sha256 over the (noisy, clean) files of the run: names and bytes, in order."""
    h = hashlib.sha256()
    for noisy, clean in files:
        for p in (noisy, clean):
            if p is not None:
                h.update(p.name.encode())
                _file_hash(p, h)
    return h.hexdigest()


def model_hash(path: Path | None, name: str) -> str:
    """sha256 of the checkpoint's bytes, or of the name for a classical baseline (no file)."""
    h = hashlib.sha256(name.encode())
    if path is not None:
        _file_hash(path, h)
    return h.hexdigest()


class Cache:
    """Per-system score cache of one output folder; ``enabled=False`` reads nothing (it still writes)."""

    def __init__(self, out_dir: Path, files_key: str, dnsmos: bool, enabled: bool = True):
        self.dir = Path(out_dir) / "cache"
        self.base = {"files": files_key, "dnsmos": bool(dnsmos), "code": code_hash()}
        self.enabled = enabled

    def _path(self, system: str) -> Path:
        return self.dir / f"{system.replace('/', '_')}.json"

    def get(self, system: str, model_key: str) -> tuple[dict, list[dict]] | None:
        """(meta, rows) of ``system`` when cached under the same keys, else None."""
        path = self._path(system)
        if not self.enabled or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if entry.get("key") != {**self.base, "model": model_key}:
            log.info("cache: %s is stale (model, files or code changed); scoring it again", system)
            return None
        return entry["meta"], entry["rows"]

    def put(self, system: str, model_key: str, meta: dict, rows: list[dict]) -> None:
        """Write whole or not at all (a temporary file renamed into place)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(system)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": {**self.base, "model": model_key}, "meta": meta, "rows": rows},
                                  allow_nan=True))
        tmp.replace(path)
