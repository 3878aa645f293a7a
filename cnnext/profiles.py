# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Map files: extinction profiles on a partial-sky HEALPix grid, in FITS.

A map file holds one row per sightline cell (explicit nested Galactic HEALPix
indices) with the cumulative A_V profile, its 1-sigma uncertainty, the star count
and flags; the distance nodes and the provenance (model hash, extinction law,
photometry source, cnnext version) travel with it. It opens with plain
`astropy.io.fits` / `astropy.table.Table`.
"""

import io
import json
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from ._files import atomic_open
from .exceptions import MapFileError
from .healpix import check_order
from .observation import DESCRIPTORS

__all__ = ["ProfileMap", "read_map", "write_map", "FLAG_FEW_STARS", "FLAG_OUTSIDE_MODEL",
           "FLAG_PARTIAL", "FLAG_NO_DATA", "FLAG_NAMES", "ROW_ARRAYS"]

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

_FORMAT = "cnnext-map-1"


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
    >>> from cnnext.mapfile import ProfileMap
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
        """Return the map as a `~astropy.io.fits.HDUList`."""
        nd = self.distances.size
        cols = [fits.Column("PIXEL", "K", array=self.cells),
                fits.Column("AV", f"{nd}E", unit="mag", array=self.av),
                fits.Column("SIGMA", f"{nd}E", unit="mag", array=self.sigma),
                fits.Column("NSTARS", "K", array=self.n_stars),
                fits.Column("FLAGS", "J", array=self.flags),
                fits.Column("DMIN", "E", unit="kpc", array=self.dmin),
                fits.Column("DMAX", "E", unit="kpc", array=self.dmax),
                fits.Column("OBS", f"{len(DESCRIPTORS)}E", unit="mag",
                            array=self.observation)]
        prof = fits.BinTableHDU.from_columns(cols, name="PROFILES")
        h = prof.header
        h["OBSNAMES"] = (",".join(DESCRIPTORS), "columns of OBS")
        h["PIXTYPE"] = ("HEALPIX", "HEALPix pixelisation")
        h["ORDERING"] = ("NESTED", "pixel ordering scheme")
        h["INDXSCHM"] = ("EXPLICIT", "pixel indices in column PIXEL")
        h["COORDSYS"] = ("G", "Galactic coordinates")
        h["NSIDE"] = (2**self.order, "HEALPix resolution parameter")
        h["ORDER"] = (self.order, "HEALPix order")
        h["OBJECT"] = ("PARTIAL", "sky coverage")
        h["BUNIT"] = ("mag", "cumulative A_V")
        h["CNNXFMT"] = (_FORMAT, "cnnext map format")
        law = self.meta.get("extinction_law") or {}
        if self.meta.get("model_sha256"):
            h["MODELSHA"] = self.meta["model_sha256"][:64]  # SHA-256 of the ONNX model
        if law:
            h["LAWNAME"] = (str(law.get("name")), "extinction law")
            h["LAWRV"] = (float(law.get("Rv")), "R_V of the extinction law")
            for band, key in (("J", "AJ_AV"), ("H", "AH_AV"), ("Ks", "AKS_AV")):
                h[key] = (float(law["coefficients"][band]), f"A_{band}/A_V")
        dist = fits.BinTableHDU.from_columns(
            [fits.Column("DISTANCE", "D", unit="kpc", array=self.distances)], name="DISTANCES")
        text = json.dumps(self.meta, sort_keys=True, default=str)
        meta = fits.BinTableHDU.from_columns(
            [fits.Column("JSON", f"{max(len(text.encode()), 1)}A", array=np.array([text]))],
            name="PROVENANCE")
        primary = fits.PrimaryHDU()
        primary.header["ORIGIN"] = "cnnext"
        primary.header["DATE"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return fits.HDUList([primary, prof, dist, meta])

    def write(self, path, *, overwrite=False):
        """
        Write the map to a FITS file, atomically (a reader never sees half a file),
        with FITS checksums (CHECKSUM/DATASUM) that `read_map` verifies.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise OSError(f"map file {str(path)!r} exists; pass overwrite=True to replace it")
        with atomic_open(path) as fh:
            self.to_hdulist().writeto(fh, checksum=True)
        return path


def write_map(profile_map, path, *, overwrite=False):
    """
    Write a `ProfileMap` to a FITS map file.

    The file is written atomically (complete or absent) and carries FITS checksums
    (CHECKSUM/DATASUM in every HDU), verified by `read_map`. It opens with plain
    `astropy.io.fits` and queries offline with
    ``CNNExtinctionMap(map_fname=path)``.

    Parameters
    ----------
    profile_map : `ProfileMap`
        The profiles to write.
    path : str or path-like
        The FITS file to write.
    overwrite : bool, optional
        Replace ``path`` if it exists (otherwise an `OSError`).

    Returns
    -------
    `~pathlib.Path`
        The file written.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from cnnext.mapfile import ProfileMap, read_map, write_map
    >>> d = np.arange(1, 101) * 0.1                  # distance nodes, kpc
    >>> av = np.cumsum(np.full((2, 100), 0.01), axis=1)  # cumulative A_V, mag
    >>> m = ProfileMap(cells=[1000, 1001], order=7, distances=d, av=av,
    ...                sigma=np.full((2, 100), 0.1), n_stars=[450, 520])
    >>> path = write_map(m, os.path.join(tempfile.mkdtemp(), "example.fits"))
    >>> back = read_map(path)
    >>> back.cells.tolist(), round(float(back.av[0, -1]), 2)
    ([1000, 1001], 1.0)
    """
    return profile_map.write(path, overwrite=overwrite)


def read_map(path):
    """
    Read a cnnext map file.

    Parameters
    ----------
    path : str or path-like
        FITS file written by `write_map` / `~cnnext.build_map`.

    Returns
    -------
    `ProfileMap`

    Raises
    ------
    MapFileError
        If the file is unreadable, truncated, changed since it was written (its FITS
        checksums do not match) or not a cnnext map (the message names it).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from cnnext import read_map
    >>> from cnnext.mapfile import ProfileMap
    >>> d = np.arange(1, 101) * 0.1
    >>> path = ProfileMap(cells=[121430, 121431], order=7, distances=d,
    ...                   av=[0.7 * d, 0.9 * d], sigma=[0.1 * d, 0.1 * d],
    ...                   n_stars=[900, 1200]).write(
    ...     pathlib.Path(tempfile.mkdtemp()) / "map.fits")
    >>> m = read_map(path)
    >>> m
    <ProfileMap 2 cells at HEALPix order 7, 100 distances 0.1-10 kpc>
    >>> m.cells.tolist(), m.n_stars.tolist()
    ([121430, 121431], [900, 1200])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"map file {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():
            # a truncated or damaged file only warns in astropy: make it an error
            warnings.simplefilter("error", AstropyWarning)
            # read from memory: a failed open must leave no file handle behind;
            # checksum=True verifies CHECKSUM/DATASUM where present (maps written
            # before checksums were added have none); a mismatch only warns in
            # astropy, so it raises here
            hdul = fits.open(io.BytesIO(path.read_bytes()), checksum=True)
            try:
                hdul.readall()
                hdul.verify("exception")
            except Exception:
                hdul.close()
                raise
        with hdul:
            prof = hdul["PROFILES"]
            h = prof.header
            if h.get("CNNXFMT") != _FORMAT or h.get("PIXTYPE") != "HEALPIX" or \
                    h.get("ORDERING") != "NESTED" or h.get("INDXSCHM") != "EXPLICIT":
                raise ValueError("not a cnnext map (header keywords CNNXFMT/PIXTYPE/ORDERING/"
                                 "INDXSCHM)")
            data = prof.data
            distances = np.array(hdul["DISTANCES"].data["DISTANCE"], dtype=float)
            meta = json.loads(str(hdul["PROVENANCE"].data["JSON"][0])) \
                if "PROVENANCE" in hdul else {}
            return ProfileMap(cells=np.array(data["PIXEL"]), order=int(h["ORDER"]),
                              distances=distances, av=np.array(data["AV"]),
                              sigma=np.array(data["SIGMA"]), n_stars=np.array(data["NSTARS"]),
                              flags=np.array(data["FLAGS"]), dmin=np.array(data["DMIN"]),
                              dmax=np.array(data["DMAX"]), meta=meta,
                              observation=_read_observation(data, h))
    except MapFileError:
        raise
    except Exception as exc:  # astropy raises OSError, KeyError, VerifyError, TypeError…
        if "checksum verification failed" in str(exc).lower():
            raise MapFileError(f"map file {str(path)!r} has changed since it was written "
                               f"({str(exc).strip()} DATASUM/CHECKSUM do not match the "
                               f"content); rebuild it with `cnnext map` or restore "
                               f"it") from None
        raise MapFileError(f"map file {str(path)!r} is corrupted or not a cnnext map "
                           f"({type(exc).__name__}: {exc}); rebuild it with "
                           f"`cnnext map` or restore it") from None


def _read_observation(data, header):
    """The OBS column in `DESCRIPTORS` order (NaN for maps written without it)."""
    if "OBS" not in data.columns.names:
        return None
    names = str(header.get("OBSNAMES", "")).split(",")
    values = np.array(data["OBS"], dtype=np.float32).reshape(len(data), -1)
    out = np.full((len(data), len(DESCRIPTORS)), np.nan, np.float32)
    for k, name in enumerate(names[:values.shape[1]]):
        if name in DESCRIPTORS:
            out[:, DESCRIPTORS.index(name)] = values[:, k]
    return out
