# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.healpix import (
    cell_area,
    cell_centres,
    cell_size,
    check_order,
    child_cells,
    lonlat_to_cells,
    parent_cells,
)


def test_roundtrip_and_sizes():
    rng = np.random.default_rng(0)
    l, b = rng.uniform(0, 360, 1000), rng.uniform(-10, 10, 1000)
    cells = lonlat_to_cells(l, b, 7)
    cl, cb = cell_centres(cells, 7)
    assert np.all(lonlat_to_cells(cl, cb, 7) == cells)
    assert cell_size(7) == pytest.approx(27.48, abs=0.01)
    assert cell_area(7) * 12 * 4**7 == pytest.approx(41252.96, rel=1e-6)


def test_parent_child():
    cells = np.array([0, 5, 100])
    kids = child_cells(cells, 5, 7)
    assert kids.size == 3 * 16
    assert set(parent_cells(kids, 7, 5)) == {0, 5, 100}
    with pytest.raises(ValueError, match="parent_order"):
        parent_cells(cells, 5, 7)


@pytest.mark.parametrize("bad", [-1, 30, 2.5, "7", True])
def test_bad_order(bad):
    with pytest.raises((ValueError, TypeError)):
        check_order(bad)
