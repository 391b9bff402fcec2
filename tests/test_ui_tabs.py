"""The live-microphone and compression tabs' handlers on short synthetic clips (the served app: test_ui.py)."""
from __future__ import annotations

import io
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app import checkpoint, ui, uifiles
from se_app.enhancer import Enhancer
from se_app.ui import compress_tab, live_tab, page


@pytest.fixture(autouse=True)
def temp_root(tmp_path, monkeypatch):
    monkeypatch.setattr(uifiles, "TEMP_ROOT", tmp_path / "ui_tmp")


def test_microphone_chunks_give_the_whole_file_result(tiny_registry):
    """int16 chunks at 48 kHz, as the browser sends them: the enhanced chunks, concatenated and cut to the input,
    are the whole-file streaming result (to 16-bit rounding); the status shows each chunk's time."""
    rate = 48000
    x = np.round(speechlike(1.0, rate, seed=2) * 32767).astype(np.int16)
    state, parts, times = None, [], []
    for i in range(0, len(x), rate // 4):
        wav, state, status = ui.stream_mic((rate, x[i:i + rate // 4]), state, "tiny-mpo", 60)
        if wav is not None:
            y, r = sf.read(io.BytesIO(wav), dtype="float32")
            assert r == rate
            parts.append(y)
        assert f"chunk {len(state['times'])}: 250 ms of audio in" in status and "real-time factor" in status
        times.append(state["times"][-1])
    tail = state["live"].finish()[:, 0]
    got = np.concatenate(parts + [tail])[: len(x)]
    ref = Enhancer.load("tiny-mpo", streaming=True).enhance(x.astype(np.float32) / 32768.0, rate)
    assert got.shape == ref.shape and np.abs(got - ref).max() < 2 / 32768
    assert len(times) == 4 and all(t > 0 for t in times)


def test_a_new_model_or_strength_starts_a_new_session(tiny_registry):
    chunk = (16000, np.zeros(4000, np.int16))
    _, s1, _ = ui.stream_mic(chunk, None, "tiny-mpo", 60)
    _, s2, _ = ui.stream_mic(chunk, s1, "tiny-mpo", 60)
    assert s2 is s1 and len(s2["times"]) == 2
    _, s3, status = ui.stream_mic(chunk, s2, "tiny-dense", 20)
    assert s3 is not s2 and len(s3["times"]) == 1 and "tiny-dense" in status
    assert ui.stream_mic(None, s3, "tiny-dense")[0] is None


def wav(path: Path, x: np.ndarray, rate: int = 16000) -> str:
    sf.write(str(path), x, rate, subtype="PCM_16")
    return str(path)


def test_compress_tab_truncates_and_scores(tiny_registry, tmp_path):
    clean = speechlike(1.2, 16000, seed=4)
    noisy = wav(tmp_path / "n.wav", clean + 0.02 * np.random.default_rng(0).standard_normal(len(clean)))
    lo, hi = compress_tab.rate_range("tiny-mpo")
    assert lo == pytest.approx(24.6, abs=0.1) and hi > 2 * lo
    audio_path, ckpt, status, rows = ui.compress_preview(noisy, "tiny-mpo", 2 * lo, wav(tmp_path / "c.wav", clean))
    assert sf.info(audio_path).frames == len(clean)
    model, _, c = checkpoint.load(ckpt)
    assert c["params"] < checkpoint.load(tiny_registry / "tiny-mpo.pt")[2]["params"]
    assert "parameters" in status and "-> " in status and "se-app compress tiny-mpo --rate" in status
    assert [r[0] for r in rows][0] == "noisy" and len(rows) == 3 and rows[2][0].startswith("truncated")
    rows = ui.compress_preview(noisy, "tiny-dense", 3.0)[3]  # no reference: DNSMOS of all three
    assert len(rows) == 3 and all(1.0 <= float(v) <= 5.0 for r in rows for v in r[1:])
    assert [v for _, v in compress_tab.model_choices()] == ["tiny-mpo", "tiny-dense"]  # no pruned model


def test_compress_tab_refusals(tiny_registry, tmp_path):
    noisy = wav(tmp_path / "n.wav", speechlike(0.3))
    with pytest.raises(gr.Error, match="pruned model"):
        ui.compress_preview(noisy, "tiny-pruned", 50)
    with pytest.raises(gr.Error, match="only compresses further"):
        ui.compress_preview(noisy, "tiny-mpo", 2.0)
    with pytest.raises(gr.Error, match="Upload or record"):
        ui.compress_preview(None, "tiny-mpo", 50)


def test_the_address_chooses_the_tab_in_the_browser(tiny_registry):
    """?tab= is read by a browser-side load script (no queued server event); the screenshot test runs it."""
    loads = [f for f in ui.build_demo().fns.values() if f.js and "URLSearchParams" in f.js]
    assert len(loads) == 1 and loads[0].fn is None
    for key, label in page.TABS.items():
        assert f'"{key}": "{label}"' in loads[0].js


def test_live_and_compress_apis_are_named(tiny_registry):
    named = ui.build_demo().get_api_info()["named_endpoints"]
    assert {"/enhance", "/compare", "/stream", "/stream_chunk", "/stream_end", "/compress"} <= set(named)
    assert [p["parameter_has_default"] for p in named["/stream_chunk"]["parameters"]] == [False, True, True]
    fns = {f.api_name: f for f in ui.build_demo().fns.values()}
    assert fns["stream"].fn is ui.stream_mic and [e for _, e in fns["stream"].targets] == ["stream"]  # the mic's
    assert fns["stream"].stream_every == live_tab.STREAM_EVERY_S  # stream event, chunk by chunk
    assert fns["stream_chunk"].fn is ui.stream_chunk and fns["compress"].fn.__module__.endswith("compress_tab")
