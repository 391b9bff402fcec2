import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import speechlike
from se_app import audio
from se_app.enhancer import Enhancer, Stream, apply_model
from se_app.model import MaskNet, ModelConfig
from se_app.stft import DCBlocker, STFTConfig

torch.set_num_threads(1)
CFG = STFTConfig()


def tiny(kind="dense", seed=0, identity=False):
    torch.manual_seed(seed)
    cfgs = {"dense": ModelConfig(hidden=16), "mpo": ModelConfig(kind="mpo", hidden=16, bonds=(3, 3, 3)),
            "mpo-lookahead": ModelConfig(kind="mpo", hidden=16, bonds=(3, 3, 3), lookahead=2)}
    m = MaskNet(cfgs[kind]).eval()
    if identity:  # mask ~ 1 everywhere: output ~ input
        with torch.no_grad():
            m.out.weight.zero_()
            m.out.bias.fill_(30.0)
    return m


@pytest.fixture
def enh():
    return Enhancer(tiny(), CFG, "tiny")


@pytest.mark.parametrize("kind", ["dense", "mpo", "mpo-lookahead"])
@pytest.mark.parametrize("chunk", [160, 1, 257, 4000])
def test_streaming_equals_whole_signal(kind, chunk):
    m = tiny(kind)
    x = torch.from_numpy(np.stack([speechlike(1.0, seed=1), speechlike(1.0, seed=2)]))
    ref = apply_model(m, x, CFG)
    s = Stream(m, CFG, channels=2)
    outs = [s.process(x[:, i:i + chunk]) for i in range(0, x.shape[1], chunk)]
    assert all(o.shape[1] == min(chunk, x.shape[1] - i) for o, i in zip(outs, range(0, x.shape[1], chunk)))
    y = torch.cat(outs + [s.flush()], dim=1)
    assert y.shape[1] == x.shape[1] + s.latency
    assert torch.allclose(y[:, :s.latency], torch.zeros(2, s.latency))
    assert (y[:, s.latency:] - ref).abs().max() < 1e-5


@pytest.mark.parametrize("kind", ["mpo", "mpo-lookahead"])
def test_irregular_chunks_equal_whole_signal(kind):
    m = tiny(kind)
    x = torch.from_numpy(speechlike(0.7, seed=3))[None]
    ref = apply_model(m, x, CFG)
    rng = np.random.default_rng(0)
    s, outs, i = Stream(m, CFG, 1), [], 0
    while i < x.shape[1]:
        n = int(rng.integers(0, 900))
        outs.append(s.process(x[:, i:i + n]))
        i += n
    y = torch.cat(outs + [s.flush()], 1)[:, s.latency:]
    assert (y - ref).abs().max() < 1e-5


def test_chunked_array_path_equals_whole_signal(enh, monkeypatch):
    monkeypatch.setattr(audio, "BLOCK_SECONDS", 0.3)  # many blocks
    x = speechlike(2.0, seed=4)
    ref = apply_model(enh.model, torch.from_numpy(x)[None], CFG)[0].numpy()
    assert np.abs(enh.enhance(x, 16000) - ref).max() < 1e-5


def test_causality_future_input_never_changes_past_output():
    m = tiny("mpo")
    x = torch.from_numpy(speechlike(1.0, seed=5))[None]
    k = 8000
    x2 = x.clone()
    x2[:, k:] = torch.randn(1, x.shape[1] - k)
    y1, y2 = apply_model(m, x, CFG), apply_model(m, x2, CFG)
    lat = CFG.latency
    assert torch.equal(y1[:, :k - lat], y2[:, :k - lat])
    assert not torch.allclose(y1[:, k:], y2[:, k:])
    # the mask estimator itself: frame t never sees frames after t
    f = torch.randn(1, 30, 257)
    f2 = f.clone()
    f2[:, 20:] += 5
    assert torch.equal(m(f)[0][:, :20], m(f2)[0][:, :20])



def test_lookahead_sees_exactly_its_frames_and_no_further():
    m = tiny("mpo-lookahead")
    L = m.cfg.lookahead
    assert Stream(m, CFG, 1).latency == CFG.latency + L * CFG.hop
    f = torch.randn(1, 30, 257)
    f2 = f.clone()
    f2[:, 20:] += 5
    m1, m2 = m.masks(f), m.masks(f2)
    assert m1.shape == (1, 30 - L, 257)
    assert torch.equal(m1[:, :20 - L], m2[:, :20 - L])  # frames 20 + are beyond the look-ahead of t < 20 - L
    assert not torch.allclose(m1[:, 20 - L], m2[:, 20 - L])  # ... and frame 20 - L does see frame 20
    # on signals: a change at sample k reaches the output no earlier than k - latency
    x = torch.from_numpy(speechlike(1.0, seed=5))[None]
    k = 8000
    x2 = x.clone()
    x2[:, k:] = torch.randn(1, x.shape[1] - k)
    y1, y2 = apply_model(m, x, CFG), apply_model(m, x2, CFG)
    lat = CFG.latency + L * CFG.hop
    assert torch.equal(y1[:, :k - lat], y2[:, :k - lat])
    assert not torch.allclose(y1[:, k - lat:k - CFG.latency], y2[:, k - lat:k - CFG.latency])


@pytest.mark.parametrize("rate,channels", [(16000, 1), (8000, 1), (44100, 2), (48000, 3), (22050, 1)])
def test_any_rate_and_channels_same_shape_out(enh, rate, channels):
    x = np.stack([speechlike(0.5, rate, seed=c) for c in range(channels)], axis=1)
    y = enh.enhance(x, rate)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    ym = enh.enhance(x, rate, channels="mix")
    assert ym.shape == x.shape
    assert np.allclose(ym[:, 0], ym[:, -1])


def test_each_channel_is_enhanced_on_its_own(enh):
    a, b = speechlike(0.5, seed=1), speechlike(0.5, seed=2)
    both = enh.enhance(np.stack([a, b], 1), 16000)
    assert np.abs(both[:, 0] - enh.enhance(a, 16000)).max() < 1e-6
    assert np.abs(both[:, 1] - enh.enhance(b, 16000)).max() < 1e-6


def test_identity_mask_passes_audio_through_and_does_not_clip_arrays():
    e = Enhancer(tiny(identity=True), CFG)
    x = speechlike(0.5, seed=6)
    x = 3.0 * x / np.abs(x).max()  # float input above 1.0
    y = e.enhance(x, 16000)
    passed = DCBlocker(1)(torch.from_numpy(x)[None])[0].numpy()  # the DC blocker is the only change
    assert np.abs(y - passed).max() < 1e-3
    assert np.abs(y).max() > 1.0


@pytest.mark.parametrize("n", [1, 100, 511])
def test_shorter_than_a_frame(enh, n):
    y = enh.enhance(speechlike(0.1)[:n], 16000)
    assert y.shape == (n,) and np.isfinite(y).all()


def test_silence_gives_silence(enh):
    y = enh.enhance(np.zeros(8000, np.float32), 16000)
    assert np.isfinite(y).all() and np.abs(y).max() < 1e-6


def test_bad_arrays_raise(enh):
    with pytest.raises(ValueError, match="non-finite"):
        enh.enhance(np.array([0.0, np.nan, 0.1], np.float32), 16000)
    with pytest.raises(ValueError, match="empty"):
        enh.enhance(np.zeros(0, np.float32), 16000)


def test_attenuation_limit_is_a_mask_floor():
    m = tiny()
    with torch.no_grad():
        m.out.bias.fill_(-30.0)  # mask ~ 0: everything suppressed
    x = speechlike(0.5)
    y0 = Enhancer(m, CFG).enhance(x, 16000)
    y12 = Enhancer(m, CFG, atten_limit_db=12).enhance(x, 16000)
    assert np.abs(y0).max() < 1e-6
    ratio = np.sqrt(np.mean(y12[2000:-2000] ** 2) / np.mean(x[2000:-2000] ** 2))
    assert ratio == pytest.approx(10 ** (-12 / 20), rel=0.05)


def test_dc_offset_is_blocked_and_does_not_change_the_enhancement(enh):
    """A DC offset on the input leaves the output zero-mean and (after the blocker's ~12 ms settling) the same."""
    x = speechlike(2.0, seed=8)
    y0, y1 = enh.enhance(x, 16000), enh.enhance(x + 0.3, 16000)
    late = slice(16000, None)  # 1 s on: the blocker's step response (time constant 1000 samples) is gone
    assert abs(float(y1[late].mean())) < 1e-3
    assert np.abs(y1[late] - y0[late]).max() < 1e-2 * np.abs(y0).max()


def test_dc_blocker_chunked_equals_whole():
    x = torch.from_numpy(np.stack([speechlike(0.3, seed=1), speechlike(0.3, seed=2) + 0.1]))
    whole = DCBlocker(2)(x)
    f, parts, i = DCBlocker(2), [], 0
    for n in (1, 0, 100, 2047, 5000):
        parts.append(f(x[:, i:i + n]))
        i += n
    parts.append(f(x[:, i:]))
    assert torch.allclose(torch.cat(parts, dim=1), whole, atol=1e-6)
