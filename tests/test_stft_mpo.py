import math

import pytest
import torch

from se_app import mpo
from se_app.stft import STFTConfig, istft, num_frames, stft


def test_stft_settings_match_the_paper():
    cfg = STFTConfig()
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop, cfg.n_bins) == (16000, 512, 256, 257)


@pytest.mark.parametrize("n", [1, 100, 256, 257, 511, 512, 16000, 16001])
def test_mask_of_ones_reconstructs_input(n):
    cfg = STFTConfig()
    x = torch.randn(2, n, generator=torch.Generator().manual_seed(n))
    spec = stft(x, cfg)
    assert spec.shape == (2, num_frames(n, cfg), 257)
    y = istft(spec * torch.ones(spec.shape), cfg, n)
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-4


def test_factorize_pads_awkward_sizes():
    f = mpo.factorize(257, 4)
    assert len(f) == 4 and math.prod(f) >= 257 and math.prod(f) <= 1.1 * 257
    assert mpo.factorize(256, 4) == (4, 4, 4, 4)
    assert mpo.out_factors(1024, 4)[0] == 4  # the gate index is the first factor
    for n in range(2, 6):
        assert math.prod(mpo.factorize(257, n)) >= 257


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_exact_reconstruction_at_full_bond_dimension(n):
    torch.manual_seed(n)
    w = torch.randn(64, 37, dtype=torch.float64)
    fi, fo = mpo.factorize(37, n), mpo.out_factors(64, n)
    cores = mpo.decompose(w, fi, fo, max(mpo.full_bond_dims(fi, fo)))
    assert [tuple(c.shape) for c in cores] == mpo.core_shapes(fi, fo, max(mpo.full_bond_dims(fi, fo)))
    assert torch.allclose(mpo.reconstruct(cores, 64, 37), w, atol=1e-10)


def test_truncation_error_falls_as_bond_dimension_grows():
    torch.manual_seed(0)
    w = torch.randn(256, 64, dtype=torch.float64) @ torch.randn(64, 257, dtype=torch.float64)
    fi, fo = mpo.factorize(257, 4), mpo.out_factors(256, 4)
    errs = [float((mpo.reconstruct(mpo.decompose(w, fi, fo, d), 256, 257) - w).norm() / w.norm())
            for d in (1, 2, 4, 8, 16, 32, 64, 128, 240)]
    assert all(b <= a + 1e-9 for a, b in zip(errs, errs[1:]))
    assert errs[0] > 0.5 and errs[-2] < errs[0] / 2 and errs[-1] < 1e-8  # 240 = full bond


def test_parameter_count_matches_formula():
    fi, fo = (3, 5, 6, 3), (4, 4, 8, 8)
    d = [16, 15, 15]
    dims = [1] + mpo.bond_dims(fi, fo, d) + [1]
    formula = sum(dims[k] * fi[k] * fo[k] * dims[k + 1] for k in range(4))
    assert mpo.num_params(fi, fo, d) == formula
    cores = mpo.decompose(torch.randn(1024, 257), fi, fo, d)
    assert sum(c.numel() for c in cores) == formula


@pytest.mark.parametrize("rate", [5, 10, 20, 50, 100])
def test_bond_solver_reaches_target_rate(rate):
    shapes = [(1024, 257), (1024, 256), (1024, 256), (1024, 256)]
    dims = mpo.solve_bond_dims(shapes, 4, rate)
    got = mpo.mpo_rate(shapes, 4, dims)
    assert abs(got / rate - 1) <= 0.02  # claimed rates must hold by parameter count (issue 4: within 5 %)


@pytest.mark.parametrize("n", [3, 4, 5])
@pytest.mark.parametrize("rate", [5, 20, 100])
def test_mountain_profile_reaches_the_rate_with_the_largest_bonds_in_the_middle(n, rate):
    shapes = [(1024, 257), (1024, 256), (1024, 256), (1024, 256)]
    dims = mpo.solve_bond_dims(shapes, n, rate, "mountain")
    assert abs(mpo.mpo_rate(shapes, n, dims) / rate - 1) <= 0.05
    uniform = mpo.solve_bond_dims(shapes, n, rate)
    assert dims != uniform
    if n >= 4:  # three bonds or more: rises to the middle, falls again
        middle = max(dims[1:-1])
        assert middle >= 2 * dims[0] and middle >= 2 * dims[-1]


def test_bond_profile_is_a_model_setting_kept_out_of_old_layouts():
    from se_app.model import MaskNet, ModelConfig

    plain = ModelConfig(kind="mpo", mpo_rate=20)
    assert "bond_profile" not in plain.to_dict() and MaskNet(plain).cfg.bonds == (16, 15, 16)
    m = MaskNet(ModelConfig(kind="mpo", mpo_rate=20, bond_profile="mountain"))
    assert m.cfg.bonds[1] > 2 * max(m.cfg.bonds[0], m.cfg.bonds[2])
    again = ModelConfig.from_dict(m.cfg.to_dict())
    assert again == m.cfg and MaskNet(again).cfg.bonds == m.cfg.bonds
    with pytest.raises(ValueError, match="bond profile"):
        MaskNet(ModelConfig(kind="mpo", mpo_rate=20, bond_profile="valley"))
