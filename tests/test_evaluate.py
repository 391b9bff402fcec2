import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app import metrics
from se_app.cli import main


@pytest.fixture
def tiny_testset(tmp_path):
    rng = np.random.default_rng(0)
    for i, snr in enumerate((0, 5)):
        clean = speechlike(3.0, seed=i)
        noise = rng.standard_normal(len(clean)).astype(np.float32)
        noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr / 10))
        for sub, x in (("clean", clean), ("noisy", clean + noise)):
            (tmp_path / sub).mkdir(exist_ok=True)
            sf.write(str(tmp_path / sub / f"utt{i}_snr{snr}.wav"), x, 16000)
    return tmp_path


def test_evaluate_writes_csv_table_json_and_plot(tiny_registry, tiny_testset, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--testset", str(tiny_testset), "--models", "tiny-mpo,tiny-pruned",
                 "-o", str(out), "--workers", "2"]) == 0
    rows = list(csv.DictReader(open(out / "per_file.csv")))
    assert len(rows) == 3 * 2 and {r["system"] for r in rows} == {"noisy", "tiny-mpo", "tiny-pruned"}
    assert {r["snr"] for r in rows} == {"0", "5"}
    for r in rows:
        assert r["system"] != "noisy" or float(r["pesq_improvement"]) == 0.0
    summary = json.loads((out / "summary.json").read_text())
    s = summary["systems"]
    assert s["tiny-mpo"]["kind"] == "mpo" and s["tiny-pruned"]["kind"] == "pruned"
    assert s["tiny-mpo"]["params"] > 0 and s["tiny-mpo"]["size_bytes"] > 0 and s["tiny-mpo"]["rtf"] > 0
    for sy in s.values():
        assert set(sy["pesq"]) == {"0", "5", "avg"}
        assert 1.0 <= sy["pesq"]["avg"] <= 4.7 and 0 <= sy["stoi"]["avg"] <= 1
    md = (out / "summary.md").read_text()
    assert "### PESQ" in md and "| noisy |" in md and "tiny-pruned" in md
    assert (out / "rates.png").stat().st_size > 1000


def test_metrics_sanity():
    clean = speechlike(2.0, seed=3)
    noisy = clean + 0.05 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    perfect = metrics.scores(clean, clean, 16000)
    worse = metrics.scores(clean, noisy, 16000)
    assert perfect["pesq"] > worse["pesq"] and perfect["stoi"] > worse["stoi"]
    assert perfect["si_sdr"] > 50 and worse["si_sdr"] < perfect["si_sdr"]
    assert metrics.si_sdr(clean, 3.0 * clean) > 50  # scale-invariant
    nb = metrics.scores(clean[::2], noisy[::2], 8000, which=("pesq",))["pesq"]
    assert 1.0 <= nb <= 4.6  # narrow-band mode at 8 kHz


def test_pesq_rejection_is_nan_not_a_crash():
    assert math.isnan(metrics.pesq_score(np.zeros(16000, np.float32), np.zeros(16000, np.float32), 16000))
    g = metrics.get_metrics(np.zeros(16000), np.zeros(16000), np.zeros(16000), 16000, which=("pesq", "si_sdr"))
    assert math.isnan(g["pesq"]) and "si_sdr_improvement" in g
