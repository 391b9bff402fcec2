"""Dev test set v2: conditions (clean, reverb, tel), SNR rotation, excerpts of long recordings, and the
per-condition evaluation summary."""
import csv
import json

import numpy as np
import soundfile as sf

from se_app import data
from se_app.evaluate import evaluate
from se_app.testset import condition_of, excerpt, make_testset, noise_of, pairs, snr_of

SNRS = (-5, 0, 5, 10)


def _build(corpus_dir, out, **kw):
    return make_testset(out, str(corpus_dir), snrs=SNRS, progress=False, sim_rooms=2, rooms_cache=out.parent / "rooms",
                        **kw)


def test_v2_has_every_condition_at_rotating_snrs(corpus_dir, tmp_path):
    out = tmp_path / "ts"
    n = _build(corpus_dir, out)
    assert n == 2 * 2 * 3  # 2 test utterances x 2 SNRs each x 3 conditions
    ps = pairs(out)
    listing = {r["name"]: r for r in csv.DictReader(open(out / "pairs.csv"))}
    assert sorted(listing) == sorted(p.name for p, _ in ps)
    cond = condition_of(out)
    for c in ("clean", "reverb", "tel"):
        mine = [name for name in cond if cond[name] == c]
        assert len(mine) == 4 and all(f"_{c}_snr" in name for name in mine)
        # the rotation: each utterance at 2 of the 4 SNRs, and here every SNR once
        assert sorted(float(snr_of(name)) for name in mine) == sorted(SNRS)
    assert {r["speech"] for r in listing.values()} == {"test0", "test1"}
    assert all(set(r["noise"].split("+")) <= {"test0", "test1"} for r in listing.values())
    assert noise_of(out) == {k: r["noise"].split("+")[0] for k, r in listing.items()}
    for noisy, clean in ps:
        (x, sr), (c, sr_c) = sf.read(str(noisy)), sf.read(str(clean))
        assert sr == sr_c == (8000 if cond[noisy.name] == "tel" else 16000)
        assert len(x) == len(c) == 2 * sr
        if cond[noisy.name] != "tel":  # (the telephone band removes some noise after the SNR was set)
            got = 10 * np.log10(np.mean(c ** 2) / np.mean((x - c) ** 2))
            assert abs(got - float(snr_of(noisy.name))) < 0.5


def test_reverb_condition_reference_keeps_the_room(corpus_dir, tmp_path):
    out = tmp_path / "ts"
    _build(corpus_dir, out, conditions=("clean", "reverb"), snrs_per_utterance=None)
    ps = {p.name: (p, c) for p, c in pairs(out)}
    dry = sf.read(str(ps["test0_clean_snr5.wav"][1]))[0]
    wet = sf.read(str(ps["test0_reverb_snr5.wav"][1]))[0]
    # the reverberant reference is the dry speech convolved: not equal, yet strongly related
    assert not np.allclose(dry, wet, atol=1e-3)
    assert np.corrcoef(np.abs(dry), np.abs(wet))[0, 1] > 0.3


def test_excerpt_of_a_long_recording_starts_and_ends_in_a_pause():
    rate = data.RATE
    t = np.arange(30 * rate) / rate
    x = (np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)  # 1 s on, 1 s off
    clip = data.Clip("long.flac", x, 257)
    ex, start = excerpt(clip, 10.0, np.random.default_rng(0))
    assert len(ex.audio) <= 10 * rate and 0 <= start <= 20
    assert np.abs(ex.audio[:160]).max() < 0.05 and np.abs(ex.audio[-160:]).max() < 0.05
    i = int(round(start * rate))
    assert np.array_equal(ex.audio, x[i:i + len(ex.audio)])
    short = data.Clip("short.flac", x[: 5 * rate], 257)
    assert excerpt(short, 10.0, np.random.default_rng(0)) == (short, 0.0)


def test_evaluate_reports_each_condition(corpus_dir, tmp_path, tiny_registry):
    ts = tmp_path / "ts"
    _build(corpus_dir, ts)
    summary = evaluate(ts, tmp_path / "ev", ["tiny-mpo"], workers=1, progress=False)
    conds = summary["conditions"]
    assert list(conds) == ["clean", "reverb", "tel"]
    for c, s in conds.items():
        assert s["files"] == 4 and set(s["systems"]) == {"noisy", "tiny-mpo"}
        rows = [r for r in csv.DictReader(open(tmp_path / "ev" / "per_file.csv"))
                if r["system"] == "noisy" and f"_{c}_" in r["file"]]
        assert abs(s["systems"]["noisy"]["pesq"]["avg"] - np.mean([float(r["pesq"]) for r in rows])) < 1e-3
    on_disk = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert set(on_disk["conditions"]) == {"clean", "reverb", "tel"}
    md = (tmp_path / "ev" / "summary.md").read_text()
    assert "## By condition" in md and "Condition `tel`" in md and "narrow-band" in md
