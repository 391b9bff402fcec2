"""Training: on-the-fly mixtures, ideal-ratio-mask target, Adam with warm-up and cosine decay, validation
each epoch (loss on fixed valid mixtures, PESQ/STOI on a subset), best and last checkpoints, resumable."""
from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import checkpoint, data
from .enhancer import apply_model
from .metrics import mean_pesq_stoi, pesq_score
from .losses import aligned, distilled_loss, loss_fn, teacher_targets, to_batch  # noqa: F401 (re-exported)
from .model import MaskNet, ModelConfig
from .stft import STFTConfig, log_power

log = logging.getLogger(__name__)
LOG_FIELDS = ["step", "epoch", "train_loss", "val_loss", "val_pesq", "val_stoi", "lr", "sparsity", "elapsed_s"]


# The mixing of the models trained before session 6: no reverberation, band limits, babble or clipping.
PLAIN_RECIPE = dict(reverb=0.0, bandlimit=0.0, babble=0.0, clipping=0.0, sim_rooms=0)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 6000
    batch: int = 16
    seconds: float = 4.0
    lr: float = 1e-3
    lr_min_ratio: float = 0.05
    warmup: int = 100
    epoch_steps: int = 250
    clip: float = 1.0
    seed: int = 0
    batch_offset: int = 0  # batch k is drawn from rng([seed, k + batch_offset]) (batch_rng)
    loss: str = "irm"  # "irm", "irm+mag", "cmag", "cmag+irm": see loss_fn
    noise_speed: float = 0.0  # > 1: half the noise segments are resampled by a factor in [1/x, x] (0: off)
    speech_fraction: float = 1.0  # < 1: train on a fixed subset of the speech clips (data-size ablation)
    teacher: str = ""  # checkpoint to distil from (knowledge distillation); "" = off
    kd_weight: float = 0.5  # loss = (1 - w) x loss to the truth + w x loss to the teacher (losses.distilled_loss)
    # Data recipe (shares of examples; see data.MixConfig) and the simulated rooms behind the reverberation.
    reverb: float = 0.5
    noise_reverb: float = 0.5
    real_rir: float = 0.5
    target: str = "reverb"
    bandlimit: float = 0.3
    telephone: float = 0.5
    babble: float = 0.1
    clipping: float = 0.05
    sim_rooms: int = 200  # simulated train rooms (valid: a tenth of that, at most 20, from another seed)
    snr_min: float = -5.0  # training SNRs are uniform in [snr_min, snr_max] dB (the valid set keeps its own)
    snr_max: float = 20.0
    valid_count: int = 48
    valid_pesq_count: int = 16
    prune_start: float = 0.1  # gradual pruning (pruned kind): fractions of the run
    prune_end: float = 0.6
    prune_every: int = 50

    def mix(self) -> data.MixConfig:
        return data.MixConfig.from_dict(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_checkpoint(cls, d: dict) -> "TrainConfig":
        """From a checkpoint's saved recipe.  One saved before the recipe had reverberation (no ``reverb`` key)
        was trained on plain mixtures, so it gets the plain recipe, not today's defaults."""
        legacy = {} if "reverb" in d else PLAIN_RECIPE
        return cls.from_dict({**legacy, **d})


def cubic_sparsity(step: int, final: float, start: int, end: int) -> float:
    """Zhu & Gupta (2017): s_t = s_f (1 - (1 - (t - t0) / (t_end - t0))^3), 0 up to t0, s_f from t_end on
    (t0 = t_end: one-shot pruning at t_end)."""
    if step >= end:
        return final
    if step <= start:
        return 0.0
    return final * (1.0 - (1.0 - (step - start) / (end - start)) ** 3)


def batch_rng(cfg: TrainConfig, k: int) -> np.random.Generator:
    """The generator of training batch k: rng([seed, k + batch_offset]), so a resumed run sees the batches the
    uninterrupted run would have, and a fine-tune that passes the steps its start model trained (batch_offset)
    sees new mixtures rather than that model's first batches again."""
    return np.random.default_rng([cfg.seed, k + cfg.batch_offset])


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def feature_stats(mixer: data.Mixer, stft_cfg: STFTConfig, seed: int, count: int = 64):
    rng = np.random.default_rng([seed, 999_999])
    X, _, _, _ = to_batch(mixer.batch(rng, count), stft_cfg)
    f = log_power(X)
    return f.mean(dim=(0, 1)), f.std(dim=(0, 1)).clamp_min(1e-3)


def valid_rooms(cfg: TrainConfig) -> int:
    """Simulated rooms of the valid split: a tenth of the training bank, at most 20."""
    return min(20, cfg.sim_rooms // 10) if cfg.reverb > 0 else 0


def valid_set(corpus: dict, cfg: TrainConfig, rooms_cache: str | Path | None = None) -> list[data.Example]:
    """Fixed valid mixtures (same recipe as training, valid-split speech, noise and rooms, no EQ)."""
    rirs = data.rooms.simulated_bank(valid_rooms(cfg), "valid", rooms_cache)
    mixer = data.Mixer(corpus, cfg.seconds, eq=False, mix=cfg.mix(), simulated_rirs=rirs)
    rng = np.random.default_rng([cfg.seed, 424242])
    snrs = [-5, 0, 5, 10, 15]
    return [mixer.mix(rng, snr_db=snrs[i % len(snrs)]) for i in range(cfg.valid_count)]


@torch.no_grad()
def validate(model: MaskNet, stft_cfg: STFTConfig, examples: list[data.Example], cfg: TrainConfig) -> dict:
    model.eval()
    X, irm, mag, w = to_batch(examples, stft_cfg)
    val_loss = float(loss_fn(*aligned(model, X, irm, mag, w), cfg.loss))
    sub = examples[: cfg.valid_pesq_count]
    noisy = torch.from_numpy(np.stack([e.noisy for e in sub]))
    enhanced = apply_model(model, noisy, stft_cfg).numpy()
    pesq, stoi = mean_pesq_stoi([e.clean for e in sub], enhanced, stft_cfg.sample_rate)
    model.train()
    return {"val_loss": val_loss, "val_pesq": pesq, "val_stoi": stoi}


def init_from_checkpoint(model: MaskNet, path: str) -> dict[str, object]:
    """Start from a trained model; returns the lineage for the provenance (init, init_from).

    A dense checkpoint: copy everything, MPO cores by SVD truncation of W and U (init "svd"), pruning starts from
    its weights (init "dense").  A compressed checkpoint of the same kind and shapes: a fine-tune that copies all
    its weights and keeps its lineage (an MPO trained from scratch stays "scratch")."""
    src, _, ckpt = checkpoint.load(path)
    if src.cfg.kind != "dense":
        want = f"{path}: --init-from needs a dense checkpoint or a {model.cfg.kind} one of the same shapes, got"
        if src.cfg.kind != model.cfg.kind or src.cfg.lookahead != model.cfg.lookahead:
            raise ValueError(f"{want} {src.cfg.kind} with look-ahead {src.cfg.lookahead}")
        try:  # strict: the same parameter names and shapes
            model.load_state_dict(src.state_dict())
        except RuntimeError as e:
            raise ValueError(f"{want} one of other shapes") from e
        parent = ckpt.get("provenance") or {}
        return {"init": parent.get("init", "scratch"), "init_from": str(path), "parent_steps": parent.get("steps", 0)}
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("core.weights")}
    model.load_state_dict(state, strict=False)
    mats = [w.detach() for w in src.core.weights]
    if model.cfg.kind == "mpo":
        model.core.load_dense(mats)
    else:
        with torch.no_grad():
            for p, w in zip(model.core.weights, mats):
                p.copy_(w)
    return {"init": "svd" if model.cfg.kind == "mpo" else "dense", "init_from": str(path)}


def training_mixer(cfg: TrainConfig, data_root: str | None = None, speech_dir: str | None = None,
                   noise_dir: str | None = None, rooms_cache: str | Path | None = None) -> data.Mixer:
    """The training loader: train-split speech, noise and RIRs only, plus the train bank of simulated rooms."""
    if not cfg.snr_min <= cfg.snr_max:  # before the minute of loading, not after it
        raise ValueError(f"snr_min {cfg.snr_min} is above snr_max {cfg.snr_max}")
    corpus = data.load_corpus(data.list_corpus(data_root, "train", speech_dir, noise_dir))
    corpus["speech"] = data.keep_fraction(corpus["speech"], cfg.speech_fraction)
    rirs = data.rooms.simulated_bank(cfg.sim_rooms if cfg.reverb > 0 else 0, "train", rooms_cache)
    return data.Mixer(corpus, cfg.seconds, snr_range=(cfg.snr_min, cfg.snr_max), noise_speed=cfg.noise_speed,
                      mix=cfg.mix(), simulated_rirs=rirs)


def train(model_cfg: ModelConfig, cfg: TrainConfig, out_dir: str | Path, data_root: str | None = None,
          speech_dir: str | None = None, noise_dir: str | None = None, resume: bool = False,
          threads: int = 1, max_minutes: float | None = None, init_from: str | None = None,
          progress: bool = True, reset_best: bool = False) -> dict:
    """Train a model; returns the final log row.  Writes out_dir/{last.pt, best.pt, log.csv}.
    ``reset_best`` (with ``resume``): forget the best valid score so far, e.g. when the valid set has changed
    since it was measured, so the next validation writes best.pt afresh."""
    torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stft_cfg = STFTConfig()
    t_start = time.time()
    last = out / "last.pt"
    ckpt = checkpoint.read(last) if resume and last.exists() else None
    if ckpt is not None:
        # A resumed run keeps its recipe (data included); only more steps, or a teacher for the steps still to
        # come, may be added.  A run that already had a teacher keeps its weight (the path may be given anew,
        # e.g. after a move): a resume command without --kd-weight must not reset it to the default.
        saved = ckpt["train"]
        taught = {}
        if cfg.teacher:
            taught = {"teacher": cfg.teacher,
                      "kd_weight": saved.get("kd_weight", cfg.kd_weight) if saved.get("teacher") else cfg.kd_weight}
        cfg = TrainConfig.from_checkpoint({**saved, "steps": max(cfg.steps, saved["steps"]), **taught})
    rooms_cache = data.rooms.default_cache()
    mixer = training_mixer(cfg, data_root, speech_dir, noise_dir, rooms_cache)
    valid = valid_set(data.load_corpus(data.list_corpus(data_root, "valid", speech_dir, noise_dir)), cfg, rooms_cache)
    log.info("train: %d speech clips (%.1f min), %d noise clips, %d real + %d simulated RIRs, ready in %.1f s",
             len(mixer.speech), sum(len(c.audio) for c in mixer.speech) / data.RATE / 60,
             len(mixer.noise), len(mixer.real_rirs), len(mixer.sim_rirs), time.time() - t_start)

    if ckpt is not None:
        model, _ = checkpoint.model_from(ckpt)
        step, best, elapsed0 = ckpt["step"], -math.inf if reset_best else ckpt["best_pesq"], ckpt["elapsed_s"]
        opt_state = ckpt["optimizer"]
        # the lineage is the run's own, whatever --init-from a resume command repeats or leaves out
        prov = ckpt.get("provenance") or {}
        lineage = {k: prov[k] for k in ("init", "init_from", "parent_steps") if k in prov}
        log.info("resuming %s at step %d", last, step)
    else:
        torch.manual_seed(cfg.seed)
        model = MaskNet(model_cfg)
        if init_from:
            lineage = init_from_checkpoint(model, init_from)
        else:
            lineage = {"init": "scratch", "init_from": ""}
            mean, std = feature_stats(mixer, stft_cfg, cfg.seed)
            model.feat_mean.copy_(mean)
            model.feat_std.copy_(std)
        step, best, elapsed0, opt_state = 0, -math.inf, 0.0, None
    teacher = None
    if cfg.teacher:
        teacher, _, _ = checkpoint.load(cfg.teacher)
        teacher.eval()
        log.info("distilling from %s (%s, weight %.2f)", cfg.teacher, teacher.cfg.kind, cfg.kd_weight)
    noisy_pesq = np.nanmean([pesq_score(e.clean, e.noisy, stft_cfg.sample_rate) for e in valid[: cfg.valid_pesq_count]])
    log.info("valid subset: noisy input PESQ %.3f", noisy_pesq)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    pruned = model.cfg.kind == "pruned"
    p0, p1 = int(cfg.prune_start * cfg.steps), int(cfg.prune_end * cfg.steps)

    log_path = out / "log.csv"
    new_log = not log_path.exists() or not resume
    logf = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.DictWriter(logf, LOG_FIELDS)
    if new_log:
        writer.writeheader()
    row: dict = {}
    t0 = time.time()
    batches = data.Prefetcher(lambda k: mixer.batch(batch_rng(cfg, k), cfg.batch), step)
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {model.cfg.kind}", disable=not progress)
    losses = []
    while step < cfg.steps:
        if pruned and (step % cfg.prune_every == 0 or step == p1):  # at p1: the final sparsity, exactly
            model.core.prune_to(cubic_sparsity(step, model.cfg.sparsity, p0, p1))
        X, irm, mag, w = to_batch(batches.get(step), stft_cfg)
        taught = teacher_targets(teacher, X, irm, mag) if teacher is not None else None
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss = distilled_loss(*aligned(model, X, irm, mag, w), cfg.loss, taught, cfg.kd_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        if pruned:
            with torch.no_grad():
                for p, m in zip(model.core.weights, model.core.masks()):
                    p.mul_(m)
        losses.append(float(loss.detach()))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if step % cfg.epoch_steps == 0 or step == cfg.steps:
            elapsed = elapsed0 + time.time() - t0
            row = {"step": step, "epoch": math.ceil(step / cfg.epoch_steps), "train_loss": float(np.mean(losses)),
                   **validate(model, stft_cfg, valid, cfg), "lr": lr_at(step - 1, cfg),
                   "sparsity": 1.0 - model.core.effective_params() / model.core.dense_count(), "elapsed_s": elapsed}
            losses = []
            writer.writerow(row)
            logf.flush()
            log.info("step %d: %s", step, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
            prov = {"data": str(data_root or f"{speech_dir} + {noise_dir}"), "steps": step,
                    **lineage,
                    "train_seconds": round(elapsed, 1), "threads": threads, "train": asdict(cfg)}
            scores = {"valid": {k: row[k] for k in ("val_loss", "val_pesq", "val_stoi")}}
            # Pruned models only count as "best" once they reach their final sparsity.
            eligible = not pruned or step > p1  # the final mask is set at the start of step p1
            if eligible and row["val_pesq"] > best:
                best = row["val_pesq"]
                checkpoint.save(out / "best.pt", model, stft_cfg, prov, scores)
            checkpoint.save(last, model, stft_cfg, prov, scores,
                            extra={"optimizer": opt.state_dict(), "step": step, "train": asdict(cfg),
                                   "best_pesq": best, "elapsed_s": elapsed})
            if max_minutes is not None and (time.time() - t0) / 60 > max_minutes:
                log.info("stopping after %.1f minutes (resume with --resume)", (time.time() - t0) / 60)
                break
    batches.close()
    bar.close()
    logf.close()
    return row
