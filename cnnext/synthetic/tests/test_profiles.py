# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.synthetic import ExtinctionProfiles, mean_dust_density, random_profiles


def test_profiles_shape_monotonic_and_reproducible():
    p = random_profiles(50, l=280.0, b=0.0, seed=3)
    assert p.cumulative.shape == (50, 1201)
    assert p.distances[0] == 0.0 and p.distances[-1] == pytest.approx(12.0)
    assert np.all(p.cumulative[:, 0] == 0.0)
    assert np.all(np.diff(p.cumulative, axis=1) >= 0)
    np.testing.assert_array_equal(random_profiles(50, l=280.0, b=0.0, seed=3).cumulative,
                                  p.cumulative)
    assert not np.array_equal(random_profiles(50, seed=4).cumulative, p.cumulative)
    for key in ("sigma", "outer_scale", "beta", "amplitude", "n_clouds"):
        assert len(p.params[key]) == 50
    assert 0.5 <= p.params["sigma"].min() and p.params["sigma"].max() <= 2.0
    assert set(np.unique(p.params["n_clouds"])) <= {0, 1, 2, 3}


def test_total_extinction_spread():
    # real plane sightlines range from a few to >> 20 mag at 10 kpc
    total = random_profiles(2000, l=280.0, b=0.0, seed=1).total(10.0)
    assert total.min() < 0.8
    assert total.max() > 30.0
    assert 3.0 < np.median(total) < 15.0


def test_fixed_hyperparameters_narrow_the_spread():
    total = random_profiles(300, seed=2, sigma=(1.0, 1.0), amplitude=(1.0, 1.0),
                            n_clouds=(0, 0)).total(10.0)
    assert total.max() / total.min() < 6
    # the mean density integrates to the mean of the log-normal profiles
    mean = np.sum(mean_dust_density(280.0, 0.0, np.arange(1000) * 0.01 + 0.005) * 0.01)
    assert np.mean(total) == pytest.approx(mean, rel=0.15)


def test_clouds_add_their_extinction():
    base = dict(seed=5, sigma=(0.5, 0.5), amplitude=(0.2, 0.2), cloud_width=(0.01, 0.01),
                cloud_distance=(2.0, 2.0), cloud_av=(5.0, 5.0))
    with_cloud = random_profiles(20, n_clouds=(1, 1), **base)
    jump = with_cloud.at([2.1])[:, 0] - with_cloud.at([1.9])[:, 0]
    assert np.all(jump > 5.0 * 0.99)


def test_latitude_lowers_extinction():
    kw = dict(seed=6, n_clouds=(0, 0))
    plane = random_profiles(200, b=0.0, **kw).total(10.0)
    high = random_profiles(200, b=5.0, **kw).total(10.0)
    assert np.median(high) < 0.5 * np.median(plane)


def test_at_interpolates_and_per_profile_distances():
    p = ExtinctionProfiles([0.0, 1.0, 2.0], [[0.0, 1.0, 3.0], [0.0, 2.0, 2.0]])
    np.testing.assert_allclose(p.at([0.5, 2.5]), [[0.5, 3.0], [1.0, 2.0]])
    np.testing.assert_allclose(p.at([[1.5], [0.25]]), [[2.0], [0.5]])
    np.testing.assert_allclose(p.nodes([1.0]), [[1.0], [2.0]])
    assert len(p[1]) == 1
    # a grid that starts after 0 scales linearly to zero
    q = ExtinctionProfiles([0.1, 0.2], [[1.0, 2.0]])
    np.testing.assert_allclose(q.at([0.05]), [[0.5]])
    with pytest.raises(ValueError, match="shape"):
        p.at(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="increasing"):
        ExtinctionProfiles([0.0, 0.0], [[0.0, 0.0]])


def test_random_profiles_arguments():
    p = random_profiles(3, l=[280.0, 290.0, 300.0], b=[0.0, 1.0, -1.0], seed=1,
                        max_distance=5.0, step=0.05)
    assert p.cumulative.shape == (3, 101)
    assert p.hyper["step"] == 0.05
    with pytest.raises(TypeError, match="unknown profile hyperparameters"):
        random_profiles(2, sigmaa=(1, 2))
    with pytest.raises(ValueError, match="shape"):
        random_profiles(2, l=[1.0, 2.0, 3.0])
    assert len(random_profiles(0, seed=1)) == 0
