"""The mask post-filter: applied identically offline and streaming, chosen on the valid split only."""
import numpy as np
import pytest
import torch

from conftest import speechlike
from se_app import checkpoint, cli, postfilter
from se_app.enhancer import Stream, apply_model
from se_app.model import MaskNet, ModelConfig
from se_app.stft import DCBlocker, STFTConfig, istft, log_power, stft

CFG = STFTConfig()


def tiny(power: float) -> MaskNet:
    torch.manual_seed(0)
    return MaskNet(ModelConfig(kind="mpo", hidden=16, bonds=(3, 3, 3), mask_power=power)).eval()


def test_power_one_is_the_raw_mask_and_power_deepens_attenuation():
    x = torch.from_numpy(speechlike(0.5, seed=4))[None]
    raw, sharp = tiny(1.0), tiny(1.7)
    with torch.no_grad():
        spec = stft(DCBlocker(1)(x), CFG)  # apply_model blocks DC first
        mask, _ = raw(log_power(spec))
    assert torch.allclose(apply_model(raw, x, CFG), istft(spec * mask, CFG, x.shape[1]), atol=1e-6)
    assert torch.allclose(apply_model(sharp, x, CFG), istft(spec * mask ** 1.7, CFG, x.shape[1]), atol=1e-6)
    assert apply_model(sharp, x, CFG).square().sum() < apply_model(raw, x, CFG).square().sum()


def test_streaming_equals_whole_signal_with_post_filter():
    m = tiny(1.5)
    x = torch.from_numpy(speechlike(0.6, seed=5))[None]
    s = Stream(m, CFG, 1)
    y = torch.cat([s.process(x[:, i:i + 300]) for i in range(0, x.shape[1], 300)] + [s.flush()], 1)
    assert (y[:, s.latency:] - apply_model(m, x, CFG)).abs().max() < 1e-5


def test_choose_keeps_stoi_within_the_allowed_drop():
    rows = [postfilter.PowerScore(1.0, 1.5, 0.80), postfilter.PowerScore(1.5, 1.6, 0.797),
            postfilter.PowerScore(2.0, 1.7, 0.79)]
    assert postfilter.choose(rows, 0.005).power == 1.5
    assert postfilter.choose(rows, 0.02).power == 2.0
    assert postfilter.choose(rows, 0.0).power == 1.0


def test_tune_post_cli_writes_a_loadable_tuned_checkpoint(corpus_dir, tmp_path, capsys):
    src, dst = tmp_path / "m.pt", tmp_path / "m_pf.pt"
    checkpoint.save(src, tiny(1.0), CFG, provenance={"note": "random"})
    rc = cli.main(["-q", "tune-post", str(src), "-o", str(dst), "--data", str(corpus_dir), "--count", "2"])
    assert rc == 0
    model, _, ckpt = checkpoint.load(dst)
    table = ckpt["provenance"]["postfilter"]["table"]
    assert [r["power"] for r in table] == list(postfilter.POWERS)
    assert model.cfg.mask_power == ckpt["provenance"]["postfilter"]["chosen"] in postfilter.POWERS
    assert ckpt["provenance"]["note"] == "random"
    base = tiny(1.0)
    for a, b in zip(model.state_dict().values(), base.state_dict().values()):
        assert torch.equal(a, b)
    assert "<- chosen" in capsys.readouterr().out


def test_old_checkpoints_without_the_field_load_with_power_one(tmp_path):
    path = tmp_path / "old.pt"
    checkpoint.save(path, tiny(1.0), CFG)
    ckpt = checkpoint.read(path)
    del ckpt["model"]["mask_power"]
    torch.save(ckpt, path)
    model, _, _ = checkpoint.load(path)
    assert model.cfg.mask_power == 1.0


@pytest.mark.parametrize("recipe, tagged", [({"reverb": 1.0, "sim_rooms": 0, "bandlimit": 0.0}, True),
                                            ({"steps": 10}, False)])  # saved before reverberation existed
def test_tune_post_scores_the_valid_mixtures_of_the_models_own_recipe(corpus_dir, tmp_path, monkeypatch, recipe,
                                                                       tagged):
    src = tmp_path / "m.pt"
    checkpoint.save(src, tiny(1.0), CFG, provenance={"train": recipe})
    seen = []

    def fake_tune(ckpt, out, examples, max_drop):
        seen.extend(examples)
        row = postfilter.PowerScore(1.0, 1.0, 1.0)
        return row, [row]

    monkeypatch.setattr(postfilter, "tune", fake_tune)
    assert cli.main(["-q", "tune-post", str(src), "-o", str(tmp_path / "o.pt"), "--data", str(corpus_dir),
                     "--count", "3"]) == 0
    assert len(seen) == 3 and all(("reverb" in e.tags) == tagged for e in seen)
