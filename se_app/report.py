"""The compression-study report: the evaluation summary turned into one Markdown page (docs/results.md).

The page is generated, never edited by hand: the command that made it, the rate-by-rate comparison of MPO
against pruning (counted: the registered ``mpo-<N>x`` against ``pruned-<N>x``; the SVD-started, int8 and distilled
pairs are listed but not counted), each variant against its method's reference (bond profile, local tensors,
distillation, one-shot pruning), every difference with its paired-bootstrap 95 % interval (overall and per
condition of the test set), the full tables, the plots, and a hand-written notes file appended verbatim.
"""
from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

from . import plots
from .evaluate import _method, markdown
from .registry import rates_match


# The study's naming (se_app/study.py, scripts/ship_study_v2.py): at each rate N, (MPO, pruned) name suffixes of the
# MPO-vs-pruning rows; the first row is the one counted in the headline (fp32, as trained).
MPO_VS_PRUNED = (("", ""), ("-svd", ""), ("-int8", "-int8"), ("-int8all", "-int8all"), ("-kd", "-kd"))
# (variant, reference) of one method: issue 16's "best shot" comparisons at the rates they were trained at.
VARIANTS = (("mpo-{n}x-svd", "mpo-{n}x"), ("mpo-{n}x-mountain", "mpo-{n}x"), ("mpo-{n}x-f3", "mpo-{n}x"),
            ("mpo-{n}x-f5", "mpo-{n}x"), ("mpo-{n}x-kd", "mpo-{n}x"), ("pruned-{n}x-kd", "pruned-{n}x"),
            ("pruned-{n}x-oneshot", "pruned-{n}x"))


def _rates(names) -> list[int]:
    return sorted({int(m.group(2)) for n in names if (m := re.fullmatch(r"(mpo|pruned)-(\d+)x(-.+)?", n))})


def pairs_among(names) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(MPO-vs-pruned pairs, variant-vs-reference pairs) whose two systems are both among ``names``."""
    have, vs, var = set(names), [], []
    for n in _rates(have):
        vs += [(f"mpo-{n}x{a}", f"pruned-{n}x{b}") for a, b in MPO_VS_PRUNED
               if {f"mpo-{n}x{a}", f"pruned-{n}x{b}"} <= have]
        var += [(a.format(n=n), b.format(n=n)) for a, b in VARIANTS if {a.format(n=n), b.format(n=n)} <= have]
    return vs, var


def comparison(summary: dict, metric: str = "pesq") -> tuple[list[dict], int, int]:
    """Rows, one per MPO-vs-pruned pair of the study's naming (:data:`MPO_VS_PRUNED`) at about the same rate, and
    (wins, rates): at how many rates the registered ``mpo-<N>x`` scores at least as high as ``pruned-<N>x``
    (both as trained, float32).  Other rows (SVD start, int8, distillation) are listed, not counted."""
    sy = summary["systems"]
    rows, wins, rates = [], 0, 0
    for m, p in pairs_among(sy)[0]:
        if not rates_match(sy[m]["rate"], sy[p]["rate"]):
            continue
        counted = bool(re.fullmatch(r"mpo-\d+x", m) and sy[m].get("registered") and sy[p].get("registered"))
        diff = sy[m][metric]["avg"] - sy[p][metric]["avg"]
        rows.append({"rate": sy[p]["rate"], "mpo": m, "method": _method(sy[m]), "mpo_score": sy[m][metric]["avg"],
                     "pruned": p, "pruned_score": sy[p][metric]["avg"], "diff": diff, "counted": counted})
        rates, wins = rates + counted, wins + (counted and diff >= 0)
    return rows, wins, rates


def study_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Every pair the report gives a bootstrap interval for (``se-app evaluate --report`` adds them to
    ``--compare``): MPO against pruning, and each variant against its method's reference."""
    vs, var = pairs_among(names)
    return vs + var


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


def variants_section(summary: dict) -> list[str]:
    """Each variant against its method's reference (:data:`VARIANTS`): PESQ and STOI differences with intervals."""
    pairs = pairs_among(summary["systems"])[1]
    if not pairs:
        return []
    sy = summary["systems"]
    lines = ["## Each method's best shot: variants against their reference", "",
             "| variant | reference | PESQ | PESQ diff | 95 % interval | STOI | STOI diff | 95 % interval |",
             "|---|---|---|---|---|---|---|---|"]
    for a, b in pairs:
        cells = []
        for metric in ("pesq", "stoi"):
            if metric not in sy[a]:
                cells += ["-", "-", "-"]
                continue
            ci = _interval(summary, a, b, metric)
            mark = " *" if ci and ci["significant"] else ""
            cells += [f"{sy[a][metric]['avg']:.3f}", f"{sy[a][metric]['avg'] - sy[b][metric]['avg']:+.3f}{mark}",
                      _ci_text(ci)[0]]
        lines.append(f"| {a} | {b} | " + " | ".join(cells) + " |")
    return lines + ["", "(* = the interval excludes zero.)", ""]


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
    lines += variants_section(summary)
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
