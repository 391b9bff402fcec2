import pytest
import torch

from se_app import checkpoint, mpo
from se_app.model import MaskNet, ModelConfig
from se_app.stft import STFTConfig
from se_app.train import cubic_sparsity

torch.set_num_threads(1)


def test_dense_default_shape_and_counts():
    m = MaskNet(ModelConfig())
    assert m.core.shapes() == [(1024, 257), (1024, 256), (1024, 256), (1024, 256)]
    assert m.core.dense_count() == 1024 * 257 + 3 * 1024 * 256
    assert m.rate() == 1.0
    assert m.effective_params() == sum(p.numel() for p in m.parameters())


def test_mpo_counts_and_rate_hold_by_parameter_count():
    m = MaskNet(ModelConfig(kind="mpo", mpo_rate=20))
    stored = sum(p.numel() for n, p in m.named_parameters() if n.startswith("core.cores"))
    assert stored == m.core.effective_params()
    assert m.rate() == pytest.approx(m.core.dense_count() / stored)
    assert abs(m.rate() / 20 - 1) <= 0.05
    # only the local tensors are parameters: no dense W or U is stored
    assert not any(p.shape in {(1024, 257), (1024, 256)} for p in m.parameters())
    for cores, (fi, fo) in zip(m.core.cores, m.core.factors):
        assert [tuple(c.shape) for c in cores] == mpo.core_shapes(fi, fo, list(m.cfg.bonds))


def test_mpo_weights_rebuilt_and_cached_in_inference():
    m = MaskNet(ModelConfig(kind="mpo", hidden=16, bonds=(4, 4, 4))).eval()
    with torch.no_grad():
        a = m.core.matrices()
        assert m.core.matrices() is a  # cached
        m.core.cores[0][0].add_(1.0)  # a weight change invalidates the cache
        assert m.core.matrices() is not a


def test_mpo_init_from_dense_matches_svd_truncation():
    dense = MaskNet(ModelConfig(hidden=16))
    m = MaskNet(ModelConfig(kind="mpo", hidden=16, n_factors=2, bonds=(64,)))
    m.core.load_dense([w.detach() for w in dense.core.weights])
    for w, r in zip(dense.core.weights, m.core.matrices()):
        assert torch.allclose(w, r, atol=1e-5)  # bond 64 is full rank here: exact


def test_pruning_reaches_target_and_never_revives():
    m = MaskNet(ModelConfig(kind="pruned", hidden=32, sparsity=0.95))
    m.core.prune_to(0.5)
    first = [mk.clone() for mk in m.core.masks()]
    m.core.prune_to(0.95)
    assert m.core.rate() == pytest.approx(20, rel=0.01)
    for a, b in zip(first, m.core.masks()):
        assert bool((b <= a).all())
    for w, mk in zip(m.core.weights, m.core.masks()):
        assert bool((w[mk == 0] == 0).all())


def test_cubic_schedule_reaches_target_sparsity():
    s = [cubic_sparsity(t, 0.99, 100, 1100) for t in range(0, 1500, 10)]
    assert s[0] == 0 and s[-1] == 0.99
    assert all(b >= a for a, b in zip(s, s[1:]))
    m = MaskNet(ModelConfig(kind="pruned", hidden=16, sparsity=0.99))
    for t in range(0, 1200, 50):
        m.core.prune_to(cubic_sparsity(t, 0.99, 100, 1100))
    assert m.core.rate() == pytest.approx(100, rel=0.05)


@pytest.mark.parametrize("cfg", [ModelConfig(hidden=16), ModelConfig(kind="mpo", hidden=16, bonds=(3, 4, 3)),
                                 ModelConfig(kind="pruned", hidden=16, sparsity=0.9)])
def test_checkpoint_round_trip(tmp_path, cfg):
    torch.manual_seed(0)
    m = MaskNet(cfg)
    if cfg.kind == "pruned":
        m.core.prune_to(cfg.sparsity)
    path = tmp_path / "m.pt"
    checkpoint.save(path, m, STFTConfig(), provenance={"x": 1}, scores={"valid": {"pesq": 2.0}})
    m2, stft_cfg, ckpt = checkpoint.load(path)
    assert stft_cfg == STFTConfig() and m2.cfg == m.cfg and ckpt["scores"]["valid"]["pesq"] == 2.0
    assert m2.effective_params() == m.effective_params() and m2.rate() == pytest.approx(m.rate())
    x = torch.randn(1, 20, 257)
    m.eval()
    assert torch.allclose(m(x)[0], m2(x)[0], atol=1e-6)
    if cfg.kind == "mpo":
        assert not any(k.startswith("core.weights") for k in ckpt["state"])
    if cfg.kind == "pruned":  # stored sparse: only non-zeros and their indices
        nz = sum(int(v.numel()) for k, v in ckpt["state"].items() if k.endswith(".values"))
        assert nz == m.core.effective_params()


def test_pruned_file_is_smaller_than_dense(tmp_path):
    d, p = MaskNet(ModelConfig()), MaskNet(ModelConfig(kind="pruned", sparsity=0.95))
    p.core.prune_to(0.95)
    checkpoint.save(tmp_path / "d.pt", d, STFTConfig())
    checkpoint.save(tmp_path / "p.pt", p, STFTConfig())
    assert (tmp_path / "p.pt").stat().st_size < 0.3 * (tmp_path / "d.pt").stat().st_size


def test_checkpoint_loading_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a se_app checkpoint"):
        checkpoint.load(bad)
