"""The training recipe of issue 12: reverberation, band limits, babble and clipping at the requested shares,
the band-limited loss, simulated rooms per split, and the prefetching loader."""
import numpy as np
import pytest
import torch

from se_app import data
from se_app.data import rooms
from se_app.stft import STFTConfig, stft
from se_app.train import loss_fn, to_batch

SHARES = dict(reverb=0.5, noise_reverb=0.5, bandlimit=0.3, telephone=0.5, babble=0.1, clipping=0.05)


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    return data.load_corpus(data.list_corpus(str(corpus_dir), "train"))


def _within(count: int, n: int, p: float) -> bool:
    """count is a plausible Binomial(n, p) draw (5 standard deviations)."""
    return abs(count - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1


def test_augmentations_are_applied_at_the_requested_shares(corpus):
    mixer = data.Mixer(corpus, seconds=0.5, mix=data.MixConfig(**SHARES))
    rng = np.random.default_rng(0)
    n = 600
    exs = [mixer.mix(rng) for _ in range(n)]
    tags = [set(e.tags) for e in exs]
    count = lambda pred: sum(1 for t in tags if pred(t))  # noqa: E731
    assert _within(count(lambda t: "reverb" in t), n, 0.5)
    assert _within(count(lambda t: "babble" in t), n, 0.1)
    assert _within(count(lambda t: "clip" in t), n, 0.05)
    bands = [next((x for x in t if x.startswith("band:")), None) for t in tags]
    limited = [b for b in bands if b]
    assert _within(len(limited), n, 0.3)
    # of the band-limited 16 kHz examples, about half at the telephone band (narrow speech always is)
    assert 0.3 < sum(b == "band:4000" for b in limited) / len(limited) < 0.8
    assert all(4000 <= float(b.split(":")[1]) <= 8000 for b in limited)
    for e in exs:
        assert np.allclose(e.noisy, e.clean + e.noise, atol=1e-6) and np.abs(e.noisy).max() <= 0.99 + 1e-6


def test_nothing_is_applied_at_share_zero(corpus):
    mixer = data.Mixer(corpus, seconds=0.5, mix=data.MixConfig())
    rng = np.random.default_rng(1)
    assert all(not mixer.mix(rng).tags for _ in range(100))


def test_band_limited_mixture_is_empty_above_its_band_and_so_is_its_loss_weight(corpus):
    mixer = data.Mixer(corpus, seconds=1.0, mix=data.MixConfig(bandlimit=1.0))
    rng = np.random.default_rng(2)
    exs = [mixer.mix(rng) for _ in range(12)]
    X, irm, clean, w = to_batch(exs, STFTConfig())
    for i, e in enumerate(exs):
        cutoff = float(e.tags[-1].split(":")[1])
        assert e.band_bins == data.band_bins_of(cutoff)
        p = X[i].abs().square().mean(0)
        above = p[data.band_bins_of(cutoff) + 4:]  # a few bins of the resampler's transition band
        if len(above):
            assert float(above.sum() / p.sum()) < 1e-3
        assert w[i, 0, : e.band_bins].eq(1).all() and w[i, 0, e.band_bins:].eq(0).all()


@pytest.mark.parametrize("kind", ["irm", "irm+mag", "cmag", "cmag+irm"])
def test_every_loss_ignores_the_empty_band(corpus, kind):
    mixer = data.Mixer(corpus, seconds=1.0, mix=data.MixConfig(bandlimit=1.0, telephone=1.0))
    rng = np.random.default_rng(3)
    X, irm, clean, w = to_batch([mixer.mix(rng) for _ in range(3)], STFTConfig())
    band = data.band_bins_of(4000)
    mask = irm.clone()
    base = float(loss_fn(mask, X, irm, clean, w, kind))
    mask[:, :, band:] = torch.rand_like(mask[:, :, band:])  # anything at all above the band
    assert float(loss_fn(mask, X, irm, clean, w, kind)) == pytest.approx(base, rel=1e-6, abs=1e-9)
    mask[:, :, : band // 2] *= 0.2  # wrong inside the band
    assert float(loss_fn(mask, X, irm, clean, w, kind)) > base + 1e-4


def test_reverberation_targets(corpus):
    """The same draw with each target: the same noisy input; the reverberant target carries the room's tail,
    the early target only its first 50 ms, the dry target none."""
    out = {}
    for target in data.TARGETS:
        mixer = data.Mixer(corpus, seconds=1.0, eq=False, mix=data.MixConfig(reverb=1.0, noise_reverb=0.0,
                                                                              target=target))
        out[target] = mixer.mix(np.random.default_rng(4), snr_db=5.0)
    assert all("reverb" in e.tags for e in out.values())
    assert np.array_equal(out["reverb"].noisy, out["dry"].noisy) and np.array_equal(out["early"].noisy, out["dry"].noisy)
    noisy = out["dry"].noisy
    err = {k: float(np.sum((e.clean - (noisy - e.noise)) ** 2)) for k, e in out.items()}
    assert max(err.values()) < 1e-8  # noisy == clean + noise for every target
    # distance of each target from the reverberant one: dry > early > reverb (= 0)
    d = {k: float(np.sum((e.clean - out["reverb"].clean) ** 2)) for k, e in out.items()}
    assert d["reverb"] == 0 and d["dry"] > d["early"] > 0


def test_early_part_keeps_50_ms_after_the_direct_sound():
    h = np.zeros(16000, np.float32)
    h[16], h[16 + 400], h[16 + 1600] = 1.0, 0.5, 0.5  # direct, +25 ms, +100 ms
    e = rooms.early_part(h)
    assert len(e) == 16 + 800 and e[16] == 1.0 and e[416] == 0.5


def test_simulated_rooms_are_cached_per_split_and_differ_between_splits(tmp_path):
    train = rooms.simulated_bank(2, "train", tmp_path)
    assert (tmp_path / f"rooms-train-0-2-v{rooms.BANK_VERSION}.npz").exists()
    again = rooms.simulated_bank(2, "train", tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(train, again))
    test = rooms.simulated_bank(2, "test", tmp_path)
    assert not any(len(a) == len(b) and np.allclose(a, b) for a in train for b in test)
    for h in train + test:
        assert h.dtype == np.float32 and np.abs(h).max() == pytest.approx(1.0)
        assert np.argmax(np.abs(h) >= 0.1) <= 16 + 1  # starts 1 ms before its direct sound
        t = rooms.rt60(h)
        assert np.isnan(t) or 0.03 < t < 2.0


def test_a_simulated_room_is_a_pure_function_of_its_seed():
    """Ray tracing has its own generators: unseeded, a rebuilt dev test set differed from the first build."""
    first = rooms.simulate(np.random.default_rng(7))
    rooms.simulate(np.random.default_rng(8))  # moves any hidden generator on
    assert np.array_equal(first, rooms.simulate(np.random.default_rng(7)))
    # and with no cache, the bank of a split is rebuilt the same
    assert all(np.array_equal(a, b) for a, b in zip(rooms.simulated_bank(2, "test"), rooms.simulated_bank(2, "test")))


def test_simulated_room_rt60_follows_the_request():
    rng = np.random.default_rng(0)
    dry = rooms.rt60(rooms.simulate(rng, rt60_range=(0.2, 0.2)))
    wet = rooms.rt60(rooms.simulate(rng, rt60_range=(0.9, 0.9)))
    assert dry < wet and 0.1 < dry < 0.45 and 0.5 < wet < 1.6


def test_prefetched_batches_are_a_pure_function_of_their_index(corpus):
    mixer = data.Mixer(corpus, seconds=0.25, mix=data.MixConfig(**SHARES))
    make = lambda k: mixer.batch(np.random.default_rng([0, k]), 2)  # noqa: E731
    pre = data.Prefetcher(make, start=3)
    try:
        got = [pre.get(k) for k in (3, 4, 5)]
        with pytest.raises(ValueError):
            pre.get(9)
    finally:
        pre.close()
    for k, batch in zip((3, 4, 5), got):
        assert all(np.array_equal(a.noisy, b.noisy) for a, b in zip(batch, make(k)))


def test_a_mixer_without_rirs_refuses_reverberation(corpus):
    no_rir = {**corpus, "rir": []}
    with pytest.raises(ValueError, match="no RIRs"):
        data.Mixer(no_rir, mix=data.MixConfig(reverb=0.5))


def test_band_limit_keeps_length_and_removes_the_top(corpus):
    x = np.random.default_rng(5).standard_normal(16000).astype(np.float32)
    y = data.augment.band_limit(x, 4000.0)
    assert len(y) == len(x)
    P = stft(torch.from_numpy(y)[None], STFTConfig()).abs().square().mean(1)[0]
    assert float(P[data.band_bins_of(4000) + 4:].sum() / P.sum()) < 1e-3


def test_cli_training_with_the_full_recipe_runs_and_records_it(corpus_dir, tmp_path, monkeypatch):
    """A smoke run of `se-app train` on the default recipe: simulated rooms cached, recipe saved with the model."""
    from se_app import checkpoint, cli

    monkeypatch.setenv("SE_APP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    rc = cli.main(["-q", "train", "--data", str(corpus_dir), "-o", str(out), "--kind", "mpo", "--hidden", "16",
                   "--bonds", "3", "3", "3", "--lookahead", "2", "--loss", "cmag", "--steps", "6", "--batch", "4",
                   "--seconds", "1", "--epoch-steps", "3", "--valid-count", "3", "--valid-pesq-count", "2",
                   "--sim-rooms", "10", "--snr-max", "15"])
    assert rc == 0
    v = rooms.BANK_VERSION
    assert (tmp_path / "cache" / f"rooms-train-0-10-v{v}.npz").exists()
    assert (tmp_path / "cache" / f"rooms-valid-1-1-v{v}.npz").exists()
    recipe = checkpoint.read(out / "best.pt")["provenance"]["train"]
    assert recipe["loss"] == "cmag" and recipe["sim_rooms"] == 10 and (recipe["snr_min"], recipe["snr_max"]) == (-5, 15)
    assert (recipe["reverb"], recipe["bandlimit"], recipe["babble"], recipe["clipping"]) == (0.5, 0.3, 0.1, 0.05)
