"""Compression study v2 (issue 16): plan and run its training jobs (se_app/study.py has the table).

    python scripts/study_v2.py plan                                  # jobs, steps done, state, best valid PESQ
    python scripts/study_v2.py run --data ../shared/data --minutes 150 --workers 2   # resumable: run it again
    python scripts/study_v2.py run --only mpo-20x-kd                # some jobs, with the jobs they need

Runs go to checkpoints/study2/<job> (last.pt, best.pt, log.csv) with a log beside each; commit them as they
finish (git add checkpoints/study2) so the next session resumes where this one stopped.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from se_app import study


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["plan", "run"])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--root", type=Path, default=Path("checkpoints/study2"))
    p.add_argument("--base", type=int, default=2000, help="steps of the common dense start (and of every model's "
                                                          "first half)")
    p.add_argument("--tune", type=int, default=2000, help="fine-tuning steps after it")
    p.add_argument("--minutes", type=float, default=150.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", nargs="+", help="job names")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    todo = study.jobs(a.base, a.tune, str(a.root))
    if a.only:
        try:
            todo = study.select(a.only, todo)
        except KeyError as e:
            p.error(f"unknown job {e}; see: python scripts/study_v2.py plan")
    if a.what == "plan":
        print(study.table(a.root, todo))
        return
    done = study.run(todo, a.data, a.root, a.workers, a.minutes)
    print(f"finished this time: {', '.join(done) or 'none'}")
    print(study.table(a.root, todo))


if __name__ == "__main__":
    main()
