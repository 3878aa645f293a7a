# Licensed under a 3-clause BSD style license - see LICENSE.rst
import astropy.units as u
import numpy as np
import pytest

from cnnext import compare, metrics
from cnnext.metrics import (
    density,
    density_correlation,
    error_metrics,
    fog_index,
    mean_density_ratio,
    ring_share,
    structure_metrics,
    structure_summary,
)

D = np.round(np.arange(1, 101) * 0.1, 10)


def _field(n=60, seed=0):
    """Cumulative profiles of independent random densities (mag/kpc) on D."""
    rho = np.random.default_rng(seed).exponential(1.0, (n, D.size))
    return np.cumsum(rho * 0.1, axis=1), rho


def test_compare_reexports_the_scores():
    assert compare.error_metrics is metrics.error_metrics
    assert compare.relative_error is metrics.relative_error
    assert compare.REL_ERR_FLOOR == metrics.REL_ERR_FLOOR == 0.1
    assert metrics.REPORT_DISTANCES == (1.0, 2.0, 4.0, 6.0, 8.0)


def test_error_metrics_default_distances():
    truth, _ = _field(4)
    t = error_metrics(truth, np.full_like(truth, 0.1), truth, D)
    assert t["distance"].to_value(u.kpc).tolist() == list(metrics.REPORT_DISTANCES)
    assert np.all(t["median_rel_err"] == 0)


def test_density_is_the_binned_derivative():
    av, rho = _field(3)
    got, d = density(av, D, d_max=8.0)
    np.testing.assert_allclose(got, rho[:, :80])
    np.testing.assert_allclose(d, D[:80])
    # a boxcar of 3 bins with zero padding outside the nodes
    got3, _ = density(av, D, scale=0.3, d_max=10.0)
    padded = np.pad(rho, ((0, 0), (1, 1)))
    np.testing.assert_allclose(got3, (padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]) / 3)


def test_density_rejects_even_boxcar_and_bad_shape():
    av, _ = _field(2)
    with pytest.raises(ValueError, match="odd number of bins"):
        density(av, D, scale=0.2)
    with pytest.raises(ValueError, match="av must be"):
        density(av[:, :50], D)


def test_correlation_and_ring_share_numbers():
    truth, rho = _field(50)
    assert density_correlation(truth, truth, D) == pytest.approx(1.0)
    # an unrelated prediction: r near 0
    other, _ = _field(50, seed=1)
    assert abs(density_correlation(other, truth, D)) < 0.05
    # independent errors: share about 1 / n
    share = ring_share(other, truth, D)
    assert 0.5 / 50 < share < 2.0 / 50
    # the same extra dust at 3.4 kpc on every sightline: a pure ring
    ring = truth + np.where(D >= 3.4 - 1e-9, 0.3, 0.0)
    assert ring_share(ring, truth, D) == pytest.approx(1.0)
    assert mean_density_ratio(ring, truth, D) > 3
    assert mean_density_ratio(truth, truth, D) == pytest.approx(1.0)


def test_density_correlation_within_a_range_of_distances():
    truth, rho = _field(50)
    other, _ = _field(50, seed=1)
    # right beyond 4 kpc, unrelated before: r by range says where the map is right
    half = np.where(D > 4.0 + 1e-9, truth - truth[:, [39]] + other[:, [39]], other)
    assert density_correlation(half, truth, D, d_min=4.0) == pytest.approx(1.0)
    assert abs(density_correlation(half, truth, D, d_max=4.0)) < 0.1
    whole = density_correlation(half, truth, D)
    assert 0.2 < whole < 0.9
    # the range is taken after smoothing over the whole sightline
    smoothed = density_correlation(half, truth, D, scale=0.3, d_min=4.1)
    assert smoothed == pytest.approx(1.0)
    assert density_correlation(half, truth, D, scale=0.3, d_min=3.9) < 1.0


def test_non_finite_sightlines_left_out():
    truth, _ = _field(20)
    pred = truth + np.where(D >= 2.0 - 1e-9, 0.2, 0.0)
    with_nan = pred.copy()
    with_nan[3] = np.nan
    keep = np.arange(20) != 3
    assert ring_share(with_nan, truth, D) == pytest.approx(ring_share(pred[keep], truth[keep], D))
    assert np.isnan(density_correlation(np.full_like(truth, np.nan), truth, D))


def _sky(n_l=40, n_b=5):
    lon, lat = np.meshgrid(np.linspace(280, 300, n_l), np.linspace(-1, 1, n_b))
    return lon.ravel(), lat.ravel()


def test_fog_index_sees_radial_and_tangential_stretching():
    lon, lat = _sky()
    rng = np.random.default_rng(3)
    field = rng.normal(size=(lon.size, D.size))
    truth = np.cumsum(np.exp(field), axis=1) * 0.1
    same = fog_index(truth, truth, D, lon, lat)
    assert float(same) == pytest.approx(1.0)
    # features three bins long along the sightlines: fingers of God
    fingers = np.cumsum(np.exp(np.repeat(field[:, ::3], 3, axis=1)[:, :D.size]), axis=1) * 0.1
    f = fog_index(fingers, truth, D, lon, lat)
    assert f > 2 and f.radial_pred > 2 * f.radial_truth
    # features copied across neighbouring longitudes: stretched across the sightlines
    wide = field.reshape(5, 40, -1)
    wide = np.repeat(wide[:, ::4], 4, axis=1).reshape(lon.size, -1)
    f = fog_index(np.cumsum(np.exp(wide), axis=1) * 0.1, truth, D, lon, lat)
    assert f < 0.7 and f.tangential_pred > f.tangential_truth
    # large maps: a random subset of the pairs gives nearly the same lengths
    sub = fog_index(fingers, truth, D, lon, lat, max_pairs=3000)
    assert sub.tangential_truth == pytest.approx(
        fog_index(fingers, truth, D, lon, lat).tangential_truth, rel=0.2)
    with pytest.raises(ValueError, match="one value per sightline"):
        fog_index(truth, truth, D, lon[:-1], lat)


def test_structure_metrics_table_and_summary():
    lon, lat = _sky(20, 3)
    truth, _ = _field(lon.size)
    pred = truth + np.where(D >= 3.4 - 1e-9, 0.3, 0.0)
    t = structure_metrics(pred, truth, D, lon=lon, lat=lat)
    assert t["scale"].to_value(u.kpc).tolist() == list(metrics.STRUCTURE_SCALES)
    assert t.meta["n"] == lon.size
    assert t.meta["ring_share_random"] == pytest.approx(1 / lon.size)
    assert t["ring_share"][0] == pytest.approx(ring_share(pred, truth, D))
    assert t["density_r"][1] == pytest.approx(density_correlation(pred, truth, D, scale=0.3))
    assert np.isfinite(t.meta["fog_index"])
    s = structure_summary(t)
    assert set(s) >= {"100pc", "300pc", "500pc", "n", "fog_index", "fog_radial_pred"}
    assert s["300pc"]["ring_share"] == round(float(t["ring_share"][1]), 4)
    assert "fog_index" not in structure_metrics(pred, truth, D).meta


def test_blur_along_sightlines_keeps_the_column_and_makes_shared_rings():
    from cnnext.metrics import blur_along_sightlines, ring_share
    d = np.arange(1, 101) * 0.1
    rng = np.random.default_rng(4)
    # independent clouds: blurring them gives independent errors (few rings) ...
    dist = rng.uniform(1.0, 8.0, 200)
    independent = np.where(d[None] >= dist[:, None], 1.0, 0.0)
    blurred = blur_along_sightlines(independent, d, 0.3)
    np.testing.assert_allclose(blurred[:, -1], independent[:, -1])
    assert np.all(np.diff(blurred, axis=1) >= -1e-12)
    low = ring_share(blurred, independent, d)
    # ... clouds at the same distance on every sightline: the same blur is a ring
    shared = np.where(d[None] >= 3.0 + rng.normal(0, 0.05, 200)[:, None], 1.0, 0.0)
    high = ring_share(blur_along_sightlines(shared, d, 0.3), shared, d)
    assert low < 0.05 < 0.3 < high
    with pytest.raises(ValueError, match="sigma must be a positive"):
        blur_along_sightlines(shared, d, 0.0)
    with pytest.raises(ValueError, match="equally spaced"):
        blur_along_sightlines(shared[:, :3], np.array([0.1, 0.2, 0.4]), 0.1)
    with pytest.raises(ValueError, match=r"av must be \(n_sightlines, 100\)"):
        blur_along_sightlines(shared[0], d, 0.1)


def test_blur_along_sightlines_with_a_width_per_node():
    from scipy.ndimage import gaussian_filter1d

    from cnnext.metrics import blur_along_sightlines
    d = np.arange(1, 101) * 0.1
    rng = np.random.default_rng(5)
    av = np.cumsum(rng.exponential(0.1, (20, d.size)), axis=1)
    # one width: scipy's Gaussian filter of the increments, reflected at the ends
    expected = np.cumsum(gaussian_filter1d(np.diff(av, axis=1, prepend=0.0), 2.5,
                                           axis=1, mode="reflect"), axis=1)
    np.testing.assert_allclose(blur_along_sightlines(av, d, 0.25), expected, atol=1e-12)
    np.testing.assert_allclose(blur_along_sightlines(av, d, np.full(d.size, 0.25)),
                               expected, atol=1e-12)
    # a width that grows with distance: a far cloud is spread more than a near one,
    # each around its own distance, and no extinction is lost
    clouds = np.where(d >= 1.0, 1.0, 0.0) + np.where(d >= 6.0, 1.0, 0.0)
    blurred = blur_along_sightlines(clouds[None], d, 0.1 * d)[0]
    inc = np.diff(blurred, prepend=0.0)
    near, far = inc[:35], inc[35:]
    assert np.argmax(near) == 9 and np.argmax(far) + 35 == 59
    assert far.max() < near.max() / 3
    spread = [np.sqrt(np.sum(x * (np.arange(x.size) - np.argmax(x)) ** 2) / x.sum())
              for x in (near, far)]
    np.testing.assert_allclose(spread, [1.0, 6.0], rtol=0.1)  # 0.1 and 0.6 kpc
    np.testing.assert_allclose(blurred[-1], 2.0)
    with pytest.raises(ValueError, match=r"one per distance node \(100\)"):
        blur_along_sightlines(clouds[None], d, np.full(50, 0.1))
    with pytest.raises(ValueError, match="sigma must be a positive"):
        blur_along_sightlines(clouds[None], d, np.where(d > 5, 0.1, 0.0))
