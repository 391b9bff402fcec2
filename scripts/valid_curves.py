"""Plot the valid PESQ / STOI curves of training runs (their log.csv files) into one figure.

    python3 scripts/valid_curves.py -o docs/quality_valid.png RUN_DIR[=LABEL] ...
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folder with log.csv, optionally =LABEL")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for spec in a.runs:
        folder, _, label = spec.partition("=")
        rows = list(csv.DictReader(open(Path(folder) / "log.csv")))
        steps = [int(r["step"]) for r in rows]
        for ax, key in zip(axes, ("val_pesq", "val_stoi")):
            ax.plot(steps, [float(r[key]) for r in rows], marker=".", label=label or folder)
    for ax, name in zip(axes, ("valid PESQ (48 mixtures)", "valid STOI (48 mixtures)")):
        ax.set_xlabel("step (16 examples of 4 s each)")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.output, dpi=100)


if __name__ == "__main__":
    main()
