"""One table per condition of dev test set v2 from one or more `se-app evaluate` folders (their summary.json):
rows = systems (noisy once), columns = the average and each SNR, every cell PESQ / STOI / SI-SDR (dB).  Used for
docs/quality.md.

    python3 scripts/quality_table.py runs/eval-v2-old runs/eval-v2-new
    python3 scripts/quality_table.py --systems noisy,nsnet2=NSNet2,mpo10x-cmag-s29000=mpo-10x-v2 runs/a runs/b
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from se_app.conditions import LABELS


def cell(e: dict, snr: str) -> str:
    return f"{e['pesq'][snr]:.3f} / {e['stoi'][snr]:.3f} / {e['si_sdr'][snr]:.2f}"


def pick(systems: dict[str, dict], wanted: list[tuple[str, str]] | None) -> list[tuple[str, dict]]:
    """The systems to print, in the order asked and under their labels (all, as found, when none are asked)."""
    if not wanted:
        return list(systems.items())
    missing = [name for name, _ in wanted if name not in systems]
    if missing:
        raise SystemExit(f"quality_table: no system {', '.join(missing)} in the folders (have {', '.join(systems)})")
    return [(label, systems[name]) for name, label in wanted]


def main(folders: list[str], wanted: list[tuple[str, str]] | None) -> None:
    merged: dict[str, dict] = {}
    overall: dict[str, dict] = {}
    snrs_all: list[str] = []
    for folder in folders:
        s = json.loads((Path(folder) / "summary.json").read_text())
        snrs_all = snrs_all or s["snrs"]
        for name, e in s["systems"].items():
            overall.setdefault(name, e)
        for cond, cs in s.get("conditions", {}).items():
            m = merged.setdefault(cond, {"files": cs["files"], "snrs": cs["snrs"], "systems": {}})
            for name, e in cs["systems"].items():
                m["systems"].setdefault(name, e)
    tables = [("all conditions", {"systems": overall, "snrs": snrs_all, "files": None})] + [
        (f"`{c}`: {LABELS.get(c, c)}", m) for c, m in merged.items()]
    for title, m in tables:
        snrs = [s for s in m["snrs"] if s != "all"]
        print(f"### {title}" + (f", {m['files']} pairs" if m["files"] else "") + "\n")
        head = ["system", "average"] + [f"{s} dB" for s in snrs]
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for label, e in pick(m["systems"], wanted):
            print("| " + " | ".join([label, cell(e, "avg"), *(cell(e, s) for s in snrs)]) + " |")
        print()


def parse_systems(text: str | None) -> list[tuple[str, str]] | None:
    if not text:
        return None
    pairs = [item.partition("=") for item in text.split(",") if item]
    return [(name, label or name) for name, _, label in pairs]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="se-app evaluate output folders")
    ap.add_argument("--systems", help="NAME[=LABEL],... rows to print, in this order (default: all)")
    a = ap.parse_args()
    main(a.folders, parse_systems(a.systems))
