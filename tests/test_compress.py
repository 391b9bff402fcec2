"""Compression by truncation: fewer parameters, the rate asked for, and exactly the error the dropped singular
values predict; the result is a normal checkpoint."""
import math
import shutil

import pytest
import soundfile as sf
import torch

from conftest import speechlike
from se_app import checkpoint, compress, mpo, registry
from se_app.cli import main
from se_app.enhancer import apply_model
from se_app.stft import STFTConfig
from se_app.stream import Stream


def chain(bonds, seed=0):
    torch.manual_seed(seed)
    fi, fo = mpo.factorize(257, 4), mpo.out_factors(64, 4)
    return [torch.randn(s, dtype=torch.float64) for s in mpo.core_shapes(fi, fo, bonds)], fi, fo


def test_truncating_one_bond_drops_the_matrix_singular_values_at_that_cut():
    """In canonical form a bond's singular values are those of W split at that bond: truncating bond 2 alone
    costs exactly the norm of W's dropped Schmidt values (computed here from the dense tensor, not the chain)."""
    cores, fi, fo = chain([6, 8, 6])
    w = mpo.reconstruct(cores)
    new, dropped = compress.truncate_chain(cores, [6, 5, 6])
    assert [c.shape[3] for c in new[:-1]] == [6, 5, 6]
    assert dropped[0].numel() == dropped[2].numel() == 0  # the other bonds keep all they had
    t = w.reshape(*fo, *fi).permute(4, 0, 5, 1, 6, 2, 7, 3)  # (i1, j1, i2, j2, ...)
    schmidt = torch.linalg.svdvals(t.reshape(fi[0] * fo[0] * fi[1] * fo[1], -1))
    assert torch.allclose(dropped[1], schmidt[5:8], rtol=1e-9)
    err = float((mpo.reconstruct(new) - w).norm())
    assert err == pytest.approx(float(schmidt[5:].norm()), rel=1e-9) and err > 0


def test_truncating_every_bond_error_is_the_norm_of_all_dropped_values():
    cores, _, _ = chain([6, 8, 6], seed=1)
    w = mpo.reconstruct(cores)
    new, dropped = compress.truncate_chain(cores, [2, 3, 4])
    predicted = math.sqrt(sum(float((d ** 2).sum()) for d in dropped))
    assert float((mpo.reconstruct(new) - w).norm()) == pytest.approx(predicted, rel=1e-9)
    same, none = compress.truncate_chain(cores, [6, 8, 6])  # nothing dropped: the same matrix
    assert torch.allclose(mpo.reconstruct(same), w, atol=1e-9) and all(float(d.norm()) < 1e-9 for d in none)


def load(root, name):
    return checkpoint.load(registry.resolve(name, root)[0])[0]


def test_mpo_model_truncation_lowers_params_and_matches_the_prediction(tiny_models):
    model = load(tiny_models, "tiny-mpo")
    new, info = compress.compress(model, 2 * model.rate())
    assert info.kind == "mpo" and all(b <= a for a, b in zip(model.cfg.bonds, info.setting))
    assert new.effective_params() < model.effective_params() and new.rate() == pytest.approx(info.rate)
    assert info.rate > 1.4 * model.rate()
    sq = 0.0
    for k, (old_c, new_c) in enumerate(zip(model.core.cores, new.core.cores)):
        full_old = mpo.reconstruct([c.detach().double() for c in old_c])  # the operator with its padding
        full_new = mpo.reconstruct([c.detach().double() for c in new_c])
        sq += float(((full_old - full_new) ** 2).sum())
        r, c = model.core.shapes()[k]
        assert float((full_old - full_new)[:r, :c].norm()) <= float((full_old - full_new).norm()) + 1e-9
    assert math.sqrt(sq) == pytest.approx(info.error, rel=1e-4)  # float32 cores
    assert 0 < info.relative_error < 1
    for a, b in zip(model.state_dict().items(), new.state_dict().items()):  # everything else carried over
        if not a[0].startswith("core.cores"):
            assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_dense_model_becomes_low_rank_with_the_eckart_young_error(tiny_models):
    model = load(tiny_models, "tiny-dense")
    new, info = compress.compress(model, 4.0)
    assert info.kind == "lowrank" and new.cfg.rank == info.setting[0] and info.rate == pytest.approx(4.0, rel=0.2)
    assert new.effective_params() < model.effective_params()
    sq = 0.0
    for w, w2 in zip(model.core.matrices(), new.core.matrices()):
        s = torch.linalg.svdvals(w.double())
        sq_k = float((w.double() - w2.double()).norm() ** 2)
        assert sq_k == pytest.approx(float((s[new.cfg.rank:] ** 2).sum()), rel=1e-4)
        sq += sq_k
    assert math.sqrt(sq) == pytest.approx(info.error, rel=1e-4)
    again, info2 = compress.compress(new, 8.0)  # a low-rank model truncates further
    assert again.cfg.rank < new.cfg.rank and info2.rate > info.rate


def test_refusals(tiny_models):
    with pytest.raises(ValueError, match="pruned model cannot be truncated"):
        compress.compress(load(tiny_models, "tiny-pruned"), 50)
    m = load(tiny_models, "tiny-mpo")
    with pytest.raises(ValueError, match="only compresses further"):
        compress.compress(m, m.rate() / 2)
    same, info = compress.compress(m, m.rate())
    assert info.error == 0 and same.effective_params() == m.effective_params()


def test_cli_compress_writes_a_checkpoint_that_enhance_and_the_registry_take(tiny_models, tmp_path, monkeypatch,
                                                                           capsys):
    root = tmp_path / "models"  # a copy: registering must not change the shared tiny registry
    shutil.copytree(tiny_models, root)
    monkeypatch.setenv("SE_APP_MODELS", str(root))
    out = tmp_path / "dense-4x.pt"
    assert main(["compress", "tiny-dense", "--rate", "4", "-o", str(out)]) == 0
    assert "lowrank, rank" in capsys.readouterr().out
    model, cfg, ckpt = checkpoint.load(out)  # weights_only load of a plain dict
    assert ckpt["model"]["kind"] == "lowrank" and ckpt["provenance"]["compressed_from"] == "tiny-dense"
    assert ckpt["wu_params"] < ckpt["wu_dense"] and ckpt["rate"] == pytest.approx(model.rate())
    src = tmp_path / "in.wav"
    sf.write(str(src), speechlike(0.5, 16000), 16000)
    assert main(["-q", "enhance", str(src), "-o", str(tmp_path / "o"), "--model", str(out)]) == 0
    assert main(["register", "tiny-lowrank", str(out)]) == 0
    assert [r for r in registry.listing() if r["name"] == "tiny-lowrank"][0]["kind"] == "lowrank"
    capsys.readouterr()
    assert main(["compress", "tiny-pruned", "--rate", "50", "-o", str(tmp_path / "x.pt")]) == 2
    assert "cannot be truncated" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()


def test_low_rank_model_streams_like_the_whole_file(tiny_models):
    new, _ = compress.compress(load(tiny_models, "tiny-dense"), 3.0)
    x = torch.from_numpy(speechlike(0.5, 16000)[None])
    ref = apply_model(new, x, STFTConfig())
    s = Stream(new, STFTConfig(), 1)
    y = torch.cat([s.process(x[:, i:i + 256]) for i in range(0, x.shape[1], 256)] + [s.flush()], 1)
    assert (y[:, s.latency:] - ref).abs().max() < 1e-5
