# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Star tables: the schema every photometry source returns, and the contract of a source.

A star table is an astropy `~astropy.table.Table` with the columns `STAR_COLUMNS`
(Galactic ``l``, ``b`` in deg; ``J``, ``H``, ``Ks`` and their errors in mag) and,
when the source has them, the 2MASS flags `FLAG_COLUMNS`. `PhotometrySource` is the
base of everything that gives star tables: the sources of `cnnext.photometry` and
the synthetic sky `cnnext.synthetic.MockSky`. It lives here, below both, so that
neither needs the other.
"""

import abc

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from .healpix import check_order
from .region import check_cells

__all__ = ["STAR_COLUMNS", "FLAG_COLUMNS", "PhotometrySource", "empty_star_table",
           "validate_star_table", "empty_with_cells", "check_cone", "select_cells"]

#: Numeric columns of a star table: Galactic position (deg), magnitudes and errors (mag).
STAR_COLUMNS = ("l", "b", "J", "H", "Ks", "e_J", "e_H", "e_Ks")
#: 2MASS quality flags, three characters each (J, H, Ks), when a source has them.
FLAG_COLUMNS = ("ph_qual", "cc_flg")


def empty_star_table(flags=True):
    """
    Return an empty star table with the cnnext schema.

    Examples
    --------
    >>> from cnnext.photometry import empty_star_table
    >>> empty_star_table().colnames
    ['l', 'b', 'J', 'H', 'Ks', 'e_J', 'e_H', 'e_Ks', 'ph_qual', 'cc_flg']
    """
    t = Table({c: np.zeros(0, dtype=np.float64) for c in STAR_COLUMNS})
    for c in STAR_COLUMNS[2:]:
        t[c].unit = "mag"
    t["l"].unit = t["b"].unit = "deg"
    if flags:
        for c in FLAG_COLUMNS:
            t[c] = np.zeros(0, dtype="U3")
    return t


def empty_with_cells(flags=True):
    """Return an empty star table with the int64 ``cell`` column of a cell query."""
    out = empty_star_table(flags=flags)
    out["cell"] = np.zeros(0, dtype=np.int64)
    return out


def validate_star_table(stars, name="stars"):
    """
    Check that ``stars`` has the star-table schema; raise naming what is wrong.

    Returns the table unchanged.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from cnnext.photometry import validate_star_table
    >>> validate_star_table(Table({"l": [280.0], "b": [0.0], "J": [12.0]}))
    Traceback (most recent call last):
    ...
    KeyError: "stars lacks star-table columns ['H', 'Ks', 'e_J', 'e_H', 'e_Ks']"
    """
    if not isinstance(stars, Table):
        raise TypeError(f"{name} must be an astropy Table, got {type(stars).__name__}")
    missing = [c for c in STAR_COLUMNS if c not in stars.colnames]
    if missing:
        raise KeyError(f"{name} lacks star-table columns {missing}")
    return stars


def check_cone(coord, radius):
    """
    Check a cone: return its centre as a Galactic `~astropy.coordinates.SkyCoord` and
    its radius in degrees.

    Raises
    ------
    TypeError
        ``coord`` is not a `~astropy.coordinates.SkyCoord` or ``radius`` not an angle.
    ValueError
        ``coord`` is not scalar or ``radius`` is not positive.
    """
    if not isinstance(coord, SkyCoord):
        raise TypeError(f"coord must be a SkyCoord, got {type(coord).__name__}")
    if not coord.isscalar:
        raise ValueError("coord must be a scalar SkyCoord")
    if not isinstance(radius, u.Quantity) or radius.unit.physical_type != "angle":
        raise TypeError(f"radius must be an angle Quantity, got {radius!r}")
    radius_deg = float(radius.to_value(u.deg))
    if not radius_deg > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    return coord.galactic, radius_deg


def select_cells(star_cells, cells):
    """
    Return the rows whose cell (``star_cells``) is one of the sorted unique ``cells``,
    ordered by cell (stars of one cell keep their order).
    """
    star_cells = np.asarray(star_cells)
    if not cells.size:
        return np.zeros(0, dtype=np.intp)
    pos = np.clip(np.searchsorted(cells, star_cells), 0, cells.size - 1)
    keep = np.flatnonzero(cells[pos] == star_cells)
    return keep[np.argsort(star_cells[keep], kind="stable")]


class PhotometrySource(abc.ABC):
    """
    Base class of photometry sources.

    `query_cells` and `query_cone` check their arguments, answer an empty request
    and cut the cone here, once for every source; a subclass only fetches stars:
    `fetch_cells` (the stars of checked cells, with their ``cell``) and `fetch_cone`
    (at least the stars of a checked cone). It also gives a ``key``: a short string
    that identifies the data (catalogue, server, cuts) in cache keys.
    """

    #: Identifies the data in cache keys; subclasses override.
    key = "base"

    def query_cells(self, cells, order, *, progress_bar=False):
        """
        Return the stars inside nested Galactic HEALPix ``cells`` at ``order``.

        Parameters
        ----------
        cells : array of int
            Cell numbers (duplicates are ignored).
        order : int
            HEALPix order of ``cells``.
        progress_bar : bool
            Show a tqdm progress bar where the source fetches in several steps.

        Returns
        -------
        stars : `~astropy.table.Table`
            Star table sorted by cell, with an extra int64 column ``cell``: the cell
            of each star. Empty (with the schema) when no star falls in the cells.
        """
        order = check_order(order)
        cells = check_cells(cells, order)
        if not cells.size:
            return empty_with_cells()
        return self.fetch_cells(cells, order, progress_bar=progress_bar)

    def query_cone(self, coord, radius):
        """
        Return the stars within ``radius`` of ``coord``.

        Parameters
        ----------
        coord : `~astropy.coordinates.SkyCoord`
            Scalar position, any frame.
        radius : `~astropy.units.Quantity`
            Angle.

        Returns
        -------
        stars : `~astropy.table.Table`
            Star table (no ``cell`` column).
        """
        centre, radius_deg = check_cone(coord, radius)
        stars = self.fetch_cone(centre, radius_deg)
        sep = SkyCoord(stars["l"], stars["b"], unit="deg", frame="galactic").separation(
            centre).to_value(u.deg)
        stars = stars[sep <= radius_deg]
        if "cell" in stars.colnames:
            stars.remove_column("cell")
        return stars

    @abc.abstractmethod
    def fetch_cells(self, cells, order, *, progress_bar=False):
        """
        Return the stars of ``cells`` (sorted unique int64, not empty) at ``order``
        (checked), sorted by cell, with an int64 ``cell`` column.
        """

    @abc.abstractmethod
    def fetch_cone(self, centre, radius_deg):
        """
        Return at least the stars within ``radius_deg`` (deg, positive) of the scalar
        Galactic ``centre``; `query_cone` drops the others.
        """
