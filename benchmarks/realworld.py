"""Speed of the issue-15 features, one thread: DNSMOS per second of audio, the live tab's per-chunk time, and
truncating a model.

Usage: OMP_NUM_THREADS=1 python benchmarks/realworld.py [--model NAME (default: the registry default)] [--rounds 3]

- DNSMOS: :func:`se_app.dnsmos.score` on a 3 s clip (repeated to 9.01 s: 3 windows) and a 60 s clip (52 windows,
  one a second), after one warm-up call (session creation excluded); median over rounds.
- live: 10 s of 48 kHz mono in 250 ms chunks (what the browser sends) through ``Enhancer.live`` of an enhancer
  loaded with ``streaming=True`` (the path of the live tab and ``se-app enhance --streaming``), per backend;
  mean, median and max milliseconds per chunk.
- compress: ``se_app.compress.compress`` of the model to twice its rate, and of ``lstm-dense`` to 10x.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import soxr
import torch

from se_app import audio, backends, checkpoint, compress, dnsmos, registry
from se_app.enhancer import Enhancer


def clip(seconds: float, rate: int) -> np.ndarray:
    """The bundled examples, resampled and repeated to ``seconds``."""
    from pathlib import Path

    parts = [audio.read(p)[0][:, 0] for p in sorted((Path(__file__).parents[1] / "data" / "examples").glob("*.wav"))]
    x = soxr.resample(np.concatenate(parts), 16000, rate) if rate != 16000 else np.concatenate(parts)
    return np.resize(x, int(seconds * rate)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=registry.read()["default"])
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    dnsmos.score(clip(3, 16000), 16000)  # warm-up: the session
    for seconds in (3, 60):
        x = clip(seconds, 16000)
        t = []
        for _ in range(a.rounds):
            t0 = time.perf_counter()
            dnsmos.score(x, 16000)
            t.append(time.perf_counter() - t0)
        med = statistics.median(t)
        print(f"DNSMOS {seconds:>3} s clip: {med:.3f} s ({len(dnsmos.windows(x))} windows), "
              f"{1000 * med / seconds:.1f} ms per second of audio")
    x = clip(10, 48000)[:, None]
    for backend in ("torch", "onnx") if backends.onnx_available() else ("torch",):
        enh = Enhancer.load(a.model, backend=backend, streaming=True)
        times = []
        for _ in range(a.rounds):
            live = enh.live(48000, 1)
            for i in range(0, len(x), 12000):
                t0 = time.perf_counter()
                live.process(x[i:i + 12000])
                times.append(1000 * (time.perf_counter() - t0))
        print(f"live {a.model} {backend}: 250 ms chunks at 48 kHz: mean {statistics.mean(times):.1f} ms, median "
              f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms per chunk "
              f"(real-time factor {statistics.mean(times) / 250:.3f})")
    for name, rate in ((a.model, None), ("lstm-dense", 10.0)):
        model = checkpoint.load(registry.resolve(name)[0])[0]
        t0 = time.perf_counter()
        _, info = compress.compress(model, rate or 2 * model.rate())
        print(f"compress {name}: {compress.describe(info)} in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
