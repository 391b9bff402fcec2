"""DNSMOS P.835: our numbers against speechmos itself, the input policy, and evaluation without a reference."""
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app import dnsmos
from se_app.cli import main

speechmos = pytest.importorskip("speechmos.dnsmos", reason="the dnsmos extra (speechmos) is not installed")


def noisy_clip(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    x = speechlike(seconds, rate, seed)
    return x + 0.03 * np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)


@pytest.mark.parametrize("rate, channels", [(16000, 1), (48000, 2)])
def test_dnsmos_equals_speechmos_on_the_same_file(tmp_path, rate, channels):
    """speechmos reads the file with librosa (mono by channel mean, soxr HQ to 16 kHz): our policy is the same,
    so the scores agree to float precision at 16 kHz and after resampling."""
    x = np.stack([noisy_clip(3.0, rate, seed=c) for c in range(channels)], axis=1)
    path = tmp_path / "clip.wav"
    sf.write(str(path), x, rate, subtype="FLOAT")
    ours = dnsmos.score_file(path)
    theirs = speechmos.run(str(path), 16000)
    for key, their_key in (("dnsmos_sig", "sig_mos"), ("dnsmos_bak", "bak_mos"), ("dnsmos_ovrl", "ovrl_mos")):
        assert ours[key] == pytest.approx(float(theirs[their_key]), abs=1e-4), key
    assert 1.0 < ours["dnsmos_ovrl"] < 5.0


def test_long_clip_windows_and_loud_input():
    """A 12 s clip has 3 windows one second apart (one batch), and samples beyond full scale are clipped."""
    x = noisy_clip(12.0, 16000, seed=3)
    assert dnsmos.windows(dnsmos.prepare(x, 16000)).shape == (3, dnsmos.WINDOW)
    loud = dnsmos.score(np.clip(4 * x, -1, 1), 16000)
    assert dnsmos.score(4 * x, 16000) == pytest.approx(loud)
    theirs = speechmos.run(np.clip(4 * x, -1, 1), 16000)
    assert loud["dnsmos_bak"] == pytest.approx(float(theirs["bak_mos"]), abs=1e-4)


@pytest.fixture
def noisy_only(tmp_path):
    for i, snr in enumerate((0, 10)):
        (tmp_path / "rec" / "noisy").mkdir(parents=True, exist_ok=True)
        sf.write(str(tmp_path / "rec" / "noisy" / f"call{i}_snr{snr}.wav"), noisy_clip(2.0, 16000, seed=i), 16000)
    return tmp_path / "rec"


def test_evaluate_without_clean_scores_dnsmos(tiny_registry, noisy_only, tmp_path):
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--testset", str(noisy_only), "--models", "tiny-mpo", "-o", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())["systems"]
    assert set(s) == {"noisy", "tiny-mpo"}
    for entry in s.values():
        assert "pesq" not in entry
        for key in dnsmos.KEYS:
            assert set(entry[key]) == {"0", "10", "avg"} and 1.0 < entry[key]["avg"] < 5.0
    direct = dnsmos.score_file(noisy_only / "noisy" / "call0_snr0.wav")
    assert s["noisy"]["dnsmos_ovrl"]["0"] == pytest.approx(direct["dnsmos_ovrl"], abs=1e-9)
    assert "### DNSMOS OVRL" in (out / "summary.md").read_text() and (out / "rates.png").exists()


def test_dnsmos_joins_reference_metrics_when_clean_exists(tiny_registry, noisy_only, tmp_path):
    (noisy_only / "clean").mkdir()
    for f in (noisy_only / "noisy").iterdir():
        sf.write(str(noisy_only / "clean" / f.name), speechlike(2.0, 16000, seed=int(f.name[4])), 16000)
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--testset", str(noisy_only), "--models", "tiny-mpo", "-o", str(out),
                 "--limit", "1"]) == 0
    entry = json.loads((out / "summary.json").read_text())["systems"]["tiny-mpo"]
    assert {"pesq", "stoi", "si_sdr", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"} <= set(entry)
    header = (out / "per_file.csv").read_text().splitlines()[0]
    assert "pesq" in header and "dnsmos_ovrl_improvement" in header
    assert main(["-q", "evaluate", "--testset", str(noisy_only), "--models", "tiny-mpo", "-o", str(out),
                 "--limit", "1", "--dnsmos", "off"]) == 0
    assert "dnsmos_sig" not in json.loads((out / "summary.json").read_text())["systems"]["tiny-mpo"]


def test_missing_extra_is_one_line_with_the_pip_command(tiny_registry, noisy_only, tmp_path, monkeypatch, capsys):
    real = dnsmos.importlib.util.find_spec
    monkeypatch.setattr(dnsmos.importlib.util, "find_spec", lambda name, *a: None if name == "speechmos" else real(name, *a))
    assert main(["-q", "evaluate", "--testset", str(noisy_only), "--models", "tiny-mpo", "-o", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install -e '.[dnsmos]'" in err and "Traceback" not in err
    assert not (tmp_path / "e").exists()  # failed before any work


def test_dnsmos_off_without_a_reference_is_a_usage_error(tiny_registry, noisy_only, tmp_path, capsys):
    assert main(["-q", "evaluate", "--testset", str(noisy_only), "--models", "tiny-mpo", "-o", str(tmp_path / "e"),
                 "--dnsmos", "off"]) == 2
    assert "can only be scored with DNSMOS" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown DNSMOS mode"):
        dnsmos.wanted("sometimes", True)
