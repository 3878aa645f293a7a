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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from ..exceptions import MapFileError
from ..observation import DESCRIPTORS
from ..profiles import ProfileMap
from .core import atomic_open

__all__ = ["read_map", "write_map", "to_hdulist", "is_map_file"]

_FORMAT = "cnnext-map-1"


def to_hdulist(pm):
    """Return the `~cnnext.profiles.ProfileMap` ``pm`` as a `~astropy.io.fits.HDUList`."""
    nd = pm.distances.size
    cols = [fits.Column("PIXEL", "K", array=pm.cells),
            fits.Column("AV", f"{nd}E", unit="mag", array=pm.av),
            fits.Column("SIGMA", f"{nd}E", unit="mag", array=pm.sigma),
            fits.Column("NSTARS", "K", array=pm.n_stars),
            fits.Column("FLAGS", "J", array=pm.flags),
            fits.Column("DMIN", "E", unit="kpc", array=pm.dmin),
            fits.Column("DMAX", "E", unit="kpc", array=pm.dmax),
            fits.Column("OBS", f"{len(DESCRIPTORS)}E", unit="mag",
                        array=pm.observation)]
    prof = fits.BinTableHDU.from_columns(cols, name="PROFILES")
    h = prof.header
    h["OBSNAMES"] = (",".join(DESCRIPTORS), "columns of OBS")
    h["PIXTYPE"] = ("HEALPIX", "HEALPix pixelisation")
    h["ORDERING"] = ("NESTED", "pixel ordering scheme")
    h["INDXSCHM"] = ("EXPLICIT", "pixel indices in column PIXEL")
    h["COORDSYS"] = ("G", "Galactic coordinates")
    h["NSIDE"] = (2**pm.order, "HEALPix resolution parameter")
    h["ORDER"] = (pm.order, "HEALPix order")
    h["OBJECT"] = ("PARTIAL", "sky coverage")
    h["BUNIT"] = ("mag", "cumulative A_V")
    h["CNNXFMT"] = (_FORMAT, "cnnext map format")
    law = pm.meta.get("extinction_law") or {}
    if pm.meta.get("model_sha256"):
        h["MODELSHA"] = pm.meta["model_sha256"][:64]  # SHA-256 of the ONNX model
    if law:
        h["LAWNAME"] = (str(law.get("name")), "extinction law")
        h["LAWRV"] = (float(law.get("Rv")), "R_V of the extinction law")
        for band, key in (("J", "AJ_AV"), ("H", "AH_AV"), ("Ks", "AKS_AV")):
            h[key] = (float(law["coefficients"][band]), f"A_{band}/A_V")
    dist = fits.BinTableHDU.from_columns(
        [fits.Column("DISTANCE", "D", unit="kpc", array=pm.distances)], name="DISTANCES")
    text = json.dumps(pm.meta, sort_keys=True, default=str)
    meta = fits.BinTableHDU.from_columns(
        [fits.Column("JSON", f"{max(len(text.encode()), 1)}A", array=np.array([text]))],
        name="PROVENANCE")
    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "cnnext"
    primary.header["DATE"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return fits.HDUList([primary, prof, dist, meta])


def write_map(profile_map, path, *, overwrite=False):
    """
    Write a `~cnnext.profiles.ProfileMap` to a FITS map file.

    The file is written atomically (complete or absent) and carries FITS checksums
    (CHECKSUM/DATASUM in every HDU), verified by `read_map`. It opens with plain
    `astropy.io.fits` and queries offline with
    ``CNNExtinctionMap(map_fname=path)``.

    Parameters
    ----------
    profile_map : `~cnnext.profiles.ProfileMap`
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
    >>> from cnnext.io.mapfile import read_map, write_map
    >>> from cnnext.profiles import ProfileMap
    >>> d = np.arange(1, 101) * 0.1                  # distance nodes, kpc
    >>> av = np.cumsum(np.full((2, 100), 0.01), axis=1)  # cumulative A_V, mag
    >>> m = ProfileMap(cells=[1000, 1001], order=7, distances=d, av=av,
    ...                sigma=np.full((2, 100), 0.1), n_stars=[450, 520])
    >>> path = write_map(m, os.path.join(tempfile.mkdtemp(), "example.fits"))
    >>> back = read_map(path)
    >>> back.cells.tolist(), round(float(back.av[0, -1]), 2)
    ([1000, 1001], 1.0)
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OSError(f"map file {str(path)!r} exists; pass overwrite=True to replace it")
    with atomic_open(path) as fh:
        to_hdulist(profile_map).writeto(fh, checksum=True)
    return path


def read_map(path):
    """
    Read a cnnext map file.

    Parameters
    ----------
    path : str or path-like
        FITS file written by `write_map` / `~cnnext.build_map`.

    Returns
    -------
    `~cnnext.profiles.ProfileMap`

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
    >>> from cnnext.profiles import ProfileMap
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


def is_map_file(path):
    """Whether ``path`` is a FITS file with the header of a cnnext map."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged file is simply not a map
            with fits.open(path) as hdul:
                return any(str(h.header.get("CNNXFMT", "")).startswith("cnnext-map")
                           for h in hdul[1:2])
    except Exception:  # not FITS, unreadable, a directory: not a map
        return False
