"""Ship a checkpoint of the default's long run as the default model, with its dev-test v2 scores and card.

    python scripts/ship_default.py CHECKPOINT EVAL_DIR [--system NAME] [--name mpo-10x-v2] [--run RUN_DIR]

EVAL_DIR is an `se-app evaluate --testset devtest2 --models CHECKPOINT` folder; NAME the system's name there (the
checkpoint file's stem by default).  The checkpoint is chosen beforehand by valid PESQ (the run's best.pt); the
dev test set only reports it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from se_app import checkpoint

RUN = Path("checkpoints/issue12/mpo10x-la2-cmag")
COMMAND = ("se-app train --data ../shared/data -o checkpoints/issue12/mpo10x-la2-cmag --kind mpo --rate 10 "
           "--lookahead 2 --loss cmag --steps 38000 --valid-pesq-count 48 --threads 1  # --resume continues")


def scores_of(ckpt_path: Path, summary: dict, system: str) -> dict:
    """The registry's scores entry: valid (from the checkpoint), dev test v2 overall and per condition."""
    ck = checkpoint.read(ckpt_path)
    v, step = ck["scores"]["valid"], ck["provenance"]["steps"]
    e = summary["systems"][system]
    return {"valid": {"pesq": round(v["val_pesq"], 4), "stoi": round(v["val_stoi"], 4), "step": step, "files": 48,
                      "note": "valid mixtures of the issue-12 recipe"},
            "devtest": {m: round(e[m]["avg"], 4) for m in ("pesq", "stoi", "estoi", "si_sdr")},
            "devtest_set": "dev test set v2 (300 pairs: clean/reverb/tel)",
            "devtest_conditions": {c: {m: round(cs["systems"][system][m]["avg"], 4) for m in ("pesq", "stoi", "si_sdr")}
                                   for c, cs in summary.get("conditions", {}).items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("eval_dir", type=Path)
    p.add_argument("--system")
    p.add_argument("--name", default="mpo-10x-v2")
    p.add_argument("--run", type=Path, default=RUN)
    a = p.parse_args()
    system = a.system or a.checkpoint.stem
    summary = json.loads((a.eval_dir / "summary.json").read_text())
    if system not in summary["systems"]:
        p.error(f"{system} is not in {a.eval_dir}/summary.json (systems: {', '.join(summary['systems'])})")
    tmp = Path(f"/tmp/{a.name}.scores.json")
    tmp.write_text(json.dumps(scores_of(a.checkpoint, summary, system)))
    subprocess.run([sys.executable, "-m", "se_app", "-q", "register", a.name, str(a.checkpoint), "--card",
                    f"{a.name}.md", "--scores", str(tmp), "--default"], check=True)
    card = subprocess.run([sys.executable, "scripts/model_card.py", a.name, str(a.run), "--checkpoint",
                           str(a.checkpoint), "--devtest", str(a.eval_dir / "summary.json"), "--system", system,
                           "--command", COMMAND], check=True, capture_output=True, text=True).stdout
    Path(f"models/{a.name}.md").write_text(card)
    print(f"{a.name}: {a.checkpoint} registered as the default; card models/{a.name}.md")


if __name__ == "__main__":
    main()
