# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
HEALPix sightline cells: nested ordering, Galactic frame.

A sightline is a HEALPix cell; its stars are the stars inside the cell. The cell
size is a model property (the paper's 30' is about order 7, nside 128, 27.5').
"""

import astropy.units as u
import numpy as np
from astropy_healpix import HEALPix, level_to_nside

__all__ = ["lonlat_to_cells", "cell_centres", "cell_area", "cell_size",
           "parent_cells", "child_cells", "check_order", "cover_cells"]


def check_order(order, name="order"):
    """
    Return ``order`` as an int, or raise `ValueError` naming the argument.

    Examples
    --------
    >>> from cnnext.healpix import check_order
    >>> check_order(7.0)
    7
    >>> check_order(30, "tile_order")
    Traceback (most recent call last):
    ...
    ValueError: tile_order must be an integer HEALPix order in 0..29, got 30
    """
    if isinstance(order, bool) or int(order) != order or not 0 <= order <= 29:
        raise ValueError(f"{name} must be an integer HEALPix order in 0..29, got {order!r}")
    return int(order)


def _hp(order):
    return HEALPix(nside=level_to_nside(check_order(order)), order="nested")


def lonlat_to_cells(l, b, order):
    """
    Return the nested HEALPix cell of Galactic (l, b) positions in degrees.

    Examples
    --------
    >>> from cnnext.healpix import lonlat_to_cells
    >>> int(lonlat_to_cells(280.0, 0.0, 7))
    121430
    """
    l = np.asarray(l, dtype=float)
    b = np.asarray(b, dtype=float)
    return _hp(order).lonlat_to_healpix(l * u.deg, b * u.deg).astype(np.int64)


def cell_centres(cells, order):
    """
    Return the Galactic (l, b) centres of nested cells, in degrees.

    Examples
    --------
    >>> from cnnext.healpix import cell_centres
    >>> l, b = cell_centres([121430], 7)
    >>> print(f"l = {l[0]:.2f}, b = {b[0]:.2f}")
    l = 280.20, b = 0.00
    """
    lon, lat = _hp(order).healpix_to_lonlat(np.asarray(cells, dtype=np.int64))
    return lon.to_value(u.deg), lat.to_value(u.deg)


def cell_area(order):
    """
    Return the area of one cell in square degrees.

    Examples
    --------
    >>> from cnnext.healpix import cell_area
    >>> print(f"{cell_area(7):.4f} deg2")
    0.2098 deg2
    """
    return _hp(order).pixel_area.to_value(u.deg**2)


def cell_size(order):
    """
    Return the typical cell size (square root of the area) in arcmin.

    Examples
    --------
    >>> from cnnext.healpix import cell_size
    >>> print(f"{cell_size(7):.1f} arcmin")  # the shipped model's sightlines
    27.5 arcmin
    """
    return np.sqrt(cell_area(order)) * 60.0


def parent_cells(cells, order, parent_order):
    """
    Return the cell at ``parent_order`` that contains each cell at ``order``.

    Examples
    --------
    >>> from cnnext.healpix import parent_cells
    >>> parent_cells([121430, 121431], 7, 4).tolist()  # the map tile of two cells
    [1897, 1897]
    """
    shift = 2 * (check_order(order) - check_order(parent_order, "parent_order"))
    if shift < 0:
        raise ValueError(f"parent_order ({parent_order}) must not exceed order ({order})")
    return np.asarray(cells, dtype=np.int64) >> shift


def child_cells(cells, order, child_order):
    """
    Return the cells at ``child_order`` inside each cell at ``order`` (flattened, sorted).

    Examples
    --------
    >>> from cnnext.healpix import child_cells
    >>> child_cells([1897], 4, 5).tolist()
    [7588, 7589, 7590, 7591]
    """
    shift = 2 * (check_order(child_order, "child_order") - check_order(order))
    if shift < 0:
        raise ValueError(f"child_order ({child_order}) must not be below order ({order})")
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 1)
    return np.sort(((cells << shift) + np.arange(1 << shift)).ravel())


def cover_cells(cells, order, cover_order):
    """
    Return the cells at ``cover_order`` that cover ``cells`` at ``order`` (sorted,
    unique): their parents when ``cover_order`` is coarser, all their children when
    it is finer.

    Examples
    --------
    >>> from cnnext.healpix import cover_cells
    >>> cover_cells([121430, 121431, 7], 7, 4).tolist()
    [0, 1897]
    >>> cover_cells([1897], 4, 5).tolist()
    [7588, 7589, 7590, 7591]
    """
    if check_order(cover_order, "cover_order") <= check_order(order):
        return np.unique(parent_cells(cells, order, cover_order))
    return child_cells(cells, order, cover_order)
