import hashlib

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app import audio
from se_app.audio import AudioError
from se_app.enhancer import Enhancer
from test_enhancer import CFG, tiny


@pytest.fixture
def enh():
    return Enhancer(tiny(), CFG, "tiny")


def write(path, x, rate, subtype="PCM_16", fmt=None):
    sf.write(str(path), x, rate, subtype=subtype, format=fmt)
    return path


@pytest.mark.parametrize("rate,channels,subtype,fmt,ext", [
    (16000, 1, "PCM_16", "WAV", "wav"),
    (8000, 1, "PCM_16", "WAV", "wav"),
    (44100, 2, "PCM_24", "WAV", "wav"),
    (48000, 2, "PCM_16", "FLAC", "flac"),
    (96000, 1, "FLOAT", "WAV", "wav"),
    (22050, 1, "VORBIS", "OGG", "ogg"),
])
def test_file_keeps_rate_channels_subtype_and_length(enh, tmp_path, rate, channels, subtype, fmt, ext):
    x = np.stack([speechlike(0.6, rate, seed=c) for c in range(channels)], axis=1)
    src = write(tmp_path / f"in.{ext}", x, rate, subtype, fmt)
    dst = tmp_path / "out" / f"in.{ext}"
    res = enh.enhance_file(src, dst)
    i, o = sf.info(str(src)), sf.info(str(dst))
    assert (o.samplerate, o.channels, o.frames, o.subtype, o.format) == (i.samplerate, i.channels, i.frames,
                                                                         i.subtype, i.format)
    assert res.rtf > 0 and res.seconds == pytest.approx(i.frames / rate)
    assert not list(dst.parent.glob(".*part*"))  # no temporary files left


def test_float_input_above_full_scale_is_kept_in_float_output(tmp_path):
    e = Enhancer(tiny(identity=True), CFG)
    x = speechlike(0.5)
    x = 2.5 * x / np.abs(x).max()
    src = write(tmp_path / "loud.wav", x, 16000, "FLOAT")
    e.enhance_file(src, tmp_path / "o.wav")
    y, _ = sf.read(str(tmp_path / "o.wav"))
    assert np.abs(y).max() > 2.0  # not clipped, not wrapped


def test_integer_output_that_would_clip_is_scaled_not_wrapped(tmp_path, caplog):
    e = Enhancer(tiny(identity=True), CFG)
    x = speechlike(0.5)
    x = 2.5 * x / np.abs(x).max()
    src = write(tmp_path / "loud.wav", x, 16000, "FLOAT")
    dst = tmp_path / "o.wav"
    audio.write(dst, e.enhance(x, 16000), 16000, subtype="PCM_16")
    y, _ = sf.read(str(dst))
    assert np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.99
    assert np.corrcoef(y, x)[0, 1] > 0.999  # scaled, same waveform (no wrap-around)
    assert "avoid clipping" in caplog.text


def test_corrupt_file_is_named_with_reason(enh, tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError) as e:
        enh.enhance_file(bad, tmp_path / "o.wav")
    assert "corrupt.wav" in str(e.value) and "not a readable audio file" in str(e.value)


def test_text_file_is_not_audio(enh, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("hello")
    with pytest.raises(AudioError, match="not a readable audio file"):
        enh.enhance_file(bad, tmp_path / "o.wav")


def test_empty_file_zero_frames(enh, tmp_path):
    src = write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioError, match="zero audio frames"):
        enh.enhance_file(src, tmp_path / "o.wav")


def test_non_finite_samples(enh, tmp_path):
    x = speechlike(0.5)
    x[100] = np.nan
    src = write(tmp_path / "nan.wav", x, 16000, "FLOAT")
    with pytest.raises(AudioError, match="non-finite"):
        enh.enhance_file(src, tmp_path / "o.wav")
    assert not (tmp_path / "o.wav").exists()


def test_silent_and_tiny_files(enh, tmp_path):
    for name, x in (("silent.wav", np.zeros(16000, np.float32)), ("tiny.wav", speechlike(0.01)[:37])):
        src = write(tmp_path / name, x, 16000)
        enh.enhance_file(src, tmp_path / "out" / name)
        y, sr = sf.read(str(tmp_path / "out" / name))
        assert len(y) == len(x) and sr == 16000 and np.isfinite(y).all()


def test_never_overwrites_its_input(enh, tmp_path):
    src = write(tmp_path / "a.wav", speechlike(0.3), 16000)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    with pytest.raises(AudioError, match="overwrite the input"):
        enh.enhance_file(src, src)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before


def test_missing_file(enh, tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        enh.enhance_file(tmp_path / "nope.wav", tmp_path / "o.wav")
