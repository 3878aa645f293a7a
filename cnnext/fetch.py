# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Download the 2MASS stars of a region into a local catalogue, for offline builds.

`fetch_region` asks a photometry source (VizieR, IRSA, …) for the stars of a
region tile by tile and writes one Parquet file per tile; `LocalCatalogSource`
reads the catalogue back as a photometry source, so that `~cnnext.build_map` runs
offline afterwards::

    cat = fetch_region("galactic; box(280, 0, 46, 10, 0)", source=VizierSource(),
                       output="carina-2mass")
    build_map("galactic; box(280, 0, 46, 10, 0)", source=cat, output="carina.fits")

Catalogue layout (a directory):

- ``manifest.json`` — format, HEALPix ``order`` of the cells, ``tile_order`` of the
  files, the photometry source key, ``complete`` (true once every tile is there)
  and the star count;
- ``cells.npy`` — the nested Galactic cells (at ``order``) the catalogue covers;
- ``tiles/tile-<tile_order>-<tile>.parquet`` — the stars of the covered cells inside
  one tile: the star-table columns (``l``, ``b``, ``J``, ``H``, ``Ks``, ``e_J``,
  ``e_H``, ``e_Ks``, and ``ph_qual``, ``cc_flg`` when the source has them) plus the
  int64 ``cell`` at ``order``. Each file is written to a temporary name and renamed,
  so a file that exists is complete: an interrupted fetch resumes by fetching
  only the missing tiles.

A single tile file is a plain Parquet table: ``TableSource("…/tile-4-1234.parquet")``,
`astropy.table.Table.read`, pandas or LSDB read it. To make a HATS catalogue of the
whole download (for a Dask cluster, see :doc:`scaling`), see `to_hats`.
"""

import io
import json
import logging
import os
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ._files import atomic_write_bytes, manifest_format, remove_own_files, take_lock
from .build import _sha256_cells, _with_retries, default_tile_order
from .exceptions import CheckpointError, CnnextWarning, PhotometryError
from .healpix import cell_centres, check_order, child_cells, lonlat_to_cells
from .photometry.base import FLAG_COLUMNS, STAR_COLUMNS, PhotometrySource
from .region import check_cells, region_to_cells

__all__ = ["fetch_region", "LocalCatalogSource", "to_hats"]

log = logging.getLogger(__name__)

_FORMAT = "cnnext-catalogue-1"
#: The files a fetch writes in its directory (all that ``overwrite`` deletes).
_OWN_FILES = ("manifest.json", "cells.npy", "tiles/tile-*.parquet", "tiles/*.tmp")


def _require_pyarrow():
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ImportError("local catalogues are Parquet files and need pyarrow: "
                          "pip install pyarrow") from None


def _tile_name(tile_order, tile):
    return f"tile-{tile_order}-{int(tile)}.parquet"


def _stars_to_parquet_bytes(stars):
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {c: pa.array(np.asarray(stars[c], dtype=np.float64)) for c in STAR_COLUMNS}
    for c in FLAG_COLUMNS:
        if c in stars.colnames:
            arrays[c] = _str3_to_arrow(np.asarray(stars[c]))
    arrays["cell"] = pa.array(np.asarray(stars["cell"], dtype=np.int64))
    # astropy's Parquet reader wants the width of string columns (else it warns)
    meta = {f"table::len::{c}".encode(): b"3" for c in FLAG_COLUMNS if c in arrays}
    buf = io.BytesIO()
    pq.write_table(pa.table(arrays, metadata=meta), buf, compression="zstd")
    return buf.getvalue()


def fetch_region(region, *, source, output, order=7, tile_order=None, overwrite=False,
                 resume=True, progress_bar=True, tile_retries=2):
    """
    Download the stars of a region into a local catalogue directory.

    Parameters
    ----------
    region : region, str, `mocpy.MOC` or array of int
        As for `~cnnext.build_map` (see `~cnnext.region.region_to_cells`).
    source : `~cnnext.photometry.base.PhotometrySource`
        Where to download from, e.g. `~cnnext.photometry.VizierSource`.
    output : str or path-like
        Catalogue directory (created).
    order : int
        HEALPix order of the sightline cells (the model's; default 7). The
        catalogue can also be read at finer orders.
    tile_order : int, optional
        One source request and one file per tile; default order - 3.
    overwrite : bool
        Delete an existing catalogue at ``output`` first.
    resume : bool
        Continue an interrupted fetch of the same region (default). `False`
        refuses to touch an existing directory unless ``overwrite``.
    progress_bar : bool
        tqdm progress bar over cells.
    tile_retries : int
        Extra attempts per tile after the source's own retries.

    Returns
    -------
    `LocalCatalogSource`
        The finished catalogue, ready for `~cnnext.build_map`.

    Raises
    ------
    `~cnnext.exceptions.CheckpointError`
        ``output`` holds a catalogue of another region, order or tile order, is
        damaged, or another fetch is writing it (one fetch per catalogue at a
        time: the catalogue's ``lock`` file is locked while a fetch runs).
    `~cnnext.exceptions.PhotometryError`
        Tiles failed after all retries; the others are saved and rerunning the
        same call fetches only the failed ones.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cnnext.fetch import fetch_region
    >>> from cnnext.photometry import TableSource
    >>> from cnnext.testing.servers import random_stars
    >>> remote = TableSource(random_stars(2000, l=(279.5, 280.5), b=(-0.5, 0.5)))
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cat"
    >>> cat = fetch_region("galactic; circle(280, 0, 0.4)", source=remote, output=out,
    ...                    progress_bar=False)
    >>> cat.complete, len(cat.cells), sorted(p.name for p in out.iterdir())
    (True, 3, ['cells.npy', 'lock', 'manifest.json', 'tiles'])
    """
    _require_pyarrow()
    order = check_order(order)
    tile_order = default_tile_order(order) if tile_order is None else check_order(
        tile_order, "tile_order")
    if tile_order > order:
        raise ValueError(f"tile_order ({tile_order}) must not exceed order ({order})")
    output = Path(os.fspath(output))
    cells = region_to_cells(region, order)
    if cells.size == 0:
        raise ValueError(f"region contains no HEALPix cell centre at order {order}")
    manifest = {"format": _FORMAT, "order": order, "tile_order": tile_order,
                "n_cells": int(cells.size), "cells_sha256": _sha256_cells(cells),
                "source": getattr(source, "key", None), "complete": False}
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"output {str(output)!r} exists and is not a directory")
    # what an earlier fetch left (a lock file alone is no catalogue)
    contents = [p for p in output.iterdir() if p.name != "lock"] if output.exists() else []
    if contents and overwrite and manifest_format(output) != _FORMAT:
        # never delete a directory that is not a cnnext catalogue
        raise FileExistsError(f"{str(output)!r} exists and is not a cnnext catalogue (its "
                              f"manifest.json is missing or not cnnext's); overwrite deletes "
                              f"only a catalogue cnnext wrote: choose another output "
                              f"directory")
    if contents and not (resume or overwrite):
        raise FileExistsError(f"catalogue directory {str(output)!r} exists; pass "
                              f"resume=True to complete it or overwrite=True to replace it")
    fresh = overwrite or not contents
    output.mkdir(parents=True, exist_ok=True)
    # one fetch per catalogue: a second one would write the same tiles and manifest
    lock = take_lock(output / "lock", "fetch")
    try:
        return _fetch_tiles(source, output, cells, order, tile_order, manifest, fresh,
                            progress_bar, tile_retries)
    finally:
        if lock is not None:
            lock.close()


def _fetch_tiles(source, output, cells, order, tile_order, manifest, fresh, progress_bar,
                 tile_retries):
    """The body of `fetch_region`, run while holding the catalogue's lock."""
    from .config import conf

    tiles_dir = output / "tiles"
    if fresh:
        # overwrite: the files of the earlier fetch (checked to be a cnnext catalogue),
        # nothing else; not the lock we hold
        remove_own_files(output, _OWN_FILES)
        tiles_dir.mkdir(exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, cells)
        atomic_write_bytes(output / "cells.npy", buf.getvalue())
        _write_manifest(output, manifest)
    else:
        old = _read_manifest(output)
        labels = {"order": "HEALPix order", "tile_order": "tile order",
                  "cells_sha256": "region (cells)", "n_cells": "region (number of cells)"}
        diffs = [f"{label}: existing {old.get(key)!r}, now {manifest[key]!r}"
                 for key, label in labels.items() if old.get(key) != manifest[key]]
        if diffs:
            raise CheckpointError(f"catalogue {str(output)!r} was fetched for another region ("
                                  + "; ".join(diffs) + "); choose another output directory "
                                  "or pass overwrite=True")
        if old.get("source") != manifest["source"]:
            warnings.warn(f"catalogue {str(output)!r} was started from {old.get('source')!r}; "
                          f"continuing from {manifest['source']!r}", CnnextWarning)
        manifest["n_stars"] = old.get("n_stars")
        tiles_dir.mkdir(exist_ok=True)
    for stale in tiles_dir.glob("*.tmp"):
        stale.unlink(missing_ok=True)

    from .build import tile_cells

    tiles, groups = tile_cells(cells, order, tile_order)
    present = {p.name for p in tiles_dir.glob("*.parquet")}
    pending = [(t, g) for t, g in zip(tiles.tolist(), groups)
               if _tile_name(tile_order, t) not in present]
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm
        bar = tqdm(total=int(cells.size), unit="cell", desc="fetch",
                   initial=int(cells.size - sum(len(g) for _, g in pending)))
    failed = {}
    try:
        for tile, group in pending:
            try:
                stars = _with_retries(lambda group=group: source.query_cells(group, order),
                                      retries=int(tile_retries),
                                      backoff=float(conf.retry_backoff),
                                      what=f"tile {tile} (order {tile_order}, {len(group)} "
                                           f"cells)")
            except PhotometryError as exc:
                log.warning("%s", exc)
                failed[tile] = exc
                continue
            atomic_write_bytes(tiles_dir / _tile_name(tile_order, tile),
                                _stars_to_parquet_bytes(stars))
            if bar is not None:
                bar.update(len(group))
    finally:
        if bar is not None:
            bar.close()
    if failed:
        listed = "; ".join(f"tile {t}: {failed[t]}" for t in sorted(failed)[:10])
        error = PhotometryError(f"{len(failed)} of {len(tiles)} tiles failed: {listed}. The "
                                f"other tiles are saved in {str(output)!r}: rerun the same "
                                f"fetch to download only the failed tiles")
        error.failed_tiles = sorted(failed)
        raise error
    catalogue = LocalCatalogSource(output)
    manifest["complete"] = True
    manifest["n_stars"] = int(catalogue.count_stars())
    _write_manifest(output, manifest)
    return LocalCatalogSource(output)


def _fixed3_bytes(column):
    """
    A column of 3-character ASCII strings (Arrow) as a numpy ``S3`` array without
    Python objects; `None` when the strings are not all 3 bytes long.
    """
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.null_count or not len(arr):
        return None
    if pa.types.is_string(arr.type):
        offset_type = np.int32
    elif pa.types.is_large_string(arr.type):
        offset_type = np.int64
    else:
        return None
    offsets = np.frombuffer(arr.buffers()[1], offset_type)[arr.offset:arr.offset + len(arr) + 1]
    if not np.all(np.diff(offsets) == 3):
        return None
    # all strings are exactly 3 bytes: the string data *is* an S3 array
    return np.frombuffer(arr.buffers()[2], "S3", count=len(arr), offset=int(offsets[0]))


def _flag_array(column):
    """A column of 3-character flags as a numpy ``S3`` array."""
    fixed = _fixed3_bytes(column)
    if fixed is not None:
        return fixed
    return np.asarray(column.to_numpy(zero_copy_only=False).astype("U3")).astype("S3")


def _str3_to_arrow(values):
    """A numpy array of 3-character flags as an Arrow string array, built from buffers."""
    import pyarrow as pa

    n = values.size
    if values.dtype.kind == "U" and values.dtype.itemsize == 12:
        codes = np.ascontiguousarray(values).view("<u4").reshape(n, 3)
        if n and codes.min() > 0 and codes.max() < 128:
            # pure ASCII, exactly 3 characters each: the bytes are the string data
            data = codes.astype(np.uint8).tobytes()
            offsets = np.arange(0, 3 * n + 1, 3, dtype=np.int32).tobytes()
            return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                          pa.py_buffer(data)])
    return pa.array(values.astype(str))


def _bytes_to_str3(values):
    """``S3`` to ``U3`` through integer codes: numpy's own string cast is ~50x slower."""
    values = np.ascontiguousarray(values, dtype="S3")
    codes = np.frombuffer(values.tobytes(), np.uint8).reshape(-1, 3).astype("<u4")
    return codes.view("<U3").reshape(values.shape)


def _write_manifest(path, manifest):
    atomic_write_bytes(Path(path) / "manifest.json",
                        json.dumps(manifest, indent=1, sort_keys=True).encode())


def _read_manifest(path):
    where = Path(path) / "manifest.json"
    try:
        manifest = json.loads(where.read_text())
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise ValueError("not a cnnext catalogue manifest")
        for key in ("order", "tile_order"):
            check_order(manifest[key], key)
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(path)!r} is not a cnnext catalogue directory "
                                f"(no manifest.json); make one with cnnext.fetch.fetch_region "
                                f"or `cnnext fetch`") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"catalogue manifest {str(where)!r} is corrupted ({exc}); fetch "
                              f"the region again") from None
    return manifest


class LocalCatalogSource(PhotometrySource):
    """
    A catalogue directory written by `fetch_region`, as a photometry source.

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
        _require_pyarrow()
        self.path = Path(os.fspath(path))
        manifest = _read_manifest(self.path)
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
        shift = 2 * (self.order - self.tile_order)
        have = np.isin(cells >> shift, np.fromiter(present, np.int64, len(present)))
        self.cells = cells[have]
        self.key = key or f"local:{self.path.name}"

    def __repr__(self):
        return (f"<LocalCatalogSource {str(self.path)!r}: {len(self.cells)} cells at order "
                f"{self.order}{'' if self.complete else ', incomplete'}>")

    def _tile_file(self, tile):
        return self.path / "tiles" / _tile_name(self.tile_order, tile)

    def count_stars(self):
        """Return the number of stars in the catalogue (from the Parquet footers)."""
        import pyarrow.parquet as pq

        tiles = np.unique(self.cells >> (2 * (self.order - self.tile_order)))
        return sum(pq.ParquetFile(self._tile_file(t)).metadata.num_rows for t in tiles)

    def _read_tiles(self, tiles):
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

    def query_cells(self, cells, order, *, progress_bar=False):
        """
        Return the stars of nested Galactic HEALPix ``cells`` at ``order``.

        Parameters
        ----------
        cells : array of int
            Cells (duplicates ignored).
        order : int
            Their HEALPix order (any; the catalogue's own order reads fastest).
        progress_bar : bool
            Accepted for a uniform interface.

        Returns
        -------
        stars : `~astropy.table.Table`
            Star table sorted by cell, with an int64 ``cell`` column.

        Raises
        ------
        ValueError
            Some cells are not (entirely) covered by the catalogue.
        """
        order = check_order(order)
        cells = check_cells(cells, order)
        if order >= self.order:
            needed = np.unique(cells >> (2 * (order - self.order)))
        else:
            needed = child_cells(cells, order, self.order)
        missing = np.setdiff1d(needed, self.cells)
        if missing.size:
            raise ValueError(f"{missing.size} requested cell(s) (at order {self.order}: "
                             f"{missing[:5].tolist()}{'...' if missing.size > 5 else ''}) are "
                             f"not in catalogue {str(self.path)!r}; fetch them with "
                             f"fetch_region")
        tiles = np.unique(needed >> (2 * (self.order - self.tile_order)))
        table = self._read_tiles(tiles)
        names = [c for c in (*STAR_COLUMNS, *FLAG_COLUMNS) if table is not None and
                 c in table.column_names]
        if table is None or table.num_rows == 0:
            from .photometry.table import _empty_with_cells
            return _empty_with_cells()
        stored = table.column("cell").to_numpy()
        if order == self.order:
            star_cells = stored
        elif order < self.order:
            star_cells = stored >> (2 * (self.order - order))
        else:
            star_cells = lonlat_to_cells(table.column("l").to_numpy(),
                                         table.column("b").to_numpy(), order)
        pos = np.clip(np.searchsorted(cells, star_cells), 0, cells.size - 1)
        keep = np.flatnonzero(cells[pos] == star_cells)
        keep = keep[np.argsort(star_cells[keep], kind="stable")]
        out = Table()
        for name in names:
            if name in FLAG_COLUMNS:
                out[name] = _bytes_to_str3(_flag_array(table.column(name))[keep])
            else:
                out[name] = table.column(name).to_numpy()[keep]
        out["cell"] = star_cells[keep].astype(np.int64)
        out["l"].unit = out["b"].unit = u.deg
        for name in STAR_COLUMNS[2:]:
            out[name].unit = u.mag
        return out

    def query_cone(self, coord, radius):
        """
        Return the stars within ``radius`` of ``coord`` (the cone must be covered).
        """
        from .photometry.table import _check_cone
        from .region import _cone_cells

        centre, radius_deg = _check_cone(coord, radius)
        cells = _cone_cells(centre.l.deg, centre.b.deg, radius_deg, self.order)
        # the widened cone may reach past the coverage: require only the cells whose
        # centres are inside the cone itself, read whatever else is there
        l, b = cell_centres(cells, self.order)
        inner = SkyCoord(l, b, unit="deg", frame="galactic").separation(centre).deg <= radius_deg
        missing = np.setdiff1d(cells[inner], self.cells)
        if missing.size:
            raise ValueError(f"the cone reaches {missing.size} cell(s) that are not in "
                             f"catalogue {str(self.path)!r}; fetch them with fetch_region")
        stars = self.query_cells(np.intersect1d(cells, self.cells), self.order)
        sep = SkyCoord(stars["l"], stars["b"], unit="deg", frame="galactic").separation(
            centre).to_value(u.deg)
        stars = stars[sep <= radius_deg]
        stars.remove_column("cell")
        return stars


def to_hats(catalogue, output, *, catalog_name=None, highest_order=7, progress_bar=False,
            **kwargs):
    """
    Write a catalogue directory (from `fetch_region`) as a HATS catalogue with LSDB.

    All stars are loaded in memory once: fine for regions of up to some tens of
    millions of stars; for all of 2MASS use the public HATS copy instead.

    Parameters
    ----------
    catalogue : str, path-like or `LocalCatalogSource`
        The catalogue directory.
    output : str or path-like
        HATS catalogue directory to write.
    catalog_name : str, optional
        Name recorded in the HATS properties (default the directory name).
    highest_order : int
        Finest HATS partition order.
    progress_bar : bool
        Show LSDB's progress bar while writing.
    **kwargs
        Passed to `lsdb.from_dataframe`. Partitions hold at most 100,000 stars
        unless ``partition_rows`` or ``partition_bytes`` is given (small
        partitions keep the reads of a map tile small); no margin cache is made
        unless ``margin_threshold`` is given (cnnext's cell queries do not need
        one, and it is the slow part of the conversion).

    Returns
    -------
    path : `pathlib.Path`
        ``output``; read it back with `~cnnext.photometry.hats.HatsSource`.
    """
    try:
        import lsdb
    except ImportError:
        raise ImportError('to_hats needs lsdb: pip install "cnnext[scale]"') from None
    source = catalogue if isinstance(catalogue, LocalCatalogSource) else \
        LocalCatalogSource(catalogue)
    tiles = np.unique(source.cells >> (2 * (source.order - source.tile_order)))
    table = source._read_tiles(tiles)
    frame = table.to_pandas()
    gal = SkyCoord(frame["l"].to_numpy(), frame["b"].to_numpy(), unit="deg", frame="galactic")
    icrs = gal.icrs
    frame["ra"] = icrs.ra.deg
    frame["dec"] = icrs.dec.deg
    output = Path(os.fspath(output))
    kwargs.setdefault("margin_threshold", None)
    # partitions of ~10^5 stars: a map tile then reads little more than its own stars
    if "partition_rows" not in kwargs and "partition_bytes" not in kwargs:
        kwargs["partition_rows"] = 100_000
    cat = lsdb.from_dataframe(frame, ra_column="ra", dec_column="dec",
                              catalog_name=catalog_name or output.name,
                              highest_order=highest_order, **kwargs)
    cat.write_catalog(output, progress_bar=progress_bar)
    return output
