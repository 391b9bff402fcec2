"""Paired bootstrap comparisons across `se-app evaluate` folders that scored the same test set separately
(e.g. peers in one run, a new model in another): joins their per_file.csv and prints se_app.stats' table.

    python3 scripts/compare_systems.py --testset devtest2 --pairs A:B,C:D EVAL_DIR ...
"""
from __future__ import annotations

import argparse
import csv
import math

from se_app import stats
from se_app.testset import condition_of, speech_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--testset", help="the test set folder (its pairs.csv gives the conditions)")
    ap.add_argument("--pairs", required=True, help="A:B[,C:D] system names as in per_file.csv")
    ap.add_argument("--rename", default="", help="OLD=NEW[,OLD=NEW] system names to print")
    a = ap.parse_args()
    rename = dict(x.split("=", 1) for x in a.rename.split(",") if x)
    rows = {}
    for folder in a.folders:
        for r in csv.DictReader(open(f"{folder}/per_file.csv")):
            name = rename.get(r["system"], r["system"])
            vals = {m: float(r[m]) if r.get(m) not in (None, "") else math.nan for m in stats.METRICS}
            rows[(name, r["file"])] = {"system": name, "file": r["file"], **vals}
    condition = condition_of(a.testset) if a.testset else None
    cluster = speech_of(a.testset) if a.testset else None  # files of one utterance are resampled together
    print(stats.markdown(stats.compare(list(rows.values()), stats.parse_pairs(a.pairs), condition,
                                       cluster=cluster or None)))


if __name__ == "__main__":
    main()
