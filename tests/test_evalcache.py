"""A stopped evaluation run again scores only what it had not finished, and never reuses stale scores."""
import json
import shutil

import pytest
import soundfile as sf
import torch

from se_app import checkpoint, evaluate as ev, registry
from se_app.enhancer import Enhancer
from test_evaluate import tiny_testset  # noqa: F401  (fixture)


@pytest.fixture
def own_registry(tiny_models, tmp_path, monkeypatch):
    """A copy of the tiny registry this test may change."""
    root = tmp_path / "models"
    shutil.copytree(tiny_models, root)
    monkeypatch.setenv("SE_APP_MODELS", str(root))
    return root


def _count_enhance(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = Enhancer.enhance

    def counted(self, x, sr, *a, **k):
        seen.append(self.name)
        return real(self, x, sr, *a, **k)

    monkeypatch.setattr(Enhancer, "enhance", counted)
    return seen


def _scores(summary: dict) -> dict:
    return {s: (e["pesq"]["avg"], e["stoi"]["avg"]) for s, e in summary["systems"].items()}


def test_rerun_reuses_finished_systems_and_gives_the_same_summary(own_registry, tiny_testset, tmp_path,
                                                                   monkeypatch):
    out = tmp_path / "eval"
    first = ev.evaluate(tiny_testset, out, ["tiny-mpo"], workers=1, progress=False)
    assert sorted(p.stem for p in (out / "cache").glob("*.json")) == ["noisy", "tiny-mpo"]
    seen = _count_enhance(monkeypatch)
    # a stop after tiny-mpo: the same call with one more system enhances only the new one
    second = ev.evaluate(tiny_testset, out, ["tiny-mpo", "tiny-pruned"], workers=1, progress=False)
    assert set(seen) == {"tiny-pruned"} and len(seen) == 2  # two files, one system
    assert _scores(second)["tiny-mpo"] == _scores(first)["tiny-mpo"]
    assert _scores(second)["noisy"] == _scores(first)["noisy"]
    assert list(second["systems"]) == ["noisy", "tiny-mpo", "tiny-pruned"]
    assert second["systems"]["tiny-mpo"]["rtf"] == first["systems"]["tiny-mpo"]["rtf"]
    # --fresh scores everything again
    seen.clear()
    ev.evaluate(tiny_testset, out, ["tiny-mpo", "tiny-pruned"], workers=1, progress=False, fresh=True)
    assert sorted(set(seen)) == ["tiny-mpo", "tiny-pruned"]


def test_changed_model_or_files_are_scored_again(own_registry, tiny_testset, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    before = ev.evaluate(tiny_testset, out, ["tiny-mpo"], workers=1, progress=False)
    seen = _count_enhance(monkeypatch)
    # new weights under the same name
    ckpt = checkpoint.read(own_registry / "tiny-mpo.pt")
    model, stft = checkpoint.model_from(ckpt)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    checkpoint.save(own_registry / "tiny-mpo.pt", model, stft, provenance={"note": "changed"})
    reg = registry.read(own_registry)
    reg["models"]["tiny-mpo"] = registry.entry_for(own_registry / "tiny-mpo.pt", own_registry)
    registry.write(reg, own_registry)
    after = ev.evaluate(tiny_testset, out, ["tiny-mpo"], workers=1, progress=False)
    assert seen.count("tiny-mpo") == 2
    assert _scores(after)["tiny-mpo"] != _scores(before)["tiny-mpo"]
    # a changed test file: every system, the noisy input included, is scored again
    seen.clear()
    noisy = sorted((tiny_testset / "noisy").glob("*.wav"))[0]
    old_key = json.loads((out / "cache" / "noisy.json").read_text())["key"]["files"]
    x, sr = sf.read(str(noisy), dtype="float32")
    sf.write(str(noisy), 0.5 * x, sr)
    changed = ev.evaluate(tiny_testset, out, ["tiny-mpo"], workers=1, progress=False)
    assert seen.count("tiny-mpo") == 2
    new_key = json.loads((out / "cache" / "noisy.json").read_text())["key"]["files"]
    assert new_key != old_key and new_key == ev.evalcache.files_hash(ev.inputs(tiny_testset))
    assert _scores(changed)["noisy"] != _scores(after)["noisy"]
