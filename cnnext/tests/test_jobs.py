# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of cnnext.jobs, the engine of build_map and fetch_region."""

import numpy as np
import pytest

from cnnext.exceptions import PhotometryError
from cnnext.jobs import failed_tiles_error, run_tiles, with_retries


def test_with_retries_then_a_photometry_error():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection reset")
        return "stars"

    assert with_retries(flaky, retries=2, backoff=0.0, what="tile 1") == "stars"
    calls.clear()
    with pytest.raises(PhotometryError, match="tile 1: failed after 2 attempt"):
        with_retries(flaky, retries=1, backoff=0.0, what="tile 1")
    with pytest.raises(KeyError):  # a bug is not retried
        with_retries(lambda: {}["x"], retries=3, backoff=0.0, what="tile 2")


def test_with_retries_stops_when_the_source_is_out_of_time():
    calls = []

    def slow():
        calls.append(1)
        error = PhotometryError("gave up after max_wait")
        error.out_of_time = True
        raise error

    with pytest.raises(PhotometryError):
        with_retries(slow, retries=5, backoff=0.0, what="tile 3")
    assert len(calls) == 1


def test_run_tiles_saves_each_tile_and_reports_failures():
    saved = {}

    def compute(tile, cells, scale):
        if tile == 2:
            raise PhotometryError("server down")
        return cells * scale

    pending = [(1, np.array([4, 5])), (2, np.array([8])), (3, np.array([12, 13]))]
    failed = run_tiles(pending, (compute, (10,)), save=saved.__setitem__, retries=1,
                       backoff=0.0, tile_order=6, n_cells=5, n_done=0, desc="test")
    assert sorted(saved) == [1, 3] and saved[3].tolist() == [120, 130]
    assert list(failed) == [2]
    error = failed_tiles_error(failed, 3, tile_order=6, n_finished=2, where="/tmp/x",
                               job="build", redo="compute")
    assert error.failed_tiles == [2]
    assert str(error).startswith("1 of 3 tiles failed (order 6): tile 2: tile 2 (order 6")
    assert "The 2 finished tiles are saved in '/tmp/x'" in str(error)


def test_failed_tiles_error_lists_ten():
    failed = {t: PhotometryError("down") for t in range(12)}
    error = failed_tiles_error(failed, 20, tile_order=4, n_finished=8, where="d", job="fetch",
                               redo="download")
    assert "(and 2 more)" in str(error) and "tile 9:" in str(error) and "tile 10:" not in str(
        error)
    assert "rerun the same fetch to download only the failed tiles" in str(error)
