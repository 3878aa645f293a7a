# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of the per-sightline observation estimate (cnnext.observation)."""

import numpy as np
import pytest

from cnnext.observation import (
    DESCRIPTORS,
    REFERENCE,
    descriptor_array,
    estimate_cells,
    estimate_observation,
)
from cnnext.synthetic import GalaxyModel, ObservingConditions, PhotometricModel, observe


@pytest.fixture(scope="module")
def intrinsic():
    return GalaxyModel().sample(280.0, 2.0, 0.2, faint_limit=17.5, seed=11)


def _as_groups(table):
    return np.zeros(len(table), np.int64)


@pytest.mark.parametrize("offset", [-1.0, 0.0, 0.6])
def test_mock_depth_is_recovered(intrinsic, offset):
    # the same estimator on mock stars gives back the mock's S/N-10 magnitudes and a
    # count peak that moves with them
    base = PhotometricModel()
    pm = PhotometricModel(m10={b: base.m10[b] + offset for b in ("J", "H", "Ks")})
    obs = observe(intrinsic, 1.0, model=pm, seed=3)
    values, n_used = estimate_observation(obs, _as_groups(obs), 1)
    np.testing.assert_allclose(values[0, :3], [pm.m10[b] for b in ("J", "H", "Ks")],
                               atol=0.1)
    nominal = observe(intrinsic, 1.0, model=base, seed=3)
    ref, _ = estimate_observation(nominal, _as_groups(nominal), 1)
    np.testing.assert_allclose(values[0, 3:] - ref[0, 3:], offset, atol=0.25)
    assert np.all(n_used > 1000)


def test_upper_limits_and_nan_are_ignored(intrinsic):
    obs = observe(intrinsic, 0.5, seed=4)
    upper_j = np.array([q[0] == "U" for q in np.asarray(obs["ph_qual"]).astype("U3")])
    assert upper_j.any()
    values, n_used = estimate_observation(obs, _as_groups(obs), 1)
    # upper limits (ph_qual U) have a magnitude but no error: not counted
    assert n_used[0, 0] == len(obs) - upper_j.sum()
    obs["e_J"][:50] = np.nan
    _, n_nan = estimate_observation(obs, _as_groups(obs), 1)
    assert n_nan[0, 0] == n_used[0, 0] - np.sum(~upper_j[:50])
    assert np.all(np.isfinite(values))


def test_too_few_stars_gives_nan_then_parent_pools():
    pm = PhotometricModel()
    rng = np.random.default_rng(2)
    n = np.array([2000, 2000, 2000, 10])
    stars = {"cell": np.repeat(np.array([40, 41, 42, 43]), n)}
    for band in ("J", "H", "Ks"):
        stars[band] = rng.uniform(9.0, 17.0, n.sum())
        stars[f"e_{band}"] = pm.sigma(band, stars[band])
    alone, _ = estimate_observation(stars, np.searchsorted([40, 41, 42, 43],
                                                           stars["cell"]), 4)
    assert np.isnan(alone[3]).all() and np.isfinite(alone[:3]).all()
    values, pooled = estimate_cells(stars, np.array([40, 43]), 7)
    assert pooled.tolist() == [0, 1]
    np.testing.assert_allclose(values[1, :3], [15.8, 15.1, 14.3], atol=0.1)
    # no pooling allowed: the sparse cell stays unknown
    values, pooled = estimate_cells(stars, np.array([43]), 7, max_pool=0)
    assert np.isnan(values).all()


def test_descriptor_array_offsets_and_order():
    values = np.array([[REFERENCE[n] + 0.1 * k for k, n in enumerate(DESCRIPTORS)]])
    np.testing.assert_allclose(descriptor_array(values)[0], 0.1 * np.arange(6), atol=1e-6)
    np.testing.assert_allclose(descriptor_array(values, ("peak_Ks", "m10_J"))[0],
                               [0.5, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="unknown observation descriptors"):
        descriptor_array(values, ("m10_K",))


def test_observing_conditions_cover_their_ranges():
    cond = ObservingConditions()
    rng = np.random.default_rng(0)
    base = PhotometricModel()
    draws = [cond.draw(rng, base) for _ in range(400)]
    offs = np.array([[d.m10[b] - base.m10[b] for b in ("J", "H", "Ks")] for d in draws])
    assert offs.min() < -0.9 and offs.max() > 0.7
    # correlated between bands, with some independent scatter
    assert np.corrcoef(offs[:, 0], offs[:, 2])[0, 1] > 0.8
    assert 0.05 < np.std(offs[:, 0] - offs[:, 2]) < 0.4
    rates = np.array([d.flag_rate for d in draws])
    assert rates.min() >= 0 and rates.max() <= 0.1
    with pytest.raises(ValueError, match="range must be"):
        ObservingConditions(width=(0.3, 0.1))
