# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Extinction profiles of a set of sightline cells, in memory: `ProfileMap` and the
per-cell flags.

What the pipeline (`cnnext.sightlines`) produces, what map files, the profile cache
and build checkpoints hold (`cnnext.io`), and what queries read.
"""

from dataclasses import dataclass, field

import numpy as np

from .healpix import check_order
from .observation import DESCRIPTORS

__all__ = ["ProfileMap", "FLAG_FEW_STARS", "FLAG_OUTSIDE_MODEL", "FLAG_PARTIAL",
           "FLAG_NO_DATA", "FLAG_NAMES", "ROW_ARRAYS"]

#: Fewer stars in the cell than the model's minimum: profile is NaN.
FLAG_FEW_STARS = 1
#: The cell lies outside the region the model was trained for (prediction kept).
FLAG_OUTSIDE_MODEL = 2
#: Returned by ``CNNExtinctionMap.query(..., return_flags=True)`` for coordinates whose
#: cell is not in the map (never stored in a map file).
FLAG_NO_DATA = 256
#: The cell is only partly covered by the photometry (e.g. at the edge of a local
#: catalogue's footprint): its CMD would under-count stars, so no profile is given.
FLAG_PARTIAL = 4
FLAG_NAMES = {FLAG_FEW_STARS: "few_stars", FLAG_OUTSIDE_MODEL: "outside_training_region",
              FLAG_PARTIAL: "partial_coverage", FLAG_NO_DATA: "no_data"}
#: The per-cell arrays of a `ProfileMap`, as stored in caches and checkpoints.
ROW_ARRAYS = ("cells", "av", "sigma", "n_stars", "flags", "dmin", "dmax", "observation")


@dataclass
class ProfileMap:
    """
    Extinction profiles of a set of HEALPix sightline cells.

    Parameters
    ----------
    cells : array of int
        Nested Galactic HEALPix indices at ``order`` (stored sorted and unique).
    order : int
        HEALPix order of the cells.
    distances : array of float
        Distance nodes in kpc.
    av, sigma : array of float
        Cumulative A_V and its 1-sigma uncertainty (mag), ``(n_cells, n_dist)``.
    n_stars : array of int
        Stars counted in each cell's CMD.
    flags : array of int
        Bit flags per cell (`FLAG_FEW_STARS`, `FLAG_OUTSIDE_MODEL`).
    dmin, dmax : array of float
        Distance range (kpc) where the profile is considered reliable.
    meta : dict
        Provenance: ``model_sha256``, ``extinction_law``, ``source``, …
    observation : array of float
        How deep each cell was observed, estimated from its stars: ``(n_cells, 6)``
        in mag, the descriptors `cnnext.observation.DESCRIPTORS` (S/N-10
        magnitude and count peak of J, H, Ks); NaN where unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.profiles import ProfileMap
    >>> d = np.arange(1, 4) * 0.1
    >>> m = ProfileMap(cells=[5, 2], order=7, distances=d,
    ...                av=[[0.1, 0.2, 0.3], [0.0, 0.5, 1.0]], sigma=np.full((2, 3), 0.1),
    ...                n_stars=[100, 200])
    >>> m.cells.tolist(), m.lookup([2, 3, 5]).tolist()
    ([2, 5], [0, -1, 1])
    """

    cells: np.ndarray
    order: int
    distances: np.ndarray
    av: np.ndarray
    sigma: np.ndarray
    n_stars: np.ndarray
    flags: np.ndarray = None
    dmin: np.ndarray = None
    dmax: np.ndarray = None
    meta: dict = field(default_factory=dict)
    observation: np.ndarray = None

    def __post_init__(self):
        self.order = check_order(self.order)
        cells = np.asarray(self.cells, dtype=np.int64).reshape(-1)
        n = cells.size
        self.distances = np.asarray(self.distances, dtype=float).reshape(-1)
        nd = self.distances.size
        self.av = np.asarray(self.av, dtype=np.float32).reshape(n, nd)
        self.sigma = np.asarray(self.sigma, dtype=np.float32).reshape(n, nd)
        self.n_stars = np.asarray(self.n_stars, dtype=np.int64).reshape(n)
        self.flags = (np.zeros(n, np.int32) if self.flags is None
                      else np.asarray(self.flags, dtype=np.int32).reshape(n))
        self.dmin = (np.full(n, self.distances[0] if nd else np.nan, np.float32)
                     if self.dmin is None else np.asarray(self.dmin, np.float32).reshape(n))
        self.dmax = (np.full(n, self.distances[-1] if nd else np.nan, np.float32)
                     if self.dmax is None else np.asarray(self.dmax, np.float32).reshape(n))
        n_obs = len(DESCRIPTORS)
        self.observation = (np.full((n, n_obs), np.nan, np.float32) if self.observation is None
                            else np.asarray(self.observation, np.float32).reshape(n, n_obs))
        if n and (cells.min() < 0 or cells.max() >= 12 * 4**self.order):
            raise ValueError(f"cells must be valid HEALPix indices at order {self.order}")
        # keep rows sorted by cell and unique (first occurrence wins)
        cells, first = np.unique(cells, return_index=True)
        self.cells = cells
        if first.size != n or np.any(first != np.arange(n)):
            for name in ROW_ARRAYS[1:]:
                setattr(self, name, getattr(self, name)[first])

    def __len__(self):
        return self.cells.size

    def __repr__(self):
        return (f"<ProfileMap {len(self)} cells at HEALPix order {self.order}, "
                f"{self.distances.size} distances {self.distances[0]:g}-"
                f"{self.distances[-1]:g} kpc>" if len(self.distances) else "<ProfileMap>")

    def lookup(self, cells):
        """Return the row of each cell, -1 where the map has no such cell."""
        cells = np.asarray(cells, dtype=np.int64)
        idx = np.searchsorted(self.cells, cells)
        idx = np.clip(idx, 0, max(len(self) - 1, 0))
        found = (len(self) > 0) & (self.cells[idx] == cells) if len(self) else \
            np.zeros(cells.shape, bool)
        return np.where(found, idx, -1)

    def _check_compatible(self, other):
        if other.order != self.order:
            raise ValueError(f"cannot merge maps of HEALPix order {self.order} and {other.order}")
        if other.distances.shape != self.distances.shape or not np.allclose(
                other.distances, self.distances):
            raise ValueError("cannot merge maps with different distance nodes")
        a, b = self.meta.get("model_sha256"), other.meta.get("model_sha256")
        if a and b and a != b:
            raise ValueError(f"cannot merge maps made with different models ({a[:12]} and "
                             f"{b[:12]})")

    def merge(self, *others):
        """
        Return a map with the cells of this map and ``others`` (same order, distances
        and model). Where a cell is in several maps the first map's row is kept.
        """
        for other in others:
            self._check_compatible(other)
        maps = (self, *others)
        cat = {name: np.concatenate([getattr(m, name) for m in maps]) for name in ROW_ARRAYS}
        return ProfileMap(order=self.order, distances=self.distances, meta=dict(self.meta),
                          **cat)

    def select(self, rows):
        """Return a map with only the given rows (indices or boolean mask)."""
        return ProfileMap(order=self.order, distances=self.distances, meta=dict(self.meta),
                          **{name: getattr(self, name)[rows] for name in ROW_ARRAYS})

    def to_hdulist(self):
        """Return the map as a `~astropy.io.fits.HDUList` (see `cnnext.io.mapfile`)."""
        from .io.mapfile import to_hdulist

        return to_hdulist(self)

    def write(self, path, *, overwrite=False):
        """
        Write the map to a FITS file, atomically (a reader never sees half a file),
        with FITS checksums (CHECKSUM/DATASUM) that `~cnnext.io.mapfile.read_map`
        verifies (see `cnnext.io.mapfile.write_map`).
        """
        from .io.mapfile import write_map

        return write_map(self, path, overwrite=overwrite)
