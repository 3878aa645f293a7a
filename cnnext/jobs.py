# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Resumable jobs over the tiles of a region: what `~cnnext.build_map` and
`~cnnext.fetch.fetch_region` share.

A region's cells are grouped into *tiles* (`tile_cells`: the cells of one coarser
HEALPix cell). `run_tiles` computes the tiles not finished yet, in this process or as
Dask tasks, each with the one retry policy of `with_retries`; it saves every finished
tile at once through the caller's ``save`` (atomically, in the caller's work
directory), counts cells on a progress bar, and lets the other tiles go on when one
fails for good. `failed_tiles_error` is the error that then lists the failed tiles:
rerunning the same job computes only those. The work directories themselves (their
manifest and lock) are `cnnext.io.checkpoint` and `cnnext.io.catalogue`.
"""

import logging
import os
import time

import numpy as np

from .exceptions import PhotometryError
from .healpix import check_order, parent_cells

__all__ = ["RETRYABLE", "default_tile_order", "tile_cells", "with_retries", "run_tiles",
           "failed_tiles_error"]

log = logging.getLogger(__name__)

#: Errors after which a tile is tried again (network and I/O trouble). Anything
#: else is a bug or bad input and stops the job at once.
RETRYABLE = (PhotometryError, OSError, TimeoutError)


def default_tile_order(order):
    """
    Return the default tile order for cells at ``order``: ``order - 3``.

    A tile then holds up to 64 cells (about 13 deg² at order 7): few enough
    that a killed build loses little work, many enough that one request per tile
    keeps the number of photometry requests and checkpoint files small.
    """
    return max(check_order(order) - 3, 0)


def tile_cells(cells, order, tile_order):
    """
    Group cells into tiles.

    Parameters
    ----------
    cells : array of int
        Sorted nested cells at ``order``.
    order, tile_order : int
        HEALPix orders of the cells and of the tiles (``tile_order <= order``).

    Returns
    -------
    tiles : `numpy.ndarray`
        Sorted tile numbers (nested cells at ``tile_order``).
    groups : list of `numpy.ndarray`
        The cells of each tile.

    Examples
    --------
    >>> from cnnext.jobs import tile_cells
    >>> tiles, groups = tile_cells([0, 1, 5, 17, 18], order=7, tile_order=6)
    >>> tiles.tolist(), [g.tolist() for g in groups]
    ([0, 1, 4], [[0, 1], [5], [17, 18]])
    """
    order = check_order(order)
    tile_order = check_order(tile_order, "tile_order")
    if tile_order > order:
        raise ValueError(f"tile_order ({tile_order}) must not exceed the cell order ({order})")
    cells = np.unique(np.asarray(cells, dtype=np.int64))
    tiles, starts = np.unique(parent_cells(cells, order, tile_order), return_index=True)
    return tiles, np.split(cells, starts[1:])


def with_retries(func, *, retries, backoff, what):
    """
    Call ``func()``; on network or I/O errors (`RETRYABLE`) try again ``retries``
    times, waiting ``backoff`` seconds and doubling, then raise
    `~cnnext.exceptions.PhotometryError` naming ``what``.

    A `~cnnext.exceptions.PhotometryError` with ``out_of_time`` set (the source
    already waited ``cnnext.conf.max_wait``) is not tried again.
    """
    last = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return func()
        except RETRYABLE as exc:
            last = exc
            log.info("%s: attempt %d/%d failed: %s", what, attempt + 1, retries + 1, exc)
            if getattr(exc, "out_of_time", False):
                # the source already waited cnnext.conf.max_wait: keep the wait bounded
                break
    raise PhotometryError(f"{what}: failed after {attempt + 1} attempt(s): {last}") from last


def _run_tile(func, tile, cells, args, policy):
    """One tile with the retry policy; also what a Dask task runs."""
    retries, backoff, tile_order = policy
    return with_retries(lambda: func(tile, cells, *args), retries=retries, backoff=backoff,
                        what=f"tile {tile} (order {tile_order}, {len(cells)} cells)")


def run_tiles(pending, compute, *, save, retries, backoff, tile_order, n_cells, n_done,
              desc, progress_bar=False, client=None, remote=None):
    """
    Compute tiles and save each one as soon as it is finished.

    Parameters
    ----------
    pending : list of (int, `numpy.ndarray`)
        The tiles to compute and their cells.
    compute : (callable, tuple)
        ``(func, args)``: ``func(tile, cells, *args)`` computes one tile in this
        process.
    save : callable
        ``save(tile, result)``, called in this process for every finished tile.
    retries, backoff : int, float
        The retry policy of every tile (`with_retries`).
    tile_order : int
        HEALPix order of the tiles (for the messages).
    n_cells, n_done : int
        Cells of the whole job, and of the tiles finished before (progress bar).
    desc : str
        Name of the job on the progress bar and in messages (e.g. ``"build_map"``).
    progress_bar : bool
        Show a tqdm bar counting cells.
    client : `distributed.Client`, optional
        Run the tiles as Dask tasks on this client's cluster.
    remote : (callable, tuple), optional
        ``(func, args)`` run by the Dask workers, as ``compute``; default ``compute``.

    Returns
    -------
    failed : dict
        ``{tile: exception}`` of the tiles that failed after all retries (or whose
        Dask worker died); the others are saved.
    """
    policy = (int(retries), float(backoff), tile_order)
    n_cells_of = {tile: len(cells) for tile, cells in pending}
    failed = {}
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_cells, initial=int(n_done), unit="cell", desc=desc)

    def on_done(tile, result):
        save(tile, result)
        if bar is not None:
            bar.update(n_cells_of[tile])

    def on_fail(tile, exc):
        log.warning("tile %d failed: %s", tile, exc)
        failed[tile] = exc

    try:
        if client is None:
            func, args = compute
            for tile, cells in pending:
                try:
                    result = _run_tile(func, tile, cells, args, policy)
                except PhotometryError as exc:
                    on_fail(tile, exc)
                    continue
                on_done(tile, result)
        else:
            _run_dask(client, pending, remote or compute, policy, desc, on_done, on_fail)
    finally:
        if bar is not None:
            bar.close()
    return failed


def _run_dask(client, pending, remote, policy, desc, on_done, on_fail):
    try:
        from distributed import as_completed
    except ImportError:
        raise ImportError(f'{desc}(client=...) needs dask.distributed: '
                          f'pip install "cnnext[scale]"') from None
    func, args = remote
    futures = {}
    for tile, cells in pending:
        future = client.submit(_run_tile, func, tile, cells, args, policy, pure=False,
                               key=f"cnnext-tile-{tile}-{os.urandom(4).hex()}")
        futures[future] = tile
    try:
        for future in as_completed(futures):
            tile = futures[future]
            try:
                result = future.result()
            except PhotometryError as exc:
                on_fail(tile, exc)
                continue
            except Exception as exc:
                # a worker that died (KilledWorker) or lost its connection: the tile
                # failed, the others go on
                if type(exc).__module__.split(".")[0] in ("distributed", "dask") or \
                        isinstance(exc, RETRYABLE):
                    on_fail(tile, exc)
                    continue
                raise
            finally:
                future.release()
            on_done(tile, result)
    finally:
        for future in futures:
            if not future.done():
                future.cancel()


def failed_tiles_error(failed, n_tiles, *, tile_order, n_finished, where, job, redo):
    """
    Return the `~cnnext.exceptions.PhotometryError` of a job whose ``failed`` tiles
    (``{tile: exception}``) failed for good: it lists them (ten at most), says where
    the ``n_finished`` other tiles are saved and that rerunning the same ``job``
    will ``redo`` only the failed ones. Its ``failed_tiles`` attribute is the sorted
    list of failed tiles.
    """
    listed = "; ".join(f"tile {t}: {failed[t]}" for t in sorted(failed)[:10])
    more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
    error = PhotometryError(
        f"{len(failed)} of {n_tiles} tiles failed (order {tile_order}): {listed}{more}. "
        f"The {n_finished} finished tiles are saved in {str(where)!r}: rerun the same "
        f"{job} to {redo} only the failed tiles")
    error.failed_tiles = sorted(failed)
    return error
