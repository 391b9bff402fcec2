"""Real-time factor (one thread) per model kind, offline and streaming, and peak memory on a one-hour file.

Usage: python benchmarks/rtf.py [--models NAME ...] [--seconds 60] [--hour]
Without --models it benchmarks freshly initialised 2 x 256 models of each kind (speed does not depend on the
weights); with names it loads them from the registry.  Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from se_app.enhancer import Enhancer
from se_app.model import MaskNet, ModelConfig
from se_app.stft import STFTConfig


def rtf_offline(enh: Enhancer, x: np.ndarray, rate: int) -> float:
    enh.enhance(x[: rate], rate)  # warm-up
    t0 = time.perf_counter()
    enh.enhance(x, rate)
    return (time.perf_counter() - t0) / (len(x) / rate)


def rtf_stream(enh: Enhancer, x: np.ndarray, chunk: int) -> float:
    s = enh.stream(1)
    xt = torch.from_numpy(x)[None]
    t0 = time.perf_counter()
    for i in range(0, xt.shape[1], chunk):
        s.process(xt[:, i:i + chunk])
    s.flush()
    return (time.perf_counter() - t0) / (len(x) / enh.sample_rate)


def hour_memory(model: str | None) -> str:
    """Peak RSS of a separate process enhancing a one-hour 16 kHz file."""
    code = f"""
import resource, sys, time, numpy as np, soundfile as sf, torch
torch.set_num_threads(1)
from se_app.enhancer import Enhancer
from se_app.model import MaskNet, ModelConfig
from se_app.stft import STFTConfig
src, dst = sys.argv[1], sys.argv[2]
enh = Enhancer.load({model!r}) if {model!r} != 'None' else Enhancer(MaskNet(ModelConfig(kind='mpo', mpo_rate=20)), STFTConfig())
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); r = enh.enhance_file(src, dst)
print(f"{{r.seconds:.0f}} s audio in {{time.perf_counter()-t0:.1f}} s (RTF {{r.rtf:.4f}}), "
      f"peak RSS {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f}} MB (after load {{base/1024:.0f}} MB)")
"""
    with tempfile.TemporaryDirectory() as d:
        import soundfile as sf
        src = Path(d) / "hour.wav"
        rng = np.random.default_rng(0)
        with sf.SoundFile(str(src), "w", 16000, 1, "PCM_16") as f:
            for _ in range(60):
                f.write((0.05 * rng.standard_normal(16000 * 60)).astype(np.float32))
        out = subprocess.run([sys.executable, "-c", code, str(src), str(Path(d) / "out.wav")],
                             capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", **__import__("os").environ})
        return (out.stdout or out.stderr).strip().splitlines()[-1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="*")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--stream-seconds", type=float, default=20.0)
    p.add_argument("--hour", action="store_true", help="also measure peak memory on a one-hour file")
    a = p.parse_args()
    torch.set_num_threads(1)
    rate = 16000
    x = (0.05 * np.random.default_rng(0).standard_normal(int(a.seconds * rate))).astype(np.float32)
    if a.models:
        systems = [(n, Enhancer.load(n)) for n in a.models]
    else:
        cfgs = {"dense 2x256": ModelConfig(), "mpo 20x": ModelConfig(kind="mpo", mpo_rate=20),
                "pruned 20x": ModelConfig(kind="pruned", sparsity=0.95)}
        systems = []
        for n, c in cfgs.items():
            m = MaskNet(c)
            if c.kind == "pruned":
                m.core.prune_to(c.sparsity)
            systems.append((n, Enhancer(m, STFTConfig(), n)))
    print("| model | offline RTF | streaming RTF (10 ms chunks) | streaming RTF (16 ms hop chunks) |")
    print("|---|---|---|---|")
    for name, enh in systems:
        off = rtf_offline(enh, x, rate)
        s10 = rtf_stream(enh, x[: int(a.stream_seconds * rate)], 160)
        s16 = rtf_stream(enh, x[: int(a.stream_seconds * rate)], 256)
        print(f"| {name} | {off:.4f} | {s10:.4f} | {s16:.4f} |", flush=True)
    if a.hour:
        print("\none-hour file:", hour_memory(a.models[0] if a.models else None))


if __name__ == "__main__":
    main()
