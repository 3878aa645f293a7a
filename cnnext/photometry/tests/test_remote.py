# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Live VizieR and IRSA queries (skipped unless pytest runs with --remote-data)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext.healpix import lonlat_to_cells
from cnnext.photometry import IrsaSource, VizierSource


@pytest.mark.remote_data
def test_vizier_and_irsa_agree():
    # one order-9 cell (~6.9') in the plane: a few hundred 2MASS stars
    cell = lonlat_to_cells(280.0, 0.0, 9)
    viz = VizierSource(cache=False).query_cells([cell], order=9)
    irsa = IrsaSource().query_cells([cell], order=9)
    assert len(viz) > 50 and len(viz) == len(irsa)
    np.testing.assert_allclose(np.sort(viz["Ks"]), np.sort(irsa["Ks"]), atol=1e-3)


@pytest.mark.remote_data
def test_vizier_small_row_limit_loses_nothing():
    centre = SkyCoord(280.0 * u.deg, 0.0 * u.deg, frame="galactic")
    full = VizierSource(cache=False).query_cone(centre, 2 * u.arcmin)
    split = VizierSource(cache=False, row_limit=20).query_cone(centre, 2 * u.arcmin)
    assert len(full) > 20 and len(split) == len(full)
