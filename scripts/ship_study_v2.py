"""Ship the compression study v2 (issue 16): register every finished study model, its int8 variants, and cards.

    python scripts/ship_study_v2.py register            # finished jobs -> models/<name>.pt (+ <name>-int8 and
                                                        # <name>-int8all for the paper-style table's models)
    python scripts/ship_study_v2.py cards --devtest docs/results/summary.json   # cards with dev-test v2 scores
    python scripts/ship_study_v2.py cards                                       # cards, valid scores only

A job's shipped file is its run's final weights (checkpoints/study2/<job>/last.pt less the optimizer state), so
every model has seen exactly the study's budget of examples: the best valid checkpoint would pick, on PESQ of 16
valid mixtures, among 16 checkpoints of a from-scratch run but 5 of a gradually pruned one (docs/study_v2.md).
Registry names are the job names, except ``dense`` -> ``lstm-dense``; ``dense-init`` (the common start) is not
shipped.  The int8 variants quantise W and U (se-app quantize), the int8all ones the output layer
too (--scope all): the same trained model, smaller.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from se_app import checkpoint, registry, study

ROOT = Path("checkpoints/study2")
RENAME = {"dense": "lstm-dense"}


def finished(base: int = 2000, tune: int = 2000) -> list[study.Job]:
    todo = study.jobs(base, tune, str(ROOT))
    return [j for j in todo if j.name != "dense-init" and study.state(j, ROOT, todo) == "done"]


def name_of(job: study.Job) -> str:
    return RENAME.get(job.name, job.name)


def _se_app(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "se_app", "-q", *args], check=True, stdout=subprocess.DEVNULL)


def final_weights(job: study.Job, out: Path) -> dict:
    """Write the job's final weights (its last.pt without the optimizer state and resume fields) to ``out``;
    returns their valid scores."""
    model, stft_cfg, ckpt = checkpoint.load(ROOT / job.name / "last.pt")
    checkpoint.save(out, model, stft_cfg, ckpt["provenance"], ckpt["scores"])
    return ckpt["scores"]["valid"]


def same_weights(a: Path, b: Path) -> bool:
    """Whether two checkpoints hold the same tensors (torch.save's bytes differ from one save to the next)."""
    sa, sb = checkpoint.read(a)["state"], checkpoint.read(b)["state"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def register(jobs: list[study.Job]) -> None:
    """Register (or replace: v2 takes over the v1 study's names) each finished job and its int8 variants.  A job
    registered before from the same weights is left as it is, so its file (and an evaluation's cached scores of
    it, keyed by the file's bytes) survive a second run that adds the jobs finished since."""
    known = registry.read()["models"]
    for job in jobs:
        name, final = name_of(job), Path(f"/tmp/{name_of(job)}.final.pt")
        variants = [f"{name}-int8", f"{name}-int8all"] if job.group == "main" else []
        if all(n in known for n in [name, *variants]) and same_weights(registry.resolve(name)[0],
                                                                        ROOT / job.name / "last.pt"):
            print(f"{name}: registered before from these weights; left as it is")
            continue
        v = final_weights(job, final)
        if name in known:
            print(f"replacing {name} ({known[name].get('method')}, {known[name]['file']})")
        scores = Path(f"/tmp/{name}.scores.json")
        scores.write_text(json.dumps({"valid": {"pesq": round(v["val_pesq"], 4), "stoi": round(v["val_stoi"], 4)}}))
        _se_app("register", name, str(final), "--card", f"{name}.md", "--scores", str(scores))
        for variant, scope in zip(variants, ("wu", "all")):  # int8: W and U only; int8all: the output layer too
            _se_app("quantize", name, "-o", f"/tmp/{variant}.pt", "--scope", scope)
            _se_app("register", variant, f"/tmp/{variant}.pt", "--card", f"{name}.md", "--scores", str(scores))
        print(f"registered {name} (valid PESQ {v['val_pesq']:.3f})")


def cards(jobs: list[study.Job], devtest: Path | None) -> None:
    """Model cards (models/<name>.md) of the finished jobs, with their dev-test v2 scores when ``devtest`` is given
    (also written to the registry)."""
    reg = registry.read()
    s = json.loads(devtest.read_text())["systems"] if devtest else {}
    for job in jobs:
        name = name_of(job)
        for n in (name, f"{name}-int8", f"{name}-int8all"):
            if n in s and n in reg["models"]:
                reg["models"][n]["scores"]["devtest"] = {m: round(s[n][m]["avg"], 4)
                                                         for m in ("pesq", "stoi", "estoi", "si_sdr")}
        cmd = " ".join(["python", *study.command(job, "../shared/data", ROOT, None)[1:]])
        card = subprocess.run([sys.executable, "scripts/model_card.py", name, str(ROOT / job.name), "--command", cmd,
                               "--checkpoint", f"models/{name}.pt", *(["--devtest", str(devtest)] if devtest else [])],
                              check=True, capture_output=True, text=True).stdout
        if f"{name}-int8" in reg["models"]:
            card += (f"\n`{name}-int8` is this model with W and U quantised to int8 (`se-app quantize {name} -o "
                     f"{name}-int8.pt`), `{name}-int8all` with the output layer too (`--scope all`); both are in the "
                     "registry.\n")
        Path(f"models/{name}.md").write_text(card)
    registry.write(reg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["register", "cards"])
    p.add_argument("--devtest", type=Path, help="summary.json of the dev-test v2 evaluation (cards)")
    p.add_argument("--base", type=int, default=2000, help="as given to scripts/study_v2.py")
    p.add_argument("--tune", type=int, default=2000, help="as given to scripts/study_v2.py")
    a = p.parse_args()
    jobs = finished(a.base, a.tune)
    if a.what == "register":
        register(jobs)
    else:
        cards(jobs, a.devtest)


if __name__ == "__main__":
    main()
