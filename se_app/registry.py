"""The model registry: ``models/registry.json`` maps names to checkpoint files with their sha256.

Layout: {"default": NAME, "models": {NAME: {"file", "sha256", "kind", "rate", "params", "size_bytes",
"scores", "card"}}}.  Files are checked against their hash before use.  ``size_bytes`` is the file's size,
except for a quantised checkpoint (``se-app quantize``), whose file holds float32 copies: there it is the bytes
of its compact int8 file (:func:`se_app.compact.storage_bytes` in the checkpoint's scope, recorded in its
provenance when it was quantised), so sizes compare what a model needs to ship.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import checkpoint

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
REGISTRY = "registry.json"


class ModelNotFound(LookupError):
    pass


def models_dir() -> Path:
    return Path(os.environ.get("SE_APP_MODELS", MODELS_DIR))


def read(root: Path | None = None) -> dict:
    path = (root or models_dir()) / REGISTRY
    if not path.exists():
        return {"default": None, "models": {}}
    with open(path) as f:
        return json.load(f)


def write(reg: dict, root: Path | None = None) -> None:
    path = (root or models_dir()) / REGISTRY
    tmp = path.with_suffix(".json.part")
    with open(tmp, "w") as f:
        json.dump(reg, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def resolve(name_or_path: str | os.PathLike | None = None, root: Path | None = None) -> tuple[Path, str]:
    """A registry name, a checkpoint path, or None for the default -> (checkpoint path, display name)."""
    root = root or models_dir()
    reg = read(root)
    if name_or_path is None:
        name_or_path = reg.get("default")
        if not name_or_path:
            raise ModelNotFound(f"no default model is registered in {root / REGISTRY}; train one with "
                                f"'se-app train' or pass --model PATH")
    key = str(name_or_path)
    if key in reg["models"]:
        entry = reg["models"][key]
        path = root / entry["file"]
        if not path.exists():
            raise ModelNotFound(f"model {key!r}: file {path} is missing")
        digest = checkpoint.sha256(path)
        if entry.get("sha256") and digest != entry["sha256"]:
            raise ModelNotFound(f"model {key!r}: {path} does not match its registered sha256")
        return path, key
    path = Path(key)
    if path.is_file():
        return path, path.stem
    known = ", ".join(sorted(reg["models"])) or "none"
    raise ModelNotFound(f"no model named or at {key!r} (registered: {known})")


def size_of(path: Path, ckpt: dict | None = None) -> int:
    """Bytes a model takes to ship: its file's size, or for a quantised checkpoint its compact file's bytes."""
    quant = ((ckpt if ckpt is not None else checkpoint.read(path)).get("provenance") or {}).get("quantize") or {}
    return int(quant.get("bytes_quant") or Path(path).stat().st_size)


def entry_for(path: Path, root: Path | None = None, card: str | None = None, scores: dict | None = None) -> dict:
    """A registry entry for a checkpoint file (kind, rate and params read from the file itself)."""
    root = root or models_dir()
    ckpt = checkpoint.read(path)
    if "wu_params" not in ckpt:  # checkpoints written before the W/U counts were recorded
        model, _ = checkpoint.model_from(ckpt)
        ckpt["wu_params"], ckpt["wu_dense"] = model.core.effective_params(), model.core.dense_count()
    return {
        "file": os.path.relpath(path, root),
        "sha256": checkpoint.sha256(path),
        "kind": ckpt["model"]["kind"],
        "rate": round(float(ckpt["rate"]), 3),
        "params": int(ckpt["params"]),
        "wu_params": int(ckpt["wu_params"]),
        "wu_dense": int(ckpt["wu_dense"]),
        "method": checkpoint.method_of(ckpt),
        "mask_power": float(ckpt["model"].get("mask_power", 1.0)),
        "size_bytes": size_of(path, ckpt),
        "scores": scores if scores is not None else ckpt.get("scores", {}),
        "card": card,
    }


def rates_match(a: float, b: float, tol: float = 0.1) -> bool:
    """Two compression rates count as the same rate when within ``tol`` (relative to the larger)."""
    return abs(a - b) <= tol * max(a, b)


def listing(root: Path | None = None) -> list[dict]:
    """Rows for ``se-app models``: name, kind, rate, params, size and known scores, default first."""
    reg = read(root)
    rows = []
    for name, e in reg["models"].items():
        rows.append({"name": name, "default": name == reg.get("default"), "kind": e["kind"], "rate": e["rate"],
                     "method": e.get("method", e["kind"]), "params": e["params"], "wu_params": e.get("wu_params"),
                     "wu_dense": e.get("wu_dense"), "size_bytes": e["size_bytes"], "scores": e.get("scores", {}),
                     "card": e.get("card")})
    rows.sort(key=lambda r: (not r["default"], r["kind"], r["rate"]))
    return rows
