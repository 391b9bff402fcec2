"""What the tabs of the web UI share: model choices and loading, request folders, reading uploads, status lines
and user-facing errors.  Plain functions; importing this module starts nothing."""
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

from .. import audio, registry
from ..enhancer import Enhancer, floor_from_db
from ..uifiles import new_request_dir, public

log = logging.getLogger(__name__)

MAX_SECONDS = 600.0  # longest recording accepted (10 minutes)
MAX_UPLOAD = "300mb"  # upload limit handed to launch(): 10 min of 48 kHz stereo float WAV fits
NO_LIMIT_DB = 60  # the top of the strength slider means "no attenuation limit"
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "examples"
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


_LOADED: dict[tuple[str, int, bool], Enhancer] = {}  # (checkpoint path, mtime, streaming) -> loaded once, shared
_LOCK = threading.Lock()


def get_enhancer(name: str | None = None, limit_db: float = NO_LIMIT_DB, streaming: bool = False) -> Enhancer:
    """The enhancer for a registry name (None: the default) with its own attenuation limit.  Loaded once per
    checkpoint file and mtime, so a model re-registered while the app runs is reloaded.  ``streaming``: the
    frame-by-frame path of ``se-app enhance --streaming`` (the live tab)."""
    try:
        path, _ = registry.resolve(name)
        key = (str(path.resolve()), path.stat().st_mtime_ns, streaming)
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = Enhancer.load(name, streaming=streaming)
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


