# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Sources of 2MASS photometry.

Every source returns the cnnext star table (see `~cnnext.photometry.base`) for a set
of HEALPix cells or for a cone, whatever the server calls its columns.
"""

from .base import *  # noqa: F401,F403
