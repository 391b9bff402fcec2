"""Ship the compression study's models: per method and rate, the run with the best valid PESQ.

    python scripts/ship_study.py choose              # print the candidates and the choice per name
    python scripts/ship_study.py register            # copy the chosen best.pt files into models/, register
    python scripts/ship_study.py cards --devtest eval_study/summary.json   # cards + dev-test scores

Candidates are run folders under runs/study (mpo-20x, mpo-20x-lr1e-3, mpo-20x-scratch, pruned-20x, ...) plus
the already shipped from-scratch mpo-20x (models/runs/mpo-20x, its best.pt is models/mpo-20x.pt).  The choice
uses only the valid split (the best.pt's valid PESQ, 16 fixed mixtures); the dev test set is for reporting.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from se_app import checkpoint, registry

RATES = (5, 10, 20, 50, 100)
STUDY = Path("runs/study")
SHIPPED_SCRATCH = {"mpo-20x": (Path("models/runs/mpo-20x"), Path("models/mpo-20x.pt"))}


def candidates(name: str) -> list[tuple[Path, Path]]:
    """(run folder, checkpoint) pairs for a registry name such as mpo-20x."""
    out = [(d, d / "best.pt") for d in sorted(STUDY.glob(f"{name}*")) if (d / "best.pt").exists()
           and d.name in (name, f"{name}-lr1e-3", f"{name}-scratch")]
    if name in SHIPPED_SCRATCH and SHIPPED_SCRATCH[name][1].exists():
        out.append(SHIPPED_SCRATCH[name])
    return out


def valid_of(ckpt_path: Path) -> dict:
    ck = checkpoint.read(ckpt_path)
    v = ck["scores"]["valid"]
    return {"pesq": round(v["val_pesq"], 4), "stoi": round(v["val_stoi"], 4), "step": ck["provenance"]["steps"],
            "lr": ck["provenance"]["train"]["lr"], "init": ck["provenance"].get("init", "scratch")}


def choose() -> dict[str, tuple[Path, Path, dict]]:
    chosen = {}
    for kind in ("mpo", "pruned"):
        for r in RATES:
            name = f"{kind}-{r}x"
            cands = [(d, p, valid_of(p)) for d, p in candidates(name)]
            for d, p, v in cands:
                print(f"{name:<11} {str(d):<32} valid PESQ {v['pesq']:.4f} STOI {v['stoi']:.4f} "
                      f"step {v['step']} lr {v['lr']} init {v['init']}")
            if not cands:
                continue
            best = max(cands, key=lambda c: c[2]["pesq"])
            chosen[name] = best
            print(f"{name:<11} -> {best[0]}")
            # the best run of the other MPO initialisation ships too, as mpo-<N>x-svd / -scratch (not counted)
            others = [c for c in cands if c[2]["init"] != best[2]["init"]]
            if kind == "mpo" and others:
                alt = max(others, key=lambda c: c[2]["pesq"])
                chosen[f"{name}-{alt[2]['init']}"] = alt
                print(f"{name + '-' + alt[2]['init']:<11} -> {alt[0]}")
    return chosen


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["choose", "register", "cards"])
    p.add_argument("--devtest", type=Path)
    a = p.parse_args()
    chosen = choose()
    for name, (run, ckpt, v) in chosen.items():
        if a.what == "register":
            scores = {"valid": {"pesq": v["pesq"], "stoi": v["stoi"], "step": v["step"]}}
            tmp = Path(f"/tmp/{name}.scores.json")
            tmp.write_text(json.dumps(scores))
            subprocess.run([sys.executable, "-m", "se_app", "register", name, str(ckpt), "--card", f"{name}.md",
                            "--scores", str(tmp)], check=True, stdout=subprocess.DEVNULL)
        elif a.what == "cards":
            s = json.loads(a.devtest.read_text())["systems"].get(name)
            reg = registry.read()
            entry = reg["models"][name]
            if s:
                entry["scores"]["devtest"] = {m: round(s[m]["avg"], 4) for m in ("pesq", "stoi", "estoi", "si_sdr")}
            registry.write(reg)
            t = checkpoint.read(ckpt)["provenance"]["train"]
            init = "" if v["init"] == "scratch" else " --init-from models/lstm-dense.pt"
            kind, rate = name.split("-")[0], name.split("-")[1][:-1]
            cmd = (f"se-app train --data ../shared/data --kind {kind} --rate {rate} -o {run}{init} --steps {t['steps']} "
                   f"--lr {t['lr']} --warmup {t['warmup']} --prune-start {t['prune_start']} --prune-end {t['prune_end']}")
            card = subprocess.run([sys.executable, "scripts/model_card.py", name, str(run), "--checkpoint", str(ckpt),
                                   "--devtest", str(a.devtest), "--command", cmd], check=True, capture_output=True,
                                  text=True).stdout
            Path(f"models/{name}.md").write_text(card)


if __name__ == "__main__":
    main()
