"""ONNX export (one step, whole sequence) run by onnxruntime matches torch; the onnx backend streams exactly."""
import json
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import speechlike
from se_app import backends, export
from se_app.backends import StepCell
from se_app.cli import main
from se_app.enhancer import Enhancer, apply_model
from se_app.stream import Stream
from test_stream import CFG, CONFIGS, model

ort = pytest.importorskip("onnxruntime")  # in the dev and onnx extras, so CI runs these
pytest.importorskip("onnx")


def session(graph: bytes):
    return ort.InferenceSession(graph, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_step_graph_matches_torch_and_carries_state(name):
    m = model(name)
    sess = session(export.to_bytes(m, CFG, "step"))
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["state_shape"]) == [m.cfg.layers, "B", m.cfg.hidden]
    assert int(meta["lookahead"]) == m.cfg.lookahead and int(meta["hop"]) == CFG.hop
    cell, (h, c) = StepCell(m), m.core.zero_state(3)
    hn, cn = h.numpy(), c.numpy()
    for _ in range(4):  # several steps: the state must round-trip
        f = torch.randn(3, 257) * 2 - 8
        g, h, c = cell(f, h, c)
        go, hn, cn = sess.run(None, {"feats": f.numpy(), "h": hn, "c": cn})
        assert np.abs(go - g.numpy()).max() < 1e-4
        assert np.abs(hn - h.numpy()).max() < 1e-4 and np.abs(cn - c.numpy()).max() < 1e-4


@pytest.mark.parametrize("name", list(CONFIGS))
def test_whole_graph_matches_torch_with_state_in_and_out(name):
    m = model(name)
    sess = session(export.to_bytes(m, CFG, "whole"))
    f = torch.randn(2, 23, 257) * 2 - 8
    with torch.no_grad():
        mask, (h, c) = m(f)
    z = np.zeros((m.cfg.layers, 2, m.cfg.hidden), np.float32)
    g1, h1, c1 = sess.run(None, {"feats": f[:, :10].numpy(), "h": z, "c": z})
    g2, h2, c2 = sess.run(None, {"feats": f[:, 10:].numpy(), "h": h1, "c": c1})  # T differs: dynamic axis
    assert np.abs(np.concatenate([g1, g2], 1) - m.gain(mask).numpy()).max() < 1e-4
    assert np.abs(h2 - h.numpy()).max() < 1e-4 and np.abs(c2 - c.numpy()).max() < 1e-4


@pytest.mark.parametrize("chunk", [256, 4000])
def test_onnx_backend_streams_the_whole_file_output(chunk):
    m = model("pruned-3layers-la2")
    x = torch.from_numpy(np.stack([speechlike(0.6, seed=1), speechlike(0.6, seed=2)]))
    s = Stream(m, CFG, 2, backend=backends.make("onnx", m))
    y = torch.cat([s.process(x[:, i:i + chunk]) for i in range(0, x.shape[1], chunk)] + [s.flush()], 1)
    assert (y[:, s.latency:] - apply_model(m, x, CFG)).abs().max() < 1e-5


def test_cli_export_writes_both_graphs(tiny_registry, tmp_path):
    assert main(["-q", "export", "tiny-mpo", "-o", str(tmp_path / "out" / "m.onnx")]) == 0
    for graph in ("step", "whole"):
        sess = session((tmp_path / "out" / f"m.{graph}.onnx").read_bytes())
        assert sess.get_modelmeta().custom_metadata_map["se_app.graph"] == graph
        assert [i.name for i in sess.get_inputs()] == ["feats", "h", "c"]


def test_cli_enhance_with_the_onnx_backend(tiny_registry, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(str(src), speechlike(0.5, 16000, seed=4), 16000, subtype="FLOAT")
    for backend in ("torch", "onnx"):
        assert main(["-q", "enhance", str(src), "-o", str(tmp_path / backend), "--streaming",
                     "--backend", backend]) == 0
    a, _ = sf.read(str(tmp_path / "torch" / "in.wav"))
    b, _ = sf.read(str(tmp_path / "onnx" / "in.wav"))
    assert np.abs(a - b).max() < 1e-5


def test_without_the_extra_only_asking_for_onnx_fails_and_says_how_to_install(tiny_registry, tmp_path,
                                                                               monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setattr(backends, "onnx_available", lambda: False)
    src = tmp_path / "in.wav"
    sf.write(str(src), speechlike(0.3), 16000)
    assert main(["-q", "enhance", str(src), "-o", str(tmp_path / "a"), "--streaming"]) == 0  # auto: torch
    assert main(["-q", "enhance", str(src), "-o", str(tmp_path / "b"), "--backend", "onnx"]) == 2
    assert main(["-q", "export", "tiny-mpo", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("pip install -e '.[onnx]'") == 2 and "Traceback" not in err
    with pytest.raises(ValueError, match=r"onnx and onnxruntime: pip install -e '\.\[onnx\]'"):
        Enhancer(model("dense"), CFG, backend="onnx")
