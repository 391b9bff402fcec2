"""int8 quantisation of W and U: every value a multiple of its group's scale within half a step, pruned zeros and
masks kept, the compact file rebuilding the fake-quant model exactly, its size the counted bytes."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import speechlike
from se_app import checkpoint, registry
from se_app.cli import main
from se_app.compact import load_compact, save_compact, storage_bytes
from se_app.model import MaskNet, ModelConfig
from se_app.quantize import quantize
from se_app.stft import STFTConfig

CONFIGS = {
    "mpo": ModelConfig(kind="mpo", hidden=16, layers=1, n_factors=3, mpo_rate=4, n_bins=257),
    "pruned": ModelConfig(kind="pruned", hidden=16, sparsity=0.8),  # index: bitmask is cheaper
    "pruned-97": ModelConfig(kind="pruned", hidden=16, sparsity=0.97),  # index: CSR is cheaper
    "lowrank": ModelConfig(kind="lowrank", hidden=16, rank=3),
    "dense": ModelConfig(kind="dense", hidden=16),
}


def tiny(name: str, seed: int = 0) -> MaskNet:
    torch.manual_seed(seed)
    model = MaskNet(CONFIGS[name])
    if model.cfg.kind == "pruned":
        model.core.prune_to(model.cfg.sparsity)
    with torch.no_grad():  # feature statistics and output layer off their defaults, so "rest" is really stored
        model.feat_mean.normal_()
        model.feat_std.uniform_(0.5, 2.0)
    return model.eval()


def feats(frames: int = 30, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, frames, 257, generator=torch.Generator().manual_seed(seed))


def test_mpo_local_tensors_are_multiples_of_one_scale_each_within_half_a_step():
    model = tiny("mpo")
    new, info = quantize(model)
    worst = 0.0
    for old_chain, new_chain in zip(model.core.cores, new.core.cores):
        for old, q in zip(old_chain, new_chain):
            s = float((old.detach().abs().max() / 127).float())
            steps = q.detach().double() / s
            assert torch.allclose(steps, steps.round(), atol=1e-4)  # an integer multiple of the core's scale
            assert steps.abs().max().round() == 127  # the largest value uses the whole range
            err = float((q.detach().double() - old.detach().double()).abs().max())
            assert 0 < err <= s / 2 * (1 + 1e-5)
            worst = max(worst, err)
    assert info.bits == 8 and info.max_abs_error == pytest.approx(worst, rel=1e-6)
    assert 0 < info.relative_error < 0.02
    assert not any(torch.equal(a, b) for a, b in zip(model.core.matrices(), new.core.matrices()))


@pytest.mark.parametrize("name", ["pruned", "dense", "lowrank"])
def test_matrices_get_one_scale_per_output_row(name):
    model = tiny(name)
    new, _ = quantize(model)
    def tensors(m):  # W and U, or the A and B factors of each
        return list(m.core.weights) if name != "lowrank" else [p for c in m.core.cores for p in c]

    masks = model.core.masks() if name == "pruned" else [None] * len(tensors(model))
    mats, news = list(zip(tensors(model), masks)), tensors(new)
    for (w, m), q in zip(mats, news):
        w = (w * m if m is not None else w).detach().double()
        s = (w.abs().amax(1, keepdim=True) / 127).float().double()  # per row
        steps = q.detach().double() / torch.where(s > 0, s, torch.ones_like(s))
        assert torch.allclose(steps, steps.round(), atol=1e-4)
        assert ((q.detach().double() - w).abs() <= s / 2 * (1 + 1e-5) + 1e-12).all()


def test_pruned_zeros_stay_zero_and_the_mask_is_unchanged():
    model = tiny("pruned")
    new, _ = quantize(model)
    assert new.effective_params() == model.effective_params() and new.rate() == model.rate()
    for m_old, m_new, w in zip(model.core.masks(), new.core.masks(), new.core.weights):
        assert torch.equal(m_old, m_new)
        assert (w.detach()[m_old == 0] == 0).all()  # the parameter itself, not only the masked matrix
    for mat, m in zip(new.core.matrices(), model.core.masks()):
        assert (mat[m == 0] == 0).all()


@pytest.mark.parametrize("name", ["mpo", "pruned", "lowrank"])
def test_quantised_output_is_close_to_the_float_model(name):
    model = tiny(name)
    new, _ = quantize(model)
    with torch.no_grad():
        a, b = model.masks(feats()), new.masks(feats())
    diff = float((a - b).abs().max())
    assert 0 < diff < 0.02
    for k, v in model.state_dict().items():  # everything but W and U is the source's, bit for bit
        if not k.startswith(("core.cores", "core.weights")):
            assert torch.equal(v, new.state_dict()[k])


@pytest.mark.parametrize("bits", [8, 4, None])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_compact_file_rebuilds_the_fake_quant_model_and_its_size_is_the_count(name, bits, tmp_path):
    model = tiny(name)
    path = tmp_path / "m.npz"
    save_compact(model, STFTConfig(), path, bits)
    loaded, stft_cfg = load_compact(path)
    ref = model if bits is None else quantize(model, bits)[0]
    with torch.no_grad():
        assert torch.equal(loaded.masks(feats()), ref.masks(feats()))
    for k, v in ref.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert stft_cfg == STFTConfig() and loaded.cfg == model.cfg
    with np.load(path) as z:
        meta = json.loads(z["config"].tobytes())
        if bits is not None:
            assert z["weights"].dtype == (np.int8 if bits == 8 else np.uint8) and z["scales"].dtype == np.float32
    if name.startswith("pruned"):
        kinds = [k for k, _ in meta["index"]]  # at 97 %, the big W in CSR and the small U as bitmasks
        assert kinds == ["bitmask"] * 4 if name == "pruned" else kinds == ["csr", "bitmask", "bitmask", "bitmask"]
    counted = storage_bytes(model, bits)
    assert counted["total"] == sum(v for k, v in counted.items() if k != "total")
    overhead = path.stat().st_size - counted["total"]
    assert 0 < overhead < 5 * 300  # the npz's own headers, a few hundred bytes for each of the five arrays


def test_int8_weights_take_a_quarter_of_float32():
    for name in ("mpo", "pruned-97"):
        fp32, int8, int4 = (storage_bytes(tiny(name), b) for b in (None, 8, 4))
        assert int8["weights"] * 4 == fp32["weights"] and int4["weights"] == -(-int8["weights"] // 2)
        assert int8["index"] == fp32["index"] and int8["rest"] == fp32["rest"] and fp32["scales"] == 0
    mpo32, mpo8 = storage_bytes(tiny("mpo"), None), storage_bytes(tiny("mpo"), 8)
    assert mpo8["scales"] == 4 * 6  # one scale per local tensor: 2 matrices x 3 cores
    assert (mpo8["weights"] + mpo8["scales"]) / mpo32["weights"] < 0.26
    pruned = tiny("pruned")
    nnz = sum(int(m.sum()) for m in pruned.core.masks())
    assert storage_bytes(pruned, 8)["weights"] == nnz and storage_bytes(pruned, 8)["scales"] == 4 * 4 * 64


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="bits must be an integer from 2 to 8"):
        quantize(tiny("mpo"), 12)
    with pytest.raises(ValueError, match="bits must be"):
        save_compact(tiny("mpo"), STFTConfig(), tmp_path / "x.npz", 1)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a se_app compact model file"):
        load_compact(tmp_path / "bad.npz")


def test_cli_quantize_writes_a_checkpoint_that_enhance_and_the_registry_take(tiny_models, tmp_path, monkeypatch,
                                                                           capsys):
    root = tmp_path / "models"  # a copy: registering must not change the shared tiny registry
    shutil.copytree(tiny_models, root)
    monkeypatch.setenv("SE_APP_MODELS", str(root))
    out, npz = tmp_path / "q.pt", tmp_path / "q.npz"
    assert main(["quantize", "tiny-pruned", "-o", str(out), "--compact", str(npz)]) == 0
    assert "8-bit W,U" in capsys.readouterr().out
    model, stft_cfg, ckpt = checkpoint.load(out)
    prov = ckpt["provenance"]
    assert prov["quantized_from"] == "tiny-pruned" and prov["parent"] == {"note": "random test model"}
    assert prov["source_sha256"] == checkpoint.sha256(root / "tiny-pruned.pt") and prov["quantize"]["bits"] == 8
    assert not ckpt["scores"]
    compact, _ = load_compact(npz)
    with torch.no_grad():
        assert torch.equal(compact.masks(feats()), model.masks(feats()))
    assert prov["quantize"]["bytes_quant"] == storage_bytes(model, 8)["total"]
    src = tmp_path / "in.wav"
    sf.write(str(src), speechlike(0.5, 16000), 16000)
    assert main(["-q", "enhance", str(src), "-o", str(tmp_path / "o"), "--model", str(out)]) == 0
    assert (tmp_path / "o" / "in.wav").exists()
    assert main(["register", "tiny-pruned-int8", str(out)]) == 0
    row = [r for r in registry.listing() if r["name"] == "tiny-pruned-int8"][0]
    assert row["size_bytes"] == prov["quantize"]["bytes_quant"] and row["method"] == "pruned+int8"
    capsys.readouterr()
    assert main(["quantize", "nope", "-o", str(tmp_path / "x.pt")]) == 2
    assert "no model named or at 'nope'" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    assert main(["quantize", "tiny-mpo", "-o", str(tmp_path / "x.pt"), "--bits", "9"]) == 2
    assert "bits must be an integer from 2 to 8" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
