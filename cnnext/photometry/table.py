# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Local star tables as a photometry source, and the column normalisation that every
source shares.

`to_star_table` is the single path from whatever a server or a file calls its
columns (VizieR ``II/246/out``, IRSA ``fp_psc``, plain names) to the cnnext
star-table schema; `VizierSource`, `IrsaSource` and `TableSource` all use it.
"""

import hashlib
import os
import warnings

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io.votable.exceptions import VOWarning
from astropy.table import Table

from ..healpix import lonlat_to_cells
from ..quality import BANDS
from .base import FLAG_COLUMNS, STAR_COLUMNS, PhotometrySource

__all__ = ["COLUMN_ALIASES", "to_star_table", "TableSource"]

#: Column names recognised for each star-table column, in order of preference:
#: cnnext/plain names, VizieR ``II/246/out`` names, IRSA ``fp_psc`` names.
#: ``ra``/``dec`` are used (ICRS, degrees) only when no Galactic position is given.
COLUMN_ALIASES = {
    "l": ("l", "glon", "GLON", "_Glon", "_GLON", "gal_l"),
    "b": ("b", "glat", "GLAT", "_Glat", "_GLAT", "gal_b"),
    "ra": ("ra", "RA", "RAJ2000", "_RAJ2000", "RA_ICRS", "raj2000", "ra_icrs"),
    "dec": ("dec", "DEC", "Dec", "DEJ2000", "_DEJ2000", "DE_ICRS", "dej2000", "dec_icrs"),
    "J": ("J", "Jmag", "j_m", "J_mag", "jmag"),
    "H": ("H", "Hmag", "h_m", "H_mag", "hmag"),
    "Ks": ("Ks", "K", "Kmag", "Ksmag", "k_m", "Ks_mag", "K_mag", "kmag", "ksmag"),
    # the total ("com") error first: it is VizieR's e_Xmag and what 2MASS recommends
    "e_J": ("e_J", "e_Jmag", "j_msigcom", "j_cmsig", "J_err", "Jerr", "e_jmag"),
    "e_H": ("e_H", "e_Hmag", "h_msigcom", "h_cmsig", "H_err", "Herr", "e_hmag"),
    "e_Ks": ("e_Ks", "e_K", "e_Kmag", "e_Ksmag", "k_msigcom", "k_cmsig", "Ks_err",
             "K_err", "Kerr", "e_kmag"),
    "ph_qual": ("ph_qual", "Qflg", "qflg", "Qflag"),
    "cc_flg": ("cc_flg", "Cflg", "cflg", "Cflag"),
    "designation": ("designation", "2MASS", "_2MASS", "mainid", "id"),
}

_REQUIRED = BANDS


def _find(colnames, names):
    for name in names:
        if name in colnames:
            return name
    return None


def _float_values(col, unit):
    """Column as float64 with masked entries NaN, converted to ``unit`` if it has one."""
    data = col
    col_unit = getattr(col, "unit", None)
    if col_unit is not None and unit is not None:
        try:
            data = u.Quantity(col).to_value(unit)
        except u.UnitsError:
            raise u.UnitsError(f"column {getattr(col, 'name', '')!r} has unit {col_unit}, "
                               f"not convertible to {unit}") from None
        if np.ma.isMaskedArray(col):
            data = np.ma.MaskedArray(data, mask=np.ma.getmaskarray(col))
    dtype = getattr(col, "dtype", None)
    if dtype is not None and dtype.kind not in "fiub":
        raise TypeError(f"column {getattr(col, 'name', '')!r} must be numeric, "
                        f"got dtype {dtype}")
    values = np.ma.filled(np.ma.asarray(data, dtype=np.float64), np.nan)
    # Servers send magnitudes as float32 text with a declared number of decimals
    # (VOTable 'precision'); rounding back to those decimals gives the float64 the
    # catalogue holds (12.345, not 12.345000267).
    meta = getattr(col, "meta", None) or {}
    precision = str(meta.get("precision", "")).lstrip("F")
    if dtype == np.float32 and precision.isdigit():
        values = np.round(values, int(precision))
    return np.ascontiguousarray(values)


def _flag_values(col):
    values = np.ma.asarray(col)
    if values.dtype.kind == "S":
        values = np.char.decode(np.ma.filled(values, b""), "ascii")
    elif values.dtype.kind == "O":
        values = np.array(["" if v is None or v is np.ma.masked else str(v)
                           for v in np.ma.filled(values, "")], dtype="U3")
    return np.asarray(np.ma.filled(values, ""), dtype="U3")


def to_star_table(table, *, columns=None, keep_designation=False):
    """
    Return ``table`` in the cnnext star-table schema.

    Recognises plain (``J``, ``e_J``, ``l``), VizieR ``II/246/out`` (``Jmag``,
    ``e_Jmag``, ``RAJ2000``, ``Qflg``, ``Cflg``) and IRSA ``fp_psc`` (``j_m``,
    ``j_msigcom``, ``glon``, ``ph_qual``, ``cc_flg``) column names; see
    `COLUMN_ALIASES`. Galactic ``l``, ``b`` are taken from the table when present,
    otherwise computed from ICRS ``ra``, ``dec``. Masked values become NaN; a
    magnitude without an error (2MASS upper limit) keeps its value with a NaN error,
    so that `~cnnext.quality.QualityCuts` decides whether it counts.

    Parameters
    ----------
    table : `~astropy.table.Table`, or anything `~astropy.table.Table` accepts
        The input catalogue.
    columns : dict, optional
        Explicit mapping ``{schema name: input column name}`` (e.g.
        ``{"Ks": "Kmag_2mass"}``); it overrides the recognised names for the
        columns it lists.
    keep_designation : bool
        Also return a ``designation`` column (the 2MASS identifier) when the
        input has one; used to remove duplicate stars.

    Returns
    -------
    stars : `~astropy.table.Table`
        Columns ``l``, ``b`` (deg), ``J``, ``H``, ``Ks``, ``e_J``, ``e_H``,
        ``e_Ks`` (mag, float64), and ``ph_qual``, ``cc_flg`` (``U3``) when the
        input has them.

    Raises
    ------
    TypeError
        ``table`` is not a table, or a mapped column is not numeric.
    KeyError
        A position or a magnitude column cannot be found, or ``columns`` names a
        column that the table lacks.

    Examples
    --------
    >>> from astropy.table import MaskedColumn, Table
    >>> from cnnext.photometry import to_star_table
    >>> t = Table({"glon": [280.0], "glat": [0.5], "j_m": [12.0], "j_msigcom": [0.02],
    ...            "h_m": [11.5], "h_msigcom": [0.03], "k_m": [11.3],
    ...            "k_msigcom": MaskedColumn([0.0], mask=[True]),
    ...            "ph_qual": ["AAU"], "cc_flg": ["000"]})
    >>> stars = to_star_table(t)
    >>> stars.colnames
    ['l', 'b', 'J', 'H', 'Ks', 'e_J', 'e_H', 'e_Ks', 'ph_qual', 'cc_flg']
    >>> float(stars["Ks"][0]), float(stars["e_Ks"][0])
    (11.3, nan)
    """
    if not isinstance(table, Table):
        if isinstance(table, (str, bytes, os.PathLike)) or np.isscalar(table):
            raise TypeError(f"table must be an astropy Table (or a mapping of columns), "
                            f"got {type(table).__name__}; use TableSource for files")
        try:
            table = Table(table)
        except Exception as exc:
            raise TypeError(f"table must be an astropy Table, got {type(table).__name__}: "
                            f"{exc}") from None
    colnames = table.colnames
    mapping = {}
    explicit = dict(columns or {})
    unknown = [k for k in explicit if k not in COLUMN_ALIASES]
    if unknown:
        raise KeyError(f"columns maps unknown star-table names {unknown}; "
                       f"valid: {sorted(COLUMN_ALIASES)}")
    for key, name in explicit.items():
        if name not in colnames:
            raise KeyError(f"columns maps {key!r} to {name!r}, which the table lacks "
                           f"(it has {colnames})")
        mapping[key] = name
    for key, aliases in COLUMN_ALIASES.items():
        if key not in mapping:
            found = _find(colnames, aliases)
            if found is not None:
                mapping[key] = found
    missing = [k for k in _REQUIRED if k not in mapping]
    if missing:
        raise KeyError(f"table has no column for {missing} (looked for "
                       f"{[COLUMN_ALIASES[k] for k in missing]}; pass columns={{...}} "
                       f"to map them); it has {colnames}")

    out = Table()
    n = len(table)
    if "l" in mapping and "b" in mapping:
        l = _float_values(table[mapping["l"]], u.deg)
        b = _float_values(table[mapping["b"]], u.deg)
    elif "ra" in mapping and "dec" in mapping:
        ra = _float_values(table[mapping["ra"]], u.deg)
        dec = _float_values(table[mapping["dec"]], u.deg)
        if n:
            gal = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
            l, b = gal.l.to_value(u.deg), gal.b.to_value(u.deg)
        else:
            l, b = ra, dec
    else:
        raise KeyError(f"table has no position columns (l/b, glon/glat or ra/dec, "
                       f"RAJ2000/DEJ2000); pass columns={{'l': ..., 'b': ...}}; "
                       f"it has {colnames}")
    out["l"] = np.asarray(l, dtype=np.float64)
    out["b"] = np.asarray(b, dtype=np.float64)
    for key in STAR_COLUMNS[2:]:
        if key in mapping:
            out[key] = _float_values(table[mapping[key]], u.mag)
        else:
            out[key] = np.full(n, np.nan)
    for key in FLAG_COLUMNS:
        if key in mapping:
            out[key] = _flag_values(table[mapping[key]])
    if keep_designation and "designation" in mapping:
        out["designation"] = np.asarray(np.ma.filled(
            np.ma.asarray(table[mapping["designation"]]).astype(str), ""))
    out["l"].unit = out["b"].unit = u.deg
    for key in STAR_COLUMNS[2:]:
        out[key].unit = u.mag
    return out


def _read_file(path, format=None):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"star table file {path!r} does not exist")
    kwargs = {} if format is None else {"format": format}
    lower = path.lower()
    if format is None and lower.endswith((".csv", ".csv.gz")):
        kwargs["format"] = "ascii.csv"
    elif format is None and lower.endswith(".ecsv"):
        kwargs["format"] = "ascii.ecsv"
    try:
        with warnings.catch_warnings():
            # non-standard unit strings and VOTable style remarks are not our concern:
            # the columns are checked and converted by to_star_table
            warnings.simplefilter("ignore", u.UnitsWarning)
            warnings.simplefilter("ignore", VOWarning)
            return Table.read(path, **kwargs)
    except ImportError as exc:
        raise ImportError(f"reading {path!r} needs an optional package: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"could not read star table file {path!r}: {exc}") from exc


def _content_hash(stars):
    """Short hash of the positions and magnitudes of a star table."""
    digest = hashlib.blake2b(digest_size=8)
    for name in ("l", "b", "J", "H", "Ks"):
        digest.update(np.ascontiguousarray(stars[name], dtype=np.float64).data)
    return digest.hexdigest()


class TableSource(PhotometrySource):
    """
    Photometry from a local catalogue: an astropy Table or a file.

    Files are read with `astropy.table.Table.read` (FITS, VOTable, CSV, ECSV,
    Parquet, HDF5...). Column names are recognised as in `to_star_table`, or given
    with ``columns``. The cells of all stars are computed once per HEALPix order
    and sorted, so that `query_cells` costs one `numpy.searchsorted` however many
    cells are asked for.

    Parameters
    ----------
    table : `~astropy.table.Table` or path-like
        The catalogue, or the file that holds it.
    columns : dict, optional
        Explicit ``{schema name: column name}`` mapping (see `to_star_table`).
    format : str, optional
        Format given to `~astropy.table.Table.read` when the extension is not
        enough.
    key : str, optional
        Identifies the data in cache keys; default ``"table:<file name>:<hash>"``
        with a hash of the stars' positions and magnitudes, so that two different
        tables never share cached sightlines.

    Raises
    ------
    ValueError
        A star has a NaN or infinite position (its cell is undefined), or the file
        cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from cnnext.photometry import TableSource
    >>> from cnnext.healpix import lonlat_to_cells
    >>> t = Table({"l": [280.0, 280.01, 10.0], "b": [0.0, 0.01, 5.0],
    ...            "Jmag": [12.0, 13.0, 14.0], "Hmag": [11.5, 12.4, 13.2],
    ...            "Kmag": [11.3, 12.2, 13.0], "Qflg": ["AAA"] * 3, "Cflg": ["000"] * 3})
    >>> source = TableSource(t)
    >>> cell = lonlat_to_cells(280.0, 0.0, 7)
    >>> stars = source.query_cells([cell], order=7)
    >>> len(stars), stars["cell"].tolist() == [cell, cell]
    (2, True)
    """

    def __init__(self, table, *, columns=None, format=None, key=None):
        name = None
        if isinstance(table, (str, bytes, os.PathLike)):
            name = os.path.basename(os.fspath(table))
            table = _read_file(table, format=format)
        self._stars = to_star_table(table, columns=columns)
        bad = ~(np.isfinite(self._stars["l"]) & np.isfinite(self._stars["b"]))
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(f"{bad.sum()} star(s) have NaN or infinite coordinates "
                             f"(rows {rows[:5].tolist()}{'...' if len(rows) > 5 else ''}); "
                             f"drop them first")
        missing = [c for c in ("ph_qual", "cc_flg") if c not in self._stars.colnames]
        if missing and len(self._stars):
            from ..exceptions import CnnextWarning
            from ..quality import UNFLAGGED_MAX_ERROR

            warnings.warn(f"table {name or '(in memory)'!r} has no 2MASS quality flags "
                          f"{missing}: stars are cut on their errors instead (at most "
                          f"{UNFLAGGED_MAX_ERROR} mag, the C-grade limit), without the "
                          f"contamination flags", CnnextWarning)
        self.key = key or f"table:{name or 'memory'}:{_content_hash(self._stars)}"
        self._index = {}

    @property
    def stars(self):
        """All stars, in the star-table schema."""
        return self._stars

    def __len__(self):
        return len(self._stars)

    def _sorted_cells(self, order):
        # computed once per order: the cost of many queries is then one searchsorted
        if order not in self._index:
            cells = lonlat_to_cells(self._stars["l"], self._stars["b"], order)
            perm = np.argsort(cells, kind="stable")
            self._index[order] = (cells[perm], perm)
        return self._index[order]

    def fetch_cells(self, cells, order, *, progress_bar=False):
        """The stars of checked ``cells``: one `numpy.searchsorted` on the sorted index."""
        sorted_cells, perm = self._sorted_cells(order)
        lo = np.searchsorted(sorted_cells, cells, side="left")
        hi = np.searchsorted(sorted_cells, cells, side="right")
        counts = hi - lo
        # indices of all rows of all requested cells, without a loop over cells
        positions = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        out = self._stars[perm[positions]]
        out["cell"] = sorted_cells[positions].astype(np.int64)
        return out

    def fetch_cone(self, centre, radius_deg):
        """All stars: `~cnnext.stars.PhotometrySource.query_cone` keeps those in the cone."""
        return self._stars
