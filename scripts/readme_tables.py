"""Print the README's dev-test tables from evaluation summaries, so that its numbers are copied, not typed.

    python scripts/readme_tables.py docs/results/summary.json docs/results/devtest2-s12/summary.json

Table 1: the systems named in PEERS (first summary that has each), overall and per condition of dev test set v2.
Table 2: the compression study v2 at each rate: PESQ / STOI of the dense model, MPO from scratch, MPO from SVD and
gradual pruning, and MPO minus pruning with its paired-bootstrap 95 % interval (from the first summary's
comparisons; * = the interval excludes zero).
"""
from __future__ import annotations

import json
import sys

from se_app.report import _interval  # the report's lookup of one comparison

PEERS = ("noisy", "mpo-10x-v2", "dense-cmag-s38000", "rnnoise", "nsnet2")
RATES = (5, 10, 20, 50, 100)


def _ci(summary: dict, a: str, b: str, metric: str, part: str = "all") -> str:
    c = _interval(summary, a, b, metric, part)
    return "-" if c is None else f"{c['mean']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]{' *' if c['significant'] else ''}"


def peers(summaries: list[dict]) -> list[str]:
    lines = ["| system | params | PESQ all | STOI all | PESQ / STOI clean | PESQ / STOI reverb | PESQ-NB / STOI tel |",
             "|---|---|---|---|---|---|---|"]
    for name in PEERS:
        s = next((s for s in summaries if name in s["systems"]), None)
        if s is None:
            continue
        sy = s["systems"][name]
        cells = [f"{sy['pesq']['avg']:.3f}", f"{sy['stoi']['avg']:.3f}"]
        for cond in ("clean", "reverb", "tel"):
            c = s["conditions"][cond]["systems"][name]
            cells.append(f"{c['pesq']['avg']:.3f} / {c['stoi']['avg']:.3f}")
        lines.append(f"| {name} | {sy['params']:,} | " + " | ".join(cells) + " |")
    return lines


def study(s: dict) -> list[str]:
    sy = s["systems"]
    if "lstm-dense" not in sy:
        return []
    d = sy["lstm-dense"]
    lines = [f"Dense reference `lstm-dense` ({d['params']:,} parameters): PESQ {d['pesq']['avg']:.3f}, "
             f"STOI {d['stoi']['avg']:.3f}.", "",
             "| rate | MPO scratch PESQ / STOI | MPO SVD | pruned | MPO - pruned, PESQ [95 %] | MPO - pruned, STOI [95 %] |",
             "|---|---|---|---|---|---|"]
    for n in RATES:
        m, v, p = (sy.get(f"mpo-{n}x"), sy.get(f"mpo-{n}x-svd"), sy.get(f"pruned-{n}x"))
        if not (m and v and p):
            continue
        cell = lambda x: f"{x['pesq']['avg']:.3f} / {x['stoi']['avg']:.3f}"  # noqa: E731
        lines.append(f"| {n}x | {cell(m)} | {cell(v)} | {cell(p)} | {_ci(s, f'mpo-{n}x', f'pruned-{n}x', 'pesq')} | "
                     f"{_ci(s, f'mpo-{n}x', f'pruned-{n}x', 'stoi')} |")
    return lines


def main(paths: list[str]) -> None:
    summaries = [json.loads(open(p).read()) for p in paths]
    print("\n".join(peers(summaries)), "", "\n".join(study(summaries[0])), sep="\n")


if __name__ == "__main__":
    main(sys.argv[1:])
