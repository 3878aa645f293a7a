# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
HatsSource: a HATS catalogue written by the test from mock-sky stars, read with LSDB
from disk and over HTTP, and used by build_map on a Dask LocalCluster.
"""

import functools
import io
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext.photometry import TableSource
from cnnext.region import region_to_cells

lsdb = pytest.importorskip("lsdb")

from cnnext.photometry.hats import HatsSource  # noqa: E402

# lsdb 0.11 calls pandas APIs that pandas 3 deprecates (inplace=True); a
# DeprecationWarning users do not see, and not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

REGION = "galactic; box(285, 0.5, 1.6, 1.0, 0)"


@pytest.fixture(scope="module")
def mock_stars():
    """The stars of a few order-7 cells of a MockSky, with ICRS positions added."""
    from cnnext.synthetic import MockSky

    cells = region_to_cells(REGION, 7)
    # every fourth star: still ~3500 per cell, and a quicker catalogue to write
    stars = MockSky(seed=3).query_cells(cells, 7)[::4]
    icrs = SkyCoord(stars["l"], stars["b"], unit="deg", frame="galactic").icrs
    stars["ra"] = icrs.ra.deg
    stars["dec"] = icrs.dec.deg
    return stars


def _write_hats(stars, path, **rename):
    frame = stars.to_pandas().rename(columns=rename)
    # no margin cache and no MOC: not needed for cone/MOC searches, and slow to make
    cat = lsdb.from_dataframe(frame, ra_column="ra", dec_column="dec", catalog_name=path.name,
                              lowest_order=2, highest_order=7, partition_rows=10000,
                              margin_threshold=None, should_generate_moc=False)
    cat.write_catalog(path, progress_bar=False)
    return path


@pytest.fixture(scope="module")
def hats_dir(tmp_path_factory, mock_stars):
    return _write_hats(mock_stars, tmp_path_factory.mktemp("hats") / "mock2mass")


@pytest.fixture(scope="module")
def reference(mock_stars):
    return TableSource(mock_stars, key="table:mock")


def _same_stars(a, b):
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a["cell"], b["cell"])
    # stars come back grouped by cell; inside a cell the order is the reader's
    for name in ("J", "H", "Ks", "e_Ks", "l", "b"):
        ka = np.lexsort((np.nan_to_num(a[name]), a["cell"]))
        kb = np.lexsort((np.nan_to_num(b[name]), b["cell"]))
        np.testing.assert_array_equal(np.asarray(a[name])[ka], np.asarray(b[name])[kb])
    assert sorted(a["ph_qual"]) == sorted(b["ph_qual"])


def test_catalogue_has_several_partitions(hats_dir):
    assert lsdb.open_catalog(hats_dir).npartitions >= 2


def test_query_cells_equals_local_table(hats_dir, reference):
    source = HatsSource(hats_dir)
    assert source.key == f"hats:{hats_dir}"
    cells = region_to_cells(REGION, 7)
    got = source.query_cells(cells, 7)
    _same_stars(got, reference.query_cells(cells, 7))
    assert got.colnames[:8] == ["l", "b", "J", "H", "Ks", "e_J", "e_H", "e_Ks"]
    # a subset, a finer order, and cells with no star
    _same_stars(source.query_cells(cells[1:3], 7), reference.query_cells(cells[1:3], 7))
    fine = (cells[:1] << 2) + np.arange(4)
    _same_stars(source.query_cells(fine, 8), reference.query_cells(fine, 8))
    empty = source.query_cells(region_to_cells("galactic; circle(100, 40, 0.2)", 7), 7)
    assert len(empty) == 0 and "cell" in empty.colnames


def test_query_cone(hats_dir, reference):
    centre = SkyCoord(285.0, 0.5, unit="deg", frame="galactic")
    got = HatsSource(hats_dir).query_cone(centre, 0.2 * u.deg)
    ref = reference.query_cone(centre, 0.2 * u.deg)
    assert len(got) == len(ref) > 100
    np.testing.assert_array_equal(np.sort(got["Ks"]), np.sort(ref["Ks"]))


def test_column_mapping(tmp_path, mock_stars, reference):
    cells = region_to_cells(REGION, 7)[:2]
    subset = mock_stars[np.isin(mock_stars["cell"], cells)]
    path = _write_hats(subset, tmp_path / "renamed", Ks="kmag_x", e_Ks="kerr_x")
    with pytest.raises(KeyError, match="Ks"):
        HatsSource(path).query_cells(cells, 7)
    source = HatsSource(path, columns={"Ks": "kmag_x", "e_Ks": "kerr_x"})
    _same_stars(source.query_cells(cells, 7), reference.query_cells(cells, 7))
    with pytest.raises(KeyError, match="lacks"):
        HatsSource(path, columns={"Ks": "nope"}).query_cells(cells, 7)


def test_fetched_catalogue_to_hats(tmp_path, reference):
    from cnnext.fetch import fetch_region, to_hats

    cells = region_to_cells(REGION, 7)[:3]
    cat = fetch_region(cells, source=reference, output=tmp_path / "cat", progress_bar=False)
    path = to_hats(cat, tmp_path / "cat-hats")
    _same_stars(HatsSource(path).query_cells(cells, 7), reference.query_cells(cells, 7))


def test_missing_catalogue(tmp_path):
    with pytest.raises(OSError, match="could not open HATS catalogue"):
        HatsSource(tmp_path / "nowhere").query_cells([1], 7)


class _RangeHandler(SimpleHTTPRequestHandler):
    """A static file server that honours byte ranges, as web servers and S3 do."""

    def log_message(self, *args):
        pass

    def send_head(self):
        header = self.headers.get("Range", "")
        path = self.translate_path(self.path)
        if not header.startswith("bytes=") or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, _, last = header[6:].partition("-")
        if first:
            start, stop = int(first), min(int(last) if last else size - 1, size - 1)
        else:  # suffix range: the last N bytes
            start, stop = max(size - int(last), 0), size - 1
        with open(path, "rb") as fh:
            fh.seek(start)
            body = fh.read(stop - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.send_header("Content-Length", str(stop - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(body)


def test_over_http(hats_dir, reference):
    pytest.importorskip("aiohttp")
    handler = functools.partial(_RangeHandler, directory=str(hats_dir.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{hats_dir.name}"
        cells = region_to_cells(REGION, 7)
        source = HatsSource(url)
        assert source.key == f"hats:{url}"
        _same_stars(source.query_cells(cells, 7), reference.query_cells(cells, 7))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_build_map_with_hats_on_dask(tmp_path, hats_dir, reference, dask_client):
    from cnnext import build_map
    from cnnext.model import CNNModel
    from cnnext.testing.models import write_tiny_model

    model = CNNModel(write_tiny_model(tmp_path / "tiny.onnx"), providers="cpu")
    local = build_map(REGION, source=reference, model=model, output=tmp_path / "ref.fits",
                      tile_order=6, progress_bar=False)
    got = build_map(REGION, source=HatsSource(hats_dir), model=model,
                    output=tmp_path / "hats.fits", client=dask_client, tile_order=6,
                    progress_bar=False, providers="cpu")
    assert got.meta["source"] == f"hats:{hats_dir}"
    for name in ("cells", "n_stars", "flags", "av", "sigma"):
        np.testing.assert_array_equal(getattr(got, name), getattr(local, name))
    assert np.all(local.n_stars > 500)
