"""Paired comparisons of systems on the same files: mean difference with a 95 % bootstrap confidence interval.

For systems A and B scored on the same n files, the per-file differences d_i = A_i - B_i are resampled with
replacement (files drawn together, so both systems see the same resample), ``resamples`` times; the interval is
the 2.5th to 97.5th percentile of the resampled means.  A difference is called significant only when its interval
excludes zero.  Files where either score is NaN (PESQ rejected a file) are left out and counted.
"""
from __future__ import annotations

import math

import numpy as np

METRICS = ("pesq", "stoi", "si_sdr")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 10000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Mean of a - b over files and its bootstrap interval: {"mean", "lo", "hi", "n", "nan", "significant"}."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    d = a[ok] - b[ok]
    n = len(d)
    if n == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0, "nan": int((~ok).sum()),
                "significant": False}
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for i in range(0, resamples, 1000):  # in blocks: bounded memory for long file lists
        k = min(1000, resamples - i)
        means[i:i + k] = d[rng.integers(0, n, size=(k, n))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": n, "nan": int((~ok).sum()),
            "significant": bool(lo > 0 or hi < 0)}


def compare(rows: list[dict], pairs: list[tuple[str, str]], condition: dict[str, str] | None = None,
            metrics=METRICS, resamples: int = 10000) -> list[dict]:
    """One entry per (A, B, metric, part): part "all" and, when ``condition`` maps files to conditions, each
    condition.  ``rows`` are per-file score rows {"system", "file", metric: value}."""
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
            for m in metrics:
                if not fs or m not in score[(a, fs[0])]:
                    continue
                x = np.array([score[(a, f)][m] for f in fs], float)
                y = np.array([score[(b, f)][m] for f in fs], float)
                out.append({"a": a, "b": b, "metric": m, "part": part,
                            **paired_bootstrap(x, y, resamples, seed=len(out))})
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
    lines = ["### Paired differences (A minus B), 95 % bootstrap intervals over files", "",
             "| A | B | part | metric | mean | 95 % interval | files | significant |", "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c['a']} | {c['b']} | {c['part']} | {c['metric']} | {c['mean']:+.3f} | "
                     f"[{c['lo']:+.3f}, {c['hi']:+.3f}] | {c['n']} | {'**yes**' if c['significant'] else 'no'} |")
    return "\n".join(lines) + "\n"
