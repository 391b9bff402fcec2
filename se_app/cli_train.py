"""``se-app train``, ``tune-post`` and ``make-testset``: the commands that read the training corpus."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from .cliutil import TRAIN_OPTIONS, DefaultsHelp


def _corpus_given(a: argparse.Namespace) -> bool:
    """--data, or both --speech-dir and --noise-dir; says what is missing otherwise."""
    if a.data or (a.speech_dir and a.noise_dir):
        return True
    print("se-app: error: give --data MANIFEST_DIR or both --speech-dir and --noise-dir", file=sys.stderr)
    return False


def cmd_train(a: argparse.Namespace) -> int:
    from .model import ModelConfig
    from .train import TrainConfig, train

    conf = {}
    if a.config:
        with open(a.config) as f:
            conf = json.load(f)
    tc = {k.name: getattr(a, k.name) for k in fields(TrainConfig) if getattr(a, k.name, None) is not None}
    train_cfg = TrainConfig.from_dict({**conf.get("train", {}), **tc})
    mc = dict(conf.get("model", {}))
    mc.update({k: v for k, v in {"kind": a.kind, "hidden": a.hidden, "layers": a.layers,
                                 "n_factors": a.factors, "lookahead": a.lookahead,
                                 "bond_profile": a.bond_profile}.items() if v is not None})
    if a.bonds:
        mc["bonds"] = tuple(a.bonds)
    if a.rate is not None:
        if mc.get("kind") == "mpo":
            mc["mpo_rate"] = a.rate
        elif mc.get("kind") == "pruned":
            mc["sparsity"] = 1.0 - 1.0 / a.rate
    model_cfg = ModelConfig.from_dict(mc)
    if not _corpus_given(a):
        return 2
    row = train(model_cfg, train_cfg, a.output, a.data, a.speech_dir, a.noise_dir, resume=a.resume,
                threads=a.threads, max_minutes=a.max_minutes, init_from=a.init_from, progress=not a.quiet,
                reset_best=a.reset_best)
    print(json.dumps(row))
    return 0


def cmd_make_testset(a: argparse.Namespace) -> int:
    from .testset import make_testset

    conditions = [c for c in a.conditions.split(",") if c]
    n = make_testset(a.output, a.data, a.split, a.snrs, a.seed, a.speech_dir, a.noise_dir, progress=not a.quiet,
                     conditions=conditions, snrs_per_utterance=a.snrs_per_utterance or None,
                     max_seconds=a.max_seconds, sim_rooms=a.sim_rooms)
    print(f"wrote {n} pairs to {a.output}")
    return 0


def cmd_tune_post(a: argparse.Namespace) -> int:
    from . import data, postfilter
    from .train import TrainConfig, valid_set

    if not _corpus_given(a):
        return 2
    from . import checkpoint

    corpus = data.load_corpus(data.list_corpus(a.data, "valid", a.speech_dir, a.noise_dir))
    # the valid mixtures of the model's own training recipe (reverberation, band limits ...), as it was validated
    recipe = checkpoint.read(a.checkpoint).get("provenance", {}).get("train", {})
    cfg = TrainConfig.from_checkpoint({**recipe, "valid_count": a.count, "seed": a.seed})
    examples = valid_set(corpus, cfg, data.rooms.default_cache())
    best, rows = postfilter.tune(a.checkpoint, a.output, examples, a.max_stoi_drop)
    for r in rows:
        print(f"power {r.power:4.2f}  valid PESQ {r.pesq:.4f}  STOI {r.stoi:.4f}{'  <- chosen' if r is best else ''}")
    print(f"wrote {a.output} (mask power {best.power})")
    return 0


def add_commands(sub) -> None:
    """Add train, tune-post and make-testset to the ``se-app`` subparsers."""
    t = sub.add_parser("train", help="train a model", formatter_class=DefaultsHelp)
    t.add_argument("--data", help="folder with manifest.csv (e.g. ../shared/data)")
    t.add_argument("--speech-dir", help="folder of clean speech clips (with --noise-dir, instead of --data)")
    t.add_argument("--noise-dir", help="folder of noise clips (with --speech-dir)")
    t.add_argument("-o", "--output", required=True, help="run folder (last.pt, best.pt, log.csv)")
    t.add_argument("--config", help="JSON file with {'model': {...}, 'train': {...}}")
    t.add_argument("--kind", choices=["dense", "mpo", "pruned"], help="how W and U are stored")
    t.add_argument("--rate", type=float, help="compression rate of W and U (mpo, pruned)")
    t.add_argument("--bonds", type=int, nargs="+", help="MPO bond dimensions (instead of --rate)")
    t.add_argument("--hidden", type=int, help="LSTM units per layer")
    t.add_argument("--layers", type=int, help="LSTM layers")
    t.add_argument("--factors", type=int, help="MPO factors per matrix (2..5)")
    t.add_argument("--bond-profile", choices=["uniform", "mountain"],
                   help="mpo with --rate: about the same bond dimension everywhere (uniform), or bonds shaped like "
                        "the exact ones, largest in the middle (mountain) (default: uniform)")
    t.add_argument("--lookahead", type=int, help="frames of look-ahead (16 ms each; 0 = causal)")
    t.add_argument("--init-from", help="checkpoint to start from: dense (SVD init for mpo, pruning base) or one "
                   "of the same kind and shapes (a fine-tune)")
    for f, kind, what in TRAIN_OPTIONS:
        t.add_argument("--" + f.replace("_", "-"), dest=f, type=kind, help=what)
    t.add_argument("--loss", choices=["irm", "irm+mag", "cmag", "cmag+irm"],
                   help="irm: MSE to the ideal ratio mask; irm+mag: plus compressed magnitudes; cmag: compressed "
                        "magnitude + complex spectrum of the enhanced signal; cmag+irm: cmag plus half the irm term "
                        "(default: irm)")
    recipe = t.add_argument_group("data recipe (shares of training examples; defaults are the shipped recipe)")
    for f, what in (("reverb", "speech convolved with a room impulse response (0.5)"),
                    ("noise_reverb", "of those, noise convolved too (0.5)"),
                    ("real_rir", "chance of a real RIR rather than a simulated room (0.5)"),
                    ("bandlimit", "whole mixture band-limited (0.3)"),
                    ("telephone", "of those, at the 8 kHz telephone band; else a 4-8 kHz cutoff (0.5)"),
                    ("babble", "noise replaced by babble of 3-6 talkers (0.1)"),
                    ("clipping", "mixture mildly clipped (0.05)")):
        recipe.add_argument("--" + f.replace("_", "-"), dest=f, type=float, metavar="P", help=what)
    recipe.add_argument("--snr-min", dest="snr_min", type=float, metavar="DB", help="lowest training SNR (-5)")
    recipe.add_argument("--snr-max", dest="snr_max", type=float, metavar="DB", help="highest training SNR (20)")
    recipe.add_argument("--sim-rooms", dest="sim_rooms", type=int, metavar="N",
                        help="rooms simulated with pyroomacoustics for reverberation, cached (200)")
    recipe.add_argument("--target", choices=["reverb", "early", "dry"],
                        help="target under reverberation: the reverberant speech, its first 50 ms, or the dry "
                             "speech (reverb)")
    t.add_argument("--teacher", help="checkpoint to distil from: the loss is also taken against its output (--kd-weight)")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    t.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    t.add_argument("--reset-best", action="store_true",
                   help="with --resume: forget the best valid score so far (e.g. the valid set has changed)")
    t.add_argument("--max-minutes", type=float, help="stop (resumably) after this many minutes")
    t.set_defaults(fn=cmd_train)

    pf = sub.add_parser("tune-post", help="choose the mask post-filter power on the valid split")
    pf.add_argument("checkpoint")
    pf.add_argument("-o", "--output", required=True, help="where to write the tuned checkpoint")
    pf.add_argument("--data", help="folder with manifest.csv (its valid split is used)")
    pf.add_argument("--speech-dir")
    pf.add_argument("--noise-dir")
    pf.add_argument("--count", type=int, default=48, help="valid mixtures to score")
    pf.add_argument("--seed", type=int, default=0)
    pf.add_argument("--max-stoi-drop", type=float, default=0.005)
    pf.set_defaults(fn=cmd_tune_post)

    s = sub.add_parser("make-testset", help="write a noisy/clean dev test set", formatter_class=DefaultsHelp)
    s.add_argument("--data", help="folder with manifest.csv")
    s.add_argument("--speech-dir", help="folder of clean speech clips (with --noise-dir, instead of --data)")
    s.add_argument("--noise-dir", help="folder of noise clips (with --speech-dir)")
    s.add_argument("--split", default="test", help="manifest split to draw speech and noise from")
    s.add_argument("--snrs", type=float, nargs="+", default=[-5, 0, 5, 10], help="SNRs (dB) of the mixtures")
    s.add_argument("--seed", type=int, default=0, help="random seed of the mixing")
    s.add_argument("--conditions", default="clean,reverb,tel",
                   help="comma-separated: clean (speech + noise), reverb (speech and noise in a room; the reference "
                        "keeps the room), tel (whole mixture in the telephone band, written at 8 kHz)")
    s.add_argument("--snrs-per-utterance", type=int, default=2,
                   help="SNRs each utterance is mixed at, in rotation over --snrs (0 = all)")
    s.add_argument("--max-seconds", type=float, default=10.0, help="longer recordings are cut to one excerpt")
    s.add_argument("--sim-rooms", type=int, default=20, help="simulated rooms of the split, beside its real RIRs")
    s.add_argument("-o", "--output", required=True, help="folder for noisy/ and clean/")
    s.set_defaults(fn=cmd_make_testset)
