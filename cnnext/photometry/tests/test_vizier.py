# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""VizierSource against a fake VizieR (HTTPS on 127.0.0.1) through the real astroquery client."""

import logging
import time

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext import conf
from cnnext.exceptions import CnnextWarning, PhotometryError
from cnnext.photometry import VizierSource
from cnnext.testing.servers import FakeVizier, unused_port

from .conftest import ORDER, assert_same_stars, expected_stars


@pytest.fixture
def cells(catalogue_cells):
    # every other populated cell, plus two far-away cells with no stars at all
    populated = np.unique(catalogue_cells)[::2]
    return np.concatenate([populated, [0, 5]])


def test_normal_answer(catalogue, catalogue_cells, cells):
    with FakeVizier(catalogue) as server:
        source = server.source(cache=False)
        got = source.query_cells(cells, ORDER)
        requests = list(server.requests)
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))
    assert got.colnames == ["l", "b", "J", "H", "Ks", "e_J", "e_H", "e_Ks", "ph_qual",
                            "cc_flg", "cell"]
    assert got["cell"].dtype == np.int64
    assert np.all(np.diff(got["cell"]) >= 0)
    # one request per order-5 tile, none per cell; the row limit is explicit
    tiles = np.unique(np.asarray(cells) >> 4)
    assert len(requests) == len(tiles) < len(cells)
    params = requests[0]["params"]
    assert params["-source"] == "II/246/out"
    assert params["-out.max"] == str(conf.row_limit)
    assert set(params["-out"].split(",")) >= {"RAJ2000", "DEJ2000", "Jmag", "e_Kmag",
                                               "Qflg", "Cflg"}
    assert not any(r["truncated"] for r in requests)


def test_upper_limits_keep_magnitude(catalogue, catalogue_cells, cells):
    with FakeVizier(catalogue) as server:
        got = server.source(cache=False).query_cells(cells, ORDER)
    upper = np.array([q[2] == "U" for q in got["ph_qual"]])
    assert upper.any()
    assert np.all(np.isfinite(got["Ks"][upper])) and np.all(np.isnan(got["e_Ks"][upper]))


def test_truncated_answer_splits_tile(catalogue, catalogue_cells, cells):
    with FakeVizier(catalogue) as server:
        source = server.source(cache=False, row_limit=120, tile_order=5)
        got = source.query_cells(cells, ORDER)
        requests = list(server.requests)
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))
    truncated = [r for r in requests if r["truncated"]]
    assert truncated, "the small row limit must have truncated some answers"
    assert all(r["n_rows"] == 120 for r in truncated)
    # split tiles are smaller cones
    assert min(r["radius"] for r in requests) < max(r["radius"] for r in truncated)


def test_overflow_status_alone_splits(catalogue, catalogue_cells, cells, monkeypatch):
    # VizieR's OVERFLOW status must count even when the row count is below the limit
    with FakeVizier(catalogue) as server:
        real = server._votable
        monkeypatch.setattr(server, "_votable", lambda rows, truncated, limit: real(
            rows[:limit - 1] if truncated else rows, truncated, limit))
        got = server.source(cache=False, row_limit=150).query_cells(cells, ORDER)
        assert any(r["truncated"] for r in server.requests)
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))


def test_truncated_forever_gives_up(catalogue, catalogue_cells, monkeypatch):
    monkeypatch.setattr("cnnext.photometry._remote._MAX_EXTRA_SPLITS", 1)
    with FakeVizier(catalogue) as server:
        real = server._votable
        monkeypatch.setattr(server, "_votable",
                            lambda rows, truncated, limit: real(rows, True, limit))
        source = server.source(cache=False, tile_order=ORDER)
        cell = catalogue_cells[0]
        with pytest.raises(PhotometryError, match=r"still truncated .* order 8; raise row_limit"):
            source.query_cells([cell], ORDER)
        assert server.n_requests == 2  # the tile, then its first child


def test_error_answer_raises_at_once(catalogue, cells):
    with FakeVizier(catalogue, faults=["error"]) as server:
        source = server.source(cache=False)
        with pytest.raises(PhotometryError, match=r"tile \d+ .*rejected.*simulated failure"):
            source.query_cells(cells, ORDER)
        assert server.n_requests == 1


def test_unknown_catalogue(catalogue, cells):
    with FakeVizier(catalogue) as server:
        source = server.source(cache=False, catalog="II/999/nope")
        with pytest.raises(PhotometryError, match="Unknown catalogue"):
            source.query_cells(cells, ORDER)


@pytest.mark.parametrize("fault", ["http500", "http503", "cutoff", "garbled", 429])
def test_transient_failure_then_success(catalogue, catalogue_cells, cells, fault):
    with FakeVizier(catalogue, faults=[fault, fault]) as server:
        source = server.source(cache=False)
        got = source.query_cells(cells, ORDER)
        n_tiles = len(np.unique(np.asarray(cells) >> 4))
        assert server.n_requests == n_tiles + 2
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))


def test_http400_raises_at_once(catalogue, cells):
    with FakeVizier(catalogue, faults=["http400"]) as server:
        with pytest.raises(PhotometryError, match="rejected.*HTTP 400"):
            server.source(cache=False).query_cells(cells, ORDER)
        assert server.n_requests == 1


def test_persistent_failure_names_tile(catalogue, cells):
    with FakeVizier(catalogue, fail_rate=1.0) as server, conf.set_temp("max_retries", 4):
        source = server.source(cache=False)
        first_tile = int(np.min(np.asarray(cells) >> 4))
        with pytest.raises(PhotometryError,
                           match=rf"tile {first_tile} \(order 5.*after 4 attempt.*HTTP 500"):
            source.query_cells(cells, ORDER)
        assert server.n_requests == 4


def test_backoff_doubles(catalogue, cells, monkeypatch):
    delays = []
    monkeypatch.setattr("cnnext.photometry._remote.time.sleep", delays.append)
    with FakeVizier(catalogue, fail_rate=1.0) as server, \
            conf.set_temp("retry_backoff", 0.5), conf.set_temp("max_retries", 4):
        with pytest.raises(PhotometryError):
            server.source(cache=False).query_cells(cells, ORDER)
    assert delays == [0.5, 1.0, 2.0]


def test_random_failures_lose_nothing(catalogue, catalogue_cells, cells):
    with FakeVizier(catalogue, fail_rate=0.3, seed=3) as server, \
            conf.set_temp("max_retries", 10):
        got = server.source(cache=False).query_cells(cells, ORDER)
        assert any(r["fault"] == 500 for r in server.requests)
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))


def test_connection_refused(cells):
    source = VizierSource(server=f"127.0.0.1:{unused_port()}", cache=False,
                          max_retries=2)
    with pytest.raises(PhotometryError, match=r"tile \d+.*after 2 attempt.*ConnectionError"):
        source.query_cells(cells, ORDER)
    assert source.n_requests == 2


def test_server_never_answers(catalogue, cells):
    with FakeVizier(catalogue, faults=["hang"] * 10) as server:
        source = server.source(cache=False, timeout=0.3, max_retries=2)
        start = time.perf_counter()
        with pytest.raises(PhotometryError, match="after 2 attempt.*Timeout"):
            source.query_cells(cells, ORDER)
        assert time.perf_counter() - start < 5
        assert server.n_requests == 2


def test_silent_server_says_it_waits_and_gives_up_in_time(catalogue, cells, caplog,
                                                          monkeypatch):
    from cnnext.photometry import _remote

    monkeypatch.setattr(_remote._WaitNotice, "_last", -float("inf"))
    with FakeVizier(catalogue, faults=["hang"] * 20) as server, \
            conf.set_temp("max_wait", 1.5), conf.set_temp("wait_notice", 0.3), \
            conf.set_temp("max_retries", 10), \
            caplog.at_level(logging.WARNING, logger="cnnext.photometry"):
        # each attempt alone may take 5 s (conf.timeout): the total is what is bounded
        source = server.source(cache=False)
        start = time.perf_counter()
        with pytest.raises(PhotometryError, match=r"gave up after \d+ s and 1 attempt.*"
                           r"max_wait = 1.5 s.*Timeout.*cnnext fetch.*TableSource"):
            source.query_cells(cells, ORDER)
        waited = time.perf_counter() - start
    assert 1.4 < waited < 3.5
    notices = [r.getMessage() for r in caplog.records if "still waiting" in r.getMessage()]
    assert len(notices) == 1
    assert "no answer after 0." in notices[0] and "cnnext.conf.max_wait = 1.5 s" in notices[0]


def test_tls_certificate_checked(catalogue, cells):
    with FakeVizier(catalogue) as server:
        # the system CA bundle does not know the test CA: a permanent error, no retries
        source = VizierSource(server=server.host_port, cache=False)
        with pytest.raises(PhotometryError, match="rejected.*SSLError"):
            source.query_cells(cells, ORDER)
        assert source.n_requests == 1


def test_cache_keeps_only_good_answers(catalogue, catalogue_cells, cells, tmp_path):
    cache = tmp_path / "cache" / "vizier"
    with FakeVizier(catalogue, faults=["garbled", "http500"]) as server:
        source = server.source(cache=True, row_limit=150)
        first = source.query_cells(cells, ORDER)
        n_first = server.n_requests
        good = [r for r in server.requests if r["fault"] == "ok" and not r["truncated"]]
        assert any(r["truncated"] for r in server.requests)
        assert len(list(cache.glob("*.xml"))) == len(good)
        # a second source reads everything good from the cache; only the tiles
        # whose answers were truncated are asked again (and are truncated again)
        second = server.source(cache=True, row_limit=150).query_cells(cells, ORDER)
        again = server.requests[n_first:]
        assert again and all(r["truncated"] for r in again)
    assert_same_stars(first, expected_stars(catalogue, catalogue_cells, cells))
    assert_same_stars(second, first)


def test_damaged_cached_answer_is_fetched_again(catalogue, catalogue_cells, cells, tmp_path):
    cache = tmp_path / "cache" / "vizier"
    with FakeVizier(catalogue) as server:
        first = server.source(cache=True).query_cells(cells, ORDER)
        files = sorted(cache.glob("*.xml"))
        assert files
        files[0].write_bytes(b"<?xml half a VOTable")
        n_before = server.n_requests
        with pytest.warns(CnnextWarning, match="unreadable"):
            again = server.source(cache=True).query_cells(cells, ORDER)
        assert server.n_requests == n_before + 1
    assert_same_stars(again, first)


def test_cache_disabled_writes_nothing(catalogue, cells, tmp_path):
    with FakeVizier(catalogue) as server:
        server.source(cache=False).query_cells(cells, ORDER)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_query_cone(catalogue):
    centre = SkyCoord(280.0 * u.deg, 0.2 * u.deg, frame="galactic")
    stars_all = SkyCoord(catalogue["l"], catalogue["b"], unit="deg", frame="galactic")
    expected = catalogue[stars_all.separation(centre) <= 0.3 * u.deg]
    with FakeVizier(catalogue) as server:
        got = server.source(cache=False).query_cone(centre.icrs, 0.3 * u.deg)
        assert server.n_requests == 1
        # a truncated cone is tiled and nothing is lost
        got_split = server.source(cache=False, row_limit=40).query_cone(centre, 18 * u.arcmin)
        assert server.n_requests > 3
    assert "cell" not in got.colnames
    assert_same_stars(got, expected)
    assert_same_stars(got_split, expected)


def test_progress_bar(catalogue, cells, capsys):
    with FakeVizier(catalogue) as server:
        server.source(cache=False).query_cells(cells, ORDER, progress_bar=True)
    assert "tile" in capsys.readouterr().err


def test_empty_and_bad_cells(catalogue):
    with FakeVizier(catalogue) as server:
        source = server.source(cache=False)
        empty = source.query_cells([], ORDER)
        assert len(empty) == 0 and "cell" in empty.colnames and server.n_requests == 0
        nothing = source.query_cells([0, 1], ORDER)  # no star there
        assert len(nothing) == 0 and nothing.colnames == empty.colnames
        with pytest.raises(TypeError, match="integers"):
            source.query_cells([1.5], ORDER)
        with pytest.raises(ValueError, match="order"):
            source.query_cells([1], 31)
        with pytest.raises(ValueError, match=r"HEALPix cells in \[0, 196608\)"):
            source.query_cells([12 * 4**7], ORDER)
        with pytest.raises(TypeError, match="SkyCoord"):
            source.query_cone((280.0, 0.0), 1 * u.deg)
        with pytest.raises(TypeError, match="angle"):
            source.query_cone(SkyCoord(280, 0, unit="deg", frame="galactic"), 1.0)


def test_key_and_defaults():
    with conf.set_temp("vizier_server", "vizier.example.org"):
        source = VizierSource()
    assert source.key == "vizier:vizier.example.org:II/246/out"
    assert source._vizier.ROW_LIMIT == conf.row_limit
