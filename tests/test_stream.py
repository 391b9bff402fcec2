"""The fast streaming path: any model config, any chunking and either backend give the whole-file output."""
import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import speechlike
from se_app import backends, mpo
from se_app.backends import StepCell, TorchBackend
from se_app.cli import main
from se_app.enhancer import Enhancer, apply_model
from se_app.model import MaskNet, ModelConfig
from se_app.stft import STFTConfig
from se_app.stream import Stream

torch.set_num_threads(1)
CFG = STFTConfig()
CONFIGS = {
    "dense": ModelConfig(hidden=16),
    "mpo-la1-pf": ModelConfig(kind="mpo", hidden=16, bonds=(3, 3, 3), lookahead=1, mask_power=1.4),
    "pruned-3layers-la2": ModelConfig(kind="pruned", hidden=24, layers=3, sparsity=0.8, lookahead=2),
    "mpo-1layer-3factors": ModelConfig(kind="mpo", hidden=32, layers=1, n_factors=3, bonds=(5, 5)),
}


def model(name: str, seed: int = 0) -> MaskNet:
    """A random model whose feature statistics are not the identity, so the folding is exercised."""
    torch.manual_seed(seed)
    m = MaskNet(CONFIGS[name])
    if m.cfg.kind == "pruned":
        m.core.prune_to(m.cfg.sparsity)
    with torch.no_grad():
        m.feat_mean.uniform_(-12, -4)
        m.feat_std.uniform_(1, 3)
    return m.eval()


def signal(channels: int = 2, seconds: float = 0.8) -> torch.Tensor:
    x = np.stack([speechlike(seconds, seed=c + 1) + 0.05 * c for c in range(channels)])  # + a DC offset
    return torch.from_numpy(x.astype(np.float32))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_step_cell_equals_the_fused_kernel(name):
    m = model(name)
    f = torch.randn(2, 9, 257) * 2 - 8
    mask, _ = m(f)
    for direct in (False, True):
        cell, (h, c), out = StepCell(m, direct), m.core.zero_state(2), []
        for t in range(f.shape[1]):
            g, h, c = cell(f[:, t], h, c)
            out.append(g)
        assert (torch.stack(out, 1) - m.gain(mask)).abs().max() < 1e-5


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("chunk", [256, 160, 1, 997, 100000])
def test_streaming_equals_whole_file_any_config_and_chunk(name, chunk):
    m, x = model(name), signal()
    ref = apply_model(m, x, CFG, floor=0.1)
    s = Stream(m, CFG, 2, floor=0.1)
    y = torch.cat([s.process(x[:, i:i + chunk]) for i in range(0, x.shape[1], chunk)] + [s.flush()], 1)
    assert y.shape[1] == x.shape[1] + s.latency and s.latency == CFG.n_fft + m.cfg.lookahead * CFG.hop
    assert (y[:, s.latency:] - ref).abs().max() < 1e-5


def test_mpo_chain_and_halves_equal_the_dense_matrix():
    torch.manual_seed(0)
    fi, fo = mpo.factorize(257, 4), mpo.out_factors(64, 4)
    cores = [torch.randn(s, dtype=torch.float64) for s in mpo.core_shapes(fi, fo, [3, 4, 3])]
    w = mpo.reconstruct(cores)
    x = torch.randn(3, w.shape[1], dtype=torch.float64)
    assert torch.allclose(mpo.apply_chain(x, mpo.chain(cores), fo), x @ w.T, atol=1e-9)
    halves = [mpo.merge(cores[:2]), mpo.merge(cores[2:])]
    assert torch.allclose(mpo.apply_chain(x, mpo.chain(halves), (fo[0] * fo[1], fo[2] * fo[3])), x @ w.T, atol=1e-9)


def test_enhancer_streaming_equals_offline_at_any_rate():
    m = model("mpo-la1-pf")
    x = np.stack([speechlike(0.7, 22050, seed=1), speechlike(0.7, 22050, seed=2)], 1)
    offline = Enhancer(m, CFG, backend="torch").enhance(x, 22050)
    for chunk_ms in (None, 10.0, 3.3):
        live = Enhancer(m, CFG, backend="torch", streaming=True, chunk_ms=chunk_ms)
        assert live.chunk == (CFG.hop if chunk_ms is None else round(chunk_ms * 16))
        assert np.abs(live.enhance(x, 22050) - offline).max() < 1e-5


def test_backend_choice_is_made_in_one_place(monkeypatch):
    assert backends.resolve("torch", streaming=True) == "torch"
    assert backends.resolve("auto", streaming=False) == "torch"
    monkeypatch.setattr(backends, "onnx_available", lambda: False)
    assert backends.resolve("auto", streaming=True) == "torch"  # no extra: auto never needs it
    monkeypatch.setattr(backends, "onnx_available", lambda: True)
    assert backends.resolve("auto", streaming=True) == backends.STREAMING_DEFAULT
    with pytest.raises(ValueError, match="unknown backend"):
        backends.resolve("tflite")
    assert isinstance(Enhancer(model("dense"), CFG).backend, TorchBackend)
    with pytest.raises(ValueError, match="positive"):
        Enhancer(model("dense"), CFG, chunk_ms=0)


def test_cli_streaming_writes_the_offline_output(tiny_registry, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(str(src), speechlike(0.6, 16000, seed=3), 16000, subtype="FLOAT")
    assert main(["-q", "enhance", str(src), "-o", str(tmp_path / "off"), "--backend", "torch"]) == 0
    assert main(["-q", "enhance", str(src), "-o", str(tmp_path / "live"), "--streaming", "--chunk-ms", "10",
                 "--backend", "torch"]) == 0
    a, _ = sf.read(str(tmp_path / "off" / "in.wav"))
    b, _ = sf.read(str(tmp_path / "live" / "in.wav"))
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
