import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import rir_like, speechlike
from se_app import checkpoint, data
from se_app.model import MaskNet, ModelConfig
from se_app.stft import STFTConfig
from se_app.data import rooms
from se_app.train import PLAIN_RECIPE, TrainConfig, loss_fn, to_batch, train, training_mixer

# The plain recipe (no reverberation, band limits, babble or clipping) keeps these smoke runs tiny and their loss
# curves comparable with earlier sessions; the recipe itself is tested in test_recipe.py.
TINY_TRAIN = dict(steps=60, batch=4, seconds=1.0, epoch_steps=20, valid_count=4, valid_pesq_count=2, lr=3e-3,
                  warmup=5, **PLAIN_RECIPE)


def test_smoke_training_loss_falls_and_resume_matches(corpus_dir, tmp_path):
    cfg = TrainConfig(**TINY_TRAIN)
    mc = ModelConfig(kind="mpo", hidden=16, bonds=(4, 4, 4))
    train(mc, cfg, tmp_path / "a", str(corpus_dir), progress=False)
    log = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    assert len(log) == 3
    assert float(log[-1]["train_loss"]) < float(log[0]["train_loss"])
    assert float(log[-1]["val_loss"]) < float(log[0]["val_loss"])
    assert (tmp_path / "a" / "best.pt").exists()
    # stop after the first epoch, then resume: same result as the uninterrupted run
    train(mc, cfg, tmp_path / "b", str(corpus_dir), progress=False, max_minutes=0)
    assert len(list(csv.DictReader(open(tmp_path / "b" / "log.csv")))) == 1
    train(mc, cfg, tmp_path / "b", str(corpus_dir), progress=False, resume=True)
    assert len(list(csv.DictReader(open(tmp_path / "b" / "log.csv")))) == 3
    a, _, _ = checkpoint.load(tmp_path / "a" / "last.pt")
    b, _, _ = checkpoint.load(tmp_path / "b" / "last.pt")
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-5), n


def test_pruned_training_reaches_its_rate(corpus_dir, tmp_path):
    cfg = TrainConfig(**{**TINY_TRAIN, "steps": 40, "prune_every": 5})
    train(ModelConfig(kind="pruned", hidden=16, sparsity=0.9), cfg, tmp_path, str(corpus_dir), progress=False)
    m, _, _ = checkpoint.load(tmp_path / "last.pt")
    assert m.rate() == pytest.approx(10, rel=0.02)


@pytest.mark.parametrize("start,end", [(0.0, 0.5), (0.0, 0.0)])
def test_pruned_best_checkpoint_holds_the_final_sparsity_and_one_shot_prunes_at_once(corpus_dir, tmp_path, start, end):
    """prune_every (50) longer than the run: the final mask must still come at prune_end (step 20 of 40), and no
    checkpoint before it may become best.pt; one-shot (start = end = 0) prunes at step 0."""
    from se_app.train import cubic_sparsity

    assert cubic_sparsity(0, 0.9, 0, 0) == 0.9 and cubic_sparsity(20, 0.9, 0, 20) == 0.9
    cfg = TrainConfig(**{**TINY_TRAIN, "steps": 40, "prune_start": start, "prune_end": end})
    train(ModelConfig(kind="pruned", hidden=16, sparsity=0.9), cfg, tmp_path, str(corpus_dir), progress=False)
    best, _, ck = checkpoint.load(tmp_path / "best.pt")
    assert best.rate() == pytest.approx(10, rel=0.02)
    assert ck["provenance"]["steps"] in ((40,) if end else (20, 40))
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert float(rows[0]["sparsity"]) == pytest.approx(0.9 if not end else 0.0, abs=0.02)


def test_batch_offset_shifts_the_batches_a_run_draws():
    from se_app.train import batch_rng

    a = batch_rng(TrainConfig(batch_offset=5), 0).random(4)
    assert np.array_equal(a, batch_rng(TrainConfig(), 5).random(4))
    assert not np.array_equal(a, batch_rng(TrainConfig(), 0).random(4))


def test_mpo_from_dense_init(corpus_dir, tmp_path):
    cfg = TrainConfig(**{**TINY_TRAIN, "steps": 20})
    train(ModelConfig(hidden=16), cfg, tmp_path / "d", str(corpus_dir), progress=False)
    train(ModelConfig(kind="mpo", hidden=16, bonds=(4, 4, 4)), cfg, tmp_path / "m", str(corpus_dir),
          progress=False, init_from=str(tmp_path / "d" / "best.pt"))
    assert checkpoint.read(tmp_path / "m" / "best.pt")["provenance"]["init"] == "svd"


def test_fine_tune_of_a_compressed_model_keeps_its_weights_and_lineage(corpus_dir, tmp_path):
    """--init-from an MPO of the same shapes starts from its weights (not an SVD, which needs a dense model) and
    keeps its lineage; a resume without --init-from keeps it too; other shapes are refused by name."""
    mc = ModelConfig(kind="mpo", hidden=16, bonds=(4, 4, 4))
    train(mc, TrainConfig(**{**TINY_TRAIN, "steps": 20}), tmp_path / "a", str(corpus_dir), progress=False)
    parent = str(tmp_path / "a" / "last.pt")
    start, _, _ = checkpoint.load(parent)
    # lr 0: the weights stay as loaded, so the fine-tune's model is the parent's exactly
    cfg = TrainConfig(**{**TINY_TRAIN, "steps": 40, "lr": 0.0, "batch_offset": 20, "snr_max": 5.0})
    train(mc, cfg, tmp_path / "b", str(corpus_dir), progress=False, init_from=parent, max_minutes=0)  # 1 epoch
    tuned, _, ck = checkpoint.load(tmp_path / "b" / "last.pt")
    for k, v in start.state_dict().items():
        assert torch.equal(v, tuned.state_dict()[k]), k
    assert ck["provenance"]["init"] == "scratch" and ck["provenance"]["parent_steps"] == 20
    train(mc, cfg, tmp_path / "b", str(corpus_dir), progress=False, resume=True)
    prov = checkpoint.read(tmp_path / "b" / "last.pt")["provenance"]
    assert prov["steps"] == 40 and prov["init"] == "scratch" and prov["init_from"] == parent
    assert prov["train"]["snr_max"] == 5.0
    with pytest.raises(ValueError, match="same shapes, got one of other shapes"):
        train(ModelConfig(kind="mpo", hidden=16, bonds=(2, 2, 2)), cfg, tmp_path / "c", str(corpus_dir),
              progress=False, init_from=parent)


def test_lookahead_model_with_noise_speed_trains_and_keeps_its_lookahead(corpus_dir, tmp_path):
    cfg = TrainConfig(**{**TINY_TRAIN, "steps": 40, "noise_speed": 1.4})
    train(ModelConfig(kind="mpo", hidden=16, bonds=(4, 4, 4), lookahead=2), cfg, tmp_path, str(corpus_dir),
          progress=False)
    log = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert float(log[-1]["train_loss"]) < float(log[0]["train_loss"])
    m, _, ckpt = checkpoint.load(tmp_path / "best.pt")
    assert m.cfg.lookahead == 2 and ckpt["provenance"]["train"]["noise_speed"] == 1.4


def test_distillation_target_follows_the_teacher(corpus_dir, tmp_path):
    """kd_weight 1: the target is the teacher's mask alone.  A teacher that passes everything (mask ~ 1)
    must pull the student's masks up to ~1, far above what the IRM target gives; resuming keeps the teacher."""
    from se_app.model import MaskNet

    teacher = MaskNet(ModelConfig(hidden=8))
    with torch.no_grad():
        teacher.out.weight.zero_()
        teacher.out.bias.fill_(30.0)
    checkpoint.save(tmp_path / "teacher.pt", teacher, STFTConfig(), {}, {})
    mc = ModelConfig(hidden=16)
    cfg = TrainConfig(**{**TINY_TRAIN, "steps": 40})
    feats = torch.randn(2, 50, 257) * 3

    train(mc, cfg, tmp_path / "irm", str(corpus_dir), progress=False)
    kd = TrainConfig(**{**TINY_TRAIN, "steps": 40, "teacher": str(tmp_path / "teacher.pt"), "kd_weight": 1.0})
    train(mc, kd, tmp_path / "kd", str(corpus_dir), progress=False, max_minutes=0)  # stop after one epoch
    train(mc, TrainConfig(**{**TINY_TRAIN, "steps": 40}), tmp_path / "kd", str(corpus_dir), progress=False,
          resume=True)
    # resumed again with the teacher named but no weight (a CLI resume): the run keeps its weight 1.0
    train(mc, TrainConfig(**{**TINY_TRAIN, "steps": 60, "teacher": str(tmp_path / "teacher.pt")}), tmp_path / "kd",
          str(corpus_dir), progress=False, resume=True)
    plain, _, _ = checkpoint.load(tmp_path / "irm" / "last.pt")
    student, _, ck = checkpoint.load(tmp_path / "kd" / "last.pt")
    assert ck["provenance"]["train"]["teacher"].endswith("teacher.pt")
    assert ck["provenance"]["train"]["kd_weight"] == 1.0 and ck["provenance"]["steps"] == 60
    with torch.no_grad():
        assert float(student.masks(feats).mean()) > float(plain.masks(feats).mean()) + 0.1


@pytest.mark.parametrize("kind", ["irm", "cmag", "cmag+irm"])
def test_distillation_works_for_every_loss(corpus_dir, kind):
    """A student that equals its teacher has zero loss at kd_weight 1, whatever the loss (the cmag losses once
    ignored the teacher); at kd_weight 0.5 the loss is the mean of the two terms.  A teacher with a longer
    look-ahead leaves the student's last frames to the ground truth."""
    from se_app.losses import aligned, distilled_loss, loss_fn, teacher_targets
    from se_app.stft import log_power

    corpus = data.load_corpus(data.list_corpus(str(corpus_dir), "train"))
    mixer = data.Mixer(corpus, seconds=1.0)
    rng = np.random.default_rng(3)
    X, irm, clean, w = to_batch([mixer.mix(rng) for _ in range(2)], STFTConfig())
    torch.manual_seed(0)
    student = MaskNet(ModelConfig(hidden=8, lookahead=1))
    with torch.no_grad():
        taught = teacher_targets(student, X, irm, clean)
        args = aligned(student, X, irm, clean, w)
        assert float(distilled_loss(*args, kind, taught, 1.0)) == pytest.approx(0.0, abs=1e-9)
        truth = float(loss_fn(*args, kind))
        assert truth > 1e-3 and float(distilled_loss(*args, kind, taught, 0.0)) == pytest.approx(truth)
        assert float(distilled_loss(*args, kind, taught, 0.5)) == pytest.approx(truth / 2, rel=1e-5)
        quick = MaskNet(ModelConfig(hidden=8, lookahead=0))  # a teacher that sees less ahead: frame t is frame t
        q_irm, _ = teacher_targets(quick, X, irm, clean)
        assert torch.allclose(q_irm[:, :args[0].shape[1]], quick.masks(log_power(X))[:, :args[0].shape[1]])
        slow = MaskNet(ModelConfig(hidden=8, lookahead=3))
        t_irm, t_clean = teacher_targets(slow, X, irm, clean)
        T = X.shape[1] - 3
        assert torch.equal(t_irm[:, T:], irm[:, T:]) and torch.equal(t_clean[:, T:], clean[:, T:])
        assert not torch.equal(t_irm[:, :T], irm[:, :T])


@pytest.mark.parametrize("reset", [False, True])
def test_reset_best_on_resume_lets_a_lower_score_on_a_new_valid_set_become_best(corpus_dir, tmp_path, monkeypatch,
                                                                                reset):
    from se_app import train as train_mod

    real, calls = train_mod.validate, []

    def validate(*args):  # the first validation scores 2.0, every later one 1.0
        calls.append(1)
        return {**real(*args), "val_pesq": 2.0 if len(calls) == 1 else 1.0}

    monkeypatch.setattr(train_mod, "validate", validate)
    mc = ModelConfig(hidden=8)
    train(mc, TrainConfig(**{**TINY_TRAIN, "steps": 20}), tmp_path, str(corpus_dir), progress=False)
    train(mc, TrainConfig(**{**TINY_TRAIN, "steps": 40}), tmp_path, str(corpus_dir), progress=False, resume=True,
          reset_best=reset)
    _, _, ck = checkpoint.load(tmp_path / "best.pt")
    assert ck["provenance"]["steps"] == (40 if reset else 20)


def test_resume_keeps_the_data_recipe_when_the_command_line_omits_it(corpus_dir, tmp_path):
    """`se-app train --resume` is usually given fewer flags than the first call: the run's own data options
    (noise resampling, speech subset) must still be used, or the resumed run would see other data."""
    recipe = TrainConfig(**{**TINY_TRAIN, "steps": 40, "noise_speed": 1.4, "speech_fraction": 0.65})
    mc = ModelConfig(hidden=8)
    train(mc, recipe, tmp_path / "a", str(corpus_dir), progress=False)
    train(mc, recipe, tmp_path / "b", str(corpus_dir), progress=False, max_minutes=0)
    train(mc, TrainConfig(**{**TINY_TRAIN, "steps": 40}), tmp_path / "b", str(corpus_dir), progress=False,
          resume=True)
    a, _, _ = checkpoint.load(tmp_path / "a" / "last.pt")
    b, _, ck = checkpoint.load(tmp_path / "b" / "last.pt")
    assert ck["provenance"]["train"]["speech_fraction"] == 0.65
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-5), n


def test_speech_fraction_keeps_a_fixed_subset(corpus_dir):
    clips = data.load_corpus(data.list_corpus(str(corpus_dir), "train"))["speech"]
    half = data.keep_fraction(clips, 0.65)
    assert 0 < len(half) < len(clips) and [c.path for c in half] == [c.path for c in data.keep_fraction(clips, 0.65)]
    assert data.keep_fraction(clips, 1.0) is clips
    with pytest.raises(ValueError):
        data.keep_fraction(clips, 0.1)  # none of these five names hashes below 100


def test_noise_speed_resamples_noise_within_its_range():
    """A 1 kHz tone as the only noise: resampled segments move it to 1 kHz x r, r in [1/1.4, 1.4]."""
    t = np.arange(3 * 16000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    rng = np.random.default_rng(0)
    peaks = []
    for _ in range(40):
        y = data._noise_segment(tone, 16000, rng, speed=1.4)
        assert y.shape == (16000,) and y.dtype == np.float32
        peaks.append(np.argmax(np.abs(np.fft.rfft(y))))  # 1 Hz bins
    peaks = np.array(peaks)
    assert 10 <= np.sum(peaks == 1000) <= 30  # about half are left as they are
    moved = peaks[peaks != 1000]
    assert moved.min() >= 1000 / 1.4 - 2 and moved.max() <= 1000 * 1.4 + 2
    assert moved.min() < 900 and moved.max() > 1100  # both directions occur
    # off (the default): plain looped segments, and no extra random draws
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(data._noise_segment(tone, 8000, a, 0.0), data._segment(tone, 8000, b, loop=True))
    assert a.random() == b.random()


def test_training_never_opens_valid_or_test_files(corpus_dir, tmp_path, monkeypatch):
    """Valid and test speech, noise and RIRs never reach the training loader; test files are never opened."""
    opened = []
    real = data.corpus.load_clip
    monkeypatch.setattr(data.corpus, "load_clip", lambda p, r: opened.append(Path(p).name) or real(p, r))
    files = data.list_corpus(str(corpus_dir), "train")
    assert files["rir"] and all(p.name.startswith("train") or p.name == "narrow.flac" for k in files for p, _ in files[k])
    cfg = TrainConfig(**{**TINY_TRAIN, "steps": 4, "epoch_steps": 4, "reverb": 1.0, "sim_rooms": 0})
    mixer = training_mixer(cfg, str(corpus_dir))
    names = [Path(c.path).name for c in mixer.speech + mixer.noise]
    assert names and all(n.startswith("train") or n == "narrow.flac" for n in names)
    # the one real RIR in the loader is the train one (written from seed 8; valid/test came from other seeds)
    assert len(mixer.real_rirs) == 1
    got, want = mixer.real_rirs[0], rooms.trim(rir_like(8))
    n = min(len(got), len(want))
    assert np.corrcoef(got[:n], want[:n])[0, 1] > 0.999
    opened.clear()
    train(ModelConfig(hidden=8), cfg, tmp_path, str(corpus_dir), progress=False)
    assert opened and not any(n.startswith("test") for n in opened)
    assert {n for n in opened if n.startswith("valid")} <= {"valid0.flac", "valid1.flac", "valid.flac"}


def test_band_limited_speech_carries_its_band_and_the_loss_ignores_the_rest(corpus_dir):
    corpus = data.load_corpus(data.list_corpus(str(corpus_dir), "train"))
    narrow = [c for c in corpus["speech"] if c.path.endswith("narrow.flac")][0]
    wide = [c for c in corpus["speech"] if not c.path.endswith("narrow.flac")][0]
    assert narrow.band_bins == int(0.95 * 4000 / 31.25) + 1 and wide.band_bins == 257
    mixer = data.Mixer(corpus, seconds=1.0)
    rng = np.random.default_rng(0)
    exs = [mixer.mix(rng, speech=narrow), mixer.mix(rng, speech=wide)]
    X, irm, mag, w = to_batch(exs, STFTConfig())
    assert w[0, 0, :narrow.band_bins].eq(1).all() and w[0, 0, narrow.band_bins:].eq(0).all()
    assert w[1].eq(1).all()
    mask = irm.clone()
    base = loss_fn(mask, X, irm, mag, w, "irm")
    mask[0, :, narrow.band_bins:] = 1 - irm[0, :, narrow.band_bins:]  # wrong only above the narrow band
    assert float(loss_fn(mask, X, irm, mag, w, "irm")) == pytest.approx(float(base))
    mask[1, :, 200:] = 0.0
    assert float(loss_fn(mask, X, irm, mag, w, "irm")) > float(base)


@pytest.mark.parametrize("snr", [-5, 0, 5, 12.5, 20])
def test_mixing_hits_the_requested_snr(corpus_dir, snr):
    mixer = data.Mixer(data.load_corpus(data.list_corpus(str(corpus_dir), "train")), seconds=1.5)
    for seed in range(5):
        ex = mixer.mix(np.random.default_rng(seed), snr_db=snr)
        got = 10 * np.log10(data.power(ex.clean) / data.power(ex.noise))
        assert abs(got - snr) < 0.5
        assert np.allclose(ex.noisy, ex.clean + ex.noise, atol=1e-6)
        assert np.abs(ex.noisy).max() <= 0.99 + 1e-6


def test_dc_offset_in_a_recording_does_not_fake_the_snr(tmp_path):
    """A noise file riding on a DC offset (as one real recording does) must not count its DC as noise."""
    rng = np.random.default_rng(1)
    sf.write(str(tmp_path / "speech.flac"), speechlike(2.0, seed=3), 16000)
    sf.write(str(tmp_path / "noise.flac"), (0.36 + 0.01 * rng.standard_normal(32000)).astype(np.float32), 16000)
    clips = {"speech": [data.load_clip(tmp_path / "speech.flac", 16000)],
             "noise": [data.load_clip(tmp_path / "noise.flac", 16000)]}
    assert abs(float(clips["noise"][0].audio.mean())) < 1e-4
    ex = data.Mixer(clips, seconds=1.5, eq=False).mix(np.random.default_rng(0), snr_db=0.0)
    ac = lambda x: float(np.var(x.astype(np.float64)))  # noqa: E731 - power without DC
    assert abs(10 * np.log10(ac(ex.clean) / ac(ex.noise))) < 0.5


def test_training_snr_range_follows_the_recipe(corpus_dir):
    """--snr-min/--snr-max set the training mixtures' SNR range (the valid set keeps its fixed SNRs)."""
    cfg = TrainConfig(**{**TINY_TRAIN, "snr_min": 0.0, "snr_max": 5.0, "reverb": 0.0, "sim_rooms": 0})
    mixer = training_mixer(cfg, str(corpus_dir))
    snrs = [e.snr_db for e in mixer.batch(np.random.default_rng(0), 40)]
    assert min(snrs) >= 0.0 and max(snrs) <= 5.0 and max(snrs) - min(snrs) > 3.0
    wide = training_mixer(TrainConfig(**{**TINY_TRAIN, "reverb": 0.0, "sim_rooms": 0}), str(corpus_dir))
    assert min(e.snr_db for e in wide.batch(np.random.default_rng(0), 40)) < 0.0
    with pytest.raises(ValueError, match="snr_min"):
        training_mixer(TrainConfig(**{**TINY_TRAIN, "snr_min": 10.0, "snr_max": 5.0}), str(corpus_dir))
