# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A local catalogue written by `~cnnext.fetch.fetch_region` (`cnnext.io.catalogue`), as
a photometry source: maps are then built offline.
"""

import os
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..exceptions import CheckpointError
from ..healpix import cell_centres, cover_cells, lonlat_to_cells, parent_cells
from ..io.catalogue import bytes_to_str3, flag_array, read_manifest, require_pyarrow, tile_name
from ..region import check_cells, cone_cells
from ..stars import FLAG_COLUMNS, STAR_COLUMNS, PhotometrySource, empty_with_cells, select_cells

__all__ = ["LocalCatalogSource"]


class LocalCatalogSource(PhotometrySource):
    """
    A catalogue directory written by `~cnnext.fetch.fetch_region`, as a photometry source.

    Only the tile files that hold the requested cells are read. Asking for a
    cell the catalogue does not cover is an error (not an empty answer), so that a
    map is never built from missing data. The object pickles small (path and
    coverage only), so Dask workers open the files themselves.

    Parameters
    ----------
    path : str or path-like
        The catalogue directory.
    key : str, optional
        Cache/provenance key; default ``"local:<directory name>"``.

    Attributes
    ----------
    order, tile_order : int
        HEALPix orders of the covered cells and of the files.
    cells : `numpy.ndarray`
        Covered cells (at ``order``) whose tile file is present.
    complete : bool
        Whether the fetch finished.
    """

    def __init__(self, path, *, key=None):
        require_pyarrow()
        self.path = Path(os.fspath(path))
        manifest = read_manifest(self.path)
        self.manifest = manifest
        self.order = int(manifest["order"])
        self.tile_order = int(manifest["tile_order"])
        self.complete = bool(manifest.get("complete"))
        cells_file = self.path / "cells.npy"
        try:
            cells = np.load(cells_file, allow_pickle=False)
            cells = check_cells(cells, self.order)
        except Exception as exc:
            raise CheckpointError(f"catalogue file {str(cells_file)!r} is corrupted or "
                                  f"missing ({type(exc).__name__}: {exc}); fetch the region "
                                  f"again") from None
        tiles_dir = self.path / "tiles"
        present = {int(p.name.split("-")[2].split(".")[0])
                   for p in tiles_dir.glob(f"tile-{self.tile_order}-*.parquet")}
        have = np.isin(parent_cells(cells, self.order, self.tile_order),
                       np.fromiter(present, np.int64, len(present)))
        self.cells = cells[have]
        self.key = key or f"local:{self.path.name}"

    def __repr__(self):
        return (f"<LocalCatalogSource {str(self.path)!r}: {len(self.cells)} cells at order "
                f"{self.order}{'' if self.complete else ', incomplete'}>")

    def _tile_file(self, tile):
        return self.path / "tiles" / tile_name(self.tile_order, tile)

    def count_stars(self):
        """Return the number of stars in the catalogue (from the Parquet footers)."""
        import pyarrow.parquet as pq

        tiles = cover_cells(self.cells, self.order, self.tile_order)
        return sum(pq.ParquetFile(self._tile_file(t)).metadata.num_rows for t in tiles)

    def read_tiles(self, tiles):
        """Return the stars of the given tiles as one Arrow table (`None` for no tile)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = []
        for tile in tiles:
            path = self._tile_file(tile)
            try:
                # one thread: tiles are already read in parallel by Dask workers, and
                # pyarrow's thread pool costs more than it gains on small files
                parts.append(pq.read_table(path, use_threads=False))
            except (OSError, pa.ArrowException) as exc:
                raise CheckpointError(f"catalogue file {str(path)!r} is corrupted ({exc}); "
                                      f"delete it and rerun fetch_region to download that "
                                      f"tile again") from None
        if not parts:
            return None
        return pa.concat_tables(parts, promote_options="default") if len(parts) > 1 \
            else parts[0]

    def fetch_cells(self, cells, order, *, progress_bar=False):
        """
        The stars of checked ``cells`` at ``order`` (any order; the catalogue's own
        reads fastest).

        Raises
        ------
        ValueError
            Some cells are not (entirely) covered by the catalogue.
        """
        needed = cover_cells(cells, order, self.order)
        missing = np.setdiff1d(needed, self.cells)
        if missing.size:
            raise ValueError(f"{missing.size} requested cell(s) (at order {self.order}: "
                             f"{missing[:5].tolist()}{'...' if missing.size > 5 else ''}) are "
                             f"not in catalogue {str(self.path)!r}; fetch them with "
                             f"fetch_region")
        table = self.read_tiles(cover_cells(needed, self.order, self.tile_order))
        names = [c for c in (*STAR_COLUMNS, *FLAG_COLUMNS) if table is not None and
                 c in table.column_names]
        if table is None or table.num_rows == 0:
            return empty_with_cells()
        stored = table.column("cell").to_numpy()
        if order <= self.order:
            star_cells = parent_cells(stored, self.order, order)
        else:
            star_cells = lonlat_to_cells(table.column("l").to_numpy(),
                                         table.column("b").to_numpy(), order)
        keep = select_cells(star_cells, cells)
        out = Table()
        for name in names:
            if name in FLAG_COLUMNS:
                out[name] = bytes_to_str3(flag_array(table.column(name))[keep])
            else:
                out[name] = table.column(name).to_numpy()[keep]
        out["cell"] = star_cells[keep].astype(np.int64)
        out["l"].unit = out["b"].unit = u.deg
        for name in STAR_COLUMNS[2:]:
            out[name].unit = u.mag
        return out

    def fetch_cone(self, centre, radius_deg):
        """The stars of the cells the cone touches (the cone must be covered)."""
        cells = cone_cells(centre.l.deg, centre.b.deg, radius_deg, self.order)
        # the widened cone may reach past the coverage: require only the cells whose
        # centres are inside the cone itself, read whatever else is there
        l, b = cell_centres(cells, self.order)
        inner = SkyCoord(l, b, unit="deg", frame="galactic").separation(centre).deg <= radius_deg
        missing = np.setdiff1d(cells[inner], self.cells)
        if missing.size:
            raise ValueError(f"the cone reaches {missing.size} cell(s) that are not in "
                             f"catalogue {str(self.path)!r}; fetch them with fetch_region")
        return self.query_cells(np.intersect1d(cells, self.cells), self.order)
