"""Gradio web UI, one module per tab: :mod:`.enhance_tab` (enhance, score, compare MPO with pruning; ``/enhance``,
``/compare``), :mod:`.live_tab` (live microphone; ``/stream``), :mod:`.compress_tab` (truncate a model with a
slider; ``/compress``); :mod:`.common` holds what they share and :mod:`.page` puts them together.  The handlers
are plain, testable functions; importing this package starts nothing (``python app.py`` serves it)."""
from __future__ import annotations

from .common import (EXAMPLES_DIR, MAX_SECONDS, MAX_UPLOAD, NO_LIMIT_DB, NO_MODEL_MSG, NO_PAIR_MSG, SCORE_HEADERS,
                     choices, get_enhancer, model_label, mpo_pruned_pairs, preload, user_error)
from .compress_tab import compress_preview
from .enhance_tab import compare, enhance
from .live_tab import stream_chunk, stream_end, stream_mic
from .page import build_demo

__all__ = ["EXAMPLES_DIR", "MAX_SECONDS", "MAX_UPLOAD", "NO_LIMIT_DB", "NO_MODEL_MSG", "NO_PAIR_MSG", "SCORE_HEADERS",
           "build_demo", "choices", "compare", "compress_preview", "enhance", "get_enhancer", "model_label",
           "mpo_pruned_pairs", "preload", "stream_chunk", "stream_end", "stream_mic", "user_error"]
