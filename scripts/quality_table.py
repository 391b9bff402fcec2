"""One table per condition of dev test set v2 from one or more `se-app evaluate` folders (their summary.json):
rows = systems (noisy once), columns = PESQ, STOI, SI-SDR and PESQ per SNR.  Used for docs/quality.md.

    python3 scripts/quality_table.py runs/eval-v2-old runs/eval-v2-new
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from se_app.conditions import LABELS


def main(folders: list[str]) -> None:
    merged: dict[str, dict] = {}
    overall: dict[str, dict] = {}
    for folder in folders:
        s = json.loads((Path(folder) / "summary.json").read_text())
        for name, e in s["systems"].items():
            overall.setdefault(name, e)
        for cond, cs in s.get("conditions", {}).items():
            m = merged.setdefault(cond, {"files": cs["files"], "snrs": cs["snrs"], "systems": {}})
            for name, e in cs["systems"].items():
                m["systems"].setdefault(name, e)
    tables = [("all conditions", {"systems": overall, "snrs": [], "files": None})] + [
        (f"`{c}`: {LABELS.get(c, c)}", m) for c, m in merged.items()]
    for title, m in tables:
        snrs = [s for s in m["snrs"] if s != "all"]
        print(f"### {title}" + (f", {m['files']} pairs" if m["files"] else "") + "\n")
        head = ["system", "PESQ", "STOI", "SI-SDR (dB)"] + [f"PESQ {s} dB" for s in snrs]
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for name, e in m["systems"].items():
            vals = [f"{e['pesq']['avg']:.3f}", f"{e['stoi']['avg']:.3f}", f"{e['si_sdr']['avg']:.2f}"]
            vals += [f"{e['pesq'][s]:.3f}" for s in snrs]
            print("| " + " | ".join([name, *vals]) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
