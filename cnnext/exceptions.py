# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Warnings and exceptions raised by cnnext."""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["CnnextWarning", "PhotometryError", "ModelFileError", "MapFileError",
           "CheckpointError"]


class CnnextWarning(AstropyUserWarning):
    """
    Warning issued by cnnext (a subclass of `~astropy.utils.exceptions.AstropyUserWarning`).

    Examples
    --------
    Queries warn once per map object when coordinates get NaN; to silence that in a
    script that checks for NaN itself:

    >>> import warnings
    >>> from cnnext import CnnextWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", CnnextWarning)
    ...     # queries here: NaN where there is no answer, no warning
    """


class PhotometryError(RuntimeError):
    """A photometry request failed for good (after retries); the message names the tile."""


class ModelFileError(ValueError):
    """A model file is missing, corrupted, or lacks the metadata cnnext needs."""


class MapFileError(ValueError):
    """
    A map file is corrupted or is not a cnnext map; the message names the file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from cnnext import MapFileError, read_map
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "bad.fits"
    >>> _ = bad.write_bytes(b"not a FITS file")
    >>> try:
    ...     read_map(bad)
    ... except MapFileError as err:
    ...     print(type(err).__name__, "names the file:", "bad.fits" in str(err))
    MapFileError names the file: True
    """


class CheckpointError(ValueError):
    """A map-build checkpoint is corrupted; the message names the file."""
