# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Build extinction maps over sky regions: tiling, checkpoint/resume, Dask.

`build_map` turns a region into HEALPix sightline cells (`~cnnext.region`), groups
the cells into *tiles* (the cells of one coarser HEALPix cell: one photometry
request each), and computes every tile with the one stars-to-profiles pipeline
(`~cnnext.sightlines.predict_cells`). Each finished tile is saved at once, atomically,
in a checkpoint directory next to the output, so that a build that is killed (or
whose photometry server fails for good on some tiles) resumes where it stopped
and never loses nor duplicates a finished cell.

Checkpoint layout, ``<output>.partial/``:

- ``manifest.json`` — model SHA-256, HEALPix order, tile order, the region's cells
  (count and SHA-256) and the photometry source key. A checkpoint made with
  another model, order or region is refused (`~cnnext.exceptions.CheckpointError`).
- ``tile-<order>-<tile>.npz`` — the profiles of one finished tile, written to a
  temporary file, flushed to disk and renamed (`os.replace`): a file with this
  name is always complete (`cnnext.io.checkpoint`). A damaged one raises
  `~cnnext.exceptions.CheckpointError` naming the file (cnnext does not silently
  recompute it: a damaged checkpoint means a disk problem the user should see);
  delete that file to recompute its tile.

- ``lock`` — held by the running build (an advisory lock the operating system
  releases when the process ends, however it ends): a second build on the same
  output is refused instead of corrupting the first.

When every tile is done the map file is written (atomically) and the checkpoint
directory is removed.
"""

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from .exceptions import CheckpointError
from .healpix import check_order
from .io.checkpoint import CHECKPOINT_FORMAT, Checkpoint, checkpoint_path, sha256_cells
from .io.mapfile import is_map_file
from .jobs import default_tile_order, failed_tiles_error, run_tiles, tile_cells
from .region import region_to_cells

__all__ = ["build_map", "checkpoint_path", "default_tile_order", "tile_cells"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- tiles

def _compute_tile(tile, cells, source, model, batch_size):
    """Photometry and profiles of one tile (one attempt: `cnnext.jobs` retries)."""
    from .sightlines import predict_cells

    stars = source.query_cells(cells, model.order)
    return predict_cells(stars, cells, model, source_key=getattr(source, "key", None),
                         batch_size=batch_size)


#: Models loaded by this process for Dask tasks, by (path, SHA-256, providers).
_WORKER_MODELS = {}
_WORKER_MODELS_LOCK = threading.Lock()


def _worker_model(path, sha256, providers):
    """The model of a Dask worker: loaded once per worker process, then reused."""
    from .model import CNNModel

    key = (path, sha256, repr(providers))
    # a lock, not just a cache: the threads of a worker start their first tiles together
    with _WORKER_MODELS_LOCK:
        model = _WORKER_MODELS.get(key)
        if model is None:
            while len(_WORKER_MODELS) >= 4:
                _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
            # one inference thread per task: the worker's task threads and the other
            # workers share the cores, and onnxruntime's default would oversubscribe them
            model = _WORKER_MODELS[key] = CNNModel(path, providers=providers, sha256=sha256,
                                                   threads=1)
    return model


def _dask_compute(tile, cells, source, model_path, model_sha256, providers, batch_size):
    """One tile on a Dask worker, with the worker's copy of the model."""
    model = _worker_model(model_path, model_sha256, providers)
    return _compute_tile(tile, cells, source, model, batch_size)


# --------------------------------------------------------------------------- build_map

def _load_model(model, providers):
    from .model import CNNModel

    if isinstance(model, CNNModel):
        return model
    return CNNModel(model, providers=providers)


def _describe_region(region):
    if isinstance(region, (str, os.PathLike)):
        return os.fspath(region)
    try:
        from regions import Region, Regions

        if isinstance(region, Region):
            region = Regions([region])
        if isinstance(region, (list, tuple)) and region and all(
                isinstance(r, Region) for r in region):
            region = Regions(list(region))
        if isinstance(region, Regions):
            return region.serialize(format="ds9")
    except Exception:  # a region that DS9 cannot express is still a valid region
        pass
    return type(region).__name__


def build_map(region, *, source, model=None, order=None, output, client=None,
              progress_bar=True, tile_order=None, batch_size=None, overwrite=False,
              resume=True, tile_retries=2, providers="auto"):
    """
    Build an extinction map over a sky region and write it to a map file.

    The region's cells are grouped into tiles (the cells inside one HEALPix cell
    at ``tile_order``); each tile is one photometry request
    (``source.query_cells``) followed by batched inference
    (`~cnnext.sightlines.predict_cells`). Finished tiles are checkpointed at once
    in ``<output>.partial/`` (see `cnnext.build`), so that rerunning the same call
    after a crash, a kill or failed tiles resumes where the build stopped.

    Parameters
    ----------
    region : region, str, `mocpy.MOC` or array of int
        A :mod:`regions` sky region (any frame), a DS9 region string or file, a
        MOC, or nested Galactic HEALPix cells at the model's order; see
        `~cnnext.region.region_to_cells` (a cell belongs to a region when its
        centre does).
    source : `~cnnext.photometry.base.PhotometrySource`
        Where the 2MASS stars come from (`~cnnext.photometry.VizierSource`,
        `~cnnext.photometry.IrsaSource`, `~cnnext.photometry.TableSource`,
        `~cnnext.photometry.hats.HatsSource`, `~cnnext.photometry.local.LocalCatalogSource`,
        a mock sky, …).
    model : `~cnnext.model.CNNModel` or path-like, optional
        The network; default the shipped model.
    order : int, optional
        HEALPix order of the cells; must equal the model's order (a model
        predicts sightlines of the size it was trained on). Default: the model's.
    output : str or path-like
        The map file to write (FITS, see `~cnnext.io.mapfile`).
    client : `distributed.Client`, optional
        Run the tiles as Dask tasks on this client's cluster. Each worker loads the
        model once (from ``model.path``, which workers must be able to read; its
        SHA-256 is checked) and receives one copy of ``source``; results are
        gathered as they complete and checkpointed by this process.
    progress_bar : bool
        Show a tqdm progress bar counting cells.
    tile_order : int, optional
        HEALPix order of the tiles; default `default_tile_order` (order - 3,
        up to 64 cells per tile).
    batch_size : int, optional
        CMDs per inference batch (default ``cnnext.conf.batch_size``).
    overwrite : bool
        Replace ``output`` if it exists (otherwise `FileExistsError` before any
        work is done).
    resume : bool
        Continue from an existing checkpoint of the same build (default). With
        `False` an existing checkpoint is discarded and the build starts over.
    tile_retries : int
        Extra attempts for a tile whose photometry fails (after the source's own
        retries), with the back-off ``cnnext.conf.retry_backoff`` doubling.
    providers : str or list
        onnxruntime execution providers when ``model`` is a path (see
        `~cnnext.model.CNNModel`), also used by Dask workers.

    Returns
    -------
    `~cnnext.profiles.ProfileMap`
        The map, as written to ``output``. Its ``meta`` holds the provenance of
        `~cnnext.sightlines.profile_meta` plus ``region`` and ``build``.

    Raises
    ------
    FileExistsError
        ``output`` exists and ``overwrite`` is False.
    ValueError
        The region holds no cell, or ``order`` differs from the model's.
    `~cnnext.exceptions.CheckpointError`
        The checkpoint belongs to another build (other model, region, order or
        tile order) or one of its files is damaged; the message names the file.
    `~cnnext.exceptions.PhotometryError`
        Some tiles still failed after all retries. All the other tiles are
        finished and checkpointed; the message lists the failed tiles and
        rerunning the same call computes only those. The exception's
        ``failed_tiles`` attribute is the list of tile numbers.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cnnext import build_map
    >>> from cnnext.photometry import TableSource
    >>> from cnnext.testing.models import write_tiny_model
    >>> from cnnext.testing.servers import random_stars
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> model = write_tiny_model(tmp / "tiny.onnx")
    >>> source = TableSource(random_stars(3000, l=(279.5, 280.5), b=(-0.5, 0.5)))
    >>> m = build_map("galactic; circle(280, 0, 0.4)", source=source, model=model,
    ...               output=tmp / "map.fits", progress_bar=False)
    >>> len(m), m.order, (tmp / "map.fits").exists(), (tmp / "map.fits.partial").exists()
    (3, 7, True, False)
    """
    from .config import conf

    output = Path(os.fspath(output))
    if output.exists() and not overwrite:
        raise FileExistsError(f"map file {str(output)!r} exists; pass overwrite=True to "
                              f"replace it")
    if output.exists() and not is_map_file(output):
        # overwrite replaces a map, never another file that happens to have its name
        raise FileExistsError(f"{str(output)!r} exists and is not a cnnext map file; "
                              f"overwrite replaces only a map cnnext wrote: choose another "
                              f"output file")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"directory {str(output.parent)!r} of the map file does not "
                                f"exist")
    model = _load_model(model, providers)
    if order is not None and check_order(order) != model.order:
        raise ValueError(f"order={order} differs from the model's HEALPix order "
                         f"{model.order}: a model predicts sightlines of the cell size it "
                         f"was trained on")
    order = model.order
    tile_order = default_tile_order(order) if tile_order is None else check_order(
        tile_order, "tile_order")
    tile_retries = int(tile_retries)
    if tile_retries < 0:
        raise ValueError(f"tile_retries must be >= 0, got {tile_retries}")
    cells = region_to_cells(region, order)
    if cells.size == 0:
        raise ValueError(f"region {_describe_region(region)[:200]!r} contains no HEALPix "
                         f"cell centre at order {order}")
    tiles, groups = tile_cells(cells, order, tile_order)

    source_key = getattr(source, "key", None)
    checkpoint = Checkpoint(checkpoint_path(output), {
        "format": CHECKPOINT_FORMAT, "model_sha256": model.sha256, "order": order,
        "tile_order": tile_order, "n_cells": int(cells.size),
        "cells_sha256": sha256_cells(cells), "source": source_key})
    checkpoint.open(resume=resume)
    try:
        done = _run_tiles(checkpoint, tiles, groups, source, model, client=client,
                          providers=providers, progress_bar=progress_bar,
                          opts=dict(batch_size=batch_size, retries=tile_retries,
                                    backoff=float(conf.retry_backoff),
                                    tile_order=tile_order))
        parts = [done[t] for t in tiles.tolist()]
        result = parts[0].merge(*parts[1:]) if len(parts) > 1 else parts[0]
        meta = dict(parts[0].meta)
        meta["region"] = _describe_region(region)[:20000]
        meta["build"] = {"n_cells": int(cells.size), "tile_order": tile_order,
                         "n_tiles": int(len(tiles)),
                         "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                         "dask": client is not None}
        result.meta = meta
        result.write(output, overwrite=overwrite)
    finally:
        checkpoint.close()
    checkpoint.remove()
    log.info("build_map: wrote %s (%d cells)", output, len(result))
    return result


def _run_tiles(checkpoint, tiles, groups, source, model, *, client, providers, progress_bar,
               opts):
    """Load the finished tiles, compute the others; return ``{tile: ProfileMap}``."""
    tile_of = dict(zip(tiles.tolist(), groups))
    done = {}
    for tile in checkpoint.finished_tiles():
        if tile not in tile_of:
            raise CheckpointError(f"checkpoint file {str(checkpoint.tile_file(tile))!r} is "
                                  f"for tile {tile}, which is not in this region; delete it")
        done[tile] = checkpoint.load(tile, tile_of[tile], model.distances)
    pending = [(t, g) for t, g in zip(tiles.tolist(), groups) if t not in done]
    n_cells = sum(len(g) for g in groups)
    log.info("build_map: %d cells in %d tiles (order %d / tile order %d), %d tiles already "
             "done", n_cells, len(tiles), model.order, opts["tile_order"], len(done))

    remote = None
    if client is not None:
        try:
            # one copy of the source per worker, not one per task
            remote_source = client.scatter(source, broadcast=True, hash=False)
        except Exception as exc:
            raise TypeError(f"the photometry source {type(source).__name__} cannot be sent "
                            f"to Dask workers ({type(exc).__name__}: {exc}); use a source "
                            f"that pickles, such as HatsSource or LocalCatalogSource") from None
        remote = (_dask_compute, (remote_source, str(Path(model.path).resolve()), model.sha256,
                                  providers, opts["batch_size"]))

    def save(tile, pm):
        checkpoint.save(tile, pm)
        done[tile] = pm

    failed = run_tiles(pending, (_compute_tile, (source, model, opts["batch_size"])),
                       save=save, retries=opts["retries"], backoff=opts["backoff"],
                       tile_order=opts["tile_order"], n_cells=n_cells,
                       n_done=sum(len(p) for p in done.values()), desc="build_map",
                       progress_bar=progress_bar, client=client, remote=remote)
    if failed:
        raise failed_tiles_error(failed, len(tiles), tile_order=opts["tile_order"],
                                 n_finished=len(done), where=checkpoint.path, job="build",
                                 redo="compute")
    return done
