"""Scores per condition of the dev test set v2 (clean, reverb, tel): the evaluation summary, once per condition;
and the PESQ gain per noise recording of a test set whose ``pairs.csv`` names the noises.

A testset's ``pairs.csv`` names each pair's condition; a folder without one has no conditions and gets no
per-condition section.  Telephone-band files are 8 kHz, so their PESQ is narrow-band (P.862.1), not comparable
with the wide-band PESQ of the other conditions; the table says so.
"""
from __future__ import annotations

LABELS = {"clean": "studio speech + noise", "reverb": "speech and noise in a room (reference keeps the room)",
          "tel": "telephone band, 8 kHz files (PESQ narrow-band)"}


def by_condition(rows: list[dict], meta: dict, condition: dict[str, str]) -> dict:
    """{condition: summary of the rows of that condition's files} (same layout as the whole summary)."""
    from .evaluate import _summarise  # the one summariser; evaluate imports this module

    out = {}
    for cond in sorted(set(condition.values()), key=lambda c: (list(LABELS).index(c) if c in LABELS else 99, c)):
        mine = [r for r in rows if condition.get(r["file"]) == cond]
        if mine:
            out[cond] = _summarise(mine, {s: meta[s] for s in meta if any(r["system"] == s for r in mine)})
    return out


def conditions_markdown(table: dict, order: list[str]) -> str:
    """One table per condition: average PESQ, STOI, ESTOI, SI-SDR per system, then PESQ per SNR."""
    lines = []
    for cond, summary in table.items():
        snrs = summary["snrs"]
        head = ["system", "PESQ", "STOI", "ESTOI", "SI-SDR (dB)"] + [f"PESQ {s} dB" for s in snrs if s != "all"]
        lines += [f"### Condition `{cond}`: {LABELS.get(cond, cond)}, {summary['files']} pairs", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in [n for n in order if n in summary["systems"]]:
            e = summary["systems"][name]
            vals = [f"{e[m]['avg']:.3f}" for m in ("pesq", "stoi", "estoi")] + [f"{e['si_sdr']['avg']:.2f}"]
            vals += [f"{e['pesq'][s]:.3f}" for s in snrs if s != "all"]
            lines.append("| " + " | ".join([name, *vals]) + " |")
        lines.append("")
    return "\n".join(lines)


def by_noise(rows: list[dict], noise: dict[str, str]) -> dict:
    """{noise: {"files": n, "noisy_pesq": mean, "gain": {system: mean PESQ improvement}}} for the files
    ``noise`` names (file -> first noise recording of the pair)."""
    from .evaluate import _mean

    out: dict[str, dict] = {}
    for r in rows:
        n = noise.get(r["file"])
        if n is None:
            continue
        e = out.setdefault(n, {"files": set(), "noisy": [], "gain": {}})
        e["files"].add(r["file"])
        if r["system"] == "noisy":
            e["noisy"].append(r["pesq"])
        else:
            e["gain"].setdefault(r["system"], []).append(r["pesq_improvement"])
    return {n: {"files": len(e["files"]), "noisy_pesq": _mean(e["noisy"]),
                "gain": {s: _mean(v) for s, v in e["gain"].items()}} for n, e in sorted(out.items())}


def by_noise_markdown(table: dict, systems: list[str]) -> str:
    """Noise recordings as rows (hardest for the first system first), PESQ gain per system as columns."""
    systems = [s for s in systems if s != "noisy"]
    head = ["noise", "pairs", "noisy PESQ", *systems]
    lines = ["### PESQ gain over the noisy input, by noise recording", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    key = systems[0] if systems else None
    for n, e in sorted(table.items(), key=lambda kv: kv[1]["gain"].get(key, 0.0) if key else kv[0]):
        vals = [f"{e['gain'][s]:+.3f}" for s in systems]
        lines.append("| " + " | ".join([n, str(e["files"]), f"{e['noisy_pesq']:.3f}", *vals]) + " |")
    return "\n".join(lines) + "\n"
