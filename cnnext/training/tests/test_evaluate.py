# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.plotting import (
    plot_training_history,
    plot_validation_metrics,
    plot_validation_profiles,
)
from cnnext.training.evaluate import profile_metrics


def test_profile_metrics_numbers():
    d = np.arange(1, 11) * 1.0
    truth = np.tile(np.arange(1, 11) * 0.5, (4, 1))
    pred = truth.copy()
    pred[0] += 0.5  # one example off by 0.5 mag everywhere
    sigma = np.full_like(truth, 0.25)
    m = profile_metrics(truth, pred, sigma, d, report_distances=(2.0, 4.0, 20.0))
    assert m["n"] == 4
    np.testing.assert_allclose(m["bias"], 0.125)
    np.testing.assert_allclose(m["rms"], 0.25)
    np.testing.assert_allclose(m["coverage68"], 0.75)
    assert m["coverage68_all"] == 0.75
    assert set(m["at"]) == {"2", "4"}  # 20 kpc is beyond the last node
    # truth at 2 kpc is 1.0 mag: relative errors 0.5, 0, 0, 0
    assert m["at"]["2"]["median_rel_err"] == 0.0
    assert m["at"]["4"]["bias"] == pytest.approx(0.125)


def test_relative_error_floor():
    d = np.array([1.0, 2.0])
    truth = np.array([[0.0, 0.01]])
    pred = np.array([[0.05, 0.06]])
    m = profile_metrics(truth, pred, np.ones_like(pred), d, report_distances=(1, 2),
                        floor=0.1)
    assert m["at"]["1"]["median_rel_err"] == pytest.approx(0.5)
    assert m["at"]["2"]["median_rel_err"] == pytest.approx(0.5)


def test_shape_check():
    with pytest.raises(ValueError, match="must all be"):
        profile_metrics(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4)), [1, 2, 3])


def test_plots(tmp_path):
    d = np.arange(1, 21) * 0.5
    rng = np.random.default_rng(0)
    truth = np.cumsum(rng.uniform(0, 0.3, size=(6, 20)), axis=1)
    pred = truth * 1.1
    sigma = 0.1 * truth + 0.05
    png = plot_validation_profiles(d, truth, pred, sigma, np.array([0, 0, 1, 1, 2, 2]),
                        ["a", "b", "c"], tmp_path / "p.png", title="t")
    assert png.stat().st_size > 1000
    m = profile_metrics(truth, pred, sigma, d)
    png = plot_validation_metrics({"inside": m, "outside": m}, tmp_path / "m.png")
    assert png.stat().st_size > 1000
    assert plot_validation_profiles(d, truth, pred, sigma, np.full(6, 5), ["a"],
                                    tmp_path / "x.png") is None
    history = [{"epoch": k, "train_loss": 3.0 / k, "val_loss": 2.5 / k, "val_rmse": 1.0 / k}
               for k in range(1, 5)]
    assert plot_training_history(history, tmp_path / "h.png").stat().st_size > 1000


def test_profile_metrics_structure():
    from cnnext.metrics import density_correlation, ring_share

    d = np.round(np.arange(1, 101) * 0.1, 10)
    rng = np.random.default_rng(1)
    truth = np.cumsum(rng.exponential(0.1, (30, 100)), axis=1)
    pred = truth + np.where(d >= 3.4 - 1e-9, 0.3, 0.0)  # a ring at 3.4 kpc
    m = profile_metrics(truth, pred, np.full_like(pred, 0.2), d)
    s = m["structure"]
    assert set(s) >= {"100pc", "300pc", "500pc", "n", "ring_share_random"}
    assert s["100pc"]["ring_share"] == round(ring_share(pred, truth, d), 4) == 1.0
    assert s["300pc"]["density_r"] == round(density_correlation(pred, truth, d, scale=0.3), 4)
    assert "fog_index" not in s
    # nodes too coarse for 100 pc smoothing: no structure, no error
    coarse = profile_metrics(truth[:, 9::10], pred[:, 9::10], np.ones((30, 10)), d[9::10])
    assert coarse["structure"] == {}
