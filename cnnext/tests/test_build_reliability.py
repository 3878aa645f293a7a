# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Reliability of build_map: a build killed with SIGKILL resumes to the same map, and
a photometry server that fails a third of its requests still gives the same map.
"""

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from cnnext import build_map, conf
from cnnext.build import checkpoint_path, tile_cells
from cnnext.io.mapfile import read_map
from cnnext.model import CNNModel
from cnnext.photometry import TableSource
from cnnext.region import region_to_cells
from cnnext.testing.models import write_tiny_model
from cnnext.testing.servers import FakeVizier, random_stars

REGION = "galactic; box(280, 0, 3, 1.6, 0)"
TILE_ORDER = 6

_KILLED_BUILD = textwrap.dedent("""
    import sys, time
    from cnnext import build_map
    from cnnext.photometry import TableSource

    class SlowSource(TableSource):
        # a slow photometry server: the parent has time to kill the build mid-way
        def query_cells(self, cells, order, *, progress_bar=False):
            time.sleep(0.4)
            return super().query_cells(cells, order)

    stars, model, output = sys.argv[1:4]
    build_map({region!r}, source=SlowSource(stars, key="table:stars"), model=model,
              output=output, tile_order={tile_order}, progress_bar=False, providers="cpu")
""").format(region=REGION, tile_order=TILE_ORDER)


class CountingSource(TableSource):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def query_cells(self, cells, order, *, progress_bar=False):
        self.calls.append(np.asarray(cells))
        return super().query_cells(cells, order)


def _assert_same(a, b):
    np.testing.assert_array_equal(a.cells, b.cells)
    np.testing.assert_array_equal(a.n_stars, b.n_stars)
    np.testing.assert_array_equal(a.flags, b.flags)
    np.testing.assert_array_equal(a.av, b.av)
    np.testing.assert_array_equal(a.sigma, b.sigma)
    np.testing.assert_array_equal(a.dmin, b.dmin)
    np.testing.assert_array_equal(a.dmax, b.dmax)


@pytest.mark.slow
def test_sigkill_mid_build_then_resume(tmp_path):
    stars = random_stars(12000, l=(278.0, 282.0), b=(-1.2, 1.2), seed=3)
    stars_file = tmp_path / "stars.fits"
    stars.write(stars_file)
    model_file = write_tiny_model(tmp_path / "tiny.onnx")
    out = tmp_path / "map.fits"
    ckpt = checkpoint_path(out)
    cells = region_to_cells(REGION, 7)
    n_tiles = len(tile_cells(cells, 7, TILE_ORDER)[0])

    proc = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, str(stars_file),
                             str(model_file), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(list(ckpt.glob("tile-*.npz"))) < 3:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the build never checkpointed a tile"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    n_done = len(list(ckpt.glob("tile-*.npz")))
    assert 3 <= n_done < n_tiles

    # rerun: only the unfinished tiles are computed, and the map is the same as
    # that of a build that was never interrupted
    model = CNNModel(model_file, providers="cpu")
    resumed_source = CountingSource(str(stars_file), key="table:stars")
    resumed = build_map(REGION, source=resumed_source, model=model, output=out,
                        tile_order=TILE_ORDER, progress_bar=False)
    assert len(resumed_source.calls) == n_tiles - n_done
    assert not ckpt.exists()
    whole = build_map(REGION, source=TableSource(str(stars_file), key="table:stars"),
                      model=model, output=tmp_path / "whole.fits", tile_order=TILE_ORDER,
                      progress_bar=False)
    np.testing.assert_array_equal(resumed.cells, cells)
    _assert_same(resumed, whole)
    _assert_same(read_map(out), whole)


@pytest.mark.slow
def test_server_failing_a_third_of_requests(tmp_path):
    stars = random_stars(6000, l=(278.5, 281.5), b=(-1.0, 1.0), seed=7)
    model = CNNModel(write_tiny_model(tmp_path / "tiny.onnx"), providers="cpu")
    region = "galactic; box(280, 0, 2, 1.2, 0)"
    # one cell per tile: enough requests for every kind of failure to occur
    n_tiles = len(region_to_cells(region, 7))

    with conf.set_temp("retry_backoff", 0.01), conf.set_temp("max_retries", 3):
        with FakeVizier(stars) as server:
            clean = build_map(region, source=server.source(cache=False, tile_order=7),
                              model=model, output=tmp_path / "clean.fits",
                              tile_order=7, progress_bar=False)
            n_clean = server.n_requests
        # every third request fails, cycling through the kinds of failure
        kinds = itertools.cycle(["http500", "hang", "cutoff", "http503", "garbled"])
        faults = [next(kinds) if i % 3 == 2 else "ok" for i in range(6 * n_clean)]
        with FakeVizier(stars, faults=faults, hang_seconds=5) as server:
            source = server.source(cache=False, tile_order=7, timeout=0.3)
            faulty = build_map(region, source=source, model=model,
                               output=tmp_path / "faulty.fits", tile_order=7,
                               progress_bar=False)
            n_faulty = server.n_requests
            seen = {r["fault"] for r in server.requests}
    assert n_clean == n_tiles
    assert n_faulty > n_clean
    assert {"http500", "hang", "cutoff", "http503", "garbled"} <= seen
    _assert_same(faulty, clean)
    _assert_same(read_map(tmp_path / "faulty.fits"), clean)
    # and the same map as a local copy of the same stars
    local = build_map(region, source=TableSource(stars), model=model,
                      output=tmp_path / "local.fits", tile_order=7,
                      progress_bar=False)
    np.testing.assert_array_equal(local.n_stars, clean.n_stars)
    np.testing.assert_allclose(local.av, clean.av, rtol=1e-6)


def test_server_down_for_good_keeps_finished_tiles(tmp_path):
    stars = random_stars(3000, l=(279.0, 281.0), b=(-1.0, 1.0), seed=2)
    model = CNNModel(write_tiny_model(tmp_path / "tiny.onnx"), providers="cpu")
    region = "galactic; box(280, 0, 2, 1.2, 0)"
    cells = region_to_cells(region, 7)
    n_tiles = len(tile_cells(cells, 7, TILE_ORDER)[0])
    out = tmp_path / "map.fits"
    from cnnext.exceptions import PhotometryError

    with conf.set_temp("retry_backoff", 0.01), conf.set_temp("max_retries", 2):
        # the first two tiles are served, then the server fails every request
        with FakeVizier(stars, faults=["ok", "ok"], fail_rate=1.0) as server:
            with pytest.raises(PhotometryError, match=f"{n_tiles - 2} of {n_tiles} tiles "
                                                      f"failed.*HTTP 500.*rerun"):
                build_map(region, source=server.source(cache=False, tile_order=TILE_ORDER),
                          model=model, output=out, tile_order=TILE_ORDER,
                          progress_bar=False, tile_retries=1)
        assert len(list(checkpoint_path(out).glob("tile-*.npz"))) == 2
        with FakeVizier(stars) as server:
            m = build_map(region, source=server.source(cache=False, tile_order=TILE_ORDER),
                          model=model, output=out, tile_order=TILE_ORDER,
                          progress_bar=False)
            assert server.n_requests == n_tiles - 2
    np.testing.assert_array_equal(m.cells, cells)
