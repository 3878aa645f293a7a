# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sphinx configuration of the cnnext documentation."""

import datetime
import sys
from pathlib import Path

from sphinx_astropy.conf.v2 import *  # noqa: F403
from sphinx_astropy.conf.v2 import exclude_patterns, intersphinx_mapping

import cnnext

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # the build helpers below, and the plot directives

import _generate  # noqa: E402

project = "cnnext"
author = "The cnnext developers"
copyright = f"{datetime.date.today().year}, {author}"
version = cnnext.__version__.split("+")[0]
release = cnnext.__version__

exclude_patterns = list(exclude_patterns) + ["_build", "_generated", "**.ipynb_checkpoints"]
intersphinx_mapping = dict(intersphinx_mapping)
# No network while building the docs in CI: cross-references to other projects stay
# plain text instead of failing the build (the nitpick_ignore list below names them).
intersphinx_mapping.clear()
intersphinx_disabled_reftypes = ["*"]

# --- generated content --------------------------------------------------------------
# Every number that comes from running cnnext (the demo's map and errors, the shipped
# model's metadata, the CLI options) is computed here, at build time, so the pages
# follow the code and the shipped model. The demo runs once per model and cnnext
# version; its output is cached in _build/figure-cache.
FIGURE_CACHE = _generate.prepare(DOCS)
rst_epilog = _generate.substitutions()

# --- figures ------------------------------------------------------------------------
# ``.. plot::`` code runs in the demo's working directory, where ``cnnext demo`` left
# ``cnnext-demo/demo-map.fits``: the code shown is the code a reader runs.
plot_working_directory = str(FIGURE_CACHE)
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.dpi": 110, "savefig.bbox": "tight", "font.size": 10}
plot_apply_rcparams = True
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\n"

# --- theme --------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"cnnext {version}"
html_static_path = ["_static"]
html_css_files = ["cnnext.css"]
html_theme_options = {
    "navigation_with_keys": False,
    # every main section in the top bar, none hidden under "More"
    "header_links_before_dropdown": 8,
    "navbar_align": "left",
    "show_nav_level": 1,
    "navigation_depth": 3,
    "collapse_navigation": False,
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
    "use_edit_page_button": False,
    "icon_links": [],
}
# Pages that are a section of their own have no section navigation: drop the empty
# left sidebar so that the text uses the full width.
html_sidebars = {
    "index": [],
    "cli": [],
    "changes": [],
    "citing": [],
    "contributing": [],
}

# --- API reference ------------------------------------------------------------------
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
numpydoc_show_class_members = False
suppress_warnings = ["config.cache"]

# ``sphinx-build -n`` checks every cross-reference. Without intersphinx (no network in
# CI), references to other projects cannot resolve: they are listed here, so that what
# remains are cnnext's own references, which must all resolve.
nitpicky = False
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|astropy|matplotlib|scipy|pathlib|os|io|json|typing|"
               r"collections|concurrent|dataclasses|argparse|logging|threading|"
               r"dustmaps|regions|mocpy|lsdb|hats|dask|distributed|torch|onnx|"
               r"onnxruntime|astroquery|pyvo|requests|trustme|h5py|pandas|pyarrow|"
               r"dust_extinction|healpy|tqdm|urllib|http|ssl|socket)(\..*)?"),
    (r"py:.*", r"(True|False|None|int|float|str|bytes|bool|dict|list|tuple|set|"
               r"object|callable|iterable|path-like|file-like|array-like|array|"
               r"sequence|mapping|optional|Exception|ValueError|TypeError|KeyError|"
               r"OSError|RuntimeError|ImportError|FileNotFoundError|TimeoutError|"
               r"ConnectionError|Warning|UserWarning)"),
]
