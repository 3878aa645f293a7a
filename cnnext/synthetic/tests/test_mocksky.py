# Licensed under a 3-clause BSD style license - see LICENSE.rst
import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext.healpix import cell_centres, child_cells, lonlat_to_cells
from cnnext.photometry.base import PhotometrySource, validate_star_table
from cnnext.photometry.mock import MockSky as MockFromPhotometry
from cnnext.synthetic import MockSky


@pytest.fixture(scope="module")
def sky(galaxy):
    return MockSky(seed=3, galaxy=galaxy, n_clouds=60)


@pytest.fixture(scope="module")
def cells():
    return np.unique(lonlat_to_cells([285.0, 285.3, 290.0], [0.5, 0.5, -1.0], 7))


def test_is_a_photometry_source(sky):
    assert isinstance(sky, PhotometrySource)
    assert MockFromPhotometry is MockSky
    assert sky.key.startswith("mocksky-s3")
    # the key changes with any parameter: map-build caches never mix skies
    assert MockSky(seed=3, n_clouds=60, galaxy=sky.galaxy).key == sky.key
    assert MockSky(seed=3, n_clouds=60, galaxy=sky.galaxy, faint_limit=15.0).key != sky.key


def test_query_cells_schema_and_cells(sky, cells):
    stars = sky.query_cells(cells, 7)
    validate_star_table(stars)
    assert stars["cell"].dtype == np.int64
    assert set(np.unique(stars["cell"])) == set(cells)
    # the stars lie inside their cells
    np.testing.assert_array_equal(lonlat_to_cells(stars["l"], stars["b"], 7), stars["cell"])
    assert len(stars) > 3 * 5000


def test_deterministic_regardless_of_batching(galaxy, cells):
    one = MockSky(seed=3, galaxy=galaxy, n_clouds=60).query_cells(cells[:1], 7)
    fresh = MockSky(seed=3, galaxy=galaxy, n_clouds=60)
    allc = fresh.query_cells(cells[::-1], 7)
    part = allc[allc["cell"] == cells[0]]
    np.testing.assert_array_equal(np.asarray(part["Ks"]), np.asarray(one["Ks"]))
    other = MockSky(seed=4, galaxy=galaxy, n_clouds=60).query_cells(cells[:1], 7)
    assert len(other) != len(one) or not np.array_equal(other["Ks"], one["Ks"])


def test_other_orders(sky, cells):
    native = sky.query_cells(cells[:1], 7)
    children = child_cells(cells[:1], 7, 8)
    fine = sky.query_cells(children, 8)
    assert len(fine) == len(native)
    np.testing.assert_array_equal(np.sort(fine["cell"] >> 2), np.sort(native["cell"]))
    coarse = sky.query_cells(cells[:1] >> 2, 6)
    assert len(coarse) > 3 * len(native)
    assert set(np.unique(coarse["cell"])) == {cells[0] >> 2}


def test_query_cone(sky):
    centre = SkyCoord(287.0, 0.0, unit="deg", frame="galactic")
    stars = sky.query_cone(centre.icrs, 0.2 * u.deg)
    validate_star_table(stars)
    sep = SkyCoord(stars["l"], stars["b"], unit="deg", frame="galactic").separation(centre)
    assert sep.max() <= 0.2 * u.deg and len(stars) > 1000
    with pytest.raises(TypeError, match="SkyCoord"):
        sky.query_cone((287.0, 0.0), 0.2 * u.deg)


def test_truth_profiles(sky, cells):
    prof = sky.true_profile(cells)
    assert prof.cumulative.shape == (len(cells), 1201)
    assert np.all(np.diff(prof.cumulative, axis=1) >= 0)
    total = prof.total(10.0)
    assert np.all((total > 0.5) & (total < 100))
    lon, lat = cell_centres(cells, 7)
    np.testing.assert_allclose(sky.true_av(lon, lat, 10.0), total, rtol=1e-9)
    np.testing.assert_allclose(sky.true_av(lon[0], lat[0], [0.0, 5.0]),
                               [0.0, prof.at([5.0])[0, 0]], atol=1e-12)


def test_stars_reddened_by_their_cell_profile(galaxy, cells):
    # more dust in front of a cell means redder observed giants
    sky = MockSky(seed=5, galaxy=galaxy, n_clouds=0, sigma=0.1)
    clear = MockSky(seed=5, galaxy=galaxy, n_clouds=0, sigma=0.1,
                    mean={"density": 0.01}, arm_contrast=0.0)
    a = sky.query_cells(cells[:1], 7)
    b = clear.query_cells(cells[:1], 7)
    def bright(t):
        return t[(t["Ks"] < 11) & np.isfinite(t["e_J"]) & np.isfinite(t["e_Ks"])]
    assert np.median(bright(a)["J"] - bright(a)["Ks"]) > np.median(
        bright(b)["J"] - bright(b)["Ks"]) + 0.2


def test_cloud_shows_in_truth(galaxy):
    sky = MockSky(seed=6, galaxy=galaxy, n_clouds=5, cloud_av=(5.0, 5.0),
                  cloud_size=(0.02, 0.02))
    c = sky.clouds
    l, b, d = c["l"][0], c["b"][0], c["distance"][0]
    jump = sky.true_av(l, b, d + 0.1) - sky.true_av(l, b, d - 0.1)
    assert jump > 4.0
    with pytest.raises(ValueError, match="region"):
        MockSky(region=((300.0, 280.0), (-2.0, 2.0)))


def test_pickled_sky_gives_the_same_stars(sky, cells):
    import pickle

    blob = pickle.dumps(sky)
    assert len(blob) < 50_000  # caches dropped
    again = pickle.loads(blob)
    np.testing.assert_array_equal(np.asarray(again.query_cells(cells[:1], 7)["Ks"]),
                                  np.asarray(sky.query_cells(cells[:1], 7)["Ks"]))
    empty = sky.query_cells([], 7)
    assert len(empty) == 0 and "cell" in empty.colnames
