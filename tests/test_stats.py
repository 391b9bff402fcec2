"""Paired bootstrap comparisons (se_app/stats.py) and `se-app evaluate --compare`."""
import json
import math

import numpy as np
import pytest

from se_app import stats
from se_app.evaluate import evaluate


def test_a_constant_paired_difference_is_significant_despite_large_file_to_file_spread():
    rng = np.random.default_rng(0)
    b = rng.uniform(1.0, 4.0, 50)  # files differ a lot ...
    a = b + 0.02  # ... but A beats B by 0.02 on every one: pairing makes that certain
    r = stats.paired_bootstrap(a, b, resamples=2000)
    assert r["mean"] == pytest.approx(0.02) and r["lo"] == pytest.approx(0.02) and r["hi"] == pytest.approx(0.02)
    assert r["significant"] and r["n"] == 50


def test_noise_around_zero_is_not_significant_and_the_interval_covers_the_mean():
    rng = np.random.default_rng(1)
    b = rng.normal(2.0, 0.5, 200)
    a = b + rng.normal(0.0, 0.3, 200)
    r = stats.paired_bootstrap(a, b, resamples=4000)
    assert r["lo"] < r["mean"] < r["hi"] and r["lo"] < 0 < r["hi"] and not r["significant"]
    # the interval's half-width is about 1.96 standard errors
    se = np.std(a - b) / np.sqrt(200)
    assert (r["hi"] - r["lo"]) / 2 == pytest.approx(1.96 * se, rel=0.15)


def test_nan_files_are_left_out_and_counted():
    a = np.array([1.0, math.nan, 2.0, 3.0])
    b = np.array([0.5, 1.0, math.nan, 2.5])
    r = stats.paired_bootstrap(a, b, resamples=500)
    assert r["n"] == 2 and r["nan"] == 2 and r["mean"] == pytest.approx(0.5)


def test_files_of_one_recording_are_resampled_together():
    """Ten recordings, each scored five times with the same difference: the files are not independent.  Resampled
    by recording the interval is about sqrt(5) times wider than resampled by file; with every file its own
    cluster it is the file-level one."""
    rng = np.random.default_rng(1)
    per_rec = rng.normal(0.05, 0.1, 10)
    d = np.repeat(per_rec, 5)
    labels = np.repeat(np.arange(10), 5)
    files = stats.paired_bootstrap(d, np.zeros_like(d))
    recs = stats.paired_bootstrap(d, np.zeros_like(d), clusters=labels)
    own = stats.paired_bootstrap(d, np.zeros_like(d), clusters=np.arange(50))
    assert recs["mean"] == pytest.approx(files["mean"]) and recs["clusters"] == 10 and files["clusters"] == 50
    ratio = (recs["hi"] - recs["lo"]) / (files["hi"] - files["lo"])
    assert 1.7 < ratio < 2.9
    assert own["hi"] - own["lo"] == pytest.approx(files["hi"] - files["lo"], rel=0.1)


def test_pairs_parse_and_bad_ones_are_refused():
    assert stats.parse_pairs("a:b, c:d") == [("a", "b"), ("c", "d")]
    for bad in ("a", "a:", ":b"):
        with pytest.raises(ValueError):
            stats.parse_pairs(bad)
    with pytest.raises(ValueError, match="not among the systems"):
        stats.check_names([("x", "noisy")], ["noisy", "tiny-mpo"])


def test_evaluate_compare_writes_intervals_overall_and_per_condition(corpus_dir, tmp_path, tiny_registry):
    from se_app.testset import make_testset

    ts = tmp_path / "ts"
    make_testset(ts, str(corpus_dir), snrs=(-5, 0, 5, 10), progress=False, sim_rooms=2, rooms_cache=tmp_path / "rooms")
    summary = evaluate(ts, tmp_path / "ev", ["tiny-mpo"], workers=1, progress=False, with_dnsmos="off",
                       compare=[("tiny-mpo", "noisy")])
    comps = summary["comparisons"]
    assert {(c["part"], c["metric"]) for c in comps} == {(p, m) for p in ("all", "clean", "reverb", "tel")
                                                         for m in ("pesq", "stoi", "si_sdr")}
    for c in comps:
        n_files = 12 if c["part"] == "all" else 4
        assert c["n"] + c["nan"] == n_files and (np.isnan(c["mean"]) or c["lo"] <= c["mean"] <= c["hi"])
    # the overall mean equals the difference of the two systems' averages (no NaN here for STOI)
    st = next(c for c in comps if c["part"] == "all" and c["metric"] == "stoi")
    sy = summary["systems"]
    assert st["mean"] == pytest.approx(sy["tiny-mpo"]["stoi"]["avg"] - sy["noisy"]["stoi"]["avg"], abs=1e-9)
    from se_app.testset import speech_of
    recordings = len(set(speech_of(ts).values()))
    assert 1 < recordings < 12 and st["clusters"] == recordings  # files of one utterance resampled together
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["comparisons"] == comps
    assert "Paired differences" in (tmp_path / "ev" / "summary.md").read_text()
    with pytest.raises(ValueError, match="not among the systems"):
        evaluate(ts, tmp_path / "ev2", ["tiny-mpo"], workers=1, progress=False, with_dnsmos="off",
                 compare=[("tiny-dense", "noisy")])


def test_cli_refuses_a_malformed_compare_with_exit_2(capsys):
    from se_app import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["evaluate", "--testset", "x", "-o", "y", "--compare", "only-one-name"])
    assert e.value.code == 2 and "A:B pairs" in capsys.readouterr().err
