# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Warnings and exceptions raised by cnnext."""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["CnnextWarning", "PhotometryError", "ModelFileError", "MapFileError",
           "CheckpointError"]


class CnnextWarning(AstropyUserWarning):
    """Warning issued by cnnext (a subclass of `~astropy.utils.exceptions.AstropyUserWarning`)."""


class PhotometryError(RuntimeError):
    """A photometry request failed for good (after retries); the message names the tile."""


class ModelFileError(ValueError):
    """A model file is missing, corrupted, or lacks the metadata cnnext needs."""


class MapFileError(ValueError):
    """A map file is corrupted or is not a cnnext map; the message names the file."""


class CheckpointError(ValueError):
    """A map-build checkpoint is corrupted; the message names the file."""
