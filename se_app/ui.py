"""Gradio web UI: enhance an uploaded or recorded clip, score it against a clean reference, compare the MPO-LSTM
with the pruned LSTM of the same compression rate; the enhance action is also the ``/enhance`` API.  The handlers
(:func:`enhance`, :func:`compare`) are plain, testable functions; importing this module starts nothing."""
from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np

from . import audio, registry
from .enhancer import Enhancer, floor_from_db
from .uifiles import new_request_dir, public
from .uiviews import score_rows, spectrogram_png

log = logging.getLogger(__name__)

MAX_SECONDS = 600.0  # longest recording accepted (10 minutes)
MAX_UPLOAD = "300mb"  # upload limit handed to launch(): 10 min of 48 kHz stereo float WAV fits
NO_LIMIT_DB = 60  # the top of the strength slider means "no attenuation limit"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "examples"
SCORE_HEADERS = ["signal", "PESQ", "STOI", "SI-SDR (dB)"]
NO_MODEL_MSG = ("No model is registered yet (models/registry.json is empty or missing). Train one with "
                "'se-app train' or point `SE_APP_MODELS` at a registry, then reload this page.")
Outputs = tuple[str, str, str, str, list[list[str]]]  # two audio/file paths, spectrogram PNG, status, scores
NO_PAIR_MSG = "Compare needs an MPO-LSTM and a pruned LSTM with rates within 10%: no such pair is registered."


def model_label(row: dict) -> str:
    """Dropdown label of one registry row: name, kind, compression rate, parameters and file size."""
    return (f"{row['name']}{' (default)' if row['default'] else ''} · {row.get('method') or row['kind']} · "
            f"{row['rate']:.1f}x · "
            f"{row['params']:,} params · {row['size_bytes'] / 1024:.0f} KiB")


def mpo_pruned_pairs(rows: list[dict]) -> list[tuple[str, str]]:
    """(mpo name, pruned name) for every MPO model with a pruned model whose rate is within 10% (closest).
    Models with a post-filter are left out: the pair should differ only in how the LSTM was compressed."""
    raw = [r for r in rows if not (r.get("method") or "").endswith("+pf")]
    pruned = [r for r in raw if r["kind"] == "pruned"]
    pairs = []
    for m in (r for r in raw if r["kind"] == "mpo"):
        near = [p for p in pruned if registry.rates_match(p["rate"], m["rate"])]
        if near:
            pairs.append((m["name"], min(near, key=lambda p: abs(p["rate"] - m["rate"]))["name"]))
    return pairs


def choices() -> tuple[list[tuple[str, str]], str | None, list[tuple[str, str]]]:
    """(model choices, default model name, pair choices) read from the registry now."""
    rows = registry.listing()
    models = [(model_label(r), r["name"]) for r in rows]
    default = next((r["name"] for r in rows if r["default"]), models[0][1] if models else None)
    pairs = [(f"{m} vs {p}", f"{m}|{p}") for m, p in mpo_pruned_pairs(rows)]
    return models, default, pairs


_LOADED: dict[tuple[str, int], Enhancer] = {}  # (checkpoint path, mtime) -> loaded once, shared read-only
_LOCK = threading.Lock()


def get_enhancer(name: str | None = None, limit_db: float = NO_LIMIT_DB) -> Enhancer:
    """The enhancer for a registry name (None: the default) with its own attenuation limit.  Loaded once per
    checkpoint file and mtime, so a model re-registered while the app runs is reloaded."""
    try:
        path, _ = registry.resolve(name)
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = Enhancer.load(name)
                log.info("loaded model %s from %s", _LOADED[key].name, path)
    except (registry.ModelNotFound, OSError, KeyError, ValueError, RuntimeError) as e:
        raise user_error(NO_MODEL_MSG if name is None and not choices()[0] else f"Model {name!r}: {e}") from None
    enh = copy.copy(_LOADED[key])  # shares the network (read-only in inference), not the floor
    enh.floor = floor_from_db(None if limit_db >= NO_LIMIT_DB else float(limit_db))
    return enh


def preload() -> None:
    """Load the default model now so the first request is fast; only logs when none is registered."""
    try:
        get_enhancer()
    except gr.Error as e:
        log.warning("%s", e.message)


def user_error(message: str) -> gr.Error:
    """A gr.Error for a problem with the user's input: logged as one line, no traceback on the server."""
    log.warning("request refused: %s", message)
    return gr.Error(message, print_exception=False)


@contextlib.contextmanager
def _request(what: str, *uploads: str | None) -> Iterator[Path]:
    """A fresh request folder (old ones are swept); on failure it is removed and the error becomes a short
    gr.Error that names the uploads by their own names and no server path, never a traceback in the page.
    Problems with the input are logged in one line, anything else with its traceback."""
    out_dir = new_request_dir()
    try:
        yield out_dir
    except BaseException as e:
        shutil.rmtree(out_dir, ignore_errors=True)
        if not isinstance(e, Exception) or isinstance(e, gr.Error):
            raise
        message = public(f"{what} failed: {e}", out_dir, *uploads)
        if isinstance(e, (audio.AudioError, ValueError)):
            raise user_error(message) from None
        log.exception("%s failed", what)
        raise gr.Error(message, print_exception=False) from None


def _read(path: str | None, what: str) -> tuple[np.ndarray, int]:
    """Read an upload as (N, C) float32, turning every unusable file into a gr.Error that names it."""
    if not path:
        raise user_error(f"Upload or record the {what} first.")
    try:
        info = audio.probe(path)
        if info.seconds > MAX_SECONDS:
            raise user_error(f"{Path(path).name} is {info.seconds / 60:.1f} minutes long; the limit is "
                             f"{MAX_SECONDS / 60:.0f} minutes. Trim it or use the 'se-app' command line.")
        return audio.read(path)
    except audio.AudioError as e:
        raise user_error(public(f"Cannot use the {what} {Path(path).name}: {e.reason}.", path)) from None


def _run(enh: Enhancer, x: np.ndarray, rate: int, channels: str, out_dir: Path,
         stem: str, on_block=None) -> tuple[np.ndarray, Path, float]:
    """Enhance x with one model and write ``<stem>.wav`` (16-bit PCM at the input rate); ``on_block`` gets
    the fraction done after each 10 s block."""
    t0 = time.perf_counter()
    y = enh.enhance(x, rate, channels=channels, progress=on_block)
    elapsed, path = time.perf_counter() - t0, out_dir / f"{stem}.wav"
    audio.write(path, y, rate, subtype="PCM_16")
    return y, path, elapsed


def _warn_conversions(rate: int, model_rate: int, n_channels: int, channels: str) -> None:
    """gr.Warning for what the user may not expect: resampling, and downmixing (channels 'mix')."""
    if rate != model_rate:
        above = (f" The band above {model_rate // 2000} kHz does not go through the model; it follows the "
                 f"model's gain in its top band." if rate > model_rate else "")
        gr.Warning(f"The input is {rate} Hz; it is resampled to {model_rate} Hz for the model and back to "
                   f"{rate} Hz for the result.{above}")
    if channels == "mix" and n_channels > 1:
        gr.Warning(f"The {n_channels} channels are downmixed to mono; the result is copied to every channel.")


def _status(enh: Enhancer, elapsed: float, n: int, rate: int, n_channels: int, channels: str) -> str:
    """One Markdown status line: model, parameters, compression, real-time factor, rates and channels."""
    i = enh.info
    return (f"**{enh.name}** ({i.get('kind')}, {i.get('params') or 0:,} parameters, "
            f"{i.get('rate') or 0:.1f}x compression) · real-time factor {elapsed / (n / rate):.3f} "
            f"({elapsed:.2f} s for {n / rate:.2f} s) · input {rate} Hz, processed at {enh.sample_rate} Hz · "
            f"{n_channels} channel{'s' if n_channels > 1 else ''} ({channels})")


def enhance(noisy: str | None, model: str | None = None, strength: float = NO_LIMIT_DB, channels: str = "each",
            clean: str | None = None, progress: gr.Progress = gr.Progress()) -> Outputs:
    """Enhance one upload -> (audio path, download path, spectrogram PNG, status Markdown, score rows)."""
    progress(0.0, desc="Reading the input")
    (x, rate), ref = _read(noisy, "noisy recording"), _read(clean, "clean reference") if clean else None
    with _request("Enhancement", noisy, clean) as out_dir:
        enh = get_enhancer(model, strength)
        _warn_conversions(rate, enh.sample_rate, x.shape[1], channels)
        progress(0.2, desc=f"Enhancing {len(x) / rate:.1f} s of audio")
        y, path, elapsed = _run(enh, x, rate, channels, out_dir, f"{Path(noisy).stem}_enhanced",
                                lambda f: progress(0.2 + 0.6 * f, desc=f"Enhancing {len(x) / rate:.1f} s of audio"))
        progress(0.8, desc="Scoring and drawing")
        rows = score_rows(ref, rate, [("noisy", x), (f"enhanced ({enh.name})", y)])
        png = spectrogram_png([("noisy input", x), (f"enhanced ({enh.name})", y)], rate, out_dir / "spectra.png")
        status = _status(enh, elapsed, len(x), rate, x.shape[1], channels)
        log.info("enhanced %s: %s", Path(noisy).name, status)
        return str(path), str(path), str(png), status, rows


def compare(noisy: str | None, pair: str | None = None, strength: float = NO_LIMIT_DB, channels: str = "each",
            clean: str | None = None, progress: gr.Progress = gr.Progress()) -> Outputs:
    """Run the MPO and the pruned model of one pair -> (mpo audio, pruned audio, spectrograms, status, scores)."""
    pairs = [v for _, v in choices()[2]]
    if not pairs or (pair and pair not in pairs):
        raise user_error(NO_PAIR_MSG if not pairs else f"{pair!r} is not a registered MPO/pruned pair.")
    names = (pair or pairs[0]).split("|")
    (x, rate), ref = _read(noisy, "noisy recording"), _read(clean, "clean reference") if clean else None
    with _request("Comparison", noisy, clean) as out_dir:
        results = []
        for k, name in enumerate(names):
            progress(0.1 + 0.35 * k, desc=f"Enhancing with {name}")
            enh = get_enhancer(name, strength)
            if k == 0:
                _warn_conversions(rate, enh.sample_rate, x.shape[1], channels)
            results.append((*_run(enh, x, rate, channels, out_dir, f"{Path(noisy).stem}_{name}_enhanced"), enh))
        progress(0.8, desc="Scoring and drawing")
        signals = [("noisy", x)] + [(r[3].name, r[0]) for r in results]
        rows = score_rows(ref, rate, signals)
        png = spectrogram_png(signals, rate, out_dir / "compare.png")
        status = "  \n".join(_status(r[3], r[2], len(x), rate, x.shape[1], channels) for r in results)
        return str(results[0][1]), str(results[1][1]), str(png), status, rows


def _refresh() -> tuple:
    """Re-read the registry on page load: models may be registered while the app runs."""
    m, d, p = choices()
    return (gr.Dropdown(choices=m, value=d), "" if m else f"**{NO_MODEL_MSG}**",
            gr.Dropdown(choices=p, value=p[0][1] if p else None, visible=bool(p)), "" if p else NO_PAIR_MSG,
            gr.Button(interactive=bool(p)))


def build_demo() -> gr.Blocks:
    """The interface: inputs and results of one enhancement, then the MPO/pruned comparison below them."""
    model_choices, default, pair_choices = choices()
    examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.wav"))  # globbed now: none, no Examples block
    with gr.Blocks(title="se_app speech enhancement", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown(f"## Speech enhancement\nUpload or record a noisy clip (at most {MAX_SECONDS / 60:.0f} "
                    "minutes) and press **Enhance**. Add a clean reference to get PESQ, STOI and SI-SDR.")
        notice = gr.Markdown("" if model_choices else f"**{NO_MODEL_MSG}**")
        with gr.Row():
            with gr.Column():
                noisy = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Noisy input")
                if examples:
                    gr.Examples([[p] for p in examples], inputs=[noisy], label="Example clips")
                model = gr.Dropdown(model_choices, value=default, label="Model (kind · compression · params · size)")
                strength = gr.Slider(0, NO_LIMIT_DB, NO_LIMIT_DB, step=1, label="Strength: attenuation limit (dB)",
                                     info=f"How far noise may be lowered: 0 = bypass (only DC is removed), {NO_LIMIT_DB} = no limit")
                channels = gr.Radio(["each", "mix"], value="each", label="Channels",
                                    info="each: enhance every channel; mix: downmix to mono first")
                clean = gr.Audio(sources=["upload"], type="filepath", label="Clean reference (optional, for scores)")
                button = gr.Button("Enhance", variant="primary")
            with gr.Column():
                out_audio = gr.Audio(type="filepath", format="wav", label="Enhanced", interactive=False)
                out_file = gr.File(label="Download the enhanced WAV", interactive=False, height=80)
                status = gr.Markdown()
                scores = gr.Dataframe(headers=SCORE_HEADERS, label="Scores vs the clean reference", interactive=False)
        spec = gr.Image(type="filepath", label="Spectrograms: input | enhanced (same dB scale)", interactive=False)
        with gr.Accordion("Compare the MPO-LSTM with the pruned LSTM of the same compression rate", open=False):
            pair = gr.Dropdown(pair_choices, value=pair_choices[0][1] if pair_choices else None,
                               label="MPO vs pruned pair", visible=bool(pair_choices))
            pair_note = gr.Markdown("" if pair_choices else NO_PAIR_MSG)
            cmp_button = gr.Button("Compare", interactive=bool(pair_choices))
            with gr.Row():
                mpo_audio = gr.Audio(type="filepath", format="wav", label="MPO-LSTM", interactive=False)
                pruned_audio = gr.Audio(type="filepath", format="wav", label="Pruned LSTM", interactive=False)
            cmp_status = gr.Markdown()
            cmp_scores = gr.Dataframe(headers=SCORE_HEADERS, label="Scores", interactive=False)
            cmp_spec = gr.Image(type="filepath", label="Spectrograms (same dB scale)", interactive=False)
        button.click(enhance, [noisy, model, strength, channels, clean], [out_audio, out_file, spec, status, scores],
                     api_name="enhance")
        cmp_button.click(compare, [noisy, pair, strength, channels, clean],
                             [mpo_audio, pruned_audio, cmp_spec, cmp_status, cmp_scores], api_name="compare")
        demo.load(_refresh, None, [model, notice, pair, pair_note, cmp_button], api_visibility="private")
    demo.queue(default_concurrency_limit=1, max_size=32)  # one enhancement at a time: the CPU is the limit
    return demo
