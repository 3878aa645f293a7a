# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The star-table schema and the interface every photometry source implements.
"""

import numpy as np
from astropy.table import Table

__all__ = ["STAR_COLUMNS", "FLAG_COLUMNS", "PhotometrySource", "empty_star_table",
           "validate_star_table"]

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


class PhotometrySource:
    """
    Base class of photometry sources.

    Subclasses implement `query_cells` (the stars of many HEALPix cells, usually
    fetched tile by tile) and `query_cone`, and give a ``key``: a short string that
    identifies the data (catalogue, server, cuts) in cache keys.
    """

    #: Identifies the data in cache keys; subclasses override.
    key = "base"

    def query_cells(self, cells, order, *, progress_bar=False):
        """
        Return the stars inside nested Galactic HEALPix ``cells`` at ``order``.

        Returns
        -------
        stars : `~astropy.table.Table`
            Star table with an extra int64 column ``cell``: the cell of each star.
        """
        raise NotImplementedError

    def query_cone(self, coord, radius):
        """Return the stars within ``radius`` (angle Quantity) of ``coord`` (SkyCoord)."""
        raise NotImplementedError
