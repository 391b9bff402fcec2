"""Full band above the model rate (se_app.fullband): the band above 8 kHz follows the model's top-band gain,
and the model's top bins are filled (no resampler roll-off below 8 kHz)."""
import numpy as np
import pytest
import soxr
import torch

from conftest import speechlike
from se_app import audio
from se_app.enhancer import Enhancer
from se_app.fullband import HighBand, WideDown
from test_enhancer import CFG, tiny


def mute():
    """mask ~ 0 everywhere: the model removes its whole band."""
    m = tiny()
    with torch.no_grad():
        m.out.weight.zero_()
        m.out.bias.fill_(-30.0)
    return m


def band_db(y: np.ndarray, x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    """Energy of y over x in [lo, hi) Hz, in dB, on the middle of the signals."""
    cut = slice(rate // 10, -rate // 10)
    f = np.fft.rfftfreq(len(x[cut]), 1 / rate)
    m = (f >= lo) & (f < hi)
    e = [float((np.abs(np.fft.rfft(s[cut], axis=0))[m] ** 2).sum()) for s in (y, x)]
    return 10 * np.log10(e[0] / e[1])


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))).astype(np.float32)


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 96000])
def test_a_mask_of_one_keeps_the_band_above_8k(rate):
    x = noise(1.0, rate, 2)
    y = Enhancer(tiny(identity=True), CFG).enhance(x, rate)
    assert y.shape == x.shape
    assert abs(band_db(y, x, rate, 8500, rate / 2)) < 0.1  # was -50 to -70 dB: the band was deleted
    assert band_db(y - x, x, rate, 7000, rate / 2) < -50  # and the output there is the input


@pytest.mark.parametrize("limit_db", [None, 20.0])
def test_the_band_above_follows_the_model_down_to_the_floor(limit_db):
    rate, x = 48000, noise(1.0, 48000)
    y = Enhancer(mute(), CFG, atten_limit_db=limit_db).enhance(x, rate)
    above = band_db(y, x, rate, 8500, rate / 2)
    if limit_db is None:
        assert above < -40
    else:
        assert above == pytest.approx(-limit_db, abs=1.0)


def test_the_model_band_reaches_8k():
    """soxr's anti-alias filter empties the model's top bins (-10 dB at 7.7 kHz, -51 dB at 7.9 kHz)."""
    rate = 48000
    t = np.arange(rate) / rate
    for f0, want in ((7700, 0.5), (7900, 2.0)):
        x = np.sin(2 * np.pi * f0 * t).astype(np.float32)[:, None]
        y = WideDown(rate, 16000, 1)(x, last=True)[:, 0]
        got = 20 * np.log10(y[2000:-2000].std() / x.std())
        assert abs(got) < want, (f0, got)
        assert 20 * np.log10(soxr.resample(x[:, 0], rate, 16000)[2000:-2000].std() / x.std()) < -9


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_wide_down_in_blocks_equals_whole(rate):
    x = noise(0.7, rate, 2, seed=1)
    whole = WideDown(rate, 16000, 2)(x, last=True)
    w, rng, parts, i = WideDown(rate, 16000, 2), np.random.default_rng(0), [], 0
    while i < len(x):
        n = int(rng.integers(0, 5000))
        parts.append(w(x[i:i + n]))
        i += n
    parts.append(w(x[:0], last=True))
    blocks = np.concatenate(parts)
    assert len(whole) == len(blocks) == -(-len(x) * 16000 // rate)
    assert np.abs(whole - blocks).max() < 1e-5


def test_high_band_in_blocks_equals_whole():
    rate, x = 44100, noise(0.5, 44100, 1, seed=2)
    lo_in, lo_out = 0.5 * x, 0.2 * x

    def run(step):
        h, out = HighBand(rate, 1), []
        for i in range(0, len(x), step):
            out.append(h.push(x=x[i:i + step], low_in=lo_in[i:i + step], low_out=lo_out[i:i + step]))
        out.append(h.push(last=True))
        return np.concatenate(out)[: len(x)]

    a, b = run(len(x)), run(333)
    assert len(a) == len(x) and np.abs(a - b).max() < 1e-6


def test_file_blocks_at_48k_equal_one_block(monkeypatch):
    e, x = Enhancer(tiny(), CFG), speechlike(1.5, 48000, seed=3)
    whole = e.enhance(x, 48000)
    monkeypatch.setattr(audio, "BLOCK_SECONDS", 0.27)
    assert np.abs(e.enhance(x, 48000) - whole).max() < 1e-5
