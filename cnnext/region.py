# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Sky regions to HEALPix sightline cells.

`region_to_cells` turns what a user calls "a region" — a :mod:`regions` sky region
in any frame, a DS9 region string or file, a `mocpy.MOC`, or an explicit array of
cells — into the sorted nested Galactic HEALPix cells of a map.

A cell belongs to a region when its **centre** lies inside the region. With this
rule neighbouring regions that share a border share no cell, and a region covers
the same cells whatever the cell size it was drawn with.

How shapes are read:

- circles (`~regions.CircleSkyRegion`, `~regions.CircleAnnulusSkyRegion`) and all
  spherical regions (`~regions.CircleSphericalSkyRegion`,
  `~regions.RangeSphericalSkyRegion`, `~regions.PolygonSphericalSkyRegion`, …) are
  exact on the sphere: a circle of radius r holds the cells whose centres are
  within r of its centre;
- the other planar shapes (boxes, ellipses, polygons, …) are read on a plate
  carrée (CAR) projection of the region's own frame with its reference point on the
  equator at the region's longitude: a box of width w and height h centred on
  (l, b) in Galactic coordinates is exactly the longitude/latitude range
  l ± w/2, b ± h/2 — the way DS9 draws a box on a Galactic all-sky image and the
  way survey areas such as ``l = 257–303°, |b| ≤ 5°`` are meant. Polygons join their
  vertices with straight lines in (longitude, latitude).

DS9 exclusion regions (``-circle(...)``) are removed from the union of the
included ones.
"""

import functools
import os

import astropy.units as u
import numpy as np
from astropy.coordinates import Galactic, SkyCoord

from .healpix import cell_centres, cell_size, check_order, child_cells, lonlat_to_cells

__all__ = ["region_to_cells", "check_cells", "cone_cells"]

# Above this order the all-sky centre list (12 * 4**order cells) is too big to test
# brute force; a cone search around the region's bounding circle gives candidates.
_BRUTE_FORCE_MAX_ORDER = 8


def check_cells(cells, order, name="cells"):
    """
    Return ``cells`` as sorted unique int64 nested HEALPix cells at ``order``.

    Raises
    ------
    TypeError
        The values are not integers.
    ValueError
        A value is outside ``[0, 12 * 4**order)`` or the array is not 1D.

    Examples
    --------
    >>> from cnnext.region import check_cells
    >>> check_cells([121431, 121430, 121431], 7).tolist()
    [121430, 121431]
    >>> check_cells([200000], 7)
    Traceback (most recent call last):
    ...
    ValueError: cells must be nested HEALPix cells in [0, 196608) at order 7
    """
    order = check_order(order)
    cells = np.asarray(cells)
    if cells.ndim == 0:
        cells = cells.reshape(1)
    if cells.ndim != 1:
        raise ValueError(f"{name} must be a 1D array of HEALPix cells, got shape "
                         f"{cells.shape}")
    if cells.size and not np.issubdtype(cells.dtype, np.integer):
        raise TypeError(f"{name} must be integers (nested HEALPix cells), got dtype "
                        f"{cells.dtype}")
    cells = np.unique(cells.astype(np.int64))
    n_pix = 12 * 4**order
    if cells.size and (cells[0] < 0 or cells[-1] >= n_pix):
        raise ValueError(f"{name} must be nested HEALPix cells in [0, {n_pix}) at order "
                         f"{order}")
    return cells


def region_to_cells(region, order):
    """
    Return the nested Galactic HEALPix cells at ``order`` whose centres lie in ``region``.

    Parameters
    ----------
    region : region, str, `mocpy.MOC` or array of int
        One of:

        - a :mod:`regions` sky region (planar ``*SkyRegion`` or spherical
          ``*SphericalSkyRegion``) in any celestial frame, or a
          `~regions.Regions` list or any sequence of them (their union);
        - a DS9 region string (``"galactic; box(280, 0, 46, 10, 0)"``) or the
          path of a DS9 region file; exclusion regions (``-circle(...)``) are
          subtracted;
        - a `mocpy.MOC` (its cells at ``order``: coarser MOC cells are split,
          finer ones give their parent);
        - an array of nested Galactic HEALPix cells at ``order`` (validated, sorted,
          duplicates removed).

        A `~regions.PointSkyRegion` gives the one cell that contains it.
    order : int
        HEALPix order of the cells (the model's order).

    Returns
    -------
    cells : `numpy.ndarray`
        Sorted unique ``int64`` cell numbers.

    Raises
    ------
    TypeError
        ``region`` is of an unsupported type, or is a pixel region (no sky
        coordinates).
    ValueError
        A DS9 string cannot be parsed, or cells are out of range.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from regions import CircleSkyRegion
    >>> from cnnext.region import region_to_cells
    >>> carina = region_to_cells("galactic; box(280, 0, 46, 10, 0)", order=7)
    >>> len(carina)
    2145
    >>> circle = CircleSkyRegion(SkyCoord(280, 0, unit="deg", frame="galactic"), 1 * u.deg)
    >>> len(region_to_cells(circle, order=7))
    15
    >>> region_to_cells([121430, 121429, 121430], order=7).tolist()
    [121429, 121430]
    """
    order = check_order(order)
    if isinstance(region, (str, os.PathLike)):
        return _regions_to_cells(_parse_ds9(region), order)
    if _is_moc(region):
        return _moc_to_cells(region, order)
    if _is_region(region):
        return _regions_to_cells([region], order)
    if isinstance(region, (list, tuple)) and region and all(_is_region(r) for r in region):
        return _regions_to_cells(list(region), order)
    try:
        from regions import Regions
        if isinstance(region, Regions):
            return _regions_to_cells(list(region), order)
    except ImportError:  # pragma: no cover - regions is a core dependency
        pass
    if isinstance(region, SkyCoord):
        raise TypeError("region must be a sky region, a DS9 string or cells; for a list of "
                        "positions use cnnext.healpix.lonlat_to_cells(coord.galactic.l, ...)")
    arr = np.asarray(region)
    if arr.dtype.kind in "iu" or (arr.dtype.kind == "O" and arr.size == 0) or \
            (arr.dtype.kind == "f" and arr.size == 0):
        return check_cells(arr.astype(np.int64), order, name="region")
    raise TypeError(f"region must be a regions sky region, a DS9 region string or file, a "
                    f"mocpy.MOC or an array of HEALPix cells; got {type(region).__name__}")


def _is_region(obj):
    try:
        from regions import Region
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Region)


def _is_moc(obj):
    return type(obj).__name__ == "MOC" and hasattr(obj, "flatten") and hasattr(obj, "max_order")


def _parse_ds9(text):
    from regions import Regions

    text = os.fspath(text)
    if "(" not in text:
        # no shape: it can only be the name of a region file
        if not os.path.isfile(text):
            raise FileNotFoundError(f"region {text!r} is neither a DS9 region string (e.g. "
                                    f"'galactic; box(280, 0, 46, 10, 0)') nor an existing "
                                    f"region file")
        try:
            return list(Regions.read(text, format="ds9"))
        except Exception as exc:
            raise ValueError(f"could not read DS9 region file {text!r}: {exc}") from None
    try:
        parsed = Regions.parse(text.replace(";", "\n"), format="ds9")
    except Exception as exc:
        raise ValueError(f"could not parse region {text!r} as a DS9 region string "
                         f"({exc}); example: 'galactic; box(280, 0, 46, 10, 0)'") from None
    if len(parsed) == 0:
        raise ValueError(f"region {text!r} holds no DS9 region; example: "
                         f"'galactic; circle(280, 0, 1)'")
    return list(parsed)


def _moc_to_cells(moc, order):
    moc_order = int(moc.max_order)
    if moc_order >= order:
        flat = np.asarray(moc.degrade_to_order(order).flatten(), dtype=np.int64)
        return np.unique(flat)
    flat = np.asarray(moc.flatten(), dtype=np.int64)
    return child_cells(flat, moc_order, order)


def _regions_to_cells(regions_list, order):
    include = np.zeros(0, np.int64)
    exclude = np.zeros(0, np.int64)
    for reg in regions_list:
        cells = _one_region_cells(reg, order)
        if (getattr(reg, "meta", None) or {}).get("include", True) in (0, False):
            exclude = np.union1d(exclude, cells)
        else:
            include = np.union1d(include, cells)
    return np.setdiff1d(include, exclude).astype(np.int64)


@functools.lru_cache(maxsize=2)
def _all_centres(order):
    cells = np.arange(12 * 4**order, dtype=np.int64)
    l, b = cell_centres(cells, order)
    return cells, SkyCoord(l, b, unit="deg", frame="galactic")


def _candidates(centre_gal, radius_deg, order):
    """Cells whose centres may lie within ``radius_deg`` of ``centre_gal``."""
    # a centre is inside the bounding circle; a cone search returns every cell that
    # overlaps it, so nothing whose centre is inside is missed
    if not radius_deg < 180.0:
        return np.arange(12 * 4**order, dtype=np.int64)
    if order <= _BRUTE_FORCE_MAX_ORDER:
        cells, coords = _all_centres(order)
        return cells[coords.separation(centre_gal).deg <= radius_deg + 1e-9]
    return cone_cells(centre_gal.l.deg, centre_gal.b.deg, radius_deg, order)


def cone_cells(l, b, radius_deg, order):
    """
    Return the nested Galactic cells at ``order`` that overlap a cone (and a few
    more): a superset. ``l``, ``b`` and ``radius_deg`` are in degrees.

    astropy-healpix's cone search may leave out cells that the cone only grazes;
    widening the cone by a cell's size keeps every overlapping cell.
    """
    from astropy.coordinates import Latitude, Longitude
    from astropy_healpix import HEALPix, level_to_nside

    hp = HEALPix(nside=level_to_nside(order), order="nested")
    radius = min(radius_deg + 1.5 * cell_size(order) / 60.0, 180.0)
    cells = hp.cone_search_lonlat(Longitude(l * u.deg), Latitude(b * u.deg), radius * u.deg)
    return np.unique(np.asarray(cells, dtype=np.int64))


def _centres_in_frame(cells, order, frame):
    l, b = cell_centres(cells, order)
    coords = SkyCoord(l, b, unit="deg", frame="galactic")
    return coords if isinstance(frame, Galactic) else coords.transform_to(frame)


def _one_region_cells(reg, order):
    from regions import (
        CircleAnnulusSkyRegion,
        CircleSkyRegion,
        PixelRegion,
        PointSkyRegion,
        SkyRegion,
        TextSkyRegion,
    )
    try:
        from regions import SphericalSkyRegion
    except ImportError:  # regions < 0.10 has no spherical regions
        SphericalSkyRegion = ()

    if isinstance(reg, PixelRegion):
        raise TypeError(f"{type(reg).__name__} is a pixel region: give sky coordinates "
                        f"(e.g. 'galactic; circle(280, 0, 1)') or convert it with "
                        f"region.to_sky(wcs)")
    if isinstance(reg, TextSkyRegion):
        raise ValueError("a text region has no area; give a shape")
    if isinstance(reg, PointSkyRegion):
        gal = reg.center.galactic
        return lonlat_to_cells(np.atleast_1d(gal.l.deg), np.atleast_1d(gal.b.deg), order)
    if isinstance(reg, (CircleSkyRegion, CircleAnnulusSkyRegion)) and SphericalSkyRegion:
        reg = reg.to_spherical_sky()
    if SphericalSkyRegion and isinstance(reg, SphericalSkyRegion):
        bounding = reg.bounding_circle
        centre, radius = bounding.center, bounding.radius
        cells = _candidates(centre.galactic, radius.to_value(u.deg), order)
        if cells.size == 0:
            return cells
        inside = reg.contains(_centres_in_frame(cells, order, reg.frame))
        return cells[np.asarray(inside, bool)]
    if isinstance(reg, SkyRegion):
        return _planar_cells(reg, order)
    raise TypeError(f"unsupported region type {type(reg).__name__}")


def _planar_cells(reg, order):
    """Cells of a planar sky region read on a CAR projection of its own frame."""
    from astropy.wcs import WCS
    from regions import PixCoord, RectangleSkyRegion

    anchor = _anchor(reg)
    frame = anchor.frame.replicate_without_data()
    lon0 = anchor.spherical.lon.deg
    lon_name, lat_name = _wcs_axis_names(anchor.frame)
    # 1/1000 degree per pixel: fine enough that the pixel conversion of the
    # region's shape loses nothing; the origin of the projection is (lon0, 0).
    step = 1e-3
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = [lon_name.ljust(4, "-") + "-CAR", lat_name.ljust(4, "-") + "-CAR"]
    wcs.wcs.crval = [lon0, 0.0]
    wcs.wcs.crpix = [1.0, 1.0]  # FITS pixels are 1-based: the origin is pixel (0, 0)
    wcs.wcs.cdelt = [-step, step]
    if lon_name == "RA":
        wcs.wcs.radesys = anchor.frame.name.upper() if anchor.frame.name in (
            "icrs", "fk5", "fk4") else "ICRS"
        if anchor.frame.name in ("fk5", "fk4"):
            wcs.wcs.equinox = anchor.frame.equinox.jyear
    pix = reg.to_pixel(wcs)
    bbox = pix.bounding_box
    # the projection is defined for |lon - lon0| <= 180 deg and |lat| <= 90 deg only
    xmax, ymax = 180.0 / step, 90.0 / step
    xs = np.linspace(max(bbox.ixmin - 1, -xmax), min(bbox.ixmax + 1, xmax), 41)
    ys = np.linspace(max(bbox.iymin - 1, -ymax), min(bbox.iymax + 1, ymax), 41)
    gx, gy = np.meshgrid(xs, ys)
    ring = wcs.pixel_to_world(gx.ravel(), gy.ravel())
    centre = wcs.pixel_to_world(xs.mean(), ys.mean())
    # the sampled box edges bound the region; a cell's half-diagonal covers the gaps
    # between the samples
    spacing = max(xs[-1] - xs[0], ys[-1] - ys[0]) * step / 40
    radius = float(np.max(ring.separation(centre).deg)) + spacing + cell_size(order) / 60
    cells = _candidates(centre.galactic, radius, order)
    if cells.size == 0:
        return cells
    coords = _centres_in_frame(cells, order, frame)
    if isinstance(reg, RectangleSkyRegion) and reg.angle.to_value(u.deg) % 180 == 0:
        # an unrotated box is a longitude/latitude range: test it exactly, without
        # the projection's rounding at the +-180 deg seam
        half_w, half_h = reg.width.to_value(u.deg) / 2, reg.height.to_value(u.deg) / 2
        dlon = (coords.spherical.lon.deg - lon0 + 180.0) % 360.0 - 180.0
        dlat = coords.spherical.lat.deg - anchor.spherical.lat.deg
        return cells[(np.abs(dlon) <= half_w + 1e-9) & (np.abs(dlat) <= half_h + 1e-9)]
    x, y = wcs.world_to_pixel(coords)
    inside = pix.contains(PixCoord(x, y))
    # a longitude 180 deg from lon0 is both ends of the projection: a region that
    # reaches it (a 360-deg wide box) must see the point at the other end too
    inside |= pix.contains(PixCoord(x - np.sign(x) * 2 * xmax, y))
    return cells[np.asarray(inside, bool)]


def _anchor(reg):
    centre = getattr(reg, "center", None)
    if centre is not None:
        return centre
    vertices = getattr(reg, "vertices", None)
    if vertices is not None:
        # circular mean of the longitudes so that polygons across lon = 0 work
        lon = vertices.spherical.lon.rad
        lat = vertices.spherical.lat.deg
        mean_lon = np.degrees(np.arctan2(np.sin(lon).mean(), np.cos(lon).mean())) % 360
        return SkyCoord(mean_lon * u.deg, np.mean(lat) * u.deg,
                        frame=vertices.frame.replicate_without_data())
    start = getattr(reg, "start", None)
    if start is not None:
        return start
    raise TypeError(f"cannot place region type {type(reg).__name__} on the sky")


def _wcs_axis_names(frame):
    name = frame.name
    if name == "galactic":
        return "GLON", "GLAT"
    if name in ("icrs", "fk5", "fk4"):
        return "RA", "DEC"
    if name == "barycentricmeanecliptic" or name.endswith("ecliptic"):
        return "ELON", "ELAT"
    if name == "supergalactic":
        return "SLON", "SLAT"
    raise TypeError(f"regions in frame {name!r} are not supported; use galactic, icrs, "
                    f"fk5, fk4, ecliptic or supergalactic")
