# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
2MASS photometry from a HATS catalogue, read with LSDB.

HATS (Hierarchical Adaptive Tiling Scheme) stores a large catalogue as Parquet
files partitioned on an equatorial HEALPix grid; LSDB reads only the partitions a
search touches, from a local directory or over HTTP(S)/S3 (through fsspec). A
public HATS copy of the 2MASS Point Source Catalogue lets a Galactic-plane map run
where the catalogue lives (see :doc:`scaling`).
"""

import os

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..healpix import lonlat_to_cells
from ..stars import PhotometrySource, empty_star_table, empty_with_cells, select_cells
from .table import COLUMN_ALIASES, to_star_table

__all__ = ["HatsSource"]

# Extra depth of the search MOC below the cell order: the cones drawn around the
# cells are rasterised this much finer, so they hug the cells closely.
_MOC_EXTRA_DEPTH = 2


def _import_lsdb():
    try:
        import lsdb
    except ImportError:
        raise ImportError('HatsSource needs lsdb: pip install "cnnext[scale]"') from None
    return lsdb


class HatsSource(PhotometrySource):
    """
    Photometry from a HATS catalogue (e.g. a HATS copy of the 2MASS PSC), via LSDB.

    A query reads only the HATS partitions that overlap the requested cells (an
    LSDB `~lsdb.MOCSearch` built from a cone around each cell, in ICRS), loads
    only the columns needed for the star table, normalises them with
    `~cnnext.photometry.to_star_table` (VizieR, IRSA ``fp_psc`` and plain names are
    recognised) and keeps exactly the stars inside the cells.

    The search runs with Dask's synchronous scheduler: a query is one tile of a
    map build, and `~cnnext.build_map` already runs tiles in parallel (as Dask
    tasks with ``client=``); nesting a second level of Dask tasks inside them
    would only compete for the same workers.

    Parameters
    ----------
    path : str or path-like
        HATS catalogue directory or URL (``https://…``, ``s3://…``; remote access
        needs the matching fsspec backend, e.g. ``aiohttp`` for HTTP).
    columns : dict, optional
        ``{star-table name: catalogue column}`` for columns whose names are not
        recognised (see `~cnnext.photometry.COLUMN_ALIASES`).
    storage_options : dict, optional
        fsspec options for remote catalogues (credentials, ``client_kwargs``…).
    key : str, optional
        Cache/provenance key; default ``"hats:<path>"``.

    Examples
    --------
    >>> from cnnext.photometry.hats import HatsSource
    >>> source = HatsSource("/data/hats/2mass")  # doctest: +SKIP
    >>> stars = source.query_cells([121430], order=7)  # doctest: +SKIP
    """

    def __init__(self, path, *, columns=None, storage_options=None, key=None):
        self.path = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        self.columns = dict(columns or {})
        self.storage_options = storage_options
        self.key = key or f"hats:{self.path}"
        self._load_columns = None
        self._catalog = None

    def __repr__(self):
        return f"<HatsSource {self.path!r}>"

    def __getstate__(self):
        # the opened catalogue is rediscovered where the object lands (a Dask
        # worker): keep pickles minimal
        state = dict(self.__dict__)
        state["_load_columns"] = None
        state["_catalog"] = None
        return state

    def _open(self, search_filter=None, columns=None):
        lsdb = _import_lsdb()
        kwargs = {} if self.storage_options is None else {
            "storage_options": self.storage_options}
        try:
            return lsdb.open_catalog(self.path, search_filter=search_filter, columns=columns,
                                     error_empty_filter=False, **kwargs)
        except (FileNotFoundError, OSError) as exc:
            raise OSError(f"could not open HATS catalogue {self.path!r}: {exc}") from exc

    def _columns_to_load(self):
        """Catalogue columns needed for the star table (discovered once)."""
        if self._load_columns is None:
            available = list(self._open().all_columns)
            wanted = []
            for key, aliases in COLUMN_ALIASES.items():
                if key == "designation":
                    continue
                if key in self.columns:
                    if self.columns[key] not in available:
                        raise KeyError(f"columns maps {key!r} to {self.columns[key]!r}, which "
                                       f"HATS catalogue {self.path!r} lacks")
                    wanted.append(self.columns[key])
                    continue
                found = next((a for a in aliases if a in available), None)
                if found is not None:
                    wanted.append(found)
            self._load_columns = list(dict.fromkeys(wanted))
        return self._load_columns

    def _search_moc(self, cells, order):
        """ICRS MOC of cones that cover the (Galactic) cells."""
        from astropy.coordinates import Latitude, Longitude
        from astropy_healpix import HEALPix, level_to_nside
        from mocpy import MOC

        hp = HEALPix(nside=level_to_nside(order), order="nested", frame="galactic")
        centres = hp.healpix_to_skycoord(cells)
        # the farthest vertex bounds a cell; 1% and an arcsecond of margin cover
        # the curvature of cell edges and rounding
        lon, lat = hp.boundaries_lonlat(cells, step=2)
        corners = SkyCoord(lon, lat, frame="galactic")
        radius = corners.separation(centres[:, None]).max(axis=1) * 1.01 + 1 * u.arcsec
        icrs = centres.icrs
        return MOC.from_cones(Longitude(icrs.ra), Latitude(icrs.dec), radius=radius,
                              max_depth=min(order + _MOC_EXTRA_DEPTH, 29),
                              union_strategy="small_cones")

    def _catalogue(self):
        """The catalogue opened once (metadata, needed columns); searched per query."""
        if self._catalog is None:
            self._catalog = self._open(columns=self._columns_to_load())
        return self._catalog

    def _compute(self, search):
        import dask

        catalog = self._catalogue().search(search)
        with dask.config.set(scheduler="synchronous"):
            frame = catalog.compute(progress_bar=False)
        return _frame_to_table(frame)

    def fetch_cells(self, cells, order, *, progress_bar=False):
        """The stars of checked ``cells``: one MOC search."""
        lsdb = _import_lsdb()
        table = self._compute(lsdb.MOCSearch(self._search_moc(cells, order), fine=True))
        if len(table) == 0:
            return empty_with_cells()
        stars = to_star_table(table, columns=self.columns)
        star_cells = lonlat_to_cells(stars["l"], stars["b"], order)
        keep = select_cells(star_cells, cells)
        out = stars[keep]
        out["cell"] = star_cells[keep].astype(np.int64)
        return out

    def fetch_cone(self, centre, radius_deg):
        """The stars of one LSDB cone search."""
        lsdb = _import_lsdb()
        icrs = centre.icrs
        table = self._compute(lsdb.ConeSearch(icrs.ra.deg, icrs.dec.deg, radius_deg * 3600.0))
        if len(table) == 0:
            return empty_star_table()
        return to_star_table(table, columns=self.columns)


def _frame_to_table(frame):
    """
    A pandas frame as an astropy Table of numpy columns, fast.

    `astropy.table.Table.from_pandas` inspects every value of string columns in
    Python; 2MASS flags are fixed 3-character strings that convert in bulk.
    """
    import pyarrow as pa

    from ..io.catalogue import bytes_to_str3, fixed3_bytes

    columns = {}
    for name in frame.columns:
        series = frame[name]
        if series.dtype.kind in "fiub":
            columns[name] = series.to_numpy()
            continue
        try:
            fixed = fixed3_bytes(pa.array(series))
        except (pa.ArrowException, TypeError):
            fixed = None
        columns[name] = bytes_to_str3(fixed) if fixed is not None else \
            np.asarray(series.astype(str))
    return Table(columns)
