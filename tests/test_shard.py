"""Sharded runs: disjoint shards that cover the inputs, for enhancement and evaluation, and the merge."""
import json
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app import shard
from se_app.cli import main


@pytest.mark.parametrize("n", [1, 2, 3, 7, 12])
def test_shards_are_disjoint_and_cover_the_list_in_any_input_order(n):
    items = [f"d{i % 3}/f{i:02d}.wav" for i in range(10)] + ["d0/f00.wav"]  # one key twice
    parts = []
    for k in range(1, n + 1):
        mixed = items[:]
        random.Random(k).shuffle(mixed)  # each machine may list the inputs in another order
        parts.append(shard.select(mixed, (k, n)))
    assert sorted(x for p in parts for x in p) == sorted(items)  # coverage, nothing twice
    for a in range(n):
        for b in range(a + 1, n):
            assert not set(parts[a]) & set(parts[b])
    assert max(map(len, parts)) - min(map(len, parts)) <= 2  # balanced (the repeated key counts twice)
    assert [p.count("d0/f00.wav") for p in parts].count(2) == 1  # same key, same shard


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0"])
def test_bad_shard_is_a_usage_error(text, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["enhance", str(tmp_path), "-o", str(tmp_path / "o"), "--shard", text])
    assert e.value.code == 2 and "--shard" in capsys.readouterr().err


def _folder(root: Path, count: int = 5) -> Path:
    for i in range(count):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        sf.write(str(sub / f"x{i}.wav"), speechlike(0.3, 16000, seed=i), 16000)
    return root


def test_enhance_shards_write_disjoint_outputs_that_cover_the_input(tiny_registry, tmp_path, capsys):
    src, out = _folder(tmp_path / "in"), tmp_path / "out"
    written = []
    for k in (1, 2, 3):
        before = {p for p in out.rglob("*.wav")} if out.exists() else set()
        assert main(["-q", "enhance", str(src), "-o", str(out), "--shard", f"{k}/3"]) == 0
        written.append({p for p in out.rglob("*.wav")} - before)
        err = capsys.readouterr().err
        assert f"done: shard {k}/3 ({len(written[-1])} of 5 files): {len(written[-1])} enhanced, 0 failed, 0 skipped" in err
    assert sum(map(len, written)) == 5 and sorted(p.relative_to(out) for s in written for p in s) == \
        sorted(p.relative_to(src) for p in src.rglob("*.wav"))
    assert main(["-q", "enhance", str(src), "-o", str(out), "--shard", "4/4"]) == 0  # more shards than work: fine


def test_a_shard_leaves_other_shards_temporaries_alone(tiny_registry, tmp_path):
    src, out = _folder(tmp_path / "in", 2), tmp_path / "out"
    mine = shard.select(["b/x0.wav", "a/x1.wav"], (1, 2))[0]
    other = "a/x1.wav" if mine == "b/x0.wav" else "b/x0.wav"
    temps = {}
    for rel in (mine, other):  # "stale" temporaries: a pid that is not running here (another machine's)
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        temps[rel] = p.parent / f".{p.name}.999999999-0123abcd.part.wav"
        temps[rel].write_bytes(b"")
    assert main(["-q", "enhance", str(src), "-o", str(out), "--shard", "1/2"]) == 0
    assert not temps[mine].exists() and temps[other].exists()
    assert (out / mine).exists() and not (out / other).exists()


@pytest.fixture
def testset(tmp_path):
    rng = np.random.default_rng(0)
    for i, snr in enumerate((0, 5, 0, 5, 10)):
        clean = speechlike(1.5, seed=i)
        noise = 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
        for sub, x in (("clean", clean), ("noisy", clean + noise)):
            (tmp_path / "ts" / sub).mkdir(parents=True, exist_ok=True)
            sf.write(str(tmp_path / "ts" / sub / f"u{i}_snr{snr}.wav"), x, 16000)
    return tmp_path / "ts"


def test_evaluate_shards_merge_into_the_unsharded_summary(tiny_registry, testset, tmp_path, capsys):
    common = ["-q", "evaluate", "--testset", str(testset), "--models", "tiny-mpo", "--workers", "1", "--dnsmos", "off",
              "--compare", "tiny-mpo:noisy"]
    assert main(common + ["-o", str(tmp_path / "whole")]) == 0
    for k in (1, 2):
        assert main(common + ["-o", str(tmp_path / f"s{k}"), "--shard", f"{k}/2"]) == 0
    s1 = json.loads((tmp_path / "s1" / "summary.json").read_text())
    assert s1["shard"]["index"] == 1 and s1["shard"]["count"] == 2 and s1["files"] == 3  # 5 files: 3 + 2
    assert main(["-q", "evaluate-merge", str(tmp_path / "s2"), str(tmp_path / "s1"), "-o", str(tmp_path / "m")]) == 0
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert merged["files"] == whole["files"] == 5 and merged["snrs"] == whole["snrs"]
    for name, entry in whole["systems"].items():
        for metric in ("pesq", "stoi", "estoi", "si_sdr"):
            assert merged["systems"][name][metric] == pytest.approx(entry[metric], abs=1e-12)
        assert merged["systems"][name]["params"] == entry["params"]
    assert len(merged["comparisons"]) == len(whole["comparisons"]) == 3  # pairs recomputed over all files
    for m, w in zip(merged["comparisons"], whole["comparisons"]):
        assert (m["a"], m["b"], m["metric"], m["n"]) == (w["a"], w["b"], w["metric"], w["n"])
        assert m["mean"] == pytest.approx(w["mean"], abs=1e-12) and m["lo"] == pytest.approx(w["lo"], abs=1e-12)
    assert len((tmp_path / "m" / "per_file.csv").read_text().splitlines()) == 1 + 2 * 5
    capsys.readouterr()
    assert main(["-q", "evaluate-merge", str(tmp_path / "s1"), "-o", str(tmp_path / "m2")]) == 2
    assert "missing shard 2/2" in capsys.readouterr().err
    assert main(["-q", "evaluate-merge", str(tmp_path / "s1"), str(tmp_path / "s1"), "-o", str(tmp_path / "m2")]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["-q", "evaluate-merge", str(tmp_path / "whole"), "-o", str(tmp_path / "m2")]) == 2
    assert "not a shard" in capsys.readouterr().err
