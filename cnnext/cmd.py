# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Deprecated alias of `cnnext.cmds` (the CMD specification and builder).

The module was renamed because ``cmd`` is also a standard-library module; import
from `cnnext.cmds` (or ``from cnnext import CMDSpec, build_cmds``).
"""

import warnings

from astropy.utils.exceptions import AstropyDeprecationWarning

from .cmds import CMDChannel, CMDSpec, bin_indices, build_cmds

__all__ = ["CMDChannel", "CMDSpec", "build_cmds", "bin_indices"]

warnings.warn("cnnext.cmd is deprecated: import from cnnext.cmds", AstropyDeprecationWarning,
              stacklevel=2)
