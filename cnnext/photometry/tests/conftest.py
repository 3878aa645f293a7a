# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Fixtures of the photometry tests: a fixed star catalogue and fast retry settings."""

import numpy as np
import pytest

from cnnext import conf
from cnnext.healpix import lonlat_to_cells
from cnnext.testing.servers import random_stars

ORDER = 7


@pytest.fixture(scope="session")
def catalogue():
    """1000 stars over l = 279-281 deg, |b| <= 1 deg, as the servers hold them."""
    return random_stars(1000, l=(279.0, 281.0), b=(-1.0, 1.0), seed=42, whole_cells=None)


@pytest.fixture(scope="session")
def catalogue_cells(catalogue):
    return lonlat_to_cells(catalogue["l"], catalogue["b"], ORDER)


@pytest.fixture(autouse=True)
def fast_network(tmp_path):
    """Short back-off and time-outs, no retries beyond three, cache in a tmp dir."""
    with conf.set_temp("retry_backoff", 0.01), conf.set_temp("max_retries", 3), \
            conf.set_temp("timeout", 5.0), conf.set_temp("use_cache", False), \
            conf.set_temp("cache_dir", str(tmp_path / "cache")):
        yield


def expected_stars(catalogue, catalogue_cells, cells):
    """The fixture's stars inside ``cells``, sorted by designation."""
    sel = catalogue[np.isin(catalogue_cells, cells)]
    sel["cell"] = catalogue_cells[np.isin(catalogue_cells, cells)]
    sel.sort("designation")
    return sel


def assert_same_stars(got, expected, *, flags=True):
    """Star sets equal: same stars (matched on magnitudes and position), same values."""
    assert len(got) == len(expected)
    # the star tables carry no designation: match on exact values instead
    key_got = np.lexsort([np.asarray(got[c]) for c in ("Ks", "H", "J", "b", "l")])
    key_exp = np.lexsort([np.asarray(expected[c]) for c in ("Ks", "H", "J", "b", "l")])
    g, e = got[key_got], expected[key_exp]
    np.testing.assert_allclose(g["l"], e["l"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(g["b"], e["b"], rtol=0, atol=1e-9)
    for c in ("J", "H", "Ks", "e_J", "e_H", "e_Ks"):
        np.testing.assert_array_equal(np.asarray(g[c]), np.asarray(e[c]), err_msg=c)
    if flags:
        for c in ("ph_qual", "cc_flg"):
            assert g[c].tolist() == e[c].tolist()
    if "cell" in expected.colnames:
        assert g["cell"].tolist() == e["cell"].tolist()
