# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The star-table schema and the interface every photometry source implements.

They are defined in `cnnext.stars` (below both the photometry sources and the
synthetic sky, which implement them) and re-exported here.
"""

from ..stars import (
    FLAG_COLUMNS,
    STAR_COLUMNS,
    PhotometrySource,
    empty_star_table,
    validate_star_table,
)

__all__ = ["STAR_COLUMNS", "FLAG_COLUMNS", "PhotometrySource", "empty_star_table",
           "validate_star_table"]
