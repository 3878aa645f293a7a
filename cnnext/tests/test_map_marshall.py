# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
CNNExtinctionMap against a real dustmaps map: `dustmaps.marshall.MarshallQuery` on a
synthetic ``marshall.h5`` (the real 801 x 81 grid) written by the test.

Both maps hold the same uniform profile (A_Ks = 0.1 mag/kpc x d at the same nodes),
so the same coordinates must give the same shapes, scalars and numbers.
"""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext import CNNExtinctionMap
from cnnext.exceptions import CnnextWarning
from cnnext.extinction import ExtinctionLaw
from cnnext.healpix import lonlat_to_cells
from cnnext.profiles import ProfileMap
from cnnext.testing.dustmaps import MARSHALL_DISTANCES, write_marshall_h5

pytestmark = pytest.mark.filterwarnings(
    # dustmaps' own decorator sets ndarray.shape in place (deprecated in NumPy 2.5)
    "ignore::DeprecationWarning:dustmaps.*")

RATE, SIGMA = 0.1, 0.05
LAW = ExtinctionLaw("G23", 3.1)
L_RANGE, B_RANGE = (275.0, 285.0), (-3.0, 3.0)


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dustmaps' missing-config warning at import
        from dustmaps.marshall import MarshallQuery

    tmp = tmp_path_factory.mktemp("marshall")
    marshall = MarshallQuery(map_fname=str(write_marshall_h5(tmp / "marshall.h5",
                                                             rate=RATE, sigma=SIGMA)))
    l, b = np.meshgrid(np.linspace(*L_RANGE, 201), np.linspace(*B_RANGE, 121))
    cells = np.unique(lonlat_to_cells(l.ravel(), b.ravel(), 7))
    ks = LAW.coefficients["Ks"]
    av = np.broadcast_to(RATE * MARSHALL_DISTANCES / ks, (cells.size, MARSHALL_DISTANCES.size))
    pm = ProfileMap(cells=cells, order=7, distances=MARSHALL_DISTANCES, av=av,
                    sigma=np.full(av.shape, SIGMA / ks), n_stars=np.full(cells.size, 500),
                    meta={"extinction_law": LAW.to_dict()})
    ours = CNNExtinctionMap(map_fname=pm.write(tmp / "cnn.fits"))
    return marshall, ours


def sky(shape, *, seed=0, d_max=12.0):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    l = rng.uniform(L_RANGE[0] + 0.5, L_RANGE[1] - 0.5, n).reshape(shape)
    b = rng.uniform(B_RANGE[0] + 0.5, B_RANGE[1] - 0.5, n).reshape(shape)
    d = rng.uniform(0.0, d_max, n).reshape(shape)
    return SkyCoord(l * u.deg, b * u.deg, distance=d * u.kpc, frame="galactic")


@pytest.mark.parametrize("shape", [(), (1,), (6,), (3, 4), (2, 3, 2)])
@pytest.mark.parametrize("frame", ["galactic", "icrs"])
def test_same_shapes_and_values(maps, shape, frame):
    marshall, ours = maps
    c = sky(shape, seed=len(shape)).transform_to(frame)
    a_m = marshall(c)
    a_c = ours(c, band="Ks")
    assert np.shape(a_m) == np.shape(a_c) == shape
    assert np.ndim(a_m) == np.ndim(a_c)
    if shape == ():
        assert np.isscalar(a_m) and np.isscalar(a_c)
    # identical interpolation rules (float32 storage on both sides)
    np.testing.assert_allclose(a_c, a_m, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(a_c, RATE * np.minimum(c.galactic.distance.kpc,
                                                      MARSHALL_DISTANCES[-1]), rtol=2e-6)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_return_sigma_like_marshall(maps, shape):
    marshall, ours = maps
    # at and beyond the first node both interpolate sigma linearly between nodes;
    # below it Marshall keeps sigma of the first node, cnnext scales it to zero
    # like the extinction itself (documented difference)
    c = sky(shape, seed=7)
    c = SkyCoord(c.l, c.b, distance=np.maximum(c.distance.kpc, 0.5) * u.kpc,
                 frame="galactic")
    out_m = marshall(c, return_sigma=True)
    out_c = ours(c, return_sigma=True, band="Ks")
    assert isinstance(out_m, (tuple, list)) and isinstance(out_c, tuple)
    assert len(out_m) == len(out_c) == 2
    for x_m, x_c in zip(out_m, out_c):
        assert np.shape(x_m) == np.shape(x_c) == shape
    np.testing.assert_allclose(out_c[1], out_m[1], rtol=2e-6)


def test_interpolation_rules_like_marshall(maps):
    marshall, ours = maps
    d = np.array([0.0, 0.1, 0.25, 0.5, 0.7, 1.0, 3.3, 7.9, 8.0, 8.1, 50.0])
    c = SkyCoord(np.full(d.size, 280.0) * u.deg, np.zeros(d.size) * u.deg,
                 distance=d * u.kpc, frame="galactic")
    np.testing.assert_allclose(ours(c, band="Ks"), marshall(c), rtol=2e-6, atol=1e-7)


def test_nan_outside_both_footprints(maps):
    marshall, ours = maps
    c = SkyCoord([280.0, 280.0] * u.deg, [0.0, 30.0] * u.deg, distance=[1.0, 1.0] * u.kpc,
                 frame="galactic")
    a_m = marshall(c)
    with pytest.warns(CnnextWarning, match="outside the map's footprint"):
        a_c = ours(c, band="Ks")
    np.testing.assert_array_equal(np.isnan(a_m), [False, True])
    np.testing.assert_array_equal(np.isnan(a_c), [False, True])


def test_without_distance_differs_by_design(maps):
    marshall, ours = maps
    c = SkyCoord([280.0, 281.0] * u.deg, [0.0, 1.0] * u.deg, frame="galactic")
    with pytest.raises(ValueError, match="distance"):
        marshall(c)
    # cnnext answers like Bayestar: the whole profile at the map's distances
    prof = ours(c, band="Ks")
    assert prof.shape == (2, MARSHALL_DISTANCES.size)
    np.testing.assert_allclose(prof, np.broadcast_to(RATE * MARSHALL_DISTANCES, (2, 16)),
                               rtol=2e-6)
