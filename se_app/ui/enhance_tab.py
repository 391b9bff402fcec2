"""The Enhance tab: enhance an uploaded or recorded clip with one model, score it (PESQ/STOI/SI-SDR against a
clean reference, DNSMOS without one), and compare the MPO-LSTM with the pruned LSTM of the same compression rate.
The handlers (:func:`enhance`, :func:`compare`) are plain, testable functions; they are the ``/enhance`` and
``/compare`` API."""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from ..uiviews import DNSMOS_HEADERS, dnsmos_rows, score_rows, spectrogram_png
from .common import (EXAMPLES_DIR, MAX_SECONDS, NO_LIMIT_DB, NO_MODEL_MSG, NO_PAIR_MSG, SCORE_HEADERS, Outputs,
                     _read, _request, _run, _status, _warn_conversions, choices, get_enhancer, user_error)

log = logging.getLogger(__name__)


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
        signals = [("noisy", x), (f"enhanced ({enh.name})", y)]
        rows = score_rows(ref, rate, signals) if ref is not None else dnsmos_rows(signals, rate)
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
        rows = score_rows(ref, rate, signals) if ref is not None else dnsmos_rows(signals, rate)
        png = spectrogram_png(signals, rate, out_dir / "compare.png")
        status = "  \n".join(_status(r[3], r[2], len(x), rate, x.shape[1], channels) for r in results)
        return str(results[0][1]), str(results[1][1]), str(png), status, rows




def table(rows: list[list[str]], clean: str | None) -> pd.DataFrame:
    """The score table with the headers of what was scored: PESQ/STOI/SI-SDR, or DNSMOS without a reference
    (a DataFrame: the page takes its columns as headers, API clients get {"headers", "data"})."""
    return pd.DataFrame(rows, columns=SCORE_HEADERS if clean else DNSMOS_HEADERS)


def _enhance_event(noisy: str | None, model: str | None = None, strength: float = NO_LIMIT_DB, channels: str = "each",
                   clean: str | None = None, progress: gr.Progress = gr.Progress()) -> tuple:
    *rest, rows = enhance(noisy, model, strength, channels, clean, progress)
    return (*rest, table(rows, clean))


def _compare_event(noisy: str | None, pair: str | None = None, strength: float = NO_LIMIT_DB, channels: str = "each",
                   clean: str | None = None, progress: gr.Progress = gr.Progress()) -> tuple:
    *rest, rows = compare(noisy, pair, strength, channels, clean, progress)
    return (*rest, table(rows, clean))


def build(model_choices: list, default: str | None, pair_choices: list) -> dict:
    """Lay out the tab (inside the caller's gr.Tab) and wire its events; returns the components the page
    refreshes on load."""
    examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.wav"))  # globbed now: none, no Examples block
    gr.Markdown(f"Upload or record a noisy clip (at most {MAX_SECONDS / 60:.0f} minutes) and press **Enhance**. "
                "Add a clean reference to get PESQ, STOI and SI-SDR; without one the scores are DNSMOS P.835 "
                "(SIG: speech, BAK: background, OVRL: overall, 1-5, no reference needed).")
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
            scores = gr.Dataframe(headers=SCORE_HEADERS, label="Scores (vs the clean reference, or DNSMOS without one)",
                                  interactive=False)
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
    button.click(_enhance_event, [noisy, model, strength, channels, clean], [out_audio, out_file, spec, status, scores],
                 api_name="enhance")
    cmp_button.click(_compare_event, [noisy, pair, strength, channels, clean],
                     [mpo_audio, pruned_audio, cmp_spec, cmp_status, cmp_scores], api_name="compare")
    return {"model": model, "notice": notice, "pair": pair, "pair_note": pair_note, "cmp_button": cmp_button}
