# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Download the 2MASS stars of a region into a local catalogue, for offline builds.

`fetch_region` asks a photometry source (VizieR, IRSA, …) for the stars of a
region tile by tile and writes one Parquet file per tile (`cnnext.io.catalogue`);
`~cnnext.photometry.local.LocalCatalogSource` (also importable from here) reads the
catalogue back as a photometry source, so that `~cnnext.build_map` runs offline
afterwards::

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

import logging
import os
from pathlib import Path

from astropy.coordinates import SkyCoord

from .healpix import check_order, cover_cells
from .io.catalogue import (
    CATALOGUE_FORMAT,
    open_catalogue,
    require_pyarrow,
    stars_to_parquet_bytes,
    tile_name,
    write_manifest,
)
from .io.checkpoint import sha256_cells
from .io.core import atomic_write_bytes
from .jobs import default_tile_order, failed_tiles_error, run_tiles, tile_cells
from .photometry.local import LocalCatalogSource
from .region import region_to_cells

__all__ = ["fetch_region", "LocalCatalogSource", "to_hats"]

log = logging.getLogger(__name__)


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
    require_pyarrow()
    order = check_order(order)
    tile_order = default_tile_order(order) if tile_order is None else check_order(
        tile_order, "tile_order")
    if tile_order > order:
        raise ValueError(f"tile_order ({tile_order}) must not exceed order ({order})")
    output = Path(os.fspath(output))
    cells = region_to_cells(region, order)
    if cells.size == 0:
        raise ValueError(f"region contains no HEALPix cell centre at order {order}")
    manifest = {"format": CATALOGUE_FORMAT, "order": order, "tile_order": tile_order,
                "n_cells": int(cells.size), "cells_sha256": sha256_cells(cells),
                "source": getattr(source, "key", None), "complete": False}
    # one fetch per catalogue: the lock is held until the fetch ends
    lock = open_catalogue(output, manifest, cells, overwrite=overwrite, resume=resume)
    try:
        return _fetch_tiles(source, output, cells, order, tile_order, manifest, progress_bar,
                            tile_retries)
    finally:
        if lock is not None:
            lock.close()


def _fetch_tile(tile, cells, source, order):
    """The stars of one tile (one attempt: `cnnext.jobs` retries)."""
    return source.query_cells(cells, order)


def _fetch_tiles(source, output, cells, order, tile_order, manifest, progress_bar,
                 tile_retries):
    """The body of `fetch_region`, run while holding the catalogue's lock."""
    from .config import conf

    tiles_dir = output / "tiles"
    tiles, groups = tile_cells(cells, order, tile_order)
    present = {p.name for p in tiles_dir.glob("*.parquet")}
    pending = [(t, g) for t, g in zip(tiles.tolist(), groups)
               if tile_name(tile_order, t) not in present]

    def save(tile, stars):
        atomic_write_bytes(tiles_dir / tile_name(tile_order, tile), stars_to_parquet_bytes(stars))

    failed = run_tiles(pending, (_fetch_tile, (source, order)), save=save,
                       retries=int(tile_retries), backoff=float(conf.retry_backoff),
                       tile_order=tile_order, n_cells=int(cells.size),
                       n_done=int(cells.size - sum(len(g) for _, g in pending)), desc="fetch",
                       progress_bar=progress_bar)
    if failed:
        raise failed_tiles_error(failed, len(tiles), tile_order=tile_order,
                                 n_finished=len(tiles) - len(failed), where=output, job="fetch",
                                 redo="download")
    catalogue = LocalCatalogSource(output)
    manifest["complete"] = True
    manifest["n_stars"] = int(catalogue.count_stars())
    write_manifest(output, manifest)
    return LocalCatalogSource(output)


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
    table = source.read_tiles(cover_cells(source.cells, source.order, source.tile_order))
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
