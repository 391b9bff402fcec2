"""Shared fixtures: tiny models in a temporary registry, and short synthetic signals."""
from __future__ import annotations

import csv

import numpy as np
import soundfile as sf
import pytest
import torch

from se_app import checkpoint, registry
from se_app.model import MaskNet, ModelConfig
from se_app.stft import STFTConfig

torch.set_num_threads(1)

TINY = {
    "tiny-dense": ModelConfig(kind="dense", hidden=16),
    "tiny-mpo": ModelConfig(kind="mpo", hidden=16, bonds=(3, 3, 3)),
    "tiny-pruned": ModelConfig(kind="pruned", hidden=16, sparsity=0.8),
}


def make_tiny_registry(root) -> None:
    """Three tiny random models (dense, mpo, pruned) registered in ``root``; default tiny-mpo."""
    reg = {"default": "tiny-mpo", "models": {}}
    for i, (name, cfg) in enumerate(TINY.items()):
        torch.manual_seed(i)
        model = MaskNet(cfg)
        if cfg.kind == "pruned":
            model.core.prune_to(cfg.sparsity)
        path = root / f"{name}.pt"
        checkpoint.save(path, model, STFTConfig(), provenance={"note": "random test model"})
        reg["models"][name] = registry.entry_for(path, root)
    registry.write(reg, root)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_tiny_registry(root)
    return root


@pytest.fixture
def tiny_registry(tiny_models, monkeypatch):
    """Point the registry at the tiny models for one test."""
    monkeypatch.setenv("SE_APP_MODELS", str(tiny_models))
    return tiny_models


def speechlike(seconds: float = 1.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a syllable-rate envelope plus a little noise: deterministic and cheap."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    x = 0.1 * voice * env + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def rir_like(seed: int, rt60: float = 0.3, rate: int = 16000) -> np.ndarray:
    """A synthetic room impulse response: 5 ms of silence, a direct spike, an exponentially decaying tail."""
    rng = np.random.default_rng(seed)
    n = int(rt60 * rate)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n) * 0.3
    return np.concatenate([np.zeros(80), [1.0], tail]).astype(np.float32)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    """A manifest corpus: 16 kHz and 8 kHz 'speech', noise, in train/valid/test splits."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("valid", 2), ("test", 2)):
        for i in range(n):
            p = f"speech/{split}{i}.flac"
            (root / "speech").mkdir(exist_ok=True)
            sf.write(str(root / p), speechlike(2.0, seed=100 + i + 10 * len(rows)), 16000)
            rows.append((p, 16000, "speech", split))
            p = f"noise/{split}{i}.flac"
            (root / "noise").mkdir(exist_ok=True)
            sf.write(str(root / p), (0.05 * rng.standard_normal(24000)).astype(np.float32), 16000)
            rows.append((p, 16000, "noise", split))
        p = f"rir/{split}.flac"
        (root / "rir").mkdir(exist_ok=True)
        sf.write(str(root / p), rir_like(len(rows)), 16000)
        rows.append((p, 16000, "rir", split))
    sf.write(str(root / "speech" / "narrow.flac"), speechlike(2.0, 8000, seed=7), 8000)
    rows.append(("speech/narrow.flac", 8000, "speech", "train"))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "sample_rate", "kind", "split"])
        w.writerows(rows)
    return root
