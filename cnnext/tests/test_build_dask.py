# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""build_map on a Dask cluster (LocalCluster): same map as a local build."""

import numpy as np
import pytest

from cnnext import build_map, conf
from cnnext.build import _WORKER_MODELS, tile_cells
from cnnext.exceptions import PhotometryError
from cnnext.fetch import fetch_region
from cnnext.model import CNNModel
from cnnext.photometry import TableSource
from cnnext.photometry.base import PhotometrySource
from cnnext.testing.models import write_tiny_model
from cnnext.testing.servers import random_stars

distributed = pytest.importorskip("distributed")

REGION = "galactic; box(280, 0, 3, 1.6, 0)"
TILE_ORDER = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
    model = CNNModel(write_tiny_model(tmp / "tiny.onnx"), providers="cpu")
    source = TableSource(random_stars(12000, l=(278.0, 282.0), b=(-1.2, 1.2), seed=3),
                         key="table:dask")
    local = build_map(REGION, source=source, model=model, output=tmp / "local.fits",
                      tile_order=TILE_ORDER, progress_bar=False)
    return model, source, local


class Flaky(PhotometrySource):
    key = "table:dask"

    def __init__(self, inner, fail_cells):
        self.inner, self.fail_cells = inner, np.asarray(fail_cells, np.int64)

    def fetch_cells(self, cells, order, *, progress_bar=False):
        if np.intersect1d(cells, self.fail_cells).size:
            raise PhotometryError("server down")
        return self.inner.query_cells(cells, order)

    def fetch_cone(self, centre, radius_deg):
        return self.inner.fetch_cone(centre, radius_deg)


def _assert_same(a, b):
    for name in ("cells", "n_stars", "flags", "av", "sigma", "dmin", "dmax"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_dask_build_equals_local_build(tmp_path, dask_client, setup, monkeypatch):
    import cnnext.model

    model, source, local = setup
    loads = []

    init = cnnext.model.CNNModel.__init__

    def counting_init(self, *args, **kwargs):
        loads.append(args)
        init(self, *args, **kwargs)

    monkeypatch.setattr(cnnext.model.CNNModel, "__init__", counting_init)
    _WORKER_MODELS.clear()
    m = build_map(REGION, source=source, model=model, output=tmp_path / "dask.fits",
                  client=dask_client, tile_order=TILE_ORDER, progress_bar=False, providers="cpu")
    _assert_same(m, local)
    assert m.meta["build"]["dask"] is True
    assert len(tile_cells(local.cells, 7, TILE_ORDER)[0]) > 2
    # the model is loaded once per worker process (one process here), not per task,
    # even though both worker threads start their first tile at the same time
    assert len(loads) == 1


def test_dask_failed_tiles_then_resume(tmp_path, dask_client, setup):
    model, source, local = setup
    out = tmp_path / "m.fits"
    bad = local.cells[:1]
    with conf.set_temp("retry_backoff", 0.001):
        with pytest.raises(PhotometryError, match="1 of .* tiles failed") as info:
            build_map(REGION, source=Flaky(source, bad), model=model, output=out,
                      client=dask_client, tile_order=TILE_ORDER, progress_bar=False,
                      tile_retries=0, providers="cpu")
    assert info.value.failed_tiles == [int(bad[0]) >> 2]
    m = build_map(REGION, source=source, model=model, output=out, client=dask_client,
                  tile_order=TILE_ORDER, progress_bar=False, providers="cpu")
    _assert_same(m, local)


@pytest.mark.slow
def test_worker_processes_with_local_catalogue(tmp_path, dask_process_client, setup):
    model, source, local = setup
    cat = fetch_region(REGION, source=source, output=tmp_path / "cat", tile_order=TILE_ORDER,
                       progress_bar=False)
    offline_local = build_map(REGION, source=cat, model=model, output=tmp_path / "l.fits",
                              tile_order=TILE_ORDER, progress_bar=False)
    m = build_map(REGION, source=cat, model=model, output=tmp_path / "p.fits",
                  client=dask_process_client, tile_order=TILE_ORDER, progress_bar=False,
                  providers="cpu")
    # (looked up on the worker: a closure over this module's globals would not pickle)
    loaded = dask_process_client.run(
        lambda: len(__import__("cnnext.build", fromlist=["x"])._WORKER_MODELS))
    _assert_same(m, offline_local)
    np.testing.assert_array_equal(m.n_stars, local.n_stars)
    # each worker process loaded the model at most once
    assert 1 <= sum(loaded.values()) <= 2 and all(v <= 1 for v in loaded.values())


@pytest.mark.slow
def test_unpicklable_source_is_a_clear_error(tmp_path, dask_process_client, setup):
    import threading

    model, source, _ = setup
    bad = TableSource(source.stars)
    bad.lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot be sent to Dask workers"):
        build_map(REGION, source=bad, model=model, output=tmp_path / "m.fits",
                  client=dask_process_client, tile_order=TILE_ORDER, progress_bar=False)
