# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
cnnext: 3D Milky Way dust extinction from 2MASS colour-magnitude diagrams.

A convolutional neural network trained on synthetic 2MASS colour-magnitude
diagrams (Cornu et al. 2022, arXiv:2201.05571) reads the extinction profile
along a sightline from the observed diagram of that sightline. The main entry
points are:

- `~cnnext.CNNExtinctionMap`, a :mod:`dustmaps`-compatible query class;
- `~cnnext.build_map` and `~cnnext.read_map` for maps over sky regions;
- :mod:`cnnext.training` to regenerate or retrain the network.
"""

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - only in a source tree without metadata
    __version__ = "0.0.0"

from .cmds import CMDSpec, build_cmds
from .config import conf
from .exceptions import *
from .extinction import ExtinctionLaw

__all__ = ["__version__", "conf", "CMDSpec", "build_cmds", "ExtinctionLaw",
           "CNNExtinctionMap", "build_map", "read_map", "CNNModel"]

# Heavier parts (dustmaps, onnxruntime, matplotlib) are imported on first use so that
# ``import cnnext`` stays fast.
_LAZY = {
    "CNNExtinctionMap": ("cnnext.map", "CNNExtinctionMap"),
    "build_map": ("cnnext.build", "build_map"),
    "read_map": ("cnnext.io.mapfile", "read_map"),
    "CNNModel": ("cnnext.model", "CNNModel"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'cnnext' has no attribute {name!r}")
