# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Sources of 2MASS photometry.

Every source returns the cnnext star table (columns `STAR_COLUMNS`) for a set
of HEALPix cells or for a cone, whatever the server calls its columns:
`VizierSource` (VizieR ``II/246/out``), `IrsaSource` (IRSA TAP ``fp_psc``),
`TableSource` (a local table or file), `LocalCatalogSource` (a catalogue written by
`~cnnext.fetch.fetch_region`), `HatsSource` (a HATS catalogue read with LSDB) and
`MockSky` (the synthetic sky). `to_star_table` is the column normalisation they
share.
"""

from . import base, hats, irsa, local, mock, table, vizier
from .base import *  # noqa: F403
from .hats import *  # noqa: F403
from .irsa import *  # noqa: F403
from .local import *  # noqa: F403
from .mock import *  # noqa: F403
from .table import *  # noqa: F403
from .vizier import *  # noqa: F403

__all__ = (base.__all__ + table.__all__ + vizier.__all__ + irsa.__all__ + hats.__all__
           + local.__all__ + mock.__all__)
