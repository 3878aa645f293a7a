# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of cnnext.neighbours: smoothing a map across neighbouring sightlines."""

import numpy as np
import pytest
from astropy_healpix import HEALPix

from cnnext.neighbours import neighbour_rows, smooth_neighbours
from cnnext.profiles import FLAG_FEW_STARS, ProfileMap

ORDER = 7
CENTRE = 121430
D = np.array([0.1, 0.2, 0.3, 0.4])


def _block():
    """A cell and its 8 neighbours (a 3 x 3 block), and the neighbours' cells."""
    nb = HEALPix(nside=2**ORDER, order="nested").neighbours([CENTRE])[:, 0]
    return np.concatenate([[CENTRE], nb]).astype(np.int64), nb.astype(np.int64)


def _map(cells, av, sigma=0.1, flags=None):
    av = np.asarray(av, float)
    return ProfileMap(cells=cells, order=ORDER, distances=D, av=av,
                      sigma=np.full(av.shape, sigma), n_stars=np.full(len(cells), 50),
                      flags=flags)


def _cloud_map():
    cells, _ = _block()
    av = np.zeros((cells.size, D.size))
    pm = _map(cells, av)
    pm.av[pm.lookup([CENTRE])[0], 1:] = 1.0  # 1 mag at 0.2 kpc in the centre only
    return pm


def test_weight_zero_is_identity():
    rng = np.random.default_rng(1)
    cells, _ = _block()
    pm = _map(cells, np.cumsum(rng.exponential(size=(cells.size, D.size)), axis=1))
    out = smooth_neighbours(pm, 0.0, iterations=3)
    assert out is not pm
    np.testing.assert_array_equal(out.av, pm.av)
    np.testing.assert_array_equal(out.sigma, pm.sigma)
    np.testing.assert_array_equal(out.cells, pm.cells)
    assert out.meta["neighbour_smoothing"] == {"weight": 0.0, "iterations": 3}


def test_single_cloud_spreads_expected_share():
    pm = _cloud_map()
    w = 0.4
    out = smooth_neighbours(pm, w)
    centre = pm.lookup([CENTRE])[0]
    # the centre keeps (1 - w) of its cloud (its neighbours have none)
    np.testing.assert_allclose(out.av[centre], [0, 1 - w, 1 - w, 1 - w], atol=1e-6)
    rows = neighbour_rows(pm)
    for r in range(len(pm)):
        if r == centre:
            continue
        n = int((rows[r] >= 0).sum())
        share = w / n if centre in rows[r] else 0.0
        # the cloud stays at its distance: nothing before 0.2 kpc
        np.testing.assert_allclose(out.av[r], [0, share, share, share], atol=1e-6)
    # the input map is not modified
    assert pm.av[:, -1].sum() == pytest.approx(1.0)


def test_monotonic_and_uniform_totals_kept():
    rng = np.random.default_rng(2)
    cells, _ = _block()
    av = np.cumsum(rng.exponential(size=(cells.size, D.size)), axis=1)
    out = smooth_neighbours(_map(cells, av), 0.7, iterations=2)
    assert np.all(np.diff(out.av, axis=1) >= 0)
    assert np.all(out.av[:, 0] >= 0)
    # the same profile everywhere is left as it is
    same = np.tile([0.1, 0.5, 0.5, 2.0], (cells.size, 1))
    np.testing.assert_allclose(smooth_neighbours(_map(cells, same), 0.5).av, same,
                               rtol=1e-6)
    # sigma: the mix of fully correlated errors, between the cell's and its neighbours'
    pm = _map(cells, same, sigma=0.2)
    pm.sigma[pm.lookup([CENTRE])[0]] = 0.6
    out = smooth_neighbours(pm, 0.5)
    np.testing.assert_allclose(out.sigma[pm.lookup([CENTRE])[0]], 0.4, rtol=1e-6)


def test_nan_and_flagged_cells_untouched_and_not_used():
    pm = _cloud_map()
    _, nb = _block()
    nan_row, flag_row = pm.lookup(nb[:2])
    pm.av[nan_row] = np.nan
    pm.flags[flag_row] = FLAG_FEW_STARS
    pm.av[flag_row] = 5.0  # a flagged cell's profile, not to be lent
    out = smooth_neighbours(pm, 0.5)
    assert np.isnan(out.av[nan_row]).all()
    np.testing.assert_array_equal(out.av[flag_row], pm.av[flag_row])
    np.testing.assert_array_equal(out.flags, pm.flags)
    # the centre's usable neighbours have no dust: only its own cloud, halved
    centre = pm.lookup([CENTRE])[0]
    np.testing.assert_allclose(out.av[centre], [0, 0.5, 0.5, 0.5], atol=1e-6)
    assert np.isfinite(out.av[[r for r in range(len(pm)) if r != nan_row]]).all()


def test_isolated_cell_untouched():
    far = _map([CENTRE, 0], [[0.0, 1.0, 1.0, 2.0], [0.0, 0.0, 3.0, 3.0]])
    out = smooth_neighbours(far, 1.0)
    np.testing.assert_allclose(out.av, far.av)


@pytest.mark.parametrize("weight", [-0.1, 1.5, np.nan, "a lot", None, True])
def test_bad_weight(weight):
    with pytest.raises(ValueError, match="weight"):
        smooth_neighbours(_cloud_map(), weight)


@pytest.mark.parametrize("iterations", [0, 1.5, -1])
def test_bad_iterations(iterations):
    with pytest.raises(ValueError, match="iterations"):
        smooth_neighbours(_cloud_map(), 0.5, iterations=iterations)


def test_empty_map():
    pm = ProfileMap(cells=[], order=ORDER, distances=D, av=np.zeros((0, 4)),
                    sigma=np.zeros((0, 4)), n_stars=[])
    assert len(smooth_neighbours(pm, 0.5)) == 0
