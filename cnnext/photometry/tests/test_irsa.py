# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""IrsaSource against a fake IRSA TAP service on 127.0.0.1 through astroquery/pyvo."""

import time

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext import conf
from cnnext.exceptions import CnnextWarning, PhotometryError
from cnnext.photometry import IrsaSource
from cnnext.testing.servers import FakeIrsa, unused_port

from .conftest import ORDER, assert_same_stars, expected_stars


@pytest.fixture
def cells(catalogue_cells):
    populated = np.unique(catalogue_cells)[1::2]
    return np.concatenate([populated, [7]])


def test_normal_answer(catalogue, catalogue_cells, cells):
    with FakeIrsa(catalogue) as server:
        source = server.source()
        got = source.query_cells(cells, ORDER)
        requests = list(server.requests)
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))
    # IRSA's glon/glat are used as they are
    assert len(requests) == len(np.unique(np.asarray(cells) >> 4))
    form = requests[0]["params"]
    assert form["MAXREC"] == str(conf.row_limit)
    assert "FROM fp_psc WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS'" in form["QUERY"]


def test_tap_url_from_conf(catalogue):
    with FakeIrsa(catalogue) as server, conf.set_temp("irsa_tap_url", server.tap_url):
        source = IrsaSource()
        assert source.key == f"irsa:{server.tap_url}:fp_psc"
        assert len(source.query_cone(SkyCoord(280, 0, unit="deg", frame="galactic"),
                                     0.2 * u.deg)) > 0


def test_truncated_answer_splits_tile(catalogue, catalogue_cells, cells):
    with FakeIrsa(catalogue) as server:
        got = server.source(row_limit=120).query_cells(cells, ORDER)
        assert any(r["truncated"] for r in server.requests)
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))


@pytest.mark.parametrize("fault", ["error", "http400"])
def test_rejected_query_raises_at_once(catalogue, cells, fault):
    with FakeIrsa(catalogue, faults=[fault]) as server:
        with pytest.raises(PhotometryError, match=r"irsa:.*tile \d+ .*rejected"):
            server.source().query_cells(cells, ORDER)
        assert server.n_requests == 1


def test_unknown_table(catalogue, cells):
    with FakeIrsa(catalogue) as server:
        with pytest.raises(PhotometryError, match="does not exist"):
            server.source(table="nope").query_cells(cells, ORDER)


@pytest.mark.parametrize("fault", ["http500", "cutoff", "garbled"])
def test_transient_failure_then_success(catalogue, catalogue_cells, cells, fault):
    with FakeIrsa(catalogue, faults=[fault]) as server:
        got = server.source().query_cells(cells, ORDER)
        assert server.n_requests == len(np.unique(np.asarray(cells) >> 4)) + 1
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))


def test_persistent_failure_names_tile(catalogue, cells):
    with FakeIrsa(catalogue, fail_rate=1.0, fail_status=503) as server:
        with pytest.raises(PhotometryError, match=r"tile \d+ \(order 5.*after 3 attempt.*503"):
            server.source().query_cells(cells, ORDER)
        assert server.n_requests == 3


def test_connection_refused(cells):
    source = IrsaSource(tap_url=f"http://127.0.0.1:{unused_port()}/TAP", max_retries=2)
    with pytest.raises(PhotometryError, match="after 2 attempt"):
        source.query_cells(cells, ORDER)
    assert source.n_requests == 2


def test_server_never_answers(catalogue, cells):
    # pyvo itself sends no timeout: the source's session must supply one
    with FakeIrsa(catalogue, faults=["hang"] * 10) as server:
        source = server.source(timeout=0.3, max_retries=2)
        start = time.perf_counter()
        with pytest.raises(PhotometryError, match="after 2 attempt.*Timeout"):
            source.query_cells(cells, ORDER)
        assert time.perf_counter() - start < 5
        assert server.n_requests == 2


@pytest.mark.slow
def test_answers_are_cached(catalogue, catalogue_cells, cells, tmp_path):
    expected = expected_stars(catalogue, catalogue_cells, cells)
    with conf.set_temp("use_cache", True), FakeIrsa(catalogue) as server:
        first = server.source(row_limit=120).query_cells(cells, ORDER)
        n_first = server.n_requests
        n_truncated = sum(r["truncated"] for r in server.requests)
        assert n_truncated > 0
        files = sorted((tmp_path / "cache" / "irsa").glob("*.ecsv"))
        # complete answers only (an answer of exactly row_limit rows counts as truncated)
        assert 0 < len(files) <= n_first - n_truncated
        n_asked_again = n_first - len(files)
        # a new source (a new session) asks again only the truncated tiles, whose
        # sub-tiles come from the cache
        again = server.source(row_limit=120).query_cells(cells, ORDER)
        assert server.n_requests == n_first + n_asked_again
        # a damaged cached answer is fetched again, with a warning naming it
        files[0].write_text("# %ECSV 1.0\n# garbage")
        n = server.n_requests
        with pytest.warns(CnnextWarning, match=f"cached IRSA answer '{files[0]}'"):
            third = server.source(row_limit=120).query_cells(cells, ORDER)
        assert server.n_requests == n + n_asked_again + 1
        # cache=False asks the server everything again
        n = server.n_requests
        server.source(row_limit=120, cache=False).query_cells(cells, ORDER)
        assert server.n_requests == n + n_first
    for got in (first, again, third):
        assert_same_stars(got, expected)
