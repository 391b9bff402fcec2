import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app import checkpoint, metrics
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
                 "-o", str(out), "--workers", "2", "--report", str(tmp_path / "docs" / "results.md")]) == 0
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
    assert (out / "rates.png").stat().st_size > 1000 and (out / "pareto.png").stat().st_size > 1000
    from se_app.compact import storage_bytes

    for name in ("tiny-mpo", "tiny-pruned"):
        model, _, _ = checkpoint.load(tiny_registry / f"{name}.pt")
        assert s[name]["compact_bytes"] == storage_bytes(model)["total"] > 0
    page = (tmp_path / "docs" / "results.md").read_text()
    assert "se-app -q evaluate --testset" in page and "### PESQ" in page and "](../eval/rates.png)" in page
    assert "## Size against quality" in page and "](../eval/pareto.png)" in page


def _sys(kind, rate, pesq, method=None, registered=True):
    return {"kind": kind, "method": method or kind, "rate": rate, "registered": registered,
            "pesq": {"avg": pesq}, "stoi": {"avg": 0.8}}


def test_report_counts_registered_mpo_against_pruning_rate_by_rate():
    from se_app import report

    summary = {"systems": {
        "noisy": _sys("noisy", None, 1.3), "lstm-dense": _sys("dense", 1.0, 1.6),
        "mpo-5x": _sys("mpo", 5.03, 1.50, "mpo-scratch"), "pruned-5x": _sys("pruned", 5.0, 1.55),
        "mpo-20x": _sys("mpo", 19.99, 1.50, "mpo-scratch"), "pruned-20x": _sys("pruned", 20.0, 1.45),
        "mpo-20x-svd": _sys("mpo", 19.99, 1.40, "mpo-svd"), "mpo-20x-mountain": _sys("mpo", 20.0, 1.55),
        "mpo-20x-int8": _sys("mpo", 19.99, 1.49, "mpo-scratch+int8"),
        "pruned-20x-int8": _sys("pruned", 20.0, 1.44, "pruned+int8"), "pruned-20x-kd": _sys("pruned", 20.0, 1.5),
        "pruned-20x-oneshot": _sys("pruned", 20.0, 1.3), "scratch-20x": _sys("mpo", 20.9, 1.60, registered=False),
        "mpo-100x": _sys("mpo", 99.8, 1.40), "pruned-100x": _sys("pruned", 100.0, 1.40),
        "mpo-50x": _sys("mpo", 50.0, 1.40, registered=False), "pruned-50x": _sys("pruned", 50.0, 1.30)}}
    rows, wins, rates = report.comparison(summary)
    # 20x and 100x (a tie counts); 5x loses; 50x is not registered; int8, kd and one-shot pruned add no rate
    assert (wins, rates) == (2, 3)
    assert [(r["mpo"], r["pruned"]) for r in rows if not r["counted"]] == [
        ("mpo-20x-svd", "pruned-20x"), ("mpo-20x-int8", "pruned-20x-int8"), ("mpo-50x", "pruned-50x")]
    assert report.pairs_among(summary["systems"])[1] == [
        ("mpo-20x-svd", "mpo-20x"), ("mpo-20x-mountain", "mpo-20x"), ("pruned-20x-kd", "pruned-20x"),
        ("pruned-20x-oneshot", "pruned-20x")]


def test_report_gives_each_mpo_pruned_difference_its_interval_overall_and_per_condition(monkeypatch):
    from se_app import report

    pairs = report.study_pairs(["mpo-20x", "mpo-20x-svd", "pruned-20x", "pruned-5x", "lstm-dense", "noisereduce",
                                "mpo-20x-int8all", "pruned-20x-int8all", "pruned-20x-int8"])
    assert pairs == [("mpo-20x", "pruned-20x"), ("mpo-20x-svd", "pruned-20x"),
                     ("mpo-20x-int8all", "pruned-20x-int8all"), ("mpo-20x-svd", "mpo-20x")]

    def ci(a, b, part, mean, lo, hi):
        return {"a": a, "b": b, "metric": "pesq", "part": part, "mean": mean, "lo": lo, "hi": hi, "n": 9, "nan": 0,
                "significant": lo > 0 or hi < 0}

    summary = {"systems": {"mpo-20x": _sys("mpo", 20.0, 1.60), "mpo-20x-svd": _sys("mpo", 20.9, 1.40, "mpo-svd"),
                           "pruned-20x": _sys("pruned", 20.0, 1.50)},
               "comparisons": [ci("mpo-20x", "pruned-20x", "all", 0.1, 0.04, 0.16),
                               ci("mpo-20x", "pruned-20x", "reverb", 0.1, -0.02, 0.2),
                               ci("mpo-20x", "pruned-20x", "tel", 0.12, 0.01, 0.2),
                               ci("mpo-20x-svd", "pruned-20x", "all", -0.1, -0.2, 0.01)]}
    monkeypatch.setattr(report, "markdown", lambda summary: "")  # the full tables need per-SNR scores
    page = report.render(summary, "se-app evaluate", "x.png")
    assert "| 20.0x | mpo-20x | mpo | 1.600 | pruned-20x | 1.500 | +0.100 | [+0.040, +0.160] | **yes** | yes |" in page
    assert "| mpo-20x-svd | mpo-svd | 1.400 | pruned-20x | 1.500 | -0.100 | [-0.200, +0.010] | no | no |" in page
    assert "significantly higher at 1, significantly lower at 0" in page
    assert "| mpo-20x | pruned-20x | +0.100 [-0.020, +0.200] | +0.120 [+0.010, +0.200] * |" in page


def test_pareto_frontier_keeps_only_models_no_smaller_one_beats():
    from se_app.plots import frontier

    pts = [(100, 1.5, "a"), (200, 1.4, "b"), (200, 1.7, "c"), (300, 1.6, "d"), (400, 2.0, "e"), (50, 1.2, "f")]
    assert [n for _, _, n in frontier(pts)] == ["f", "a", "c", "e"]
    assert frontier([]) == []


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


def test_all_expands_to_every_registered_model_and_keeps_extra_names(tiny_registry):
    from se_app.evaluate import systems

    registered = ["tiny-dense", "tiny-mpo", "tiny-pruned"]
    assert sorted(systems(None)) == registered
    names = systems(["all", "noisereduce", "tiny-mpo"])
    assert sorted(names[:3]) == registered and names[3:] == ["noisereduce"]


def test_classical_baseline_row_is_scored_like_a_model(tiny_registry, tiny_testset, tmp_path):
    pytest.importorskip("noisereduce")
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--testset", str(tiny_testset), "--models", "tiny-mpo,noisereduce",
                 "-o", str(out), "--workers", "1"]) == 0
    s = json.loads((out / "summary.json").read_text())["systems"]
    nr = s["noisereduce"]
    assert nr["kind"] == "classical" and nr["params"] == 0 and nr["rate"] is None and nr["rtf"] > 0
    assert 1.0 <= nr["pesq"]["avg"] <= 4.7 and nr["pesq"]["avg"] != s["noisy"]["pesq"]["avg"]
    md = (out / "summary.md").read_text()
    assert md.index("| noisereduce |") < md.index("| tiny-mpo |")


def test_unknown_baseline_is_a_clear_error():
    from se_app import baselines

    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.load("wiener")


def test_unknown_model_name_fails_before_any_work_and_lists_every_valid_name(tiny_registry, tiny_testset,
                                                                             tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--testset", str(tiny_testset), "--models", "tiny-mpo,wiener", "-o", str(out),
                 "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "'wiener'" in err and "tiny-mpo" in err and "noisereduce" in err
    assert not (out / "summary.json").exists()


def test_pairs_csv_gives_a_per_noise_table(tiny_registry, tiny_testset, tmp_path):
    (tiny_testset / "pairs.csv").write_text("name,speech,noise,snr_db\nutt0_snr0.wav,utt0,hum+tap,0\n"
                                            "utt1_snr5.wav,utt1,tap,5\n")
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--testset", str(tiny_testset), "--models", "tiny-mpo", "-o", str(out),
                 "--workers", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    table = summary["by_noise"]
    assert set(table) == {"hum", "tap"} and table["hum"]["files"] == 1 and table["tap"]["files"] == 1
    rows = {r["file"]: r for r in csv.DictReader(open(out / "per_file.csv")) if r["system"] == "tiny-mpo"}
    assert table["tap"]["gain"]["tiny-mpo"] == pytest.approx(float(rows["utt1_snr5.wav"]["pesq_improvement"]), abs=1e-3)
    md = (out / "by_noise.md").read_text()
    assert "| hum | 1 |" in md and "tiny-mpo" in md
