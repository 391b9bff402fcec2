"""Paired comparisons of systems on the same files: mean difference with a 95 % bootstrap confidence interval.

For systems A and B scored on the same n files, the per-file differences d_i = A_i - B_i are resampled with
replacement (both systems see the same resample), ``resamples`` times; the interval is the 2.5th to 97.5th
percentile of the resampled means.  When the test set says which recording each file was made from (dev test set
v2 mixes every utterance at several SNRs and conditions), whole recordings are resampled with all their files:
those files are not independent, and treating them so would make the interval too narrow.  A difference is called significant only when its interval
excludes zero.  Files where either score is NaN (PESQ rejected a file) are left out and counted.
"""
from __future__ import annotations

import math

import numpy as np

METRICS = ("pesq", "stoi", "si_sdr")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 10000, seed: int = 0,
                     level: float = 0.95, clusters: np.ndarray | None = None) -> dict:
    """Mean of a - b over files and its bootstrap interval: {"mean", "lo", "hi", "n", "nan", "clusters",
    "significant"}.  ``clusters`` (a label per file, e.g. the utterance behind it): resample whole clusters, so
    files that share a recording are not counted as independent evidence (a wider, honest interval); None:
    every file is its own cluster."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    d = a[ok] - b[ok]
    n = len(d)
    labels = np.arange(n) if clusters is None else np.asarray(clusters)[ok]
    if n == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0, "nan": int((~ok).sum()), "clusters": 0,
                "significant": False}
    _, group = np.unique(labels, return_inverse=True)
    k = int(group.max()) + 1
    sums, counts = np.bincount(group, d, k), np.bincount(group, minlength=k).astype(np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for i in range(0, resamples, 1000):  # in blocks: bounded memory for long file lists
        m = min(1000, resamples - i)
        pick = rng.integers(0, k, size=(m, k))
        means[i:i + m] = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": n, "nan": int((~ok).sum()),
            "clusters": k, "significant": bool(lo > 0 or hi < 0)}


def compare(rows: list[dict], pairs: list[tuple[str, str]], condition: dict[str, str] | None = None,
            metrics=METRICS, resamples: int = 10000, cluster: dict[str, str] | None = None) -> list[dict]:
    """One entry per (A, B, metric, part): part "all" and, when ``condition`` maps files to conditions, each
    condition.  ``rows`` are per-file score rows {"system", "file", metric: value}; ``cluster`` maps files to
    the recording behind them (resampled together, :func:`paired_bootstrap`)."""
    score = {(r["system"], r["file"]): r for r in rows}
    systems = {r["system"] for r in rows}
    out = []
    for a, b in pairs:
        for s in (a, b):
            if s not in systems:
                raise ValueError(f"cannot compare {a} with {b}: no scores for {s} (systems: {sorted(systems)})")
        files = sorted({f for s, f in score if s == a} & {f for s, f in score if s == b})
        parts = {"all": files}
        for f in files:
            if condition and f in condition:
                parts.setdefault(condition[f], []).append(f)
        for part, fs in parts.items():
            labels = np.array([cluster.get(f, f) for f in fs]) if cluster else None
            for m in metrics:
                if not fs or m not in score[(a, fs[0])]:
                    continue
                x = np.array([score[(a, f)][m] for f in fs], float)
                y = np.array([score[(b, f)][m] for f in fs], float)
                out.append({"a": a, "b": b, "metric": m, "part": part,
                            **paired_bootstrap(x, y, resamples, seed=len(out), clusters=labels)})
    return out


def check_names(pairs: list[tuple[str, str]], known: list[str]) -> None:
    """Fail before any work when a pair names a system the run will not score."""
    for a, b in pairs:
        for s in (a, b):
            if s not in known:
                raise ValueError(f"--compare {a}:{b}: {s} is not among the systems of this run "
                                 f"({', '.join(dict.fromkeys(known))})")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """'A:B,C:D' -> [(A, B), (C, D)]."""
    pairs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        a, sep, b = item.partition(":")
        if not sep or not a or not b:
            raise ValueError(f"--compare takes A:B pairs separated by commas, got {item!r}")
        pairs.append((a, b))
    return pairs


def markdown(comparisons: list[dict]) -> str:
    """A table: A minus B, per metric and part, with the interval; significant rows marked."""
    lines = ["### Paired differences (A minus B), 95 % bootstrap intervals", "",
             "Resampled: recordings (all files made from one utterance together) when the test set names them, "
             "else files.", "",
             "| A | B | part | metric | mean | 95 % interval | files | recordings | significant |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c['a']} | {c['b']} | {c['part']} | {c['metric']} | {c['mean']:+.3f} | "
                     f"[{c['lo']:+.3f}, {c['hi']:+.3f}] | {c['n']} | {c.get('clusters', c['n'])} | "
                     f"{'**yes**' if c['significant'] else 'no'} |")
    return "\n".join(lines) + "\n"
