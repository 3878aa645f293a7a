# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
CNNExtinctionMap in on-the-fly mode: photometry -> CMDs -> network -> cache -> answer.

End to end with a fake VizieR on 127.0.0.1 (the real astroquery client), and with
local table sources for the cache behaviour: second instances make no request,
corrupt entries are recomputed, two processes share one cache, map files and
on-the-fly computation combine.
"""

import multiprocessing
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext import CNNExtinctionMap, conf
from cnnext.exceptions import CnnextWarning
from cnnext.healpix import lonlat_to_cells
from cnnext.model import CNNModel
from cnnext.photometry.table import TableSource
from cnnext.profiles import FLAG_FEW_STARS
from cnnext.sightlines import predict_cells
from cnnext.testing.models import write_tiny_model
from cnnext.testing.servers import FakeVizier, random_stars

ORDER = 7


class CountingSource(TableSource):
    """A local table source that records which cells it was asked for."""

    def __init__(self, table, **kwargs):
        super().__init__(table, **kwargs)
        self.calls = []

    def query_cells(self, cells, order, *, progress_bar=False):
        self.calls.append(np.unique(np.asarray(cells, dtype=np.int64)))
        return super().query_cells(cells, order, progress_bar=progress_bar)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx", min_stars=5)


@pytest.fixture(scope="module")
def stars():
    return random_stars(6000, l=(279.0, 281.0), b=(-1.0, 1.0), seed=1,
                        upper_limit_fraction=0.0)


def positions(n=40, seed=0, distance=True):
    rng = np.random.default_rng(seed)
    l = rng.uniform(279.2, 280.8, n)
    b = rng.uniform(-0.8, 0.8, n)
    d = rng.uniform(0.0, 11.0, n) * u.kpc if distance else None
    return SkyCoord(l * u.deg, b * u.deg, distance=d, frame="galactic")


def reference(stars, model_path, c):
    """Expected answer: predict_cells on the stars, interpolated with np.interp."""
    model = CNNModel(model_path, providers="cpu")
    table = stars.copy()
    table["cell"] = lonlat_to_cells(table["l"], table["b"], ORDER)
    cells = lonlat_to_cells(c.galactic.l.deg, c.galactic.b.deg, ORDER)
    pm = predict_cells(table, np.unique(cells), model)
    rows = pm.lookup(cells)
    if c.distance.unit == u.one:
        return pm.av[rows].astype(float)
    nodes = np.r_[0.0, pm.distances]
    return np.array([np.interp(d, nodes, np.r_[0.0, pm.av[r]])
                     for r, d in zip(rows, c.distance.kpc)])


def test_fake_vizier_end_to_end(tmp_path, model_path, stars):
    c = positions(30)
    with FakeVizier(stars) as server:
        m = CNNExtinctionMap(model=model_path, source=server.source(cache=False),
                             cache=tmp_path / "cache", providers="cpu")
        first = m.query(c)
        n_first = server.n_requests
        assert n_first > 0
        np.testing.assert_allclose(first, reference(stars, model_path, c), rtol=1e-5)
        assert np.all(np.isfinite(first))
        assert list((tmp_path / "cache").rglob("*.npz"))
        # same instance: answered from memory
        np.testing.assert_array_equal(m.query(c), first)
        assert server.n_requests == n_first
        # a new instance (a new session) with the same cache dir: no request at all
        again = CNNExtinctionMap(model=model_path, source=server.source(cache=False),
                                 cache=tmp_path / "cache", providers="cpu")
        np.testing.assert_array_equal(again.query(c), first)
        np.testing.assert_array_equal(again(c[:3], return_sigma=True)[0], first[:3])
        assert server.n_requests == n_first


@pytest.mark.slow
def test_fake_vizier_mock_sky_end_to_end(tmp_path, model_path):
    from cnnext.synthetic import MockSky

    # the synthetic sky's stars of two cells, served by a fake VizieR
    sky = MockSky(seed=1, faint_limit=14.0, region=((284.5, 286.0), (0.0, 1.0)), n_clouds=5)
    cells = np.unique(lonlat_to_cells([285.0, 285.6], [0.5, 0.5], ORDER))
    mock = sky.query_cells(cells, ORDER)
    del mock["cell"]
    lc, bc = np.array([285.0, 285.6]), np.array([0.5, 0.5])
    c = SkyCoord(lc * u.deg, bc * u.deg, frame="galactic")
    with FakeVizier(mock) as server:
        m = CNNExtinctionMap(model=model_path, source=server.source(cache=False),
                             cache=tmp_path, providers="cpu")
        first, flags = m.query(c, return_flags=True)
        n_first = server.n_requests
        assert n_first > 0
        assert cells.size == 2 and first.shape == (2, 100) and np.all(np.isfinite(first))
        assert np.all(flags["n_stars"] > 100)
        # the answer is the pipeline applied to what the server sends
        served = server.source(cache=False).query_cells(cells, ORDER)
        model = CNNModel(model_path, providers="cpu")
        pm = predict_cells(served, cells, model)
        np.testing.assert_allclose(first, pm.av[pm.lookup(lonlat_to_cells(lc, bc, ORDER))],
                                   rtol=1e-5)
        n_served = server.n_requests
        again = CNNExtinctionMap(model=model_path, source=server.source(cache=False),
                                 cache=tmp_path, providers="cpu")
        np.testing.assert_array_equal(again.query(c), first)
        assert server.n_requests == n_served


def test_query_matches_pipeline_and_counts(tmp_path, model_path, stars):
    source = CountingSource(stars, key="table:counting")
    m = CNNExtinctionMap(model=model_path, source=source, cache=tmp_path, providers="cpu",
                         chunk_size=3)
    c = positions(50, seed=2, distance=False)
    prof = m.query(c)
    assert prof.shape == (50, 100)
    np.testing.assert_allclose(prof, reference(stars, model_path, c), rtol=1e-5)
    wanted = np.unique(lonlat_to_cells(c.l.deg, c.b.deg, ORDER))
    asked = np.concatenate(source.calls)
    np.testing.assert_array_equal(np.sort(asked), wanted)  # each cell once, chunks of 3
    assert max(len(x) for x in source.calls) == 3
    # flags come from the pipeline: star counts and reliable range
    _, flags = m.query(c[:4], return_flags=True)
    assert np.all(flags["n_stars"] >= 5) and np.all(flags["flags"] == 0)
    assert np.all(flags["dmin"] == pytest.approx(0.1))
    assert np.all(flags["dmax"] <= 10.0 + 1e-6)
    # and how deep each cell was observed, estimated from its stars (random_stars'
    # errors reach 0.109 mag at about 16.0 in every band)
    for band in ("J", "H", "Ks"):
        assert np.all(np.abs(flags[f"m10_{band}"] - 16.0) < 0.3)
    # new instance: everything from the disk cache, no photometry request
    source2 = CountingSource(stars, key="table:counting")
    m2 = CNNExtinctionMap(model=model_path, source=source2, cache=tmp_path, providers="cpu")
    np.testing.assert_array_equal(m2.query(c), prof)
    np.testing.assert_array_equal(m2.query(c[:4], return_flags=True)[1], flags)
    assert source2.calls == []
    # a new sightline: only that cell is fetched
    new = SkyCoord(280.95 * u.deg, 0.95 * u.deg, frame="galactic")
    m2.query(new)
    assert [x.tolist() for x in source2.calls] == [[lonlat_to_cells(280.95, 0.95, ORDER)]]


def test_other_source_key_not_shared(tmp_path, model_path, stars):
    c = positions(5)
    CNNExtinctionMap(model=model_path, source=CountingSource(stars, key="table:a"),
                     cache=tmp_path, providers="cpu").query(c)
    other = CountingSource(stars, key="table:b")
    CNNExtinctionMap(model=model_path, source=other, cache=tmp_path, providers="cpu").query(c)
    assert len(other.calls) == 1


def test_empty_sky_gives_nan_with_one_warning(tmp_path, model_path, stars):
    source = CountingSource(stars, key="table:x")
    m = CNNExtinctionMap(model=model_path, source=source, cache=False, providers="cpu")
    c = SkyCoord([280.0, 30.0] * u.deg, [0.0, 45.0] * u.deg, distance=[2, 2] * u.kpc,
                 frame="galactic")
    with pytest.warns(CnnextWarning, match="too few stars"):
        out, flags = m.query(c, return_flags=True)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    assert flags["flags"][1] == FLAG_FEW_STARS and flags["n_stars"][1] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.query(c)
    assert len(source.calls) == 1  # the empty cell is remembered too


def test_corrupt_cache_entry_recomputed(tmp_path, model_path, stars):
    c = positions(10, seed=4)
    first = CNNExtinctionMap(model=model_path, source=CountingSource(stars, key="t"),
                             cache=tmp_path, providers="cpu").query(c)
    for path in tmp_path.rglob("*.npz"):
        path.write_bytes(path.read_bytes()[:100])
    source = CountingSource(stars, key="t")
    m = CNNExtinctionMap(model=model_path, source=source, cache=tmp_path, providers="cpu")
    with pytest.warns(CnnextWarning, match="corrupt"):
        again = m.query(c)
    np.testing.assert_array_equal(again, first)
    assert len(source.calls) == 1
    # and the recomputed entries are good again
    source3 = CountingSource(stars, key="t")
    CNNExtinctionMap(model=model_path, source=source3, cache=tmp_path,
                     providers="cpu").query(c)
    assert source3.calls == []


def test_unwritable_cache_still_answers(tmp_path, model_path, stars):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    c = positions(20)
    m = CNNExtinctionMap(model=model_path, source=TableSource(stars), cache=blocker,
                         providers="cpu")
    with pytest.warns(CnnextWarning, match="cache-is-a-file.*without caching") as record:
        got = m.query(c)
        m.query(positions(20, seed=5))
    assert len(record) == 1
    np.testing.assert_allclose(got, reference(stars, model_path, c), rtol=1e-5)


def test_default_cache_dir_from_conf(tmp_path, model_path, stars):
    with conf.set_temp("cache_dir", str(tmp_path)):
        CNNExtinctionMap(model=model_path, source=CountingSource(stars, key="t"),
                         providers="cpu").query(positions(3))
    assert list((tmp_path / "profiles").rglob("*.npz"))


def test_file_map_plus_source(tmp_path, model_path, stars):
    model = CNNModel(model_path, providers="cpu")
    table = stars.copy()
    table["cell"] = lonlat_to_cells(table["l"], table["b"], ORDER)
    known = np.unique(table["cell"])[:10]
    pm = predict_cells(table, known, model, source_key="t")
    path = pm.write(tmp_path / "part.fits")
    source = CountingSource(stars, key="t")
    m = CNNExtinctionMap(model=model, source=source, map_fname=path, cache=False)
    c = positions(40, seed=5)
    np.testing.assert_allclose(m.query(c), reference(stars, model_path, c), rtol=1e-5)
    asked = np.concatenate(source.calls)
    assert not np.isin(asked, known).any()
    # without a source the same file answers offline, NaN elsewhere
    offline = CNNExtinctionMap(map_fname=path)
    with pytest.warns(CnnextWarning, match="footprint"):
        out = offline.query(c)
    cells = lonlat_to_cells(c.l.deg, c.b.deg, ORDER)
    np.testing.assert_array_equal(np.isfinite(out), np.isin(cells, known))
    # a map made by another model cannot be mixed with this one
    other = CNNModel(write_tiny_model(tmp_path / "other.onnx", seed=3), providers="cpu")
    with pytest.raises(ValueError, match="made with model"):
        CNNExtinctionMap(model=other, source=source, map_fname=path)


def _query_process(cache, model_path, seed):
    stars = random_stars(6000, l=(279.0, 281.0), b=(-1.0, 1.0), seed=1,
                         upper_limit_fraction=0.0)
    m = CNNExtinctionMap(model=model_path, source=TableSource(stars, key="shared"),
                         cache=cache, providers="cpu", chunk_size=4)
    m.query(positions(40, seed=seed))


@pytest.mark.slow
def test_two_processes_share_the_cache(tmp_path, model_path, stars):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_query_process, args=(str(tmp_path), str(model_path), s))
             for s in (6, 7)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    source = CountingSource(stars, key="shared")
    m = CNNExtinctionMap(model=model_path, source=source, cache=tmp_path, providers="cpu")
    c = SkyCoord(np.concatenate([positions(40, seed=s).l.deg for s in (6, 7)]) * u.deg,
                 np.concatenate([positions(40, seed=s).b.deg for s in (6, 7)]) * u.deg,
                 frame="galactic")
    np.testing.assert_allclose(m.query(c), reference(stars, model_path, c), rtol=1e-5)
    assert source.calls == []


def test_prefetch_and_bad_source(tmp_path, model_path, stars):
    source = CountingSource(stars, key="t")
    m = CNNExtinctionMap(model=model_path, source=source, cache=False, providers="cpu")
    c = positions(20, seed=9)
    m.prefetch(c)
    assert len(source.calls) == 1
    m.query(c)
    assert len(source.calls) == 1
    assert "on the fly from 't'" in repr(m) and m.model.sha256 in str(m.profile_map.meta)
    with pytest.raises(TypeError, match="SkyCoord"):
        m.prefetch([1, 2])
    with pytest.raises(TypeError, match="PhotometrySource"):
        CNNExtinctionMap(model=model_path, source="vizier", cache=False, providers="cpu")


def test_build_map_file_equals_on_the_fly(tmp_path, model_path, stars):
    from cnnext import build_map

    source = TableSource(stars, key="t")
    build_map("galactic; box(280, 0, 1.5, 1.5, 0)", source=source, model=model_path,
              output=tmp_path / "m.fits", progress_bar=False, providers="cpu")
    c = positions(30, seed=10)
    c = c[(np.abs(c.l.deg - 280.0) < 0.5) & (np.abs(c.b.deg) < 0.5)]
    from_file = CNNExtinctionMap(map_fname=tmp_path / "m.fits")
    on_the_fly = CNNExtinctionMap(model=model_path, source=source, cache=False,
                                  providers="cpu")
    for kwargs in ({}, {"band": "Ks", "return_sigma": True}):
        a, b = from_file(c, **kwargs), on_the_fly(c, **kwargs)
        np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(from_file(c)))


def test_threads_share_one_map(model_path, stars):
    from concurrent.futures import ThreadPoolExecutor

    source = CountingSource(stars, key="t")
    m = CNNExtinctionMap(model=model_path, source=source, cache=False, providers="cpu",
                         chunk_size=2)
    coords = [positions(15, seed=s) for s in range(6)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(m.query, coords))
    for c, got in zip(coords, results):
        np.testing.assert_allclose(got, reference(stars, model_path, c), rtol=1e-5)
    asked = np.concatenate(source.calls)
    assert asked.size == np.unique(asked).size  # no cell computed twice
