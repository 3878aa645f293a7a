# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""pytest configuration shared by all cnnext tests and doctests."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

# the deprecated alias of cnnext.cmds warns when imported (tested in test_cmds.py)
collect_ignore = ["cmd.py"]

try:
    from pytest_astropy_header.display import PYTEST_HEADER_MODULES, TESTED_VERSIONS
except ImportError:  # pragma: no cover
    PYTEST_HEADER_MODULES = {}
    TESTED_VERSIONS = {}


def pytest_configure(config):
    config.option.astropy_header = True
    for name in ("Pandas", "h5py", "Matplotlib"):
        PYTEST_HEADER_MODULES.pop(name, None)
    PYTEST_HEADER_MODULES.update({"astroquery": "astroquery", "dustmaps": "dustmaps",
                                  "regions": "regions", "onnxruntime": "onnxruntime",
                                  "torch": "torch"})
    from cnnext import __version__

    TESTED_VERSIONS["cnnext"] = __version__
