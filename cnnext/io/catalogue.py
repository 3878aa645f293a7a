# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Local catalogues: the Parquet files `~cnnext.fetch.fetch_region` writes and
`~cnnext.photometry.local.LocalCatalogSource` reads.

Layout (a directory):

- ``manifest.json`` — format, HEALPix ``order`` of the cells, ``tile_order`` of the
  files, the photometry source key, ``complete`` (true once every tile is there)
  and the star count;
- ``cells.npy`` — the nested Galactic cells (at ``order``) the catalogue covers;
- ``tiles/tile-<tile_order>-<tile>.parquet`` — the stars of the covered cells inside
  one tile: the star-table columns plus the int64 ``cell`` at ``order``, each file
  written atomically (`cnnext.io.core.atomic_open`).

The 3-character 2MASS flags go through Arrow buffers directly (`str3_to_arrow`,
`fixed3_bytes`, `bytes_to_str3`): numpy's own string casts are ~50x slower.
"""

import io
import json
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import CheckpointError, CnnextWarning
from ..healpix import check_order
from ..stars import FLAG_COLUMNS, STAR_COLUMNS
from .core import atomic_write_bytes, manifest_format, remove_own_files, take_lock

__all__ = ["CATALOGUE_FORMAT", "OWN_FILES", "require_pyarrow", "tile_name",
           "stars_to_parquet_bytes", "fixed3_bytes", "flag_array", "str3_to_arrow",
           "bytes_to_str3", "write_manifest", "read_manifest", "open_catalogue"]

CATALOGUE_FORMAT = "cnnext-catalogue-1"
#: The files a fetch writes in its directory (all that ``overwrite`` deletes).
OWN_FILES = ("manifest.json", "cells.npy", "tiles/tile-*.parquet", "tiles/*.tmp")


def require_pyarrow():
    """Raise an `ImportError` naming the package when pyarrow is missing."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ImportError("local catalogues are Parquet files and need pyarrow: "
                          "pip install pyarrow") from None


def tile_name(tile_order, tile):
    """The file name of one tile."""
    return f"tile-{tile_order}-{int(tile)}.parquet"


def stars_to_parquet_bytes(stars):
    """A star table with a ``cell`` column as the bytes of a Parquet file (zstd)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {c: pa.array(np.asarray(stars[c], dtype=np.float64)) for c in STAR_COLUMNS}
    for c in FLAG_COLUMNS:
        if c in stars.colnames:
            arrays[c] = str3_to_arrow(np.asarray(stars[c]))
    arrays["cell"] = pa.array(np.asarray(stars["cell"], dtype=np.int64))
    # astropy's Parquet reader wants the width of string columns (else it warns)
    meta = {f"table::len::{c}".encode(): b"3" for c in FLAG_COLUMNS if c in arrays}
    buf = io.BytesIO()
    pq.write_table(pa.table(arrays, metadata=meta), buf, compression="zstd")
    return buf.getvalue()


def fixed3_bytes(column):
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


def flag_array(column):
    """A column of 3-character flags as a numpy ``S3`` array."""
    fixed = fixed3_bytes(column)
    if fixed is not None:
        return fixed
    return np.asarray(column.to_numpy(zero_copy_only=False).astype("U3")).astype("S3")


def str3_to_arrow(values):
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


def bytes_to_str3(values):
    """``S3`` to ``U3`` through integer codes: numpy's own string cast is ~50x slower."""
    values = np.ascontiguousarray(values, dtype="S3")
    codes = np.frombuffer(values.tobytes(), np.uint8).reshape(-1, 3).astype("<u4")
    return codes.view("<U3").reshape(values.shape)


def write_manifest(path, manifest):
    """Write ``manifest.json`` of the catalogue directory ``path`` (atomically)."""
    atomic_write_bytes(Path(path) / "manifest.json",
                        json.dumps(manifest, indent=1, sort_keys=True).encode())


def read_manifest(path):
    """Read and check ``manifest.json`` of the catalogue directory ``path``."""
    where = Path(path) / "manifest.json"
    try:
        manifest = json.loads(where.read_text())
        if not isinstance(manifest, dict) or manifest.get("format") != CATALOGUE_FORMAT:
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


def open_catalogue(output, manifest, cells, *, overwrite, resume):
    """
    Prepare the catalogue directory ``output`` for a fetch described by ``manifest``
    (of the region's ``cells``) and take its lock.

    A new directory (or, with ``overwrite``, a catalogue cnnext wrote) gets
    ``cells.npy`` and ``manifest.json``; an existing catalogue of the same region
    is resumed (its manifest must agree). Leftovers of killed writes are removed.

    Returns
    -------
    file or None
        The lock (`~cnnext.io.core.take_lock`): close it when the fetch ends.

    Raises
    ------
    FileExistsError
        ``output`` is a file, or a directory cnnext did not write (``overwrite``),
        or a catalogue while neither ``resume`` nor ``overwrite`` is given.
    `~cnnext.exceptions.CheckpointError`
        The catalogue is of another region, order or tile order, is damaged, or
        another fetch holds its lock.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"output {str(output)!r} exists and is not a directory")
    # what an earlier fetch left (a lock file alone is no catalogue)
    contents = [p for p in output.iterdir() if p.name != "lock"] if output.exists() else []
    if contents and overwrite and manifest_format(output) != CATALOGUE_FORMAT:
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
        _prepare(output, manifest, cells, fresh)
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    return lock


def _prepare(output, manifest, cells, fresh):
    tiles_dir = output / "tiles"
    if fresh:
        # overwrite: the files of the earlier fetch (checked to be a cnnext catalogue),
        # nothing else; not the lock we hold
        remove_own_files(output, OWN_FILES)
        tiles_dir.mkdir(exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, cells)
        atomic_write_bytes(output / "cells.npy", buf.getvalue())
        write_manifest(output, manifest)
    else:
        old = read_manifest(output)
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
