# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Subcommands of the ``cnnext`` command, one module each (see `cnnext.cli`)."""
