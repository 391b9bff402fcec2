"""The compression tab: pick a trained MPO or dense model, lower its bond dimensions (MPO) or rank (dense) with a
slider, and hear and see the result at once: parameters, compression rate, predicted error of W and U, and
scores (PESQ/STOI/SI-SDR with a clean reference, DNSMOS without one) of the input, the model as trained and the
truncated model.  The truncation is :func:`se_app.compress.compress`, the same as ``se-app compress``; the
truncated checkpoint can be downloaded, and the status line gives the command that writes it.  ``/compress``
is the API."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import gradio as gr

from .. import checkpoint, compress, registry
from ..enhancer import Enhancer
from ..uiviews import DNSMOS_HEADERS, dnsmos_rows, score_rows
from .enhance_tab import table
from .common import _read, _request, _run, model_label, user_error

log = logging.getLogger(__name__)

KINDS = ("mpo", "dense", "lowrank")  # what truncation works on (not pruned models)


def model_choices() -> list[tuple[str, str]]:
    """(label, name) of the registered models that can be truncated."""
    return [(model_label(r), r["name"]) for r in registry.listing() if r["kind"] in KINDS]


@functools.lru_cache(maxsize=16)
def _source(path: str, mtime: int):
    model, stft_cfg, ckpt = checkpoint.load(path)
    return model, stft_cfg, ckpt


@functools.lru_cache(maxsize=32)
def _truncated(path: str, mtime: int, rate: float):
    return compress.compress(_source(path, mtime)[0], rate)


def _load(name: str | None):
    """(path, mtime, model, stft config) of a registered model; a gr.Error naming it otherwise."""
    if not name:
        raise user_error("Pick a model to compress.")
    try:
        path, _ = registry.resolve(name)
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        model, stft_cfg, _ = _source(*key)
    except (registry.ModelNotFound, OSError, ValueError) as e:
        raise user_error(f"Model {name!r}: {e}") from None
    if model.cfg.kind not in KINDS:
        raise user_error(f"{name} is a {model.cfg.kind} model: compression works on MPO, dense and low-rank models.")
    return key, model, stft_cfg


def rate_range(name: str | None) -> tuple[float, float]:
    """(the model's own rate, the highest a truncation reaches: every bond, or the rank, at 1)."""
    (_, model, _) = _load(name)
    top = compress.max_rate(model)
    return round(model.rate(), 2), round(top, 1)


def _slider(name: str | None) -> gr.Slider:
    lo, hi = rate_range(name)
    return gr.Slider(minimum=lo, maximum=hi, value=round(min(hi, 2 * lo), 2), step=0.1)


def compress_preview(noisy: str | None, model: str | None = None, rate: float = 0.0, clean: str | None = None,
                     progress: gr.Progress = gr.Progress()) -> tuple[str, str, str, list[list[str]]]:
    """Truncate ``model`` to ``rate`` (0: twice its own) and enhance the upload with it -> (enhanced WAV path,
    truncated checkpoint path, status Markdown, score rows: input, model as trained, truncated)."""
    key, source, stft_cfg = _load(model)
    rate = float(rate) if rate and rate > 0 else 2 * source.rate()
    (x, sr), ref = _read(noisy, "noisy recording"), _read(clean, "clean reference") if clean else None
    with _request("Compression", noisy, clean) as out_dir:
        progress(0.1, desc=f"Truncating {model} to {rate:.1f}x")
        try:
            new, info = _truncated(*key, round(rate, 2))
        except ValueError as e:
            raise user_error(str(e)) from None
        name = f"{model}-{info.rate:.0f}x"
        small = Enhancer(new, stft_cfg, name, {"kind": new.cfg.kind, "params": new.effective_params(),
                                               "rate": new.rate(), "method": new.cfg.kind})
        big = Enhancer(source, stft_cfg, model)
        progress(0.3, desc="Enhancing with the model as trained and truncated")
        y_big = _run(big, x, sr, "each", out_dir, f"{Path(noisy).stem}_{model}")[0]
        y_small, wav, elapsed = _run(small, x, sr, "each", out_dir, f"{Path(noisy).stem}_{name}")
        ckpt = out_dir / f"{name}.pt"
        checkpoint.save(ckpt, new, stft_cfg, provenance={"compressed_from": model,
                                                         "compress": {"requested_rate": rate, "rate": info.rate}})
        progress(0.7, desc="Scoring")
        signals = [("noisy", x), (f"{model} ({info.rate_before:.1f}x)", y_big), (f"truncated ({info.rate:.1f}x)", y_small)]
        rows = score_rows(ref, sr, signals) if ref is not None else dnsmos_rows(signals, sr)
        status = (f"**{compress.describe(info)}** · real-time factor {elapsed / (len(x) / sr):.3f}  \n"
                  f"Save it: `se-app compress {model} --rate {rate:g} -o {name}.pt`, then "
                  f"`se-app register {name} {name}.pt` (or download it below).")
        return str(wav), str(ckpt), status, rows


def _event(noisy, model=None, rate=0.0, clean=None, progress: gr.Progress = gr.Progress()) -> tuple:
    wav, ckpt, status, rows = compress_preview(noisy, model, rate, clean, progress)
    return wav, ckpt, status, table(rows, clean)


def build(default: str | None) -> dict:
    """Lay out the tab and wire its events; returns the components the page refreshes on load."""
    choices = model_choices()
    first = default if default in [v for _, v in choices] else (choices[0][1] if choices else None)
    lo, hi = rate_range(first) if first else (1.0, 100.0)
    gr.Markdown("Lower the bond dimensions of an MPO model (or the rank of a dense one) without training, and "
                "hear what the compression costs. MPO: each bond truncated by SVD of its neighbouring cores; "
                "dense: W and U replaced by their best low-rank approximation.")
    with gr.Row():
        with gr.Column():
            noisy = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Noisy input")
            model = gr.Dropdown(choices, value=first, label="Model to compress (MPO, dense or low-rank)")
            rate = gr.Slider(lo, hi, value=round(min(hi, 2 * lo), 2), step=0.1,
                             label="Compression rate of W and U (x); release to apply")
            clean = gr.Audio(sources=["upload"], type="filepath", label="Clean reference (optional, for PESQ/STOI)")
            button = gr.Button("Compress and enhance", variant="primary")
        with gr.Column():
            out_audio = gr.Audio(type="filepath", format="wav", label="Enhanced by the truncated model", interactive=False)
            status = gr.Markdown()
            scores = gr.Dataframe(headers=DNSMOS_HEADERS, label="Scores", interactive=False)
            ckpt = gr.File(label="Truncated checkpoint", interactive=False, height=80)
    outputs = [out_audio, ckpt, status, scores]
    button.click(_event, [noisy, model, rate, clean], outputs, api_name="compress")
    rate.release(_event, [noisy, model, rate, clean], outputs, api_visibility="private")
    model.change(_slider, [model], [rate], api_visibility="private")
    return {"model": model}


def refresh() -> gr.Dropdown:
    choices = model_choices()
    return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

