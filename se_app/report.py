"""The compression-study report: the evaluation summary turned into one Markdown page (docs/results.md).

The page is generated, never edited by hand: the command that made it, the rate-by-rate comparison of MPO
against pruning (counted over the shipped study models: registered, named ``mpo-<N>x``, without a post-filter;
other MPO variants such as ``mpo-20x-svd`` are listed but not counted),
each difference with its paired-bootstrap 95 % interval (overall and per condition of the test set), the full
tables, the plot, and a hand-written notes file appended verbatim.
"""
from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

from . import plots, registry
from .evaluate import _method, markdown
from .registry import rates_match


def comparison(summary: dict, metric: str = "pesq") -> tuple[list[dict], int, int]:
    """Rows (one per pruned system and MPO system of about the same rate, within 10 %), and (wins, rates):
    at how many pruned rates the shipped MPO study model (registered, named mpo-<N>x, no post-filter) scores at
    least as high.  Variants (the other initialisation, post-filtered models) are rows, not counted."""
    sy = summary["systems"]
    pruned = sorted((n for n, e in sy.items() if e["kind"] == "pruned"), key=lambda n: sy[n]["rate"])
    rows, wins, rates = [], 0, 0
    for p in pruned:
        mpos = [n for n, e in sy.items() if e["kind"] == "mpo" and rates_match(e["rate"], sy[p]["rate"])]
        counted = [n for n in mpos if sy[n].get("registered") and re.fullmatch(r"mpo-\d+x", n)
                   and not _method(sy[n]).endswith("+pf")]
        for m in sorted(mpos, key=lambda n: (n not in counted, n)):
            diff = sy[m][metric]["avg"] - sy[p][metric]["avg"]
            rows.append({"rate": sy[p]["rate"], "mpo": m, "method": _method(sy[m]), "mpo_score": sy[m][metric]["avg"],
                         "pruned": p, "pruned_score": sy[p][metric]["avg"], "diff": diff, "counted": m in counted})
        if counted:
            rates += 1
            wins += max(sy[m][metric]["avg"] for m in counted) >= sy[p][metric]["avg"]
    return rows, wins, rates


def study_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(MPO, pruned) pairs among registered ``names`` at about the same rate: the pairs whose paired differences
    the report gives with bootstrap intervals (``se-app evaluate --report`` adds them to ``--compare``)."""
    models = registry.read()["models"]
    known = {n: models[n] for n in names if n in models}
    pruned = [n for n, e in known.items() if e["kind"] == "pruned"]
    return [(m, p) for p in pruned for m, e in known.items()
            if e["kind"] == "mpo" and rates_match(e["rate"], known[p]["rate"])]


def _interval(summary: dict, a: str, b: str, metric: str, part: str = "all") -> dict | None:
    for c in summary.get("comparisons", []):
        if (c["a"], c["b"], c["metric"], c["part"]) == (a, b, metric, part):
            return c
    return None


def _ci_text(c: dict | None) -> tuple[str, str]:
    if c is None:
        return "-", "-"
    return f"[{c['lo']:+.3f}, {c['hi']:+.3f}]", ("**yes**" if c["significant"] else "no")


def intervals_by_condition(summary: dict, pairs: list[tuple[str, str]], metric: str) -> list[str]:
    """Markdown rows: one per pair, one column per condition: mean difference, interval, * when significant."""
    parts = [p for p in dict.fromkeys(c["part"] for c in summary.get("comparisons", [])) if p != "all"]
    if not parts:
        return []
    lines = ["| MPO | pruned | " + " | ".join(parts) + " |", "|---|---|" + "---|" * len(parts)]
    for a, b in pairs:
        cells = []
        for part in parts:
            c = _interval(summary, a, b, metric, part)
            cells.append("-" if c is None else f"{c['mean']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]"
                         f"{' *' if c['significant'] else ''}")
        lines.append(f"| {a} | {b} | " + " | ".join(cells) + " |")
    return lines


def pareto_section(summary: dict, plot_rel: str) -> list[str]:
    """Size against quality: the plot and the Pareto-optimal models (no smaller model scores higher PESQ)."""
    pts = plots.pareto_points(summary)
    if not pts:
        return []
    sy = summary["systems"]
    lines = ["## Size against quality", "",
             "Bytes of each model in the compact format (`se_app/compact.py`: the numbers that define W and U at their "
             "precision, a pruned model's index, everything else float32).  Pareto-optimal models, smallest first:",
             "", "| model | method | bytes | PESQ | STOI |", "|---|---|---|---|---|"]
    for b, s, n in plots.frontier(pts):
        stoi = sy[n].get("stoi", {}).get("avg", float("nan"))
        lines.append(f"| {n} | {_method(sy[n])} | {b:,} | {s:.3f} | {stoi:.3f} |")
    return lines + ["", f"![PESQ against bytes]({plot_rel})", ""]


def render(summary: dict, command: str, plot_rel: str, notes: str = "") -> str:
    lines = ["# Compression study: MPO-LSTM against magnitude pruning", "",
             "Generated by `se-app evaluate --report`; do not edit by hand (notes go in the notes file).", "",
             "```bash", command, "```", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} with {os.cpu_count()} CPU cores "
             f"(RTF: one thread, measured while the scoring pool ran beside it).", ""]
    first = next(iter(summary["systems"].values()), {})
    for metric, label in (("pesq", "PESQ"), ("stoi", "STOI")):
        if metric not in first:  # scored without a clean reference (DNSMOS only)
            continue
        rows, wins, rates = comparison(summary, metric)
        if not rows:
            continue
        lines += [f"## MPO vs pruning, rate by rate (average {label})", "",
                  "| rate | MPO model | method | MPO | pruned model | pruned | MPO - pruned | 95 % interval | "
                  "significant | counted |", "|---|---|---|---|---|---|---|---|---|---|"]
        better = worse = 0
        for r in rows:
            c = _interval(summary, r["mpo"], r["pruned"], metric)
            ci, sig = _ci_text(c)
            if r["counted"] and c is not None and c["significant"]:
                better, worse = better + (c["mean"] > 0), worse + (c["mean"] < 0)
            lines.append(f"| {r['rate']:.1f}x | {r['mpo']} | {r['method']} | {r['mpo_score']:.3f} | {r['pruned']} | "
                         f"{r['pruned_score']:.3f} | {r['diff']:+.3f} | {ci} | {sig} | {'yes' if r['counted'] else 'no'} |")
        lines += ["", f"**MPO scores at least as high {label} as pruning at {wins} of {rates} rates** (counted: the "
                  "shipped MPO model of each rate, `mpo-<N>x`, without post-filter); "
                  f"**significantly higher at {better}, significantly lower at {worse}** (paired bootstrap over "
                  "files, 95 % interval excludes zero).", ""]
        counted = [(r["mpo"], r["pruned"]) for r in rows if r["counted"]]
        by_cond = intervals_by_condition(summary, counted, metric)
        if by_cond:
            lines += [f"Per condition ({label}, MPO minus pruned, * = interval excludes zero):", "", *by_cond, ""]
    lines += ["## Tables", "", markdown(summary), f"![PESQ and STOI against compression rate]({plot_rel})", ""]
    lines += pareto_section(summary, plot_rel.replace("rates.png", "pareto.png"))
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)


def write(summary: dict, out_dir: Path, report: Path, command: str, notes_path: Path | None = None) -> None:
    notes = notes_path.read_text() if notes_path else ""
    plot_rel = os.path.relpath(out_dir / "rates.png", report.parent)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render(summary, command, plot_rel, notes))
