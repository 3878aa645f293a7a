# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sphinx configuration of the cnnext documentation."""

import datetime

from sphinx_astropy.conf.v2 import *  # noqa: F403
from sphinx_astropy.conf.v2 import exclude_patterns, intersphinx_mapping

import cnnext

project = "cnnext"
author = "The cnnext developers"
copyright = f"{datetime.date.today().year}, {author}"
version = cnnext.__version__.split("+")[0]
release = cnnext.__version__

exclude_patterns = list(exclude_patterns) + ["_build", "**.ipynb_checkpoints"]
intersphinx_mapping = dict(intersphinx_mapping)
# No network while building the docs in CI: cross-references to other projects stay
# plain text instead of failing the build.
intersphinx_mapping.clear()
intersphinx_disabled_reftypes = ["*"]

html_theme = "pydata_sphinx_theme"
html_title = f"cnnext {version}"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": False}

automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
numpydoc_show_class_members = False
nitpicky = False
suppress_warnings = ["config.cache"]
