# Licensed under a 3-clause BSD style license - see LICENSE.rst
import math

import numpy as np
import pytest
import torch

from cnnext.training.network import (
    CompactCNN,
    ConvProfileHead,
    PaperCNN,
    build_network,
    count_parameters,
    density_mse,
    gaussian_nll,
    profile_loss,
)


@pytest.mark.parametrize("arch, options", [("compact", {}),
                                           ("compact", {"head": "conv"}),
                                           ("paper", {"dense": (64, 32)})])
def test_outputs_monotone_and_positive(arch, options):
    torch.manual_seed(0)
    net = build_network(arch, (2, 16, 16), 30, **options).eval()
    x = torch.rand(5, 2, 16, 16) * 3
    av, sigma = net(x)
    assert av.shape == sigma.shape == (5, 30)
    assert torch.all(av[:, 0] >= 0)
    assert torch.all(av.diff(dim=1) >= 0)
    assert torch.all(sigma >= net.head.sigma_floor)


def test_conv_head_decodes_along_the_distance():
    """The same filters at every distance: a feature moves dust along the sightline."""
    torch.manual_seed(1)
    # 30 nodes from a coarse grid of 8 (the last two coarse nodes' overhang is cut)
    head = ConvProfileHead(6, 30, width=5, kernel=3, coarse=4)
    assert head.n_coarse == 8 and head.output_bias.shape == (60,)
    av, sigma = head(torch.randn(4, 6))
    assert av.shape == sigma.shape == (4, 30)
    # one coarse channel set at node k changes the output only within reach of the
    # upsampling and the two convolutions: 4 nodes, then +-1 node twice
    with torch.no_grad():
        head.seed.weight.zero_()
        head.seed.bias.zero_()
        base = head.raw(torch.zeros(1, 6))
        head.seed.bias.view(5, 8)[:, 3] = 1.0
        moved = (head.raw(torch.zeros(1, 6)) - base).view(2, 30).abs().sum(0)
    touched = np.flatnonzero(moved.numpy() > 0)
    assert touched.min() >= 12 - 2 and touched.max() <= 15 + 2
    with pytest.raises(ValueError, match="odd kernel"):
        ConvProfileHead(6, 30, kernel=4)
    with pytest.raises(ValueError, match="unknown head 'deep'"):
        CompactCNN((2, 16, 16), 30, head="deep")
    with pytest.raises(ValueError, match="'conv' head only"):
        CompactCNN((2, 16, 16), 30, head_options={"width": 4})


def test_paper_network_size():
    # C5x5.12-P2-{D3072}x2-D2048 on 2x64x64 CMDs, 100 nodes x (mean, sigma)
    n = count_parameters(PaperCNN((2, 64, 64), 100))
    expected = (2 * 12 * 25 + 12) + (12 * 32 * 32 * 3072 + 3072) + (3072 * 3072 + 3072) \
        + (3072 * 2048 + 2048) + (2048 * 200 + 200)
    assert n == expected
    assert n > 50_000_000


def test_compact_is_small():
    # float32 weights: < 5 M weights ships in < 20 MB, and >= 10x fewer than the paper's
    n = count_parameters(CompactCNN((2, 64, 64), 100))
    assert n < 5_000_000
    assert 10 * n <= count_parameters(PaperCNN((2, 64, 64), 100))
    # more convolutions after the pooling, at the same resolution
    net = CompactCNN((2, 64, 64), 100, channels=(12, 16), hidden=64)
    assert net.dense[0].in_features == 16 * 32 * 32


def test_bad_shapes_and_names():
    with pytest.raises(ValueError, match="must be even"):
        CompactCNN((2, 63, 64), 10)
    with pytest.raises(ValueError, match="at least one convolution width"):
        CompactCNN((2, 64, 64), 10, channels=())
    with pytest.raises(ValueError, match="unknown network architecture 'big'"):
        build_network("big", (2, 64, 64), 10)


def test_gaussian_nll_values():
    av = torch.tensor([[1.0, 2.0]])
    sigma = torch.tensor([[0.5, 2.0]])
    y = torch.tensor([[1.5, 2.0]])
    expected = np.mean([0.5 * (math.log(0.25) + 1.0 + math.log(2 * math.pi)),
                        0.5 * (math.log(4.0) + 0.0 + math.log(2 * math.pi))])
    assert float(gaussian_nll(av, sigma, y, beta=0)) == pytest.approx(expected, rel=1e-6)
    # beta weights each term by sigma^(2 beta)
    weighted = np.mean([0.5 * (math.log(0.25) + 1.0 + math.log(2 * math.pi)) * 0.5,
                        0.5 * (math.log(4.0) + math.log(2 * math.pi)) * 2.0])
    assert float(gaussian_nll(av, sigma, y, beta=0.5)) == pytest.approx(weighted, rel=1e-6)


def test_density_loss():
    truth = torch.cumsum(torch.full((2, 9), 0.1), dim=1)
    # the dust of bin 3 moved into bin 4: the cumulative is off by 0.1 mag at one
    # node only, the increments by -0.1 and +0.1 mag (in units of 0.1 mag)
    moved = truth.clone()
    moved[:, 3] -= 0.1
    assert float(density_mse(moved, truth)) == pytest.approx(2 / 9, rel=1e-5)
    # averaged over 3 bins, the move is nearly invisible
    assert float(density_mse(moved, truth, bins=3)) == pytest.approx(
        2 * (1 / 3) ** 2 / 9, rel=1e-5)
    with pytest.raises(ValueError, match="odd"):
        density_mse(moved, truth, bins=2)
    sigma = torch.full_like(truth, 0.1)
    base = gaussian_nll(moved, sigma, truth)
    assert float(profile_loss(moved, sigma, truth)) == float(base)
    assert float(profile_loss(moved, sigma, truth, density_weight=0.5)) == pytest.approx(
        float(base) + 0.5 * 2 / 9, rel=1e-5)

