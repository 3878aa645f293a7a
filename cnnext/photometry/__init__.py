# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Sources of 2MASS photometry.

Every source returns the cnnext star table (see `~cnnext.photometry.base`) for a set
of HEALPix cells or for a cone, whatever the server calls its columns:
`VizierSource` (VizieR ``II/246/out``), `IrsaSource` (IRSA TAP ``fp_psc``) and
`TableSource` (a local table or file). `to_star_table` is the column
normalisation they share.
"""

from .base import *  # noqa: F401,F403
from .table import *  # noqa: F401,F403
from .vizier import *  # noqa: F401,F403
from .irsa import *  # noqa: F401,F403
