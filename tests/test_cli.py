import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from conftest import speechlike
from se_app.cli import main


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def make_folder(root):
    (root / "sub").mkdir(parents=True)
    sf.write(str(root / "a.wav"), speechlike(0.5), 16000, subtype="PCM_16")
    sf.write(str(root / "sub" / "b.flac"), np.stack([speechlike(0.4, 44100, 1), speechlike(0.4, 44100, 2)], 1),
             44100, subtype="PCM_24")
    (root / "sub" / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    sf.write(str(root / "empty.wav"), np.zeros((0, 1)), 16000)
    (root / "readme.txt").write_text("not audio, not picked up from a folder")


def test_cli_folder_with_bad_files(tiny_registry, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    make_folder(inp)
    before = _digest(inp)
    rc = main(["-q", "enhance", str(inp), "-o", str(out), "--suffix", "_enh"])
    err = capsys.readouterr().err
    assert rc == 1
    assert (out / "a_enh.wav").exists() and (out / "sub" / "b_enh.flac").exists()
    info = sf.info(str(out / "sub" / "b_enh.flac"))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, int(0.4 * 44100), "PCM_24")
    assert "corrupt.wav" in err and "empty.wav" in err and "zero audio frames" in err
    assert "2 enhanced, 2 failed, 0 skipped" in err
    assert "RTF" in err
    assert _digest(inp) == before  # inputs untouched
    # a second run skips existing outputs unless --overwrite
    rc = main(["-q", "enhance", str(inp / "a.wav"), "-o", str(out), "--suffix", "_enh"])
    assert rc == 0 and "0 enhanced, 0 failed, 1 skipped" in capsys.readouterr().err
    rc = main(["-q", "enhance", str(inp / "a.wav"), "-o", str(out), "--suffix", "_enh", "--overwrite",
               "--channels", "mix", "--model", "tiny-dense"])
    assert rc == 0 and "1 enhanced" in capsys.readouterr().err


def test_cli_refuses_to_write_over_inputs(tiny_registry, tmp_path, capsys):
    sf.write(str(tmp_path / "a.wav"), speechlike(0.3), 16000)
    before = _digest(tmp_path)
    rc = main(["-q", "enhance", str(tmp_path), "-o", str(tmp_path), "--overwrite"])
    assert rc == 1 and "overwrite an input" in capsys.readouterr().err
    assert _digest(tmp_path) == before


def test_cli_no_input_matched_is_an_error(tiny_registry, tmp_path, capsys):
    (tmp_path / "empty_dir").mkdir()
    assert main(["enhance", str(tmp_path / "empty_dir"), "-o", str(tmp_path / "o")]) == 2
    assert "no audio files matched" in capsys.readouterr().err
    assert main(["enhance", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "o")]) == 2


def test_cli_unknown_model(tiny_registry, tmp_path, capsys):
    sf.write(str(tmp_path / "a.wav"), speechlike(0.3), 16000)
    assert main(["enhance", str(tmp_path), "-o", str(tmp_path / "o"), "--model", "nope"]) == 2
    assert "no model named" in capsys.readouterr().err


def test_cli_models_json(tiny_registry, capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == {"tiny-dense", "tiny-mpo", "tiny-pruned"}
    for r in rows:
        assert {"name", "kind", "rate", "params"} <= set(r)
    assert main(["models"]) == 0
    assert "tiny-mpo*" in capsys.readouterr().out


def test_cli_as_a_process_exit_code(tiny_models, tmp_path):
    inp = tmp_path / "in"
    make_folder(inp)
    env = {**os.environ, "SE_APP_MODELS": str(tiny_models), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "se_app", "-q", "enhance", str(inp), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1, p.stderr
    assert "corrupt.wav" in p.stderr and (tmp_path / "out" / "a.wav").exists()
