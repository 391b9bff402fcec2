"""The evaluation's figures: scores against compression rate, and the Pareto plot (score against bytes)."""
from __future__ import annotations

import re
from pathlib import Path

QUANT = re.compile(r"\+int\d+(?:all)?")  # checkpoint.method_of's quantisation suffix: +int8, +int4, +int8all


def method_label(e: dict) -> str:
    """How a system was made (summary entry's method, else its kind): the legend of both plots and the tables."""
    return e.get("method") or e["kind"]


def quant_group(label: str) -> tuple[str, str]:
    """A method label -> (the method it was quantised from, its quantisation: "int8", "int8all", ... or ""), so
    that the Pareto plot draws "mpo-scratch+int8all" with "mpo-scratch" (hollow)."""
    return QUANT.sub("", label), "".join(QUANT.findall(label)).lstrip("+")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rates(summary: dict, path: Path) -> None:
    """PESQ and STOI (DNSMOS without a reference) against the compression rate of W and U, a curve per method."""
    plt = _pyplot()
    sy = summary["systems"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    pairs_ = ((axes[0], "pesq", "PESQ"), (axes[1], "stoi", "STOI"))
    if "pesq" not in next(iter(sy.values()), {}):  # no clean reference: DNSMOS OVRL and SIG instead
        pairs_ = ((axes[0], "dnsmos_ovrl", "DNSMOS OVRL"), (axes[1], "dnsmos_sig", "DNSMOS SIG"))
    for ax, metric, label in pairs_:
        # one curve per compression method (mpo-svd, mpo-scratch, pruned, ...); dense and noisy as lines
        methods = sorted({method_label(e) for e in sy.values() if e["kind"] in ("mpo", "pruned", "lowrank")})
        for method, marker in zip(methods, "os^vD<>p*"):
            pts = sorted((e["rate"], e[metric]["avg"]) for e in sy.values() if method_label(e) == method)
            ax.plot(*zip(*pts), marker=marker, linestyle="--" if method.startswith("pruned") else "-", label=method)
        for e in sy.values():
            if e["kind"] in ("dense", "noisy", "classical"):
                ax.axhline(e[metric]["avg"], linestyle={"dense": "-", "noisy": ":"}.get(e["kind"], "-."),
                           color="k" if method_label(e) in ("dense", "noisy") else "grey", label=method_label(e))
        ax.set_xscale("log")
        ax.set_xlabel("compression rate of W and U (x)")
        ax.set_ylabel(f"{label} (average)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def frontier(points: list[tuple[int, float, str]]) -> list[tuple[int, float, str]]:
    """The Pareto-optimal (bytes, score, name) points: no other point is at most as large and scores higher.
    Sorted by bytes; ties in bytes keep the higher score."""
    best, out = -float("inf"), []
    for b, s, n in sorted(points, key=lambda p: (p[0], -p[1])):
        if s > best:
            out.append((b, s, n))
            best = s
    return out


def pareto_points(summary: dict, metric: str = "pesq") -> list[tuple[int, float, str]]:
    """(compact bytes, average score, name) of every model with a byte count (not noisy, not peers)."""
    return [(e["compact_bytes"], e[metric]["avg"], n) for n, e in summary["systems"].items()
            if e.get("compact_bytes") and metric in e]


def pareto(summary: dict, path: Path, metric: str = "pesq") -> None:
    """Average score against the model's bytes in the compact format (log scale), a marker per method
    (quantised models hollow, whatever their bits and scope: "mpo-scratch+int8all" is drawn with
    "mpo-scratch"), the Pareto frontier as a step line, noisy input as a dotted line."""
    pts = pareto_points(summary, metric)
    if not pts:
        return
    plt = _pyplot()
    sy = summary["systems"]
    fig, ax = plt.subplots(figsize=(8, 5))
    group = {n: quant_group(method_label(sy[n])) for _, _, n in pts}  # (method, "" or "int8", "int8all", ...)
    methods = sorted({m for m, _ in group.values()})
    for method, marker in zip(methods, "osD^v<>p*h"):
        for quant in sorted({q for m, q in group.values() if m == method}):  # "" (filled) first
            mine = [(b, s) for b, s, n in pts if group[n] == (method, quant)]
            ax.scatter(*zip(*mine), marker=marker, facecolors="none" if quant else None,
                       edgecolors="C%d" % methods.index(method), color="C%d" % methods.index(method),
                       label=method + (" " + quant if quant else ""))
    front = frontier(pts)
    ax.step([b for b, _, _ in front], [s for _, s, _ in front], where="post", color="k", alpha=0.5,
            label="Pareto frontier")
    for b, s, n in front:
        ax.annotate(n, (b, s), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if "noisy" in sy and metric in sy["noisy"]:
        ax.axhline(sy["noisy"][metric]["avg"], linestyle=":", color="k", label="noisy")
    ax.set_xscale("log")
    ax.set_xlabel("model size in the compact format (bytes)")
    ax.set_ylabel(f"{metric.upper()} (average)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
