"""Output files: temporaries in the output's own format, permissions from the umask, full disks and write
errors that name the real output, clipping, truncated inputs; see docs/bad_inputs.md."""
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app import audio
from se_app.enhancer import Enhancer
from test_enhancer import CFG, tiny


def _parts(folder):
    return [p for p in folder.rglob("*") if ".part" in p.name]


def test_temporary_has_the_output_format_not_float(tmp_path):
    src = tmp_path / "a.wav"
    sf.write(str(src), speechlike(25.0), 16000, subtype="PCM_16")
    seen = []

    def look(_):
        seen.extend(sf.info(str(p)).subtype for p in _parts(tmp_path / "out") if p.stat().st_size > 44)

    Enhancer(tiny(), CFG).enhance_file(src, tmp_path / "out" / "a.wav", progress=look)
    assert seen and set(seen) == {"PCM_16"}
    assert not _parts(tmp_path / "out")


def test_integer_file_output_that_would_clip_is_enhanced_again_scaled(tmp_path, caplog):
    rate = 44100
    t = np.arange(rate // 2) / rate
    x = 0.99 * np.sign(np.sin(2 * np.pi * 220 * t))  # full-scale square wave: resampling overshoots
    src = tmp_path / "square.wav"
    sf.write(str(src), x, rate, subtype="PCM_16")
    res = Enhancer(tiny(identity=True), CFG).enhance_file(src, tmp_path / "out" / "square.wav")
    y, _ = sf.read(str(tmp_path / "out" / "square.wav"))
    assert res.peak_gain_db < 0 and "avoid clipping" in caplog.text
    assert 0.9 < np.abs(y).max() <= 1.0 and np.corrcoef(x, y)[0, 1] > 0.99  # scaled, not wrapped
    assert not _parts(tmp_path / "out")


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_get_the_umask_permissions(tmp_path, umask):
    src = tmp_path / "a.wav"
    sf.write(str(src), speechlike(0.3), 16000)
    old = os.umask(umask)
    try:
        Enhancer(tiny(), CFG).enhance_file(src, tmp_path / "out" / "a.wav")
        audio.write(tmp_path / "out" / "b.wav", speechlike(0.1), 16000)
    finally:
        os.umask(old)
    for name in ("a.wav", "b.wav"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_full_disk_says_so_and_names_the_output(tmp_path, monkeypatch):
    src = tmp_path / "a.wav"
    sf.write(str(src), speechlike(0.3), 16000)

    def full(self, data):
        raise sf.LibsndfileError(2)  # what libsndfile says on ENOSPC: "System error."

    monkeypatch.setattr(sf.SoundFile, "write", full)
    monkeypatch.setattr(audio.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 ** 9, 10 ** 9, 0))
    with pytest.raises(audio.AudioError) as e:
        Enhancer(tiny(), CFG).enhance_file(src, tmp_path / "out" / "a.wav")
    assert e.value.reason == f"cannot write {tmp_path / 'out' / 'a.wav'}: no space left on device"
    assert not _parts(tmp_path / "out")


def test_write_errors_name_the_output_not_the_temporary(tmp_path):
    dst, tmp = tmp_path / "a.wav", tmp_path / ".a.wav.1-0123abcd.part.wav"
    why = audio.write_error(sf.LibsndfileError(3, prefix=f"Error opening {str(tmp)!r}: "), tmp, dst)
    assert str(dst) in why and ".part" not in why


def test_truncated_wav_warns_with_frames_read(tmp_path, caplog):
    full = tmp_path / "full.wav"
    sf.write(str(full), speechlike(1.0), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2 * 6000])
    Enhancer(tiny(), CFG).enhance_file(cut, tmp_path / "o.wav")
    assert "cut.wav: truncated file: the header promises 16000 frames, 6000 frames were read" in caplog.text
    assert sf.info(str(tmp_path / "o.wav")).frames == 6000




def test_output_folder_that_cannot_be_made_is_a_reason_not_a_traceback(tmp_path):
    src = tmp_path / "a.wav"
    sf.write(str(src), speechlike(0.3), 16000)
    (tmp_path / "taken").write_text("a file where the output folder should be")
    dst = tmp_path / "taken" / "a.wav"
    with pytest.raises(audio.AudioError) as e:
        Enhancer(tiny(), CFG).enhance_file(src, dst)
    assert e.value.reason.startswith(f"cannot write {dst}: ")


def test_unicode_and_space_names(tmp_path):
    src = tmp_path / "réunion 会议 🎤.wav"
    sf.write(str(src), speechlike(0.3), 16000)
    Enhancer(tiny(), CFG).enhance_file(src, tmp_path / "out" / src.name)
    assert sf.info(str(tmp_path / "out" / src.name)).frames == int(0.3 * 16000)
