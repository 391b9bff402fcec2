"""Valid-split STOI and PESQ per SNR for one or more checkpoints: mixtures of the first checkpoint's training recipe
(valid-split speech, noise and rooms; SNRs -5/0/5/10/15 dB in turn), never the test set.  Used for docs/quality.md.

    python3 scripts/valid_per_snr.py --data ../shared/data --count 96 --seed 1 A.pt B.pt
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from se_app import checkpoint, data
from se_app.enhancer import apply_model
from se_app.metrics import pesq_score, stoi_score
from se_app.train import TrainConfig, valid_set

SNRS = (-5, 0, 5, 10, 15)  # the order valid_set cycles through


def main(paths: list[str], data_root: str, count: int, seed: int) -> None:
    torch.set_num_threads(1)
    recipe = checkpoint.read(paths[0])["provenance"]["train"]
    cfg = TrainConfig.from_checkpoint({**recipe, "valid_count": count, "seed": seed})
    corpus = data.load_corpus(data.list_corpus(data_root, "valid", None, None))
    examples = valid_set(corpus, cfg, data.rooms.default_cache())
    noisy = torch.from_numpy(np.stack([e.noisy for e in examples]))
    print("| model | STOI all | " + " | ".join(f"STOI {s} dB" for s in SNRS) + " | PESQ all |")
    print("|---" * (len(SNRS) + 3) + "|")
    for path in paths:
        model, stft_cfg, _ = checkpoint.load(path)
        with torch.no_grad():
            enhanced = apply_model(model, noisy, stft_cfg).numpy()
        stoi = np.array([stoi_score(e.clean, y, stft_cfg.sample_rate) for e, y in zip(examples, enhanced)])
        pesq = np.array([pesq_score(e.clean, y, stft_cfg.sample_rate) for e, y in zip(examples, enhanced)])
        per = [f"{stoi[k::len(SNRS)].mean():.4f}" for k in range(len(SNRS))]
        print(f"| {path} | {stoi.mean():.4f} | " + " | ".join(per) + f" | {np.nanmean(pesq):.3f} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True, help="folder with manifest.csv (e.g. ../shared/data)")
    ap.add_argument("--count", type=int, default=96, help="valid mixtures")
    ap.add_argument("--seed", type=int, default=1, help="1: other mixtures than the runs' own valid set (seed 0)")
    a = ap.parse_args()
    main(a.checkpoints, a.data, a.count, a.seed)
