"""Web UI: the handler functions on short synthetic clips, the served app through gradio_client, and a
headless Chromium screenshot of the page."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soxr
import soundfile as sf
import torch

from conftest import speechlike
from se_app import audio, ui, uifiles
from se_app.stft import DCBlocker

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = Path("/tmp/ui_screenshot.png")


@pytest.fixture(autouse=True)
def temp_root(tmp_path, monkeypatch):
    """Keep the per-request folders of these tests inside tmp_path."""
    monkeypatch.setattr(uifiles, "TEMP_ROOT", tmp_path / "ui_tmp")
    return tmp_path / "ui_tmp"


def wav(path: Path, x: np.ndarray, rate: int) -> str:
    sf.write(str(path), x, rate, subtype="PCM_16")
    return str(path)


def test_choices_list_every_model_with_details(tiny_registry):
    model_choices, default, pairs = ui.choices()
    assert [v for _, v in model_choices] == ["tiny-mpo", "tiny-dense", "tiny-pruned"]
    assert default == "tiny-mpo"
    label = model_choices[0][0]
    assert "mpo" in label and "x ·" in label and "params" in label and "KiB" in label
    assert pairs == []  # the tiny models' rates (24.6x and 5.0x) are not within 10%


def test_pairs_need_rates_within_ten_percent():
    rows = [{"name": "m10", "kind": "mpo", "rate": 10.0}, {"name": "p9", "kind": "pruned", "rate": 9.2},
            {"name": "p10", "kind": "pruned", "rate": 10.5}, {"name": "m30", "kind": "mpo", "rate": 30.0},
            {"name": "d", "kind": "dense", "rate": 1.0},
            {"name": "m10-pf", "kind": "mpo", "method": "mpo-svd+pf", "rate": 10.0}]
    assert ui.mpo_pruned_pairs(rows) == [("m10", "p10")]  # post-filtered models are not paired


def test_enhance_keeps_length_rate_and_names_the_file(tiny_registry, tmp_path):
    x = speechlike(1.0, 16000, seed=1)
    src = wav(tmp_path / "noisy.wav", x, 16000)
    audio_path, file_path, png, status, rows = ui.enhance(src)
    assert audio_path == file_path and Path(file_path).name == "noisy_enhanced.wav"
    info = sf.info(file_path)
    assert (info.samplerate, info.frames, info.channels) == (16000, len(x), 1)
    assert Path(png).stat().st_size > 1000
    assert "tiny-mpo" in status and "real-time factor" in status and "16000 Hz" in status
    assert [r[0] for r in rows] == ["noisy", "enhanced (tiny-mpo)"]  # no clean reference: DNSMOS
    assert all(1.0 <= float(v) <= 5.0 for r in rows for v in r[1:])


def test_stereo_44k_stays_stereo_44k_and_warns_about_resampling(tiny_registry, tmp_path):
    x = np.stack([speechlike(0.5, 44100, seed=2), speechlike(0.5, 44100, seed=3)], axis=1)
    src = wav(tmp_path / "stereo.wav", x, 44100)
    with pytest.warns(UserWarning, match="resampled to 16000 Hz"):
        out = ui.enhance(src, "tiny-dense", 30, "each")[0]
    info = sf.info(out)
    assert (info.samplerate, info.frames, info.channels) == (44100, len(x), 2)


def test_mix_warns_about_downmixing(tiny_registry, tmp_path):
    x = np.stack([speechlike(0.5, 16000, seed=4)] * 2, axis=1)
    src = wav(tmp_path / "two.wav", x, 16000)
    with pytest.warns(UserWarning, match="downmixed to mono"):
        out = ui.enhance(src, channels="mix")[0]
    y, rate = sf.read(out)
    assert y.shape == x.shape and rate == 16000
    np.testing.assert_array_equal(y[:, 0], y[:, 1])


def test_zero_strength_is_a_bypass(tiny_registry, tmp_path):
    x = speechlike(0.5, 16000, seed=5)
    src = wav(tmp_path / "n.wav", x, 16000)
    y, _ = sf.read(ui.enhance(src, strength=0)[0], dtype="float32")
    x = sf.read(src, dtype="float32")[0]
    passed = DCBlocker(1)(torch.from_numpy(x)[None])[0].numpy()  # the enhancer always blocks DC
    np.testing.assert_allclose(y, passed, atol=2e-3)


@pytest.mark.parametrize("content, reason", [(b"this is not audio", "not a readable audio file"),
                                             (None, "zero audio frames")])
def test_bad_uploads_give_clear_errors(tiny_registry, tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content is None:
        sf.write(str(path), np.zeros(0, np.float32), 16000)
    else:
        path.write_bytes(content)
    with pytest.raises(gr.Error, match=reason) as err:
        ui.enhance(str(path))
    assert "bad.wav" in err.value.message
    with pytest.raises(gr.Error, match="Upload or record"):
        ui.enhance(None)


def test_too_long_recording_is_refused(tiny_registry, tmp_path, monkeypatch):
    monkeypatch.setattr(ui.common, "MAX_SECONDS", 0.5)  # the tabs read the limit from se_app.ui.common
    src = wav(tmp_path / "long.wav", speechlike(1.0, 16000), 16000)
    with pytest.raises(gr.Error, match="the limit is"):
        ui.enhance(src)


def test_clean_reference_gives_scores(tiny_registry, tmp_path):
    clean = speechlike(1.5, 16000, seed=6)
    noisy = clean + 0.01 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    rows = ui.enhance(wav(tmp_path / "n.wav", noisy, 16000), clean=wav(tmp_path / "c.wav", clean, 16000))[4]
    assert [r[0] for r in rows] == ["noisy", "enhanced (tiny-mpo)"]
    for r in rows:
        assert all(v == "n/a" or np.isfinite(float(v)) for v in r[1:])
        assert r[2] != "n/a" and r[3] != "n/a"  # STOI and SI-SDR always exist
    assert float(rows[0][3]) > 15  # the noisy input is close to the reference


def test_no_model_registered(tmp_path, monkeypatch):
    monkeypatch.setenv("SE_APP_MODELS", str(tmp_path / "empty"))
    src = wav(tmp_path / "n.wav", speechlike(0.3), 16000)
    with pytest.raises(gr.Error, match="No model is registered"):
        ui.enhance(src)
    assert isinstance(ui.build_demo(), gr.Blocks)  # the page still starts


def test_compare_without_a_pair_says_so(tiny_registry, tmp_path):
    with pytest.raises(gr.Error, match="no such pair is registered"):
        ui.compare(wav(tmp_path / "n.wav", speechlike(0.3), 16000))


def test_compare_runs_mpo_and_pruned(tiny_models, tmp_path, monkeypatch):
    root = tmp_path / "paired"
    shutil.copytree(tiny_models, root)
    reg = json.loads((root / "registry.json").read_text())
    reg["models"]["tiny-pruned"]["rate"] = reg["models"]["tiny-mpo"]["rate"] * 1.05
    (root / "registry.json").write_text(json.dumps(reg))
    monkeypatch.setenv("SE_APP_MODELS", str(root))
    assert ui.choices()[2] == [("tiny-mpo vs tiny-pruned", "tiny-mpo|tiny-pruned")]
    clean = speechlike(1.0, 22050, seed=7)
    noisy = wav(tmp_path / "n.wav", clean + 0.02 * np.sin(np.arange(len(clean), dtype=np.float32)), 22050)
    with pytest.warns(UserWarning, match="resampled"):
        mpo, pruned, png, status, rows = ui.compare(noisy, clean=wav(tmp_path / "c.wav", clean, 22050))
    for path in (mpo, pruned):
        assert (sf.info(path).samplerate, sf.info(path).frames) == (22050, len(clean))
    assert Path(mpo).name == "n_tiny-mpo_enhanced.wav" and Path(pruned).name == "n_tiny-pruned_enhanced.wav"
    assert [r[0] for r in rows] == ["noisy", "tiny-mpo", "tiny-pruned"]
    assert "tiny-mpo" in status and "tiny-pruned" in status and Path(png).exists()


def test_api_parameters_besides_the_audio_have_defaults(tiny_registry):
    info = ui.build_demo().get_api_info()
    params = info["named_endpoints"]["/enhance"]["parameters"]
    assert [p["parameter_has_default"] for p in params] == [False, True, True, True, True]


def test_request_folders_are_cleaned(tiny_registry, temp_root, tmp_path):
    old = temp_root / "req-old"
    old.mkdir(parents=True)
    os.utime(old, (time.time() - 2 * uifiles.TEMP_MAX_AGE_S,) * 2)
    ui.enhance(wav(tmp_path / "n.wav", speechlike(0.3), 16000))
    assert not old.exists() and len(list(temp_root.iterdir())) == 1  # swept; this request's folder stays
    with pytest.raises(gr.Error):
        ui.enhance(wav(tmp_path / "n.wav", speechlike(0.3), 16000), model="no-such-model")
    assert len(list(temp_root.iterdir())) == 1  # a failed request leaves nothing behind
    uifiles.cleanup_temp()
    assert list(temp_root.iterdir()) == []


def test_errors_name_the_upload_and_no_server_path(tiny_registry, tmp_path, monkeypatch):
    upload = tmp_path / "gradio" / "5f3a9c" / "my notes.wav"  # where Gradio keeps an upload
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"plain text, not audio")
    with pytest.raises(gr.Error) as err:
        ui.enhance(str(upload))
    assert "my notes.wav" in err.value.message and str(tmp_path) not in err.value.message

    def full(path, *args, **kw):
        raise audio.AudioError(path, f"cannot write {path}: no space left on device")

    monkeypatch.setattr(audio, "write", full)
    with pytest.raises(gr.Error) as err:
        ui.enhance(wav(tmp_path / "n.wav", speechlike(0.3), 16000))
    assert "n_enhanced.wav: no space left on device" in err.value.message
    assert "/" not in err.value.message.replace("failed: ", "")


def test_expected_errors_log_one_line_without_traceback(tiny_registry, tmp_path, caplog):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"plain text")
    for call in (lambda: ui.enhance(str(bad)), lambda: ui.enhance(None),
                 lambda: ui.enhance(wav(tmp_path / "n.wav", speechlike(0.3), 16000), model="no-such-model")):
        caplog.clear()
        with pytest.raises(gr.Error) as err:
            call()
        assert err.value.print_exception is False  # Gradio prints no traceback for it
        assert len(caplog.records) == 1 and caplog.records[0].exc_info is None
        assert "request refused" in caplog.records[0].getMessage()


def test_silent_reference_scores_are_na_with_the_reason(tiny_registry, tmp_path):
    noisy = wav(tmp_path / "n.wav", speechlike(1.0), 16000)
    rows = ui.enhance(noisy, clean=wav(tmp_path / "c.wav", np.zeros(16000, np.float32), 16000))[4]
    assert rows and all(r[1:] == ["n/a (silent reference)"] * 3 for r in rows)


def test_reference_at_another_rate_or_length_is_aligned_and_said(tiny_registry, tmp_path):
    clean = speechlike(1.0, 16000, seed=6)
    noisy = wav(tmp_path / "n.wav", clean, 16000)
    with pytest.warns(UserWarning, match="resampled to 16000 Hz"):
        rows = ui.enhance(noisy, clean=wav(tmp_path / "c.wav", soxr.resample(clean, 16000, 44100), 44100))[4]
    assert float(rows[0][2]) > 0.9  # the same speech once resampled
    with pytest.warns(UserWarning, match="compare their first 1.00 s"):
        ui.enhance(noisy, clean=wav(tmp_path / "c2.wav", np.concatenate([clean, clean]), 16000))


def test_upload_cache_is_capped_oldest_first(tmp_path):
    old, new, young = (tmp_path / d / "f.wav" for d in ("a", "b", "c"))
    for k, p in enumerate((old, new, young)):
        p.parent.mkdir()
        p.write_bytes(b"x" * 1000)
        os.utime(p, (time.time() - 1000 + 400 * k,) * 2)
    assert uifiles.cap_cache(tmp_path, max_bytes=1500, keep_s=300) == 2000  # the two oldest go
    assert not old.exists() and not new.exists() and young.exists() and not old.parent.exists()


# ---- the served app --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    url: str
    proc: subprocess.Popen
    logdir: Path


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    """``python app.py`` on a free port with the tiny models; yields it (App) and kills it afterwards."""
    logdir = tmp_path_factory.mktemp("app")
    port = free_port()
    env = dict(os.environ, SE_APP_MODELS=str(tiny_models), GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1",
               GRADIO_TEMP_DIR=str(logdir / "gradio"))
    url = f"http://127.0.0.1:{port}/"
    with open(logdir / "app.log", "wb") as logf:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=logf,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"app.py exited with {proc.returncode}:\n{(logdir / 'app.log').read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"app.py did not serve {url} in 180 s:\n{(logdir / 'app.log').read_text()[-3000:]}")
                time.sleep(0.5)
            yield App(url, proc, logdir)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_app_serves_the_enhance_api(server, tmp_path):
    from gradio_client import Client, handle_file

    x = speechlike(0.8, 22050, seed=8)
    src = wav(tmp_path / "clip.wav", x, 22050)
    client = Client(server.url, verbose=False, download_files=str(tmp_path / "dl"))
    result = client.predict(handle_file(src), api_name="/enhance")
    out = Path(result[0])
    assert out.name == "clip_enhanced.wav"
    info = sf.info(str(out))
    assert (info.samplerate, info.frames, info.channels) == (22050, len(x), 1)
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"plain text")
    with pytest.raises(Exception, match="not a readable audio file"):
        client.predict(handle_file(str(bad)), api_name="/enhance")


def test_stream_api_round_trip_equals_the_whole_file(server, tiny_registry, tmp_path):
    """A file streamed through the live tab's handler in 0.2 s chunks (one gradio_client session, so one live
    state): the enhanced chunks and the final tail, concatenated, are the whole-file streaming result."""
    from gradio_client import Client, handle_file

    from se_app.enhancer import Enhancer

    rate, step = 22050, 4410
    x = speechlike(1.0, rate, seed=9)
    client = Client(server.url, verbose=False, download_files=str(tmp_path / "dl"))
    assert "/stream" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    parts = []
    for k, i in enumerate(range(0, len(x), step)):
        src = tmp_path / f"chunk{k}.wav"
        sf.write(str(src), x[i:i + step], rate, subtype="FLOAT")
        out, status = client.predict(handle_file(str(src)), api_name="/stream_chunk")
        parts.append(sf.read(out, dtype="float32")[0])
        assert f"chunk {k + 1}: 200 ms of audio in" in status
    out, status = client.predict(api_name="/stream_end")
    parts.append(sf.read(out, dtype="float32")[0])
    assert "5 chunks" in status
    got = np.concatenate(parts)[: len(x)]
    ref = Enhancer.load("tiny-mpo", streaming=True).enhance(x, rate)
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-5  # the tolerance of tests/test_stream.py


def test_app_serves_the_compress_api(server, tmp_path):
    from gradio_client import Client, handle_file

    src = wav(tmp_path / "clip.wav", speechlike(0.8, 16000, seed=10), 16000)
    client = Client(server.url, verbose=False, download_files=str(tmp_path / "dl"))
    audio_path, ckpt, status, table = client.predict(handle_file(src), "tiny-mpo", 60.0, api_name="/compress")
    assert sf.info(audio_path).frames == int(0.8 * 16000) and Path(ckpt).suffix == ".pt"
    assert "parameters" in status and len(table["data"]) == 3 and table["headers"][1] == "DNSMOS SIG"


@pytest.mark.parametrize("tab", ["", "stream", "compress"])
def test_page_renders_in_headless_chromium(server, tmp_path, tab):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (run .ci/install_chromium.sh)")
    shot = tmp_path / "ui.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000", f"--screenshot={shot}",
           "--window-size=1280,1600", server.url + (f"?tab={tab}" if tab else "")]
    subprocess.run(cmd, capture_output=True, timeout=180, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (1600, 1280)
    assert img.std() > 5, "the screenshot is blank: the page did not render"
    shutil.copy(shot, SCREENSHOT if not tab else SCREENSHOT.with_name(f"ui_screenshot_{tab}.png"))
    if tab:  # the tab the address names is open: its page differs from the Enhance tab's
        first = SCREENSHOT.with_name("ui_screenshot.png")
        if first.exists():
            base = np.asarray(Image.open(first).convert("L"), dtype=np.float32)
            assert np.abs(base - img).mean() > 1, f"?tab={tab} shows the same page as the Enhance tab"


def test_app_stops_cleanly_and_removes_its_upload_cache(server, tmp_path):
    """Run last: it stops the app.  Uploads sit in the app's own cache folder, which goes when it stops; an
    expected user error is one log line, not a traceback."""
    from gradio_client import Client, handle_file

    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"plain text")
    client = Client(server.url, verbose=False, download_files=str(tmp_path / "dl"))
    with pytest.raises(Exception, match="notes.wav: not a readable audio file"):
        client.predict(handle_file(str(bad)), api_name="/enhance")
    cache = server.logdir / "gradio" / f"gradio-{server.proc.pid}"
    assert any(p.name == "notes.wav" for p in cache.rglob("*"))
    server.proc.terminate()
    server.proc.wait(timeout=30)
    log = (server.logdir / "app.log").read_text()
    assert "Traceback" not in log and "request refused: Cannot use the noisy recording notes.wav" in log
    assert not cache.exists()
