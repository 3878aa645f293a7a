# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of the photometry-source contract (cnnext.stars.PhotometrySource)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext.healpix import lonlat_to_cells
from cnnext.stars import PhotometrySource, empty_star_table
from cnnext.testing.servers import random_stars


class AllStars(PhotometrySource):
    """Fetches every star it has; the base does the rest."""

    key = "test:all"

    def __init__(self, stars):
        self.stars, self.fetched = stars, []

    def fetch_cells(self, cells, order, *, progress_bar=False):
        self.fetched.append(cells)
        star_cells = lonlat_to_cells(self.stars["l"], self.stars["b"], order)
        keep = np.flatnonzero(np.isin(star_cells, cells))
        out = self.stars[keep[np.argsort(star_cells[keep], kind="stable")]]
        out["cell"] = np.sort(star_cells[keep])
        return out

    def fetch_cone(self, centre, radius_deg):
        return self.stars


def test_a_source_must_fetch_cells_and_cones():
    class CellsOnly(PhotometrySource):
        def fetch_cells(self, cells, order, *, progress_bar=False):
            return empty_star_table()

    with pytest.raises(TypeError, match="abstract"):
        CellsOnly()
    with pytest.raises(TypeError, match="abstract"):
        PhotometrySource()


def test_the_base_checks_cells_once():
    source = AllStars(random_stars(200, l=(279.5, 280.5), b=(-0.5, 0.5), seed=1))
    with pytest.raises(ValueError, match="in \\[0, 196608\\)"):
        source.query_cells([12 * 4**7], 7)
    with pytest.raises(TypeError, match="integers"):
        source.query_cells([1.5], 7)
    empty = source.query_cells([], 7)
    assert len(empty) == 0 and "cell" in empty.colnames
    cell = int(lonlat_to_cells(280.0, 0.0, 7))
    stars = source.query_cells([cell, cell, cell], 7)
    assert len(stars) and set(stars["cell"]) == {cell}
    # the subclass saw the cells checked: sorted, unique, int64; never the empty request
    assert [c.tolist() for c in source.fetched] == [[cell]]
    assert source.fetched[0].dtype == np.int64


def test_the_base_cuts_the_cone():
    stars = random_stars(500, l=(279.0, 281.0), b=(-1.0, 1.0), seed=2)
    centre = SkyCoord(280.0 * u.deg, 0.0 * u.deg, frame="galactic")
    got = AllStars(stars).query_cone(centre.icrs, 0.3 * u.deg)
    sep = SkyCoord(stars["l"], stars["b"], unit="deg", frame="galactic").separation(centre)
    assert len(got) == int((sep <= 0.3 * u.deg).sum()) > 0
    assert "cell" not in got.colnames
    with pytest.raises(TypeError, match="SkyCoord"):
        AllStars(stars).query_cone((280.0, 0.0), 1 * u.deg)
