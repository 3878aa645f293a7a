# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of cnnext.region: sky regions to HEALPix cells."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude, SkyCoord

from cnnext.healpix import cell_centres, lonlat_to_cells
from cnnext.region import check_cells, region_to_cells

ORDER = 7


@pytest.fixture(scope="module")
def centres():
    cells = np.arange(12 * 4**ORDER, dtype=np.int64)
    l, b = cell_centres(cells, ORDER)
    return cells, l, b


def test_galactic_box_is_lonlat_range(centres):
    cells, l, b = centres
    got = region_to_cells("galactic; box(280, 0, 46, 10, 0)", ORDER)
    expected = cells[(l >= 257) & (l <= 303) & (np.abs(b) <= 5)]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert len(got) == 2145


def test_whole_plane_box_and_range_region_agree(centres):
    from regions import RangeSphericalSkyRegion

    cells, l, b = centres
    expected = cells[np.abs(b) <= 5]
    box = region_to_cells("galactic\nbox(180, 0, 360, 10, 0)", ORDER)
    ring = region_to_cells(RangeSphericalSkyRegion("galactic", latitude_range=[-5, 5] * u.deg),
                           ORDER)
    np.testing.assert_array_equal(box, expected)
    np.testing.assert_array_equal(ring, expected)
    assert len(expected) == 16896


def test_box_across_longitude_zero(centres):
    cells, l, b = centres
    got = region_to_cells("galactic; box(0, 0, 20, 10, 0)", ORDER)
    expected = cells[((l <= 10) | (l >= 350)) & (np.abs(b) <= 5)]
    np.testing.assert_array_equal(got, expected)


def test_neighbouring_boxes_tile_without_overlap():
    left = region_to_cells("galactic; box(270, 0, 10, 4, 0)", ORDER)
    right = region_to_cells("galactic; box(280.1, 0, 10.2, 4, 0)", ORDER)
    both = region_to_cells("galactic; box(275.1, 0, 20.2, 4, 0)", ORDER)
    assert np.intersect1d(left, right).size == 0
    np.testing.assert_array_equal(np.union1d(left, right), both)


@pytest.mark.parametrize("frame", ["galactic", "icrs", "fk5"])
def test_circle_is_exact_in_any_frame(centres, frame):
    from regions import CircleSkyRegion

    cells, l, b = centres
    centre = SkyCoord(285.0, -1.5, unit="deg", frame="galactic")
    region = CircleSkyRegion(centre.transform_to(frame), 2.0 * u.deg)
    got = region_to_cells(region, ORDER)
    sep = SkyCoord(l, b, unit="deg", frame="galactic").separation(centre).deg
    expected = cells[sep <= 2.0]
    # centres within 1e-9 deg of the edge may go either way after frame rounding
    edge = np.abs(sep - 2.0) < 1e-9
    assert not np.any(edge)
    np.testing.assert_array_equal(got, expected)


def test_circle_at_high_order_uses_cone_search():
    # order 10 is above the brute-force limit: candidates come from cdshealpix
    centre = SkyCoord(280.0, 0.3, unit="deg", frame="galactic")
    got = region_to_cells("galactic; circle(280, 0.3, 0.5)", 10)
    l, b = cell_centres(got, 10)
    assert np.all(SkyCoord(l, b, unit="deg", frame="galactic").separation(centre).deg <= 0.5)
    # every order-10 cell whose centre is inside is found (checked via its parent set)
    parents = np.unique(got >> 6)
    kids = ((parents[:, None] << 6) + np.arange(64)).ravel()
    # widen to the neighbours' children: any cell inside has a parent within 0.5 deg + size
    kl, kb = cell_centres(kids, 10)
    inside = SkyCoord(kl, kb, unit="deg", frame="galactic").separation(centre).deg <= 0.5
    assert set(kids[inside]) <= set(got)
    assert abs(len(got) - np.pi * 0.25 / (4 * np.pi * (180 / np.pi) ** 2 / (12 * 4**10))) \
        < 0.05 * len(got)


def test_exclusion_region_is_removed(centres):
    cells, l, b = centres
    got = region_to_cells("galactic; box(280, 0, 10, 10, 0); -circle(280, 0, 2)", ORDER)
    sep = SkyCoord(l, b, unit="deg", frame="galactic").separation(
        SkyCoord(280, 0, unit="deg", frame="galactic")).deg
    expected = cells[(np.abs(l - 280) <= 5) & (np.abs(b) <= 5) & (sep > 2)]
    np.testing.assert_array_equal(got, expected)


def test_union_of_regions_and_regions_list():
    from regions import Regions

    text = "galactic\ncircle(280, 0, 1)\ncircle(290, 0, 1)"
    a = region_to_cells("galactic; circle(280, 0, 1)", ORDER)
    b = region_to_cells("galactic; circle(290, 0, 1)", ORDER)
    np.testing.assert_array_equal(region_to_cells(text, ORDER), np.union1d(a, b))
    regs = Regions.parse(text, format="ds9")
    np.testing.assert_array_equal(region_to_cells(regs, ORDER), np.union1d(a, b))
    np.testing.assert_array_equal(region_to_cells(list(regs), ORDER), np.union1d(a, b))


def test_polygon_in_lonlat(centres):
    cells, l, b = centres
    got = region_to_cells("galactic; polygon(270.1, -2.1, 275.1, -2.1, 275.1, 2.1, 270.1, 2.1)",
                          ORDER)
    expected = cells[(l > 270.1) & (l < 275.1) & (np.abs(b) < 2.1)]
    np.testing.assert_array_equal(got, expected)


def test_point_region_gives_its_cell():
    from regions import PointSkyRegion

    point = SkyCoord(280.0, 0.0, unit="deg", frame="galactic")
    got = region_to_cells(PointSkyRegion(point.icrs), ORDER)
    assert got.tolist() == [int(lonlat_to_cells(280.0, 0.0, ORDER))]


def test_region_file(tmp_path):
    path = tmp_path / "carina.reg"
    path.write_text("# Region file format: DS9\ngalactic\nbox(280,0,46,10,0)\n")
    np.testing.assert_array_equal(region_to_cells(path, ORDER),
                                  region_to_cells(str(path), ORDER))
    assert len(region_to_cells(path, ORDER)) == 2145


def test_moc_region():
    from mocpy import MOC

    fine = MOC.from_cone(Longitude(280 * u.deg), Latitude(0 * u.deg), radius=1 * u.deg,
                         max_depth=9)
    coarse = MOC.from_cone(Longitude(280 * u.deg), Latitude(0 * u.deg), radius=1 * u.deg,
                           max_depth=5)
    fine_cells = region_to_cells(fine, ORDER)
    coarse_cells = region_to_cells(coarse, ORDER)
    # a finer MOC gives the parents of its cells; a coarser one all children
    np.testing.assert_array_equal(fine_cells, np.unique(np.asarray(
        fine.degrade_to_order(ORDER).flatten(), np.int64)))
    assert len(coarse_cells) % 16 == 0
    assert set(fine_cells) <= set(coarse_cells)


def test_cell_arrays():
    assert region_to_cells(np.array([5, 3, 5], np.int32), ORDER).tolist() == [3, 5]
    assert region_to_cells([], ORDER).tolist() == []
    np.testing.assert_array_equal(check_cells(7, ORDER), [7])
    with pytest.raises(ValueError, match=r"\[0, 196608\)"):
        region_to_cells([196608], ORDER)
    with pytest.raises(TypeError, match="integers"):
        check_cells([1.5], ORDER)
    with pytest.raises(ValueError, match="1D"):
        check_cells([[1, 2]], ORDER)


def test_bad_regions():
    from regions import CirclePixelRegion, PixCoord

    with pytest.raises(TypeError, match="pixel region"):
        region_to_cells(CirclePixelRegion(PixCoord(1, 2), 3), ORDER)
    with pytest.raises(ValueError, match="DS9"):
        region_to_cells("galactic; circle(280, 100, 1)", ORDER)
    with pytest.raises(FileNotFoundError, match="neither a DS9 region string"):
        region_to_cells("carina.reg", ORDER)
    with pytest.raises(ValueError, match="DS9 region"):
        region_to_cells("galactic; blob(1, 2)", ORDER)
    with pytest.raises(TypeError, match="region must be"):
        region_to_cells({"l": 280}, ORDER)
    with pytest.raises(TypeError, match="lonlat_to_cells"):
        region_to_cells(SkyCoord([1, 2], [3, 4], unit="deg"), ORDER)
    with pytest.raises(ValueError, match="order"):
        region_to_cells("galactic; circle(280, 0, 1)", 30)
