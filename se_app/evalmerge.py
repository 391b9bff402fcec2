"""Join the output folders of ``se-app evaluate --shard K/N`` runs into the one evaluation they make up.

Each shard folder holds ``summary.json`` (with ``shard``: index, count, total_files, testset) and
``per_file.json`` (its rows at full precision).  The merge checks that the folders are the N distinct shards
of one run (same N, same test set, same systems, every K from 1 to N present exactly once), concatenates the
rows, recomputes every average from them (so the merged summary equals an unsharded run's), weights each
system's real-time factor by audio duration, and writes the usual outputs (:func:`se_app.evaluate.write_outputs`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .evaluate import write_outputs

log = logging.getLogger(__name__)


def _read(folder: Path) -> tuple[dict, list[dict]]:
    """(summary, rows) of one shard folder; ValueError naming the folder and what is wrong."""
    s_path, r_path = folder / "summary.json", folder / "per_file.json"
    for p in (s_path, r_path):
        if not p.is_file():
            raise ValueError(f"{folder}: not a shard of 'se-app evaluate --shard K/N' ({p.name} is missing)")
    summary = json.loads(s_path.read_text())
    if "shard" not in summary:
        raise ValueError(f"{folder}: summary.json has no 'shard' entry (not written with --shard K/N)")
    return summary, json.loads(r_path.read_text())


def merge(folders: list[str | Path], out_dir: str | Path) -> dict:
    """Merge shard folders into out_dir; returns the merged summary.  ValueError for a missing, repeated or
    foreign shard (each named)."""
    if not folders:
        raise ValueError("no shard folders given")
    shards = [(Path(f), *_read(Path(f))) for f in folders]
    first = shards[0][1]["shard"]
    count, testset = first["count"], first["testset"]
    seen: dict[int, Path] = {}
    for folder, summary, _ in shards:
        info = summary["shard"]
        if info["count"] != count or info["testset"] != testset:
            raise ValueError(f"{folder}: shard {info['index']}/{info['count']} of {info['testset']} does not "
                             f"belong with shard {first['index']}/{count} of {testset}")
        if set(summary["systems"]) != set(shards[0][1]["systems"]):
            raise ValueError(f"{folder}: scored other systems ({', '.join(summary['systems'])}) than "
                             f"{shards[0][0]} ({', '.join(shards[0][1]['systems'])})")
        if info["index"] in seen:
            raise ValueError(f"{folder}: shard {info['index']}/{count} given twice (also {seen[info['index']]})")
        seen[info["index"]] = folder
    missing = [k for k in range(1, count + 1) if k not in seen]
    if missing:
        raise ValueError(f"missing shard{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(f'{k}/{count}' for k in missing)} of {testset}")
    rows = [r for _, _, rs in sorted(shards, key=lambda s: s[1]["shard"]["index"]) for r in rs]
    meta = {}
    for name, entry in shards[0][1]["systems"].items():
        keep = {k: v for k, v in entry.items() if not isinstance(v, dict) and k != "pesq_nan"}
        spent = sum(s["systems"][name].get("enhance_s", 0.0) for _, s, _ in shards)
        dur = sum(s["systems"][name].get("audio_s", 0.0) for _, s, _ in shards)
        if "audio_s" in entry:
            keep.update(enhance_s=spent, audio_s=dur, rtf=spent / max(dur, 1e-9))
        meta[name] = keep
    files = len({r["file"] for r in rows})
    if files != first["total_files"]:
        log.warning("the shards hold %d files; the test set had %d when shard 1 ran", files, first["total_files"])
    log.info("merged %d shards of %s: %d files", count, testset, files)
    # the shards' --compare pairs (and the report's study pairs), recomputed over all files together
    pairs = list(dict.fromkeys((c["a"], c["b"]) for _, s, _ in shards for c in s.get("comparisons", [])))
    return write_outputs(Path(out_dir), rows, meta, testset, compare=pairs or None)
