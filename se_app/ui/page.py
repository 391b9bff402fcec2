"""The page: one tab per task (Enhance, Live microphone, Compression), the registry re-read on every load, and
the tab to open taken from the address (``/?tab=stream``, ``/?tab=compress``), so a link (or the screenshot
test) can open any tab."""
from __future__ import annotations

import json

import gradio as gr

from . import compress_tab, enhance_tab, live_tab
from .common import NO_MODEL_MSG, NO_PAIR_MSG, choices

TABS = {"enhance": "Enhance", "stream": "Live microphone", "compress": "Compression"}


def _refresh() -> tuple:
    """Re-read the registry on page load: models may be registered while the app runs."""
    m, d, p = choices()
    return (gr.Dropdown(choices=m, value=d), "" if m else f"**{NO_MODEL_MSG}**",
            gr.Dropdown(choices=p, value=p[0][1] if p else None, visible=bool(p)), "" if p else NO_PAIR_MSG,
            gr.Button(interactive=bool(p)), gr.Dropdown(choices=m, value=d), compress_tab.refresh())


# The tab is chosen in the browser, not by a server event: the queue runs one event at a time, so a server-side
# choice would wait behind the registry refresh (over 15 s on a busy machine, measured by the screenshot test).
_SELECT_JS = """() => {
  const want = new URLSearchParams(window.location.search).get("tab");
  const labels = %s;
  if (!want || !(want in labels)) return;
  const pick = () => {
    const b = [...document.querySelectorAll('button[role="tab"]')].find(x => x.textContent.trim() === labels[want]);
    if (b) b.click(); else setTimeout(pick, 100);
  };
  pick();
}"""


def build_demo() -> gr.Blocks:
    """The interface: a tab per task; each tab's layout and handlers live in its own module."""
    model_choices, default, pair_choices = choices()
    with gr.Blocks(title="se_app speech enhancement", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown("## Speech enhancement")
        with gr.Tabs(selected="enhance"):
            with gr.Tab(TABS["enhance"], id="enhance"):
                e = enhance_tab.build(model_choices, default, pair_choices)
            with gr.Tab(TABS["stream"], id="stream"):
                live = live_tab.build(model_choices, default)
            with gr.Tab(TABS["compress"], id="compress"):
                comp = compress_tab.build(default)
        demo.load(_refresh, None, [e["model"], e["notice"], e["pair"], e["pair_note"], e["cmp_button"], live["model"],
                                   comp["model"]], api_visibility="private")
        demo.load(None, None, None, js=_SELECT_JS % json.dumps(TABS))
    demo.queue(default_concurrency_limit=1, max_size=32)  # one enhancement at a time: the CPU is the limit
    return demo
