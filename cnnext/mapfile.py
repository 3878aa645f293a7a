# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Map files: extinction profiles on a partial-sky HEALPix grid, in FITS.

The names of this module live in `cnnext.profiles` (`ProfileMap` and the flags, in
memory) and `cnnext.io.mapfile` (`read_map`, `write_map`: the FITS format); they are
re-exported here so that ``from cnnext.mapfile import read_map, ProfileMap`` keeps
working.
"""

from .io.mapfile import read_map, write_map
from .profiles import (
    FLAG_FEW_STARS,
    FLAG_NAMES,
    FLAG_NO_DATA,
    FLAG_OUTSIDE_MODEL,
    FLAG_PARTIAL,
    ROW_ARRAYS,
    ProfileMap,
)

__all__ = ["ProfileMap", "read_map", "write_map", "FLAG_FEW_STARS", "FLAG_OUTSIDE_MODEL",
           "FLAG_PARTIAL", "FLAG_NO_DATA", "FLAG_NAMES", "ROW_ARRAYS"]
