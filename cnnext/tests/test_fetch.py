# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of cnnext.fetch: local catalogues for offline builds."""

import json
import os

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext import build_map, conf
from cnnext.exceptions import CheckpointError, PhotometryError
from cnnext.fetch import fetch_region
from cnnext.model import CNNModel
from cnnext.photometry import TableSource
from cnnext.photometry.base import PhotometrySource
from cnnext.photometry.local import LocalCatalogSource
from cnnext.region import region_to_cells
from cnnext.testing.models import write_tiny_model
from cnnext.testing.servers import random_stars

REGION = "galactic; box(280, 0, 3, 1.6, 0)"


@pytest.fixture(scope="module")
def stars():
    return random_stars(8000, l=(278.0, 282.0), b=(-1.2, 1.2), seed=11)


@pytest.fixture(scope="module")
def remote(stars):
    return TableSource(stars, key="table:remote")


@pytest.fixture(autouse=True)
def fast_retries():
    with conf.set_temp("retry_backoff", 0.001):
        yield


class Flaky(PhotometrySource):
    key = "table:remote"

    def __init__(self, inner, fail_cells=()):
        self.inner, self.fail_cells, self.calls = inner, np.asarray(fail_cells, np.int64), []

    def fetch_cells(self, cells, order, *, progress_bar=False):
        self.calls.append(np.asarray(cells))
        if np.intersect1d(cells, self.fail_cells).size:
            raise PhotometryError("connection reset")
        return self.inner.query_cells(cells, order)

    def fetch_cone(self, centre, radius_deg):
        return self.inner.fetch_cone(centre, radius_deg)


def _same_stars(a, b):
    assert len(a) == len(b)
    np.testing.assert_array_equal(a["cell"], b["cell"])
    for name in ("l", "b", "J", "H", "Ks", "e_J", "e_H", "e_Ks"):
        np.testing.assert_array_equal(np.sort(a[name]), np.sort(b[name]))
    assert sorted(a["ph_qual"]) == sorted(b["ph_qual"])


def test_fetch_then_read_back(tmp_path, remote):
    out = tmp_path / "cat"
    cat = fetch_region(REGION, source=remote, output=out, tile_order=5, progress_bar=False)
    cells = region_to_cells(REGION, 7)
    assert isinstance(cat, LocalCatalogSource)
    assert cat.complete and cat.order == 7 and cat.tile_order == 5
    np.testing.assert_array_equal(cat.cells, cells)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["source"] == "table:remote"
    assert manifest["n_stars"] == len(remote.query_cells(cells, 7)) == cat.count_stars()
    assert "local:cat" in repr(cat) or cat.key == "local:cat"

    # same stars as the source, at the catalogue's order, finer and coarser orders
    _same_stars(cat.query_cells(cells[3:9], 7), remote.query_cells(cells[3:9], 7))
    fine = np.unique(((cells[:4, None] << 2) + np.arange(4)).ravel())
    _same_stars(cat.query_cells(fine[::3], 8), remote.query_cells(fine[::3], 8))
    coarse = np.unique(cells >> 2)
    inside = [c for c in coarse if np.all(np.isin((c << 2) + np.arange(4), cells))]
    _same_stars(cat.query_cells(inside, 6), remote.query_cells(inside, 6))
    assert len(cat.query_cells([], 7)) == 0

    # a cone inside the coverage
    centre = SkyCoord(280.0, 0.0, unit="deg", frame="galactic")
    cone = cat.query_cone(centre.icrs, 0.3 * u.deg)
    ref = remote.query_cone(centre, 0.3 * u.deg)
    assert len(cone) == len(ref) > 0
    np.testing.assert_array_equal(np.sort(cone["J"]), np.sort(ref["J"]))

    # one tile file is a plain table TableSource reads
    tile_file = sorted((out / "tiles").glob("*.parquet"))[0]
    one = TableSource(tile_file)
    assert len(one) > 0 and set(one.stars.colnames) >= {"l", "b", "J", "ph_qual"}


def test_uncovered_cells_are_an_error(tmp_path, remote):
    cat = fetch_region("galactic; circle(280, 0, 0.5)", source=remote, output=tmp_path / "c",
                       progress_bar=False)
    outside = region_to_cells("galactic; circle(281.5, 0, 0.3)", 7)
    with pytest.raises(ValueError, match="not in catalogue.*fetch_region"):
        cat.query_cells(outside, 7)
    with pytest.raises(ValueError, match="not in catalogue"):
        cat.query_cells(outside >> 2, 6)  # partly covered parents


def test_offline_build_equals_online_build(tmp_path, remote):
    model = CNNModel(write_tiny_model(tmp_path / "tiny.onnx"), providers="cpu")
    cat = fetch_region(REGION, source=remote, output=tmp_path / "cat", progress_bar=False)
    offline = build_map(REGION, source=cat, model=model, output=tmp_path / "off.fits",
                        progress_bar=False)
    online = build_map(REGION, source=remote, model=model, output=tmp_path / "on.fits",
                       progress_bar=False)
    np.testing.assert_array_equal(offline.cells, online.cells)
    np.testing.assert_array_equal(offline.n_stars, online.n_stars)
    np.testing.assert_array_equal(offline.av, online.av)
    assert offline.meta["source"] == "local:cat"


def test_fetch_resumes_after_failures(tmp_path, remote):
    cells = region_to_cells(REGION, 7)
    out = tmp_path / "cat"
    flaky = Flaky(remote, fail_cells=cells[-1:])
    with pytest.raises(PhotometryError, match=r"1 of \d+ tiles failed.*rerun") as info:
        fetch_region(REGION, source=flaky, output=out, tile_order=6, progress_bar=False,
                     tile_retries=1)
    assert info.value.failed_tiles == [int(cells[-1]) >> 2]
    partial = LocalCatalogSource(out)
    assert not partial.complete
    assert len(partial.cells) < len(cells)
    healed = Flaky(remote)
    cat = fetch_region(REGION, source=healed, output=out, tile_order=6, progress_bar=False)
    assert [int(c[0]) >> 2 for c in healed.calls] == info.value.failed_tiles
    assert cat.complete
    _same_stars(cat.query_cells(cells, 7), remote.query_cells(cells, 7))


def test_fetch_refuses_another_region(tmp_path, remote):
    out = tmp_path / "cat"
    fetch_region(REGION, source=remote, output=out, progress_bar=False)
    with pytest.raises(CheckpointError, match="another region.*overwrite=True"):
        fetch_region("galactic; circle(280, 0, 0.5)", source=remote, output=out,
                     progress_bar=False)
    with pytest.raises(FileExistsError, match="resume=True"):
        fetch_region(REGION, source=remote, output=out, progress_bar=False, resume=False)
    cat = fetch_region("galactic; circle(280, 0, 0.5)", source=remote, output=out,
                       progress_bar=False, overwrite=True)
    assert len(cat.cells) == len(region_to_cells("galactic; circle(280, 0, 0.5)", 7))
    # overwrite never deletes a directory that is not a catalogue
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a cnnext catalogue"):
        fetch_region(REGION, source=remote, output=tmp_path / "mine", overwrite=True,
                     progress_bar=False)
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_overwrite_checks_the_format_marker(tmp_path, remote):
    # someone's project with its own manifest.json is not a catalogue
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "manifest.json").write_text('{"name": "my project", "version": 3}')
    (mine / "data.csv").write_text("1,2,3")
    with pytest.raises(FileExistsError, match=r"project.*not a cnnext catalogue"):
        fetch_region(REGION, source=remote, output=mine, overwrite=True, progress_bar=False)
    assert sorted(p.name for p in mine.iterdir()) == ["data.csv", "manifest.json"]
    # a real catalogue: overwrite replaces what the fetch wrote, and nothing else
    out = tmp_path / "cat"
    fetch_region(REGION, source=remote, output=out, progress_bar=False)
    (out / "README.txt").write_text("my notes about this download")
    cat = fetch_region("galactic; circle(280, 0, 0.5)", source=remote, output=out,
                       progress_bar=False, overwrite=True)
    assert (out / "README.txt").read_text() == "my notes about this download"
    assert len(cat.cells) == len(region_to_cells("galactic; circle(280, 0, 0.5)", 7))


def test_catalogue_files_follow_umask(tmp_path, remote):
    old = os.umask(0o022)
    try:
        fetch_region(REGION, source=remote, output=tmp_path / "cat", progress_bar=False)
    finally:
        os.umask(old)
    written = [p for p in (tmp_path / "cat").rglob("*") if p.is_file() and p.name != "lock"]
    assert written and {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o644)}


def test_two_fetches_cannot_share_a_catalogue(tmp_path, remote, stars):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "cat"
    out.mkdir()  # an empty directory is a fine place for a new catalogue
    # another process holds the catalogue's lock (the OS frees it if that process dies)
    with open(out / "lock", "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.write("4242")
        other.flush()
        for options in ({}, {"overwrite": True}):
            with pytest.raises(CheckpointError, match=r"another fetch \(process 4242\)"):
                fetch_region(REGION, source=remote, output=out, progress_bar=False,
                             **options)
    # released: the fetch runs, and a later one resumes the finished catalogue
    cat = fetch_region(REGION, source=remote, output=out, progress_bar=False)
    assert cat.complete
    again = fetch_region(REGION, source=remote, output=out, progress_bar=False)
    _same_stars(again.query_cells(again.cells, 7), cat.query_cells(cat.cells, 7))


def test_damaged_catalogue_names_the_file(tmp_path, remote):
    out = tmp_path / "cat"
    cat = fetch_region(REGION, source=remote, output=out, progress_bar=False)
    victim = sorted((out / "tiles").glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"catalogue file '{victim}' is corrupted"):
        cat.query_cells(cat.cells, 7)
    (out / "manifest.json").write_text("{")
    with pytest.raises(CheckpointError, match="manifest.*is corrupted"):
        LocalCatalogSource(out)
    with pytest.raises(FileNotFoundError, match="not a cnnext catalogue"):
        LocalCatalogSource(tmp_path)


def test_fetch_from_vizier_then_build_offline(tmp_path):
    """The real astroquery client against a local fake VizieR, then an offline build."""
    from cnnext.testing.servers import FakeVizier

    stars = random_stars(3000, l=(279.0, 281.0), b=(-1.0, 1.0), seed=5)
    region = "galactic; box(280, 0, 1.5, 1.2, 0)"
    model = CNNModel(write_tiny_model(tmp_path / "tiny.onnx"), providers="cpu")
    with conf.set_temp("max_retries", 2), FakeVizier(stars, faults=["http500"]) as server:
        source = server.source(cache=False)
        online = build_map(region, source=source, model=model, output=tmp_path / "on.fits",
                           progress_bar=False)
        cat = fetch_region(region, source=source, output=tmp_path / "cat",
                           progress_bar=False)
    # the server is gone: the build runs from the local copy
    offline = build_map(region, source=cat, model=model, output=tmp_path / "off.fits",
                        progress_bar=False)
    np.testing.assert_array_equal(offline.cells, online.cells)
    np.testing.assert_array_equal(offline.n_stars, online.n_stars)
    np.testing.assert_array_equal(offline.av, online.av)
    assert cat.manifest["source"].startswith("vizier:127.0.0.1")


def test_silent_service_wait_is_bounded(tmp_path, stars):
    from cnnext.testing.servers import FakeVizier

    with FakeVizier(stars, faults=["hang"] * 50) as server, \
            conf.set_temp("max_wait", 1.0), conf.set_temp("wait_notice", 0), \
            conf.set_temp("use_cache", False):
        source = server.source(cache=False)
        with pytest.raises(PhotometryError, match=r"1 attempt.*max_wait = 1 s.*cnnext fetch"):
            # the fetch's own tile retries do not start the wait over
            fetch_region("galactic; circle(280, 0, 0.2)", source=source,
                         output=tmp_path / "cat", tile_retries=3, progress_bar=False)
        assert server.n_requests == 1
