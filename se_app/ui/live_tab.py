"""The live tab: microphone audio in as it streams, enhanced audio out as it streams, with the per-chunk
processing time.

Every chunk goes through :class:`se_app.enhancer.Live` of an enhancer loaded with ``streaming=True``: the
frame-by-frame path of ``se-app enhance --streaming`` (16 ms hops, LSTM state and overlap-add carried across
chunks, any input rate through the same band split and resamplers), so the concatenated output equals the
whole-file result.  The session (a ``Live`` object, the model and strength it was made for, the timings) is
Gradio per-browser-session state; a new recording, or another model or strength, starts a new one.

Events: ``/stream`` is the microphone's stream event (browser only: gradio_client 2.x cannot read a
stream event's messages); ``/stream_chunk`` and ``/stream_end`` are the same handler for API clients, one
call per chunk (a float WAV in, a float WAV out, so nothing is quantised) and one to get the last samples.
"""
from __future__ import annotations

import io
import logging
import time

import gradio as gr
import numpy as np
import soundfile as sf

from .. import audio
from ..uifiles import new_request_dir
from .common import NO_LIMIT_DB, get_enhancer, user_error

log = logging.getLogger(__name__)

STREAM_EVERY_S = 0.25  # the browser sends the microphone this often
TIME_LIMIT_S = 600  # one live session at most this long (it holds a worker while it runs)


def _new_session(model: str | None, strength: float, rate: int, channels: int) -> dict:
    enh = get_enhancer(model, strength, streaming=True)
    return {"live": enh.live(rate, channels), "key": (model, float(strength), rate, channels), "name": enh.name,
            "backend": enh.backend.name, "latency_ms": 1000 * enh.stream(1).latency / enh.sample_rate,
            "times": [], "seconds": 0.0}


def _status(state: dict, n: int, rate: int) -> str:
    t = np.asarray(state["times"]) * 1000
    return (f"**{state['name']}** live ({state['backend']} backend, 16 ms hops, {state['latency_ms']:.0f} ms model "
            f"latency) · chunk {len(t)}: {1000 * n / rate:.0f} ms of audio in **{t[-1]:.1f} ms** · per chunk "
            f"mean {t.mean():.1f} ms, max {t.max():.1f} ms · real-time factor "
            f"{t.sum() / 1000 / max(state['seconds'], 1e-9):.3f} over {state['seconds']:.1f} s")


def process(x: np.ndarray, rate: int, state: dict | None, model: str | None = None,
            strength: float = NO_LIMIT_DB) -> tuple[np.ndarray, dict, str]:
    """One chunk (N,) or (N, C) float at ``rate`` -> (enhanced samples ready now (M, C), session, status)."""
    x = audio.as_2d(x)
    if state is None or state.get("key") != (model, float(strength), rate, x.shape[1]):
        state = _new_session(model, strength, rate, x.shape[1])
    t0 = time.perf_counter()
    y = state["live"].process(x)
    state["times"].append(time.perf_counter() - t0)
    state["seconds"] += len(x) / rate
    return y, state, _status(state, len(x), rate)


def stream_mic(chunk: tuple[int, np.ndarray] | None, state: dict | None, model: str | None = None,
               strength: float = NO_LIMIT_DB) -> tuple[bytes | None, dict | None, str]:
    """The microphone's stream event: (rate, int16 samples) -> (16-bit WAV bytes of the enhanced chunk, state,
    status)."""
    if chunk is None:
        return None, state, ""
    rate, data = chunk
    x = data.astype(np.float32) / 32768.0 if np.issubdtype(data.dtype, np.integer) else data.astype(np.float32)
    y, state, status = process(x, rate, state, model, strength)
    if not len(y):
        return None, state, status
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1, 1), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue(), state, status


def _write(y: np.ndarray, rate: int, stem: str) -> str:
    path = new_request_dir() / f"{stem}.wav"
    sf.write(str(path), y, rate, subtype="FLOAT")
    return str(path)


def stream_chunk(path: str | None, state: dict | None, model: str | None = None,
                 strength: float = NO_LIMIT_DB) -> tuple[str, dict, str]:
    """API: one chunk as an audio file -> (float WAV of the enhanced samples ready now, state, status)."""
    if not path:
        raise user_error("Send a chunk of audio.")
    try:
        x, rate = audio.read(path)
    except audio.AudioError as e:
        raise user_error(f"Cannot use the chunk: {e.reason}.") from None
    y, state, status = process(x, rate, state, model, strength)
    return _write(y, rate, f"chunk{len(state['times']):05d}"), state, status


def stream_end(state: dict | None) -> tuple[str | None, None, str]:
    """API (and the end of a recording): the session's last samples as a float WAV; the session is closed."""
    if state is None:
        return None, None, ""
    y = state["live"].finish()
    note = f"Stopped after {state['seconds']:.1f} s ({len(state['times'])} chunks)."
    return _write(y, state["live"].rate, "end"), None, note


def build(model_choices: list, default: str | None) -> dict:
    """Lay out the tab and wire its events; returns the components the page refreshes on load."""
    gr.Markdown("Press record and speak: the enhanced sound plays back as it is made (use headphones). Each "
                f"{1000 * STREAM_EVERY_S:.0f} ms chunk goes through the streaming path of `se-app enhance "
                "--streaming`; the status line shows how long each chunk took.")
    with gr.Row():
        with gr.Column():
            mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone")
            model = gr.Dropdown(model_choices, value=default, label="Model")
            strength = gr.Slider(0, NO_LIMIT_DB, NO_LIMIT_DB, step=1, label="Strength: attenuation limit (dB)")
        with gr.Column():
            out = gr.Audio(streaming=True, autoplay=True, interactive=False, label="Enhanced (live)")
            status = gr.Markdown()
    state = gr.State(None)
    mic.stream(stream_mic, [mic, state, model, strength], [out, state, status], api_name="stream",
               stream_every=STREAM_EVERY_S, time_limit=TIME_LIMIT_S, concurrency_limit=2)
    mic.start_recording(lambda: None, None, [state], api_visibility="private")
    with gr.Row(visible=False):  # the same handler for API clients, chunk by chunk
        chunk_in = gr.File(label="chunk (audio file)")  # files, not Audio: no conversion, nothing quantised
        chunk_out = gr.File(label="enhanced chunk (float WAV)")
        go, end = gr.Button("chunk"), gr.Button("end")
    go.click(stream_chunk, [chunk_in, state, model, strength], [chunk_out, state, status], api_name="stream_chunk")
    end.click(stream_end, [state], [chunk_out, state, status], api_name="stream_end")
    return {"model": model}
