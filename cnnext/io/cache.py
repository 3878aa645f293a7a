# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A persistent cache of computed sightline profiles, safe for concurrent processes.

Layout: ``<root>/<model sha256[:16]>/<source slug>-<source hash>/<tile>/*.npz``.
Profiles are grouped by a coarse HEALPix *tile* (order ``model order - 4``, 256
cells per tile) so that a lookup only lists the few tile folders it needs. Every
write creates a new small ``.npz`` file, first under a hidden temporary name in
the same folder and then moved into place with `os.replace` (atomic on POSIX and
Windows): readers never see half a file, and two processes writing the same tile
never overwrite each other (at worst both compute a cell, and the first row
found wins when reading — the rows are identical). A cache folder that cannot be
read or written (read-only home, a file in its place) is reported once with a
`~cnnext.exceptions.CnnextWarning` and then left alone: sightlines are computed
and returned as usual, only not kept. Each file records the model
hash, source key, HEALPix order, distance nodes and a SHA-256 of its arrays; a
file that fails any check is reported with a `~cnnext.exceptions.CnnextWarning`,
removed, and its sightlines are computed again. When a tile folder holds many
files they are merged into one (again written atomically) to keep lookups fast.
"""

import hashlib
import io
import json
import logging
import os
import re
import uuid
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import CnnextWarning
from ..healpix import cover_cells, parent_cells
from ..profiles import ROW_ARRAYS, ProfileMap
from .core import atomic_open, cache_root

__all__ = ["ProfileCache", "default_cache_root"]

log = logging.getLogger(__name__)

_FORMAT = "cnnext-profile-cache-1"
_ARRAYS = ROW_ARRAYS
#: Merge a tile folder's files into one when it holds more than this many.
COMPACT_THRESHOLD = 32


def default_cache_root():
    """
    Return the folder of the profile cache.

    ``cnnext.conf.cache_dir`` when set, else astropy's cache directory + ``cnnext``
    (`cnnext.io.core.cache_root`); profiles live in its ``profiles`` sub-folder.
    """
    return cache_root() / "profiles"


def _digest(arrays):
    h = hashlib.sha256()
    for name in _ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class _CorruptEntry(Exception):
    pass


class ProfileCache:
    """
    Profiles of one model and one photometry source, kept on disk.

    Parameters
    ----------
    root : path-like
        Cache folder (created when first written).
    model_sha256 : str
        SHA-256 of the model file.
    source_key : str
        ``key`` of the photometry source.
    order : int
        HEALPix order of the cells.
    distances : array
        Distance nodes (kpc) of the model.
    meta : dict, optional
        Provenance attached to the maps returned by `load`.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from cnnext.profiles import ProfileMap
    >>> from cnnext.io.cache import ProfileCache
    >>> d = np.array([0.5, 1.0])
    >>> cache = ProfileCache(tempfile.mkdtemp(), model_sha256="ab" * 32,
    ...                      source_key="table:demo", order=7, distances=d)
    >>> cache.put(ProfileMap(cells=[10, 300], order=7, distances=d,
    ...                      av=[[0.1, 0.2], [0.3, 0.4]], sigma=[[0.1, 0.1]] * 2,
    ...                      n_stars=[50, 60]))
    >>> ProfileCache(cache.root, model_sha256="ab" * 32, source_key="table:demo", order=7,
    ...              distances=d).load([300]).cells.tolist()
    [300]
    """

    def __init__(self, root, *, model_sha256, source_key, order, distances, meta=None):
        self.root = Path(root)
        self.model_sha256 = str(model_sha256)
        self.source_key = str(source_key)
        self.order = int(order)
        self.distances = np.asarray(distances, dtype=float)
        self.meta = dict(meta or {})
        self.tile_order = max(self.order - 4, 0)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.source_key)[:40].strip("_") or "source"
        key_hash = hashlib.sha256(self.source_key.encode()).hexdigest()[:12]
        self.directory = self.root / self.model_sha256[:16] / f"{slug}-{key_hash}"
        self._header = {"format": _FORMAT, "model_sha256": self.model_sha256,
                        "source": self.source_key, "order": self.order,
                        "tile_order": self.tile_order,
                        "distances": [float(v) for v in self.distances]}
        self._seen = set()
        self._unusable = False

    def __repr__(self):
        return f"<ProfileCache {self.directory}>"

    def _tiles(self, cells):
        return cover_cells(cells, self.order, self.tile_order)

    def _empty(self):
        return ProfileMap(cells=np.zeros(0, np.int64), order=self.order,
                          distances=self.distances, av=np.zeros((0, self.distances.size)),
                          sigma=np.zeros((0, self.distances.size)), n_stars=np.zeros(0),
                          meta=dict(self.meta))

    def _read(self, path):
        try:
            # read from memory: np.load leaks its file handle when the zip is damaged
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as npz:
                header = json.loads(str(npz["header"]))
                arrays = {name: npz[name] for name in _ARRAYS}
        except FileNotFoundError:
            raise
        except Exception as exc:  # zipfile, OSError, ValueError, KeyError, JSON errors
            raise _CorruptEntry(f"unreadable ({type(exc).__name__}: {exc})") from None
        digest = header.pop("sha256", None)
        if header != self._header:
            raise _CorruptEntry("its header does not match this model/source")
        if digest != _digest(arrays):
            raise _CorruptEntry("its SHA-256 does not match its content")
        try:
            return ProfileMap(order=self.order, distances=self.distances,
                              meta=dict(self.meta), **arrays)
        except (ValueError, TypeError) as exc:
            raise _CorruptEntry(f"inconsistent arrays ({exc})") from None

    def _give_up(self, exc):
        # a cache is a convenience: never lose computed sightlines because of it
        if not self._unusable:
            warnings.warn(f"the profile cache {str(self.root)!r} cannot be used "
                          f"({type(exc).__name__}: {exc}); sightlines are computed without "
                          f"caching. Set cnnext.conf.cache_dir (or pass cache=) to a "
                          f"writable folder, or cache=False", CnnextWarning)
        self._unusable = True

    def _discard(self, path, reason):
        warnings.warn(f"profile cache file {str(path)!r} is corrupt: {reason}; it is "
                      f"removed and its sightlines will be computed again", CnnextWarning)
        try:
            os.remove(path)
        except OSError:
            pass

    def _load_tile(self, tile):
        folder = self.directory / str(int(tile))
        maps = []
        # a second listing when a file vanished while being read: another process
        # compacted the tile, and the merged file holds its rows
        for _ in range(2):
            try:
                names = sorted(n for n in os.listdir(folder)
                               if n.endswith(".npz") and not n.startswith("."))
            except FileNotFoundError:
                return maps
            except OSError as exc:  # PermissionError, NotADirectoryError...
                self._give_up(exc)
                return maps
            vanished = False
            for name in names:
                path = folder / name
                if path in self._seen:
                    continue
                try:
                    maps.append(self._read(path))
                except FileNotFoundError:
                    vanished = True
                    continue
                except _CorruptEntry as exc:
                    self._discard(path, exc)
                    continue
                self._seen.add(path)
            if not vanished:
                break
        if len(names) > COMPACT_THRESHOLD:
            self._compact(folder, names)
        return maps

    def _compact(self, folder, names):
        paths = [folder / n for n in names]
        try:
            parts = [self._read(p) for p in paths]
        except (FileNotFoundError, _CorruptEntry):
            return  # another process is at it, or a bad file was just discarded
        merged = parts[0].merge(*parts[1:]) if len(parts) > 1 else parts[0]
        try:
            new = self._write(folder, merged)
        except OSError as exc:
            self._give_up(exc)
            return
        self._seen.add(new)
        for p in paths:
            try:
                os.remove(p)
            except OSError:
                pass
        log.debug("compacted %d cache files in %s", len(paths), folder)

    def load(self, cells):
        """
        Return the cached profiles of the tiles holding ``cells`` not read before.

        Files already read by this object are skipped, so calling `load` again only
        reads what other processes added since. The result may hold more cells than
        asked for (the whole tiles); it is empty when nothing new was found.
        """
        maps = []
        for tile in self._tiles(cells):
            if self._unusable:
                break
            maps.extend(self._load_tile(tile))
        if not maps:
            return self._empty()
        return maps[0].merge(*maps[1:]) if len(maps) > 1 else maps[0]

    def _write(self, folder, pmap):
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(pmap, name) for name in _ARRAYS}
        header = dict(self._header, sha256=_digest(arrays))
        path = folder / f"{os.getpid()}-{uuid.uuid4().hex}.npz"
        # the temporary name ends in .tmp: readers list only *.npz
        with atomic_open(path) as fh:
            np.savez(fh, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
        return path

    def put(self, pmap):
        """
        Store the profiles of a `~cnnext.profiles.ProfileMap` (one file per tile).

        A folder that cannot be written is reported once (`CnnextWarning`); nothing
        is stored then, and no error is raised.
        """
        if len(pmap) == 0 or self._unusable:
            return
        if pmap.order != self.order or pmap.distances.shape != self.distances.shape or \
                not np.allclose(pmap.distances, self.distances):
            raise ValueError("profiles do not match this cache's HEALPix order and distances")
        tiles = parent_cells(pmap.cells, self.order, self.tile_order)
        bounds = np.flatnonzero(np.diff(tiles)) + 1  # cells are sorted, so are tiles
        for rows in np.split(np.arange(len(pmap)), bounds):
            try:
                path = self._write(self.directory / str(int(tiles[rows[0]])),
                                   pmap.select(rows))
            except OSError as exc:
                self._give_up(exc)
                return
            self._seen.add(path)
