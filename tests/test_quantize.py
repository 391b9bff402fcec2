"""int8 quantisation of W and U (and with scope "all" the output layer's weight matrix): every value a multiple
of its group's scale within half a step, pruned zeros and masks kept, the compact file rebuilding the fake-quant
model exactly, its size the counted bytes."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import speechlike
from se_app import checkpoint, plots, registry
from se_app.cli import main
from se_app.compact import load_compact, save_compact, storage_bytes
from se_app.enhancer import Enhancer
from se_app.evaluate import stored_bytes
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


def test_mpo_local_tensors_are_multiples_of_one_scale_per_left_bond_slice_within_half_a_step():
    model = tiny("mpo")
    new, info = quantize(model)
    worst = 0.0
    for old_chain, new_chain in zip(model.core.cores, new.core.cores):
        for old_core, q_core in zip(old_chain, new_chain):
            for old, q in zip(old_core, q_core):  # slice d of the left bond: (i_k, j_k, D(k))
                s = float((old.detach().abs().max() / 127).float())
                steps = q.detach().double() / s
                assert torch.allclose(steps, steps.round(), atol=1e-4)  # an integer multiple of the slice's scale
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


@pytest.mark.parametrize("name", ["mpo", "pruned", "dense"])
def test_scope_all_also_quantises_the_output_weights_per_row_and_nothing_else(name):
    model = tiny(name)
    wu, wu_info = quantize(model)
    new, info = quantize(model, scope="all")
    w, q = model.out.weight.detach().double(), new.out.weight.detach().double()
    s = (w.abs().amax(1, keepdim=True) / 127).float().double()  # a scale per output bin
    steps = q / s
    assert torch.allclose(steps, steps.round(), atol=1e-4) and (steps.abs().amax(1).round() == 127).all()
    err = (q - w).abs()
    assert (err <= s / 2 * (1 + 1e-5)).all() and float(err.max()) > 0
    assert info.out_max_abs_error == pytest.approx(float(err.max()), rel=1e-6)
    assert 0 < info.out_relative_error < 0.02 and info.scope == "all"
    assert wu_info.scope == "wu" and wu_info.out_relative_error == wu_info.out_max_abs_error == 0.0
    assert torch.equal(wu.out.weight, model.out.weight)  # scope wu leaves it alone
    assert (info.relative_error, info.max_abs_error) == (wu_info.relative_error, wu_info.max_abs_error)
    for k, v in new.state_dict().items():  # W and U as scope wu makes them, biases and statistics the source's
        assert k == "out.weight" or torch.equal(v, wu.state_dict()[k]), k
    assert torch.equal(new.out.bias, model.out.bias) and torch.equal(new.feat_std, model.feat_std)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("name", ["mpo", "pruned-97"])
def test_scope_all_saves_three_quarters_of_the_output_weights_float32_bytes(name, bits):
    model = tiny(name)
    wu, every = storage_bytes(model, bits), storage_bytes(model, bits, scope="all")
    n, rows = model.out.weight.numel(), model.out.weight.shape[0]
    assert wu["rest"] - every["rest"] == 4 * n  # out.weight leaves the float32 rest ...
    values = every["weights"] * 8 // bits  # ... for the stored values (at 4 bits, packed two to a byte)
    assert values - wu["weights"] * 8 // bits in (n, n + 1) and every["scales"] - wu["scales"] == 4 * rows
    assert every["index"] == wu["index"] and 0 < every["config"] - wu["config"] < 40
    saved = wu["total"] - every["total"]
    assert saved == pytest.approx(4 * n - n * bits / 8 - 4 * rows - (every["config"] - wu["config"]), abs=1)
    if bits == 8:  # 3/4 of 4 n, less one scale per row (at hidden 256 that is 0.4 %, here 6 %)
        assert 0.68 < saved / (4 * n) < 0.75
    assert storage_bytes(model, None, scope="all")["total"] - storage_bytes(model)["total"] < 40


@pytest.mark.parametrize("scope", ["wu", "all"])
@pytest.mark.parametrize("bits", [8, 4, None])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_compact_file_rebuilds_the_fake_quant_model_and_its_size_is_the_count(name, bits, scope, tmp_path):
    model = tiny(name)
    path = tmp_path / "m.npz"
    save_compact(model, STFTConfig(), path, bits, scope)
    loaded, stft_cfg = load_compact(path)
    ref = model if bits is None else quantize(model, bits, scope)[0]
    with torch.no_grad():
        assert torch.equal(loaded.masks(feats()), ref.masks(feats()))
    for k, v in ref.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert stft_cfg == STFTConfig() and loaded.cfg == model.cfg
    with np.load(path) as z:
        meta = json.loads(z["config"].tobytes())
        if bits is not None:
            assert z["weights"].dtype == (np.int8 if bits == 8 else np.uint8) and z["scales"].dtype == np.float32
    assert (meta["scope"], meta["version"]) == (scope, 3)
    if name.startswith("pruned"):
        kinds = [k for k, _ in meta["index"]]  # at 97 %, the big W in CSR and the small U as bitmasks
        assert kinds == ["bitmask"] * 4 if name == "pruned" else kinds == ["csr", "bitmask", "bitmask", "bitmask"]
    counted = storage_bytes(model, bits, scope=scope)
    assert counted["total"] == sum(v for k, v in counted.items() if k != "total")
    overhead = path.stat().st_size - counted["total"]
    assert 0 < overhead < 5 * 300  # the npz's own headers, a few hundred bytes for each of the five arrays


def test_int8_weights_take_a_quarter_of_float32():
    for name in ("mpo", "pruned-97"):
        fp32, int8, int4 = (storage_bytes(tiny(name), b) for b in (None, 8, 4))
        assert int8["weights"] * 4 == fp32["weights"] and int4["weights"] == -(-int8["weights"] // 2)
        assert int8["index"] == fp32["index"] and int8["rest"] == fp32["rest"] and fp32["scales"] == 0
    mpo32, mpo8 = storage_bytes(tiny("mpo"), None), storage_bytes(tiny("mpo"), 8)
    slices = sum(c.shape[0] for chain in tiny("mpo").core.cores for c in chain)
    assert mpo8["scales"] == 4 * slices > 4 * 6  # one scale per left-bond slice of each local tensor
    assert (mpo8["weights"] + mpo8["scales"]) / mpo32["weights"] < 0.26
    pruned = tiny("pruned")
    nnz = sum(int(m.sum()) for m in pruned.core.masks())
    assert storage_bytes(pruned, 8)["weights"] == nnz and storage_bytes(pruned, 8)["scales"] == 4 * 4 * 64


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="bits must be an integer from 2 to 8"):
        quantize(tiny("mpo"), 12)
    with pytest.raises(ValueError, match="bits must be"):
        save_compact(tiny("mpo"), STFTConfig(), tmp_path / "x.npz", 1)
    with pytest.raises(ValueError, match="scope must be one of wu, all"):
        quantize(tiny("mpo"), scope="out")
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


def test_cli_scope_all_is_recorded_labelled_counted_and_runs(tiny_models, tmp_path, monkeypatch, capsys):
    root = tmp_path / "models"
    shutil.copytree(tiny_models, root)
    monkeypatch.setenv("SE_APP_MODELS", str(root))
    out, npz = tmp_path / "q.pt", tmp_path / "q.npz"
    assert main(["quantize", "tiny-mpo", "-o", str(out), "--compact", str(npz), "--scope", "all"]) == 0
    assert "8-bit W,U,out" in capsys.readouterr().out
    model, _, ckpt = checkpoint.load(out)
    quant = ckpt["provenance"]["quantize"]
    assert quant["scope"] == "all" and quant["bits"] == 8 and quant["out_relative_error"] > 0
    counted = storage_bytes(model, 8, scope="all")["total"]
    assert quant["bytes_quant"] == counted < storage_bytes(model, 8)["total"]
    assert 0 < npz.stat().st_size - counted < 5 * 300
    compact, _ = load_compact(npz)
    for k, v in model.state_dict().items():
        assert torch.equal(v, compact.state_dict()[k]), k
    enh = Enhancer.load(str(out))
    assert stored_bytes(enh) == counted  # evaluate's x axis: the bytes of scope all, not of wu
    assert enh.info["method"] == "mpo+int8all" and plots.quant_group(enh.info["method"]) == ("mpo", "int8all")
    src = tmp_path / "in.wav"
    sf.write(str(src), speechlike(0.5, 16000), 16000)
    assert main(["-q", "enhance", str(src), "-o", str(tmp_path / "o"), "--model", str(out)]) == 0
    assert (tmp_path / "o" / "in.wav").exists()
    assert main(["register", "tiny-mpo-int8all", str(out)]) == 0
    row = [r for r in registry.listing() if r["name"] == "tiny-mpo-int8all"][0]
    assert row["size_bytes"] == counted and row["method"] == "mpo+int8all"


def test_pareto_plot_draws_every_quantised_model_hollow_with_its_source_method(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    figs = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: figs.append(self))
    systems = {n: {"kind": "mpo", "method": m, "compact_bytes": b, "pesq": {"avg": p}}
               for n, m, b, p in [("a", "mpo-scratch", 480000, 1.61), ("b", "mpo-scratch+int8", 330000, 1.60),
                                  ("c", "mpo-scratch+int8all", 130000, 1.59), ("d", "pruned", 600000, 1.5)]}
    plots.pareto({"systems": systems}, tmp_path / "p.png")
    drawn = {c.get_label(): c for c in figs[0].axes[0].collections}
    assert set(drawn) == {"mpo-scratch", "mpo-scratch int8", "mpo-scratch int8all", "pruned"}
    marker = {k: c.get_paths()[0].vertices.tobytes() for k, c in drawn.items()}
    assert marker["mpo-scratch"] == marker["mpo-scratch int8"] == marker["mpo-scratch int8all"] != marker["pruned"]
    edge = {k: tuple(c.get_edgecolor()[0]) for k, c in drawn.items()}
    assert edge["mpo-scratch"] == edge["mpo-scratch int8"] == edge["mpo-scratch int8all"] != edge["pruned"]
    assert len(drawn["mpo-scratch"].get_facecolor()) and all(  # filled source, hollow quantised copies
        not len(drawn[k].get_facecolor()) or drawn[k].get_facecolor()[0][3] == 0
        for k in ("mpo-scratch int8", "mpo-scratch int8all"))
