# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Helpers of the remote sources: tile cones, error classification, retries, dedupe."""

import astropy.units as u
import numpy as np
import pytest
import requests
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy_healpix import HEALPix

from cnnext import conf
from cnnext.exceptions import PhotometryError
from cnnext.photometry._remote import (
    PermanentError,
    TransientError,
    call_with_retries,
    dedupe,
    is_transient,
    tile_cones,
)


@pytest.mark.parametrize("order", [0, 3, 5, 9])
def test_tile_cones_cover_their_tiles(order):
    hp = HEALPix(nside=2**order, order="nested", frame="galactic")
    tiles = np.random.default_rng(order).choice(hp.npix, min(20, hp.npix), replace=False)
    ra, dec, radius = tile_cones(tiles, order)
    # points densely inside each tile (sub-pixel centres 5 orders deeper and the
    # corners) all lie within the cone
    sub = HEALPix(nside=2**(order + 5), order="nested", frame="galactic")
    for t, r, d, rad in zip(tiles, ra, dec, radius):
        inside = sub.healpix_to_skycoord((t << 10) + np.arange(1024))
        corners = hp.boundaries_skycoord(t, step=1)
        centre = SkyCoord(r * u.deg, d * u.deg, frame="icrs")
        sep = centre.separation(inside).deg.max()
        assert sep <= rad and centre.separation(corners).deg.max() <= rad
        # and not much larger than needed
        assert rad < 1.05 * sep + 2 / 3600


def test_error_classification():
    assert is_transient(requests.ConnectionError())
    assert is_transient(requests.ReadTimeout())
    assert is_transient(requests.exceptions.ChunkedEncodingError())
    assert is_transient(TransientError("garbled"))
    assert is_transient(PermanentError("no")) is False
    assert is_transient(requests.exceptions.SSLError()) is False
    response = requests.Response()
    response.status_code = 503
    assert is_transient(requests.HTTPError(response=response))
    response.status_code = 404
    assert is_transient(requests.HTTPError(response=response)) is False
    assert is_transient(ValueError("a bug")) is None


def test_retries():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise requests.ConnectionError("refused")
        return "stars"

    with conf.set_temp("retry_backoff", 0.0):
        assert call_with_retries(flaky, "tile 1", max_retries=3) == "stars"
        calls.clear()
        with pytest.raises(PhotometryError, match="tile 1: failed after 2 attempt.*refused"):
            call_with_retries(flaky, "tile 1", max_retries=2)

    def buggy():
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):  # not a network error: not wrapped, not retried
        call_with_retries(buggy, "tile 2")


def test_dedupe():
    t = Table({"l": [1.0, 2.0, 1.0], "b": [0.0, 0.0, 0.0], "designation": ["a", "b", "a"]})
    assert dedupe(t)["designation"].tolist() == ["a", "b"]
    t = Table({"l": [1.0, 2.0, 1.0], "b": [0.0, 0.0, 0.0]})
    assert dedupe(t)["l"].tolist() == [1.0, 2.0]
