# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Build checkpoints: the ``<output>.partial/`` directory in which `~cnnext.build_map`
saves each finished tile at once, so that a killed build resumes where it stopped.

Layout:

- ``manifest.json`` — model SHA-256, HEALPix order, tile order, the region's cells
  (count and SHA-256) and the photometry source key. A checkpoint made with
  another model, order or region is refused (`~cnnext.exceptions.CheckpointError`).
- ``tile-<order>-<tile>.npz`` — the profiles of one finished tile, written
  atomically (`cnnext.io.core.atomic_open`): a file with this name is always
  complete. A damaged one raises `~cnnext.exceptions.CheckpointError` naming the
  file.
- ``lock`` — held by the running build (`cnnext.io.core.take_lock`).
"""

import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import CheckpointError, CnnextWarning
from ..profiles import ROW_ARRAYS, ProfileMap
from .core import atomic_write_bytes, manifest_format, remove_own_files, take_lock

__all__ = ["Checkpoint", "CHECKPOINT_FORMAT", "checkpoint_path", "sha256_cells"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "cnnext-build-checkpoint-1"
#: The files a build writes in its checkpoint (all that a restart deletes).
_OWN_FILES = ("manifest.json", "tile-*.npz", "*.tmp", "lock")
_ARRAYS = ROW_ARRAYS


def checkpoint_path(output):
    """Return the checkpoint directory of a build writing ``output``: ``<output>.partial``."""
    output = Path(os.fspath(output))
    return output.with_name(output.name + ".partial")



def sha256_cells(cells):
    """Return the SHA-256 of an array of cells (int64, little-endian): a region's identity."""
    return hashlib.sha256(np.ascontiguousarray(cells, dtype="<i8").tobytes()).hexdigest()


class Checkpoint:
    """
    The ``<output>.partial`` directory of one build (see `cnnext.build`).

    Parameters
    ----------
    path : path-like
        The directory (`checkpoint_path` of the map file).
    manifest : dict
        What identifies the build: ``format`` (`CHECKPOINT_FORMAT`), ``model_sha256``,
        ``order``, ``tile_order``, ``n_cells``, ``cells_sha256`` and ``source``.
    """

    def __init__(self, path, manifest):
        self.path = Path(path)
        self.manifest = manifest
        self.order = manifest["order"]

    @property
    def manifest_file(self):
        return self.path / "manifest.json"

    def tile_file(self, tile):
        return self.path / f"tile-{self.order}-{int(tile)}.npz"

    def open(self, *, resume):
        """
        Create the directory, or check that an existing one belongs to this build;
        then hold its lock until `close`.
        """
        discarded = False
        if self.path.exists() and not resume:
            if not self.path.is_dir() or (any(self.path.iterdir()) and manifest_format(
                    self.path) != CHECKPOINT_FORMAT):
                # never delete what is not a checkpoint
                raise CheckpointError(f"{str(self.path)!r} exists and is not a cnnext "
                                      f"checkpoint (its manifest.json is missing or not "
                                      f"cnnext's); a restart deletes only a checkpoint "
                                      f"cnnext wrote: move it away")
            self._lock()  # not while another build is using it
            log.info("discarding checkpoint %s (resume=False)", self.path)
            self.close()
            remove_own_files(self.path, _OWN_FILES)
            discarded = True
        if self.path.exists() and not discarded:
            if self.path.is_dir():
                self._lock()
            try:
                self._check_manifest()
            except Exception:
                self.close()
                raise
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock()
            atomic_write_bytes(self.manifest_file,
                                json.dumps(self.manifest, indent=1, sort_keys=True).encode())
        # leftovers of a write that was killed before its rename
        for stale in self.path.glob("*.tmp"):
            stale.unlink(missing_ok=True)

    def _lock(self):
        """
        Take the checkpoint's lock: two builds writing one checkpoint would remove
        it under each other (`cnnext.io.core.take_lock`; a killed build leaves no
        stale lock).
        """
        self._lock_file = take_lock(self.path / "lock", "build")

    def close(self):
        """Release the lock."""
        fh = getattr(self, "_lock_file", None)
        if fh is not None:
            fh.close()
            self._lock_file = None

    def _check_manifest(self):
        where = str(self.manifest_file)
        if not self.path.is_dir():
            raise CheckpointError(f"checkpoint path {str(self.path)!r} exists but is not a "
                                  f"directory; remove it")
        try:
            old = json.loads(self.manifest_file.read_text())
            if not isinstance(old, dict) or old.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {old.get('format') if isinstance(old, dict) else old!r}")
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint manifest {where!r} is missing; delete the "
                                  f"directory {str(self.path)!r} to start the build over, or "
                                  f"pass resume=False") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"checkpoint manifest {where!r} is corrupted ({exc}); "
                                  f"delete the directory {str(self.path)!r} to start the "
                                  f"build over, or pass resume=False") from None
        labels = {"model_sha256": "model", "order": "HEALPix order",
                  "tile_order": "tile order", "cells_sha256": "region (cells)",
                  "n_cells": "region (number of cells)"}
        diffs = [f"{label}: checkpoint {old.get(key)!r}, now {self.manifest[key]!r}"
                 for key, label in labels.items() if old.get(key) != self.manifest[key]]
        if diffs:
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} belongs to another build ("
                + "; ".join(diffs) + "); pass resume=False to discard it, or rerun with the "
                "same model, region and tile order")
        before, now = old.get("source"), self.manifest.get("source")
        if before != now and str(before).split(":")[0] == str(now).split(":")[0]:
            # the same kind of service (another mirror or port): the same catalogue
            log.info("checkpoint %s was started with %s; continuing with %s", self.path,
                     before, now)
        elif before != now:
            warnings.warn(f"checkpoint {str(self.path)!r} was started with photometry source "
                          f"{old.get('source')!r}; continuing with {self.manifest.get('source')!r}",
                          CnnextWarning)

    def finished_tiles(self):
        prefix = f"tile-{self.order}-"
        tiles = []
        for p in self.path.glob(prefix + "*.npz"):
            try:
                tiles.append(int(p.name[len(prefix):-4]))
            except ValueError:
                continue
        return sorted(tiles)

    def save(self, tile, pm):
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(pm.meta, sort_keys=True, default=str)),
                 **{name: getattr(pm, name) for name in _ARRAYS})
        atomic_write_bytes(self.tile_file(tile), buf.getvalue())

    def load(self, tile, expected_cells, distances):
        path = self.tile_file(tile)
        try:
            # from memory: a failed parse must not leave an open file behind
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
                # checkpoints written before cnnext 0.2 have no "observation"
                arrays = {name: data[name] for name in _ARRAYS if name in data.files}
                meta = json.loads(str(data["meta"]))
            if not np.array_equal(arrays["cells"], expected_cells):
                raise ValueError(f"it holds cells {arrays['cells'][:4].tolist()}..., not the "
                                 f"{len(expected_cells)} cells of tile {tile}")
            pm = ProfileMap(order=self.order, distances=distances, meta=meta, **arrays)
        except Exception as exc:  # zipfile, numpy and json raise many types here
            raise CheckpointError(
                f"checkpoint file {str(path)!r} is corrupted ({type(exc).__name__}: {exc}); "
                f"delete it to recompute its tile, or delete {str(self.path)!r} to start "
                f"the build over") from None
        return pm

    def remove(self):
        self.close()
        remove_own_files(self.path, _OWN_FILES)
